/**
 * The session a statement was built for by a session's template, shared by Query (which binds it) and CqlSchema
 * (which reads the session's decode recorder through it).
 */
import type * as Effect from "effect/Effect"
import { Session } from "../Session.ts"

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
