/**
 * When the schema check reads the schema again after a change. The change is reported by the node of the driver's
 * control connection, but the re-check's reads go wherever the load balancing policy sends them, maybe to a node that
 * has not applied the change yet: it would see the old schema and report nothing (or report drift that is already
 * gone). So the re-check first waits until every node agrees on the schema, as the reporting node sees it.
 */
import type * as Cassandra from "cassandra-driver"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type * as CassandraError from "../CassandraError.ts"

const pollInterval = "200 millis"

/** What the driver's client has at run time (lib/metadata/index.js, lib/client.js) but its type declarations omit. */
interface AgreementApi {
  readonly metadata: { checkSchemaAgreement(): Promise<boolean> }
  readonly options: { readonly protocolOptions?: { readonly maxSchemaAgreementWaitSeconds?: number } }
}

const agreementApi = (client: Cassandra.Client) => client as unknown as AgreementApi

/**
 * Whether every node agrees on the schema version, asked on the control connection (the node that reported the
 * change); an error asking counts as no agreement yet.
 */
export const inAgreement = (client: Cassandra.Client): Effect.Effect<boolean> =>
  Effect.tryPromise(() => agreementApi(client).metadata.checkSchemaAgreement()).pipe(Effect.orElseSucceed(() => false))

/**
 * How long to wait for agreement: the driver's own bound for it, `protocolOptions.maxSchemaAgreementWaitSeconds`
 * (10 seconds unless set; 0 does not wait).
 */
export const agreementTimeoutMillis = (client: Cassandra.Client): number =>
  (agreementApi(client).options.protocolOptions?.maxSchemaAgreementWaitSeconds ?? 10) * 1000

/**
 * Runs `check` once `inAgreement` says the cluster agrees, polling; when agreement has not come after
 * `timeoutMillis` (a node down keeps its old version in `system.peers`), logs it and runs `check` anyway.
 */
export const checkAfterAgreement = <A, E, R>(
  agreement: Effect.Effect<boolean>,
  timeoutMillis: number,
  check: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  timeoutMillis <= 0
    ? check
    : Effect.repeat(agreement, { schedule: Schedule.spaced(pollInterval), until: (agreed) => agreed }).pipe(
        Effect.timeoutOption(timeoutMillis),
        Effect.flatMap((agreed) =>
          Option.isSome(agreed)
            ? Effect.void
            : Effect.logWarning(
                `The cluster did not agree on the schema within ${timeoutMillis} ms: checking it as one node sees it`
              )
        ),
        Effect.andThen(check)
      )

/**
 * Runs `recheck` once for every batch of `changes` that arrived while the previous one ran (a migration of many
 * statements is checked once it is done, not once per statement), until interrupted. A re-check that fails, or dies
 * of a defect, is logged and the next change is checked again: one bad read must not end drift detection for the
 * life of the session.
 */
export const recheckOnChanges = <R>(
  changes: Stream.Stream<unknown>,
  recheck: Effect.Effect<unknown, CassandraError.CassandraError, R>
): Effect.Effect<void, never, R> =>
  Stream.runForEachArray(changes, () =>
    Effect.catchCause(recheck, (cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.interrupt
      const error = Cause.findErrorOption(cause)
      return Option.isSome(error)
        ? Effect.logWarning(`The schema could not be checked again: ${error.value.message}`)
        : Effect.logError("The schema check died checking again; it checks again at the next schema change", cause)
    })
  )
