/**
 * The migrator's lock: a lease row written by lightweight transactions with a TTL. Whoever inserts it (`IF NOT
 * EXISTS`) holds it until the TTL runs out, and renews it (`IF holder = me`) while it works; a holder that dies stops
 * renewing, its row expires on the servers and the next instance takes it.
 *
 * Clocks: the server counts the TTL; the holder counts its lease from the moment it sent the write that was confirmed,
 * on its own monotonic clock, and one second short of the TTL, because a server expires a TTL on whole seconds counted
 * from the start of the second the write was applied in. So it stops before any server can let another instance in
 * (unless the clocks of the nodes coordinating the holder's write and the next instance's disagree by more than the
 * margin of that rounding). No clock of an application instance is compared with another's.
 *
 * Pauses: a holder whose process was stopped (SIGSTOP, a long garbage collection, a saturated machine) may resume
 * after its lease expired, before its renewal fiber runs again; `ensureHeld` tells it so by its own clock, and the
 * migrator checks it before every statement of a migration and before recording one.
 *
 * Unknown outcomes: a lightweight transaction that times out (or loses its connection) may or may not have been
 * applied. Acquiring then re-reads the row at SERIAL consistency, which completes any Paxos round in progress, and
 * confirms a row that turns out to be its own with a renewal; renewing simply tries again, being idempotent, until
 * the lease would have expired.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import type * as CassandraError from "../CassandraError.ts"
import * as Query from "../Query.ts"
import { Session } from "../Session.ts"
import { monotonicMillis } from "./migratorAgreement.ts"

/** What a lease is about: its row, who is asking, and how long it lasts. */
export interface LeaseSettings {
  readonly session: Session
  readonly table: Query.Identifier
  readonly holder: string
  readonly ttlSeconds: number
}

/** The outcome of one attempt to take the lease. */
export type Acquisition =
  | { readonly _tag: "Held"; readonly expiresAt: number }
  | { readonly _tag: "Busy"; readonly holder: string | undefined }

/**
 * A lease this instance holds: when it ends by this process's monotonic clock, moved on by each renewal, and whether
 * the run that took it has ended (a fiber a migration forked may outlive it).
 */
export interface HeldLease {
  expiresAt: number
  ended: boolean
}

/** Why a holder stopped: its lease may be someone else's now. */
export interface LeaseExpired {
  readonly _tag: "LeaseExpired"
  readonly detail: string
}

const { cql } = Query
// Every instance contends for the same row: the migrations of one table in one keyspace.
const leaseName = "migrations"
// SERIAL (not LOCAL_SERIAL): instances in different data centers must see one lease.
const lightweight = { serialConsistency: "SERIAL", consistency: "QUORUM" } as const
const renewalRetryInterval = "250 millis"
const releaseTimeout = "5 seconds"

/** How long a write of the lease holds it for sure, counted from when it was sent: its TTL less the rounding. */
const heldMillis = (settings: LeaseSettings) => (settings.ttlSeconds - 1) * 1000

/** Whether a failed lightweight transaction may have been applied all the same (or just may succeed if tried again). */
const isUncertain = (error: CassandraError.CassandraError) => error.isRetryable

const withSession =
  (settings: LeaseSettings) =>
  <A, E>(effect: Effect.Effect<A, E, Session>) =>
    Effect.provideService(effect, Session, settings.session)

const holderOf = (row: Query.Row | undefined) => (typeof row?.holder === "string" ? row.holder : undefined)

const readHolder = (settings: LeaseSettings) =>
  cql`SELECT holder FROM ${settings.table} WHERE name = ${leaseName}`.pipe(
    (statement) => statement.withOptions({ consistency: "SERIAL" }),
    Effect.map((rows) => holderOf(rows[0])),
    withSession(settings)
  )

/** One renewal: the time it expires at when applied, `undefined` when the lease is not (or no longer) ours. */
const renewOnce = (settings: LeaseSettings) =>
  Effect.gen(function* () {
    const sentAt = yield* monotonicMillis
    const outcome =
      yield* cql`UPDATE ${settings.table} USING TTL ${settings.ttlSeconds} SET holder = ${settings.holder}, renewed_at = toTimestamp(now()) WHERE name = ${leaseName} IF holder = ${settings.holder}`
        .withOptions(lightweight)
        .conditional.pipe(withSession(settings))
    return outcome._tag === "Applied" ? sentAt + heldMillis(settings) : undefined
  })

/** No answer this time: the caller tries again later, when a write of this holder that was applied is found. */
const unsettled: Acquisition = { _tag: "Busy", holder: undefined }

const confirm = (settings: LeaseSettings): Effect.Effect<Acquisition, CassandraError.CassandraError> =>
  renewOnce(settings).pipe(
    Effect.map((expiresAt): Acquisition => (expiresAt === undefined ? unsettled : { _tag: "Held", expiresAt })),
    Effect.catchIf(isUncertain, () => Effect.succeed(unsettled))
  )

/** One attempt to take the lease. */
export const tryAcquire = (settings: LeaseSettings): Effect.Effect<Acquisition, CassandraError.CassandraError> =>
  Effect.gen(function* () {
    const sentAt = yield* monotonicMillis
    const outcome =
      yield* cql`INSERT INTO ${settings.table} (name, holder, acquired_at) VALUES (${leaseName}, ${settings.holder}, toTimestamp(now())) IF NOT EXISTS USING TTL ${settings.ttlSeconds}`
        .withOptions(lightweight)
        .conditional.pipe(
          withSession(settings),
          Effect.map((conditional) =>
            conditional._tag === "Applied" ? ("applied" as const) : holderOf(conditional.current[0])
          ),
          Effect.catchIf(isUncertain, () =>
            readHolder(settings).pipe(Effect.catchIf(isUncertain, () => Effect.succeed(undefined)))
          )
        )
    if (outcome === "applied") return { _tag: "Held", expiresAt: sentAt + heldMillis(settings) } as const
    // Ours after all: an earlier attempt of this holder was applied though its answer was lost. When it was applied
    // is unknown, so a renewal confirms it and starts a known lease.
    if (outcome === settings.holder) return yield* confirm(settings)
    return { _tag: "Busy", holder: outcome } as const
  })

/**
 * Renews the lease once a third of the time it holds for has passed since the last confirmed write was sent (at
 * once when that write took longer to confirm), updating `held`, for as long as it runs; fails when a renewal is
 * refused (the lease expired and someone else may hold it) or could not be confirmed before the lease would end.
 */
export const keepRenewed = (settings: LeaseSettings, held: HeldLease): Effect.Effect<never, LeaseExpired> =>
  Effect.gen(function* () {
    const renewBefore = (heldMillis(settings) * 2) / 3
    while (true) {
      yield* Effect.sleep(Math.max(held.expiresAt - renewBefore - (yield* monotonicMillis), 0))
      const left = held.expiresAt - (yield* monotonicMillis)
      const renewal = yield* renewOnce(settings).pipe(
        Effect.retry({ while: isUncertain, schedule: Schedule.spaced(renewalRetryInterval) }),
        Effect.result,
        Effect.timeoutOption(Math.max(left, 0))
      )
      if (Option.isNone(renewal)) return yield* expired("it could not be renewed before it would expire")
      if (Result.isFailure(renewal.value)) {
        return yield* expired(`renewing it failed: ${renewal.value.failure.message}`)
      }
      if (renewal.value.success === undefined) return yield* expired("it expired and may be held by another instance")
      held.expiresAt = renewal.value.success
    }
  })

/**
 * Succeeds while the lease is held by this process's clock; fails once it may have expired, as after a pause of the
 * process longer than the lease, before the renewal could tell, and once the run that took it has ended.
 */
export const ensureHeld = (held: HeldLease): Effect.Effect<void, LeaseExpired> =>
  Effect.flatMap(monotonicMillis, (now) => {
    if (held.ended) return expired("the run that took it has ended and given it back")
    if (now >= held.expiresAt) return expired("it ran out before it was renewed: the process was paused or too slow")
    return Effect.void
  })

const expired = (detail: string) => Effect.fail<LeaseExpired>({ _tag: "LeaseExpired", detail })

/** Gives the lease up if it is still ours; when that fails, it expires with its TTL. */
export const release = (settings: LeaseSettings): Effect.Effect<void> =>
  cql`DELETE FROM ${settings.table} WHERE name = ${leaseName} IF holder = ${settings.holder}`
    .withOptions(lightweight)
    .conditional.pipe(withSession(settings), Effect.timeoutOption(releaseTimeout), Effect.ignore)
