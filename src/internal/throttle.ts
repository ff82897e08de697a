/** Limits on the requests a session sends at once and on the requests that may wait for a place. */
export interface ThrottleLimits {
  readonly maxInFlight: number
  readonly maxQueued: number
}

/**
 * A first-come-first-served gate in front of the driver: plain counters and a queue of start callbacks, so the cost
 * per request is a comparison and, when the gate is full, one set insertion.
 */
export interface Throttle {
  readonly limits: ThrottleLimits
  /**
   * Starts `task` now when fewer than `maxInFlight` tasks run, queues it when fewer than `maxQueued` wait, and
   * otherwise refuses it (`undefined`). The returned function withdraws a task that is still waiting.
   */
  readonly submit: (task: () => void) => (() => void) | undefined
  /** Marks one started task as finished, starting the longest-waiting task in its place. */
  readonly release: () => void
  /**
   * Starts every waiting task now, past `maxInFlight`: for a gate that stopped waiting for its tasks, each of which
   * then fails unsent and releases its place.
   */
  readonly startAllWaiting: () => void
  readonly running: () => number
  readonly waiting: () => number
}

const withdrawNothing = () => {}

export const makeThrottle = (limits: ThrottleLimits): Throttle => {
  let running = 0
  // A Set keeps insertion order, so the first value is the longest-waiting task, and withdrawing one is O(1).
  const queue = new Set<() => void>()
  return {
    limits,
    submit: (task) => {
      if (running < limits.maxInFlight) {
        running++
        task()
        return withdrawNothing
      }
      if (queue.size >= limits.maxQueued) return undefined
      queue.add(task)
      return () => {
        queue.delete(task)
      }
    },
    release: () => {
      const next = queue.values().next()
      if (next.done === true) {
        running--
        return
      }
      queue.delete(next.value)
      next.value()
    },
    startAllWaiting: () => {
      // One at a time, since a task may withdraw the ones still waiting (its fiber's siblings interrupted with it).
      for (let next = queue.values().next(); next.done !== true; next = queue.values().next()) {
        queue.delete(next.value)
        running++
        next.value()
      }
    },
    running: () => running,
    waiting: () => queue.size
  }
}
