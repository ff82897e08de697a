/**
 * The session a statement was built for by a session's template, shared by Query (which binds it) and CqlSchema
 * (which reads the session's decode recorder through it).
 */
import type * as Cassandra from "cassandra-driver"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as CassandraError from "../CassandraError.ts"
import { type RequestOptions, Session } from "../Session.ts"
import { type FiberSender, type Settle, sendInFiber } from "./requestRunner.ts"

/** The key of the bound session on a statement; absent on statements of the global `cql` template. */
export const boundSession: unique symbol = Symbol("effect-cassandra/Query/boundSession")

/** A value that may carry a bound session. */
export interface SessionCarrier {
  readonly [boundSession]?: Session | undefined
}

/**
 * Runs `f` with the session bound to the carrier, or with the `Session` service when none is bound; the
 * requirement is the carrier's, so callers state it.
 */
export const useSession = <A, E, R, Requirement>(
  carrier: object,
  f: (session: Session) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R | Requirement> => {
  const session = (carrier as SessionCarrier)[boundSession]
  return (session === undefined ? Session.use(f) : f(session)) as Effect.Effect<A, E, R | Requirement>
}

/**
 * Runs one statement in `fiber` on the carrier's session (or the `Session` service) and gives `project` of its result:
 * one callback on a session of this library, else the session's own `execute` (a decorated session keeps its
 * decoration) and a `map`.
 */
export const executeStatement = <A>(
  fiber: Fiber.Fiber<unknown, unknown>,
  carrier: object,
  query: string,
  params: Array<unknown>,
  options: RequestOptions,
  project: (result: Cassandra.types.ResultSet) => A
): Effect.Effect<A, CassandraError.CassandraError> => {
  const session = (carrier as SessionCarrier)[boundSession] ?? Context.getUnsafe(fiber.context, Session)
  const execute = session.execute
  const own = ownSender(session, execute)
  return own !== undefined
    ? own.send(fiber, query, params, options, project)
    : Effect.map(execute.call(session, { query, params, options }), project)
}

/**
 * The key of a statement's way to start its request with no fiber waiting for it (see `startStatement`), for the
 * library's own callers that send statements one after another from the driver's callbacks. A `Symbol` no other code
 * can name.
 */
export const startUnwaited: unique symbol = Symbol("effect-cassandra/Query/startUnwaited")

/** A statement that can start its request with no fiber waiting for it. */
export interface UnwaitedStart {
  /** Starts the statement's request, settled with its rows; false, starting nothing, where `startStatement` is. */
  readonly [startUnwaited]: (fiber: Fiber.Fiber<unknown, unknown>, settle: Settle) => boolean
}

/**
 * Starts one statement on the carrier's session (or the `Session` service) in `fiber`'s context with no fiber waiting
 * for it: `settle` gets `project` of its result. False, and nothing started, on a session that is not this library's
 * own or a session copied with another `execute` (each request must go through that `execute`), and when a span of
 * `fiber` would be seen: such a request runs as an effect.
 */
export const startStatement = <A>(
  fiber: Fiber.Fiber<unknown, unknown>,
  carrier: object,
  query: string,
  params: Array<unknown>,
  options: RequestOptions,
  project: (result: Cassandra.types.ResultSet) => A,
  settle: Settle
): boolean => {
  const session = (carrier as SessionCarrier)[boundSession] ?? Context.getUnsafe(fiber.context, Session)
  const own = ownSender(session, session.execute)
  return own?.start(fiber, query, params, options, project, settle) === true
}

/**
 * The session's own request path when `execute` is the one it belongs to. A session that is not this library's may
 * refuse to be asked for anything it does not have (a strict stand-in throws), so asking never throws.
 */
const ownSender = (session: Session, execute: Session["execute"]): FiberSender | undefined => {
  try {
    const own = (session as { readonly [sendInFiber]?: FiberSender })[sendInFiber]
    return own?.execute === execute ? own : undefined
  } catch {
    return undefined
  }
}
