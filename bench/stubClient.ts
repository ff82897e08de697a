/**
 * A `cassandra-driver` client that answers without a server, for the client-only benchmark: the library's own cost per
 * request is what a request costs through the session minus what it costs on this stub alone.
 *
 * It is a real, never connected `Cassandra.Client` (so every internal a session reads at connect — hosts, metadata,
 * control connection, profile manager, metrics emitters, `getState` — is the driver's own) whose `connect`,
 * `execute`, `batch`, `eachRow` and `shutdown` are replaced: each request is answered with a canned result set on
 * `setImmediate`, the way a real answer arrives from a later turn of the event loop, except a read of
 * {@link timingOutTable}, which fails.
 */
import { format } from "node:util"
import * as Cassandra from "cassandra-driver"
import { Session } from "effect-cassandra"
import { wideRowValues } from "./tables.ts"

/** The driver's result-set and row classes, which its typings declare only as interfaces. */
const { ResultSet, Row } = Cassandra.types as unknown as {
  readonly Row: new (
    columns: ReadonlyArray<{ readonly name: string; readonly type: { readonly code: number } }>
  ) => Cassandra.types.Row
  readonly ResultSet: new (
    response: { readonly rows: ReadonlyArray<Cassandra.types.Row> | undefined },
    queriedHost: string,
    triedHosts: object,
    speculativeExecutions: number,
    consistency: Cassandra.types.consistencies,
    isSchemaInAgreement: boolean
  ) => Cassandra.types.ResultSet
}

const queriedHost = "127.0.0.1:9042"

const rowOf = (values: Record<string, unknown>): Cassandra.types.Row => {
  const row = new Row(Object.keys(values).map((name) => ({ name, type: { code: 0 } })))
  return Object.assign(row, values)
}

const resultSetOf = (rows: ReadonlyArray<Cassandra.types.Row> | undefined) =>
  new ResultSet({ rows }, queriedHost, {}, 0, Cassandra.types.consistencies.localQuorum, true)

/**
 * The canned answers: a 10-column row for the wide table, one short text value for any other read, no rows for a
 * write. Built once, like a real server would not: the stub's own cost must stay as small as possible.
 */
const answers = {
  wide: resultSetOf([rowOf(wideRowValues(1))]),
  read: resultSetOf([rowOf({ v: "value-1" })]),
  write: resultSetOf(undefined)
}

/**
 * The table (in the `bench` keyspace, and on no real node) whose every read the stub fails with a server read
 * timeout: the failing query of the `stub-failed-read` and `failed-read` rows.
 */
export const timingOutTable = "timing_out"

const { consistencies, responseErrorCodes } = Cassandra.types
/** The driver's names of the consistency levels, for its messages; its typings leave the table out. */
const { consistencyToString } = Cassandra.types as unknown as { readonly consistencyToString: Record<number, string> }
/** The fields the driver sets on a read timeout's `ResponseError`, which its typings leave out. */
type ServerReadTimeout = Cassandra.errors.ResponseError & {
  consistencies: Cassandra.types.consistencies
  received: number
  blockFor: number
  isDataPresent: number
  coordinator: string
}

/**
 * A server's read timeout, built per request as the driver builds one when a response frame carries an error
 * (lib/readers.js `readError`: the server's message, the fields it reads, then its own message) and marks the node
 * that answered (lib/request-execution.js `_handleError`): building it, stack capture included, is part of what a
 * failed request costs the raw driver too. Fewer replicas answered than required: the driver's default retry policy
 * rethrows such an error, so a raw driver's request fails on it once, as here. (The library's default policy would send
 * it once more to a real node; `execute` is replaced here, so both sides pay for one failed answer, never a retry.)
 */
const readTimeout = (): Cassandra.errors.ResponseError => {
  const error = new Cassandra.errors.ResponseError(
    responseErrorCodes.readTimeout,
    "Operation timed out - received only 1 responses."
  ) as ServerReadTimeout
  error.consistencies = consistencies.localQuorum
  error.received = 1
  error.blockFor = 2
  error.isDataPresent = 0
  error.message = format(
    "Server timeout during read query at consistency %s (%s)",
    consistencyToString[error.consistencies],
    format("%d replica(s) responded over %d required", error.received, error.blockFor)
  )
  error.coordinator = queriedHost
  return error
}

/** What a request is answered with: a canned result set, or a failure built when the answer arrives. */
type Answer = Cassandra.types.ResultSet | (() => Error)

/**
 * By the query text, which names the wide or the timing-out table with or without the library's quoting of
 * identifiers. The timing-out table is looked for last, with a substring search: only a plain read pays for it, a few
 * ns, far below the noise of its row.
 */
const answerFor = (query: string): Answer =>
  query.startsWith("SELECT")
    ? /\bwide\b/.test(query)
      ? answers.wide
      : query.includes(timingOutTable)
        ? readTimeout
        : answers.read
    : answers.write

type Callback = (error: Error | null, result?: Cassandra.types.ResultSet) => void

export interface StubClient {
  readonly client: Cassandra.Client
  /** While holding, requests are kept unanswered (to count the memory of requests in flight). */
  hold(): void
  /** How many requests are held unanswered. */
  readonly held: () => number
  /** Answers every held request and stops holding. */
  release(): void
}

export const makeStubClient = (): StubClient => {
  const client = new Cassandra.Client({
    contactPoints: ["127.0.0.1"],
    localDataCenter: "datacenter1",
    encoding: Session.encoding
  })
  let holding = false
  let held: Array<() => void> = []
  // A request's arguments (its parameters and options), which the driver keeps until it is answered (its request
  // handler holds the execution options, and they the options given): memory a request in flight holds on both sides.
  let heldArguments: Array<ReadonlyArray<unknown>> = []
  const respond = (result: Answer, callback: Callback, requestArguments: ReadonlyArray<unknown>) => {
    const answer = typeof result === "function" ? () => callback(result()) : () => callback(null, result)
    if (holding) {
      held.push(answer)
      heldArguments.push(requestArguments)
    } else setImmediate(answer)
  }
  // The driver's contract: the callback is the last argument when given, a promise is returned otherwise.
  const request =
    (answer: (first: unknown) => Answer) =>
    (first: unknown, ...rest: Array<unknown>): Promise<Cassandra.types.ResultSet> | undefined => {
      const result = answer(first)
      const last = rest.at(-1)
      if (typeof last === "function") {
        respond(result, last as Callback, rest)
        return undefined
      }
      return new Promise((resolve, reject) =>
        respond(
          result,
          (error, value) => (error === null ? resolve(value as Cassandra.types.ResultSet) : reject(error)),
          rest
        )
      )
    }
  const stubbed = client as unknown as Record<string, unknown>
  stubbed.connect = () => Promise.resolve()
  stubbed.shutdown = () => Promise.resolve()
  stubbed.execute = request((query) => answerFor(query as string))
  stubbed.batch = request(() => answers.write)
  stubbed.eachRow = (query: string, ...rest: Array<unknown>) => {
    const result = answerFor(query)
    const onRow = rest.find((argument) => typeof argument === "function") as (index: number, row: unknown) => void
    const callback = rest.at(-1) as Callback
    respond(
      result,
      (error, value) => {
        for (const [index, row] of (value?.rows ?? []).entries()) onRow(index, row)
        callback(error, value)
      },
      rest
    )
  }
  return {
    client,
    hold: () => {
      holding = true
    },
    held: () => held.length,
    release: () => {
      holding = false
      const answers = held
      held = []
      heldArguments = []
      for (const answer of answers) answer()
    }
  }
}
