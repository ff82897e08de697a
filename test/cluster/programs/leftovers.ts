/**
 * What the shutdown programs share (test/cluster/Session.shutdown.test.ts): one line per step on stdout, and a report of
 * what still keeps the process alive, should anything do so once the program is done.
 */
import * as Net from "node:net"

/** Writes one step's line, which the test waits for. */
export const print = (line: string): void => void process.stdout.write(`${line}\n`)

/** How long after its close a program may still run before it says what keeps it alive. */
const reportAfterMillis = 45_000

/**
 * Prints the sockets and other resources still open `reportAfterMillis` from now, on a timer that does not keep the
 * process alive itself: it fires only if something else does.
 */
export const reportLeftovers = (): void => {
  setTimeout(() => {
    const sockets = (process as unknown as { _getActiveHandles(): Array<unknown> })
      ._getActiveHandles()
      .flatMap((handle) =>
        handle instanceof Net.Socket && handle.remoteAddress !== undefined && !handle.destroyed
          ? [`${handle.remoteAddress}:${handle.remotePort}`]
          : []
      )
    print(`still running: resources ${process.getActiveResourcesInfo().join(",")}; sockets to ${sockets.join(",")}`)
  }, reportAfterMillis).unref()
}
