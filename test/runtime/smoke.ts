/**
 * The runtime smoke suite: what an application does with the installed package (`effect-cassandra` from its npm
 * tarball, `dist/`), run unchanged on Node.js, Bun and Deno by test/runtime/run.ts, which starts the nodes and reads
 * this program's output. One line per check, `ok <check> <milliseconds>`; the first failure prints `failed <check>`
 * with the error and exits 1.
 *
 * Environment (set by the runner):
 * - SMOKE_CONTACT_POINT: a node of a two-node cluster; SMOKE_STOPPED_NODE: the other node, which the runner stops and
 *   starts once every runtime printed `awaiting-topology`
 * - SMOKE_TLS_CONTACT_POINT and SMOKE_TLS_CA: a node requiring TLS, and the PEM file of the authority that signed it
 * - SMOKE_UNGRANTED_ADDRESS: on Deno, an address its `--allow-net` does not grant
 * - SMOKE_KEYSPACE: this run's keyspace (dropped first if an earlier run left it; the runner's nodes are fresh anyway)
 */
import { Buffer } from "node:buffer"
import { BigDecimal, Cause, Deferred, Effect, Fiber, Layer, Metric, Option, Schema, Stream } from "effect"
import { CassandraLayer, CqlSchema, CqlType, Metrics, Query, Session, Topology } from "effect-cassandra"

const { cql, identifier } = Query

const environment = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`${name} is not set (test/runtime/run.ts sets it)`)
  return value
}

const contactPoint = environment("SMOKE_CONTACT_POINT")
const stoppedNode = environment("SMOKE_STOPPED_NODE")
const tlsContactPoint = environment("SMOKE_TLS_CONTACT_POINT")
const tlsCa = environment("SMOKE_TLS_CA")
const keyspaceName = environment("SMOKE_KEYSPACE")
const ungrantedAddress = environment("SMOKE_UNGRANTED_ADDRESS")
const topologyTimeout = "5 minutes"
// The smoke suites of four runtimes share two cores with the nodes (and, in CI, the server matrix): schema changes on
// a loaded two-node cluster take seconds, which a smoke suite waits for rather than reports.
const patient = { connectTimeout: "30 seconds", attemptTimeout: "30 seconds", requestTimeout: "60 seconds" } as const

const keyspace = identifier(keyspaceName)
const users = identifier(keyspaceName, "users")
const events = identifier(keyspaceName, "events")
const allTypes = identifier(keyspaceName, "all_types")
const counters = identifier(keyspaceName, "counters")

/** Runs one check and prints its outcome and duration; a failure ends the program with the error. */
const check = <A, E, R>(name: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const started = performance.now()
    return effect.pipe(
      Effect.tap(() => Effect.sync(() => console.log(`ok ${name} ${Math.round(performance.now() - started)}`))),
      Effect.tapCause(() => Effect.sync(() => console.log(`failed ${name}`)))
    )
  })

const expect = (condition: boolean, what: string) =>
  condition ? Effect.void : Effect.die(new Error(`expected ${what}`))

// --- typed reads and writes, LWT ------------------------------------------------------------------------------------

const User = Schema.Struct({ id: CqlType.Uuid, name: CqlType.Text, visits: CqlType.Int })

const saveUser = CqlSchema.void({
  Request: User,
  execute: (user) => cql`INSERT INTO ${users} (id, name, visits) VALUES (${user.id}, ${user.name}, ${user.visits})`
})

const findUser = CqlSchema.findOneOption({
  Request: CqlType.Uuid,
  Result: User,
  execute: (id) => cql`SELECT id, name, visits FROM ${users} WHERE id = ${id}`
})

const createUser = CqlSchema.conditional({
  Request: User,
  Result: User,
  execute: (user) =>
    cql`INSERT INTO ${users} (id, name, visits) VALUES (${user.id}, ${user.name}, ${user.visits}) IF NOT EXISTS`
})

const typedReadsAndWrites = Effect.gen(function* () {
  const ada = { id: crypto.randomUUID(), name: "Ada", visits: 3 }
  yield* saveUser(ada)
  const found = yield* findUser(ada.id)
  yield* expect(Option.isSome(found) && found.value.name === "Ada" && found.value.visits === 3, "Ada read back")
  yield* expect(Option.isNone(yield* findUser(crypto.randomUUID())), "no row for an unknown id")
})

const lightweightTransaction = Effect.gen(function* () {
  const grace = { id: crypto.randomUUID(), name: "Grace", visits: 1 }
  const first = yield* createUser(grace)
  yield* expect(first._tag === "Applied", "the first IF NOT EXISTS applied")
  const second = yield* createUser({ ...grace, name: "Someone else" })
  yield* expect(
    second._tag === "NotApplied" && second.current.length === 1 && second.current[0]?.name === "Grace",
    "the second IF NOT EXISTS not applied, with Grace as the current row"
  )
})

// --- batch and paged stream ---------------------------------------------------------------------------------------

const Event = Schema.Struct({ day: CqlType.Text, seq: CqlType.Int, body: CqlType.Text })
const eventCount = 250
const pageSize = 40

const writeEvents = Effect.forEach(
  Array.from({ length: eventCount / 25 }, (_, chunk) => chunk),
  (chunk) =>
    Query.batch(
      Array.from({ length: 25 }, (_, offset) => {
        const seq = chunk * 25 + offset
        return cql`INSERT INTO ${events} (day, seq, body) VALUES (${"2026-11-30"}, ${seq}, ${`event ${seq}`})`
      }),
      { type: "unlogged" }
    ),
  { concurrency: 4, discard: true }
)

const eventsOfDay = CqlSchema.stream({
  Request: CqlType.Text,
  Result: Event,
  execute: (day) => cql`SELECT day, seq, body FROM ${events} WHERE day = ${day}`.withOptions({ pageSize })
})

const batch = Effect.gen(function* () {
  const applied = yield* Query.batch([
    cql`INSERT INTO ${events} (day, seq, body) VALUES (${"batch"}, ${1}, ${"one"})`,
    cql`INSERT INTO ${events} (day, seq, body) VALUES (${"batch"}, ${2}, ${"two"})`
  ])
  yield* expect(applied._tag === "Applied", "a logged batch applied")
  yield* writeEvents
  const [row] = yield* cql<{ count: unknown }>`SELECT count(*) AS count FROM ${events} WHERE day = ${"2026-11-30"}`
  yield* expect(String(row?.count) === String(eventCount), `${eventCount} rows written by batches`)
})

const pagedStream = Effect.gen(function* () {
  const pagesBefore = (yield* Metrics.summary).pagesFetched
  const sequence = yield* Stream.runCollect(eventsOfDay("2026-11-30").pipe(Stream.map((event) => event.seq)))
  yield* expect(
    sequence.length === eventCount && sequence.every((seq, index) => seq === index),
    `${eventCount} rows in clustering order`
  )
  const pages = (yield* Metrics.summary).pagesFetched - pagesBefore
  yield* expect(pages >= Math.ceil(eventCount / pageSize), `at least ${Math.ceil(eventCount / pageSize)} pages`)
})

// --- every CQL type, once -------------------------------------------------------------------------------------------

const Address = CqlType.Udt("address", { street: CqlType.Text, zip: CqlType.Int })

const Row = Schema.Struct({
  id: CqlType.Int,
  c_ascii: CqlType.Ascii,
  c_text: CqlType.Text,
  c_boolean: CqlType.Boolean,
  c_tinyint: CqlType.TinyInt,
  c_smallint: CqlType.SmallInt,
  c_int: CqlType.Int,
  c_bigint: CqlType.BigInt,
  c_varint: CqlType.Varint,
  c_float: CqlType.Float,
  c_double: CqlType.Double,
  c_decimal: CqlType.Decimal,
  c_uuid: CqlType.Uuid,
  c_timeuuid: CqlType.TimeUuid,
  c_inet: CqlType.Inet,
  c_inet6: CqlType.Inet,
  c_date: CqlType.Date,
  c_time: CqlType.Time,
  c_timestamp: CqlType.Timestamp,
  c_duration: CqlType.Duration,
  c_blob: CqlType.Blob,
  c_tuple: CqlType.Tuple([CqlType.Int, CqlType.Text, CqlType.BigInt]),
  c_udt: CqlType.Frozen(Address),
  c_list: CqlType.List(CqlType.Int),
  c_set: CqlType.Set(CqlType.Text),
  c_map: CqlType.Map(CqlType.Uuid, CqlType.Frozen(CqlType.List(CqlType.Double))),
  c_frozen_set: CqlType.Frozen(CqlType.Set(CqlType.Date)),
  c_frozen_map: CqlType.Frozen(CqlType.Map(CqlType.SmallInt, CqlType.Timestamp)),
  c_vector: CqlType.Vector(CqlType.Float, 4)
})
const columns = Object.keys(Row.fields) as ReadonlyArray<keyof typeof Row.fields>

const Counter = Schema.Struct({ id: CqlType.Int, c_counter: CqlType.Counter })

const writeRow = CqlSchema.void({
  Request: Row,
  execute: (row) =>
    cql`INSERT INTO ${allTypes} (${Query.identifiers(columns)}) VALUES (${Query.join(columns.map((c) => row[c]))})`
})

const readRow = CqlSchema.findOne({
  Request: CqlType.Int,
  Result: Row,
  execute: (id) => cql`SELECT ${Query.identifiers(columns)} FROM ${allTypes} WHERE id = ${id}`
})

const increment = CqlSchema.void({
  Request: Counter,
  execute: ({ id, c_counter }) => cql`UPDATE ${counters} SET c_counter = c_counter + ${c_counter} WHERE id = ${id}`
})

const readCounter = CqlSchema.findOne({
  Request: CqlType.Int,
  Result: Counter,
  execute: (id) => cql`SELECT id, c_counter FROM ${counters} WHERE id = ${id}`
})

const everyCqlType = Effect.gen(function* () {
  const row: typeof Row.Type = {
    id: 1,
    c_ascii: "plain ascii",
    c_text: "text: ü, 漢字, 🙂",
    c_boolean: true,
    c_tinyint: -128,
    c_smallint: 32_767,
    c_int: -(2 ** 31),
    c_bigint: 2n ** 63n - 1n,
    c_varint: -(2n ** 200n) + 7n,
    c_float: Math.fround(-0.1),
    c_double: Math.E,
    c_decimal: BigDecimal.make(-123_456_789_012_345_678_901_234_567_890n, 12),
    c_uuid: crypto.randomUUID(),
    c_timeuuid: yield* CqlType.makeTimeUuid,
    c_inet: "192.0.2.1",
    c_inet6: "2001:db8::1",
    c_date: "2024-02-29",
    c_time: 86_399_999_999_999n,
    c_timestamp: new Date("2026-11-30T08:00:00.123Z"),
    c_duration: { months: 14, days: 3, nanoseconds: 3_600_000_000_001n },
    c_blob: new Uint8Array(Buffer.from("00ff10", "hex")),
    c_tuple: [7, "seven", -7n],
    c_udt: { street: "1 Main St", zip: 12_345 },
    c_list: [3, 1, 2],
    c_set: new Set(["a", "b"]),
    c_map: new Map([[crypto.randomUUID(), [0.5, -1.25]]]),
    c_frozen_set: new Set(["1970-01-01", "2000-01-01"]),
    c_frozen_map: new Map([[-1, new Date(0)]]),
    c_vector: [1, -2.5, 0, 1e-3].map(Math.fround)
  }
  yield* writeRow(row)
  const stored = yield* readRow(row.id)
  const different = columns.filter((column) => {
    const equivalent = Schema.toEquivalence(Row.fields[column] as Schema.Codec<unknown, unknown, never, never>)
    return !equivalent(row[column], stored[column])
  })
  yield* expect(different.length === 0, `every column read back as written (different: ${different.join(", ")})`)
  yield* increment({ id: 1, c_counter: -(2n ** 62n) })
  const counter = yield* readCounter(1)
  yield* expect(counter.c_counter === -(2n ** 62n), "the counter read back")
})

const createSchema = Effect.gen(function* () {
  yield* cql`DROP KEYSPACE IF EXISTS ${keyspace}`
  yield* cql`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`
  yield* cql`CREATE TABLE ${users} (id uuid PRIMARY KEY, name text, visits int)`
  yield* cql`CREATE TABLE ${events} (day text, seq int, body text, PRIMARY KEY (day, seq))`
  yield* cql`CREATE TYPE ${identifier(keyspaceName, CqlType.cqlTypeOf(Address)!)} (street text, zip int)`
  const columnTypes = columns.map((column) => `${column} ${CqlType.cqlTypeOf(Row.fields[column])}`)
  // The column types are CQL type text from the library's schemas, which the cql template cannot splice: the session
  // runs this fixed text as is.
  const session = yield* Session.Session
  yield* session.execute({
    query: `CREATE TABLE ${keyspaceName}.all_types (${columnTypes.join(", ")}, PRIMARY KEY (id))`,
    params: [],
    options: {}
  })
  yield* cql`CREATE TABLE ${counters} (id int PRIMARY KEY, c_counter counter)`
})

// --- topology, metrics, TLS -----------------------------------------------------------------------------------------

/**
 * Subscribes to topology events, proves the subscription live by a schema change it must report, prints
 * `awaiting-topology` (the runner then stops and starts the other node) and waits for that node's NodeDown and NodeUp.
 */
const topologyEvents = Effect.gen(function* () {
  const topology = yield* Topology.Topology
  const marker = `ready_${Date.now()}`
  const subscribed = yield* Deferred.make<void>()
  const seen: Array<string> = []
  const watcher = yield* topology.events.pipe(
    Stream.tap((event) => {
      if (event._tag === "SchemaChanged") {
        return event.name === marker ? Deferred.succeed(subscribed, undefined) : Effect.void
      }
      if (event.node.address.startsWith(`${stoppedNode}:`)) seen.push(event._tag)
      return Effect.void
    }),
    Stream.takeUntil(() => seen.includes("NodeDown") && seen.lastIndexOf("NodeUp") > seen.indexOf("NodeDown")),
    Stream.runDrain,
    Effect.forkScoped
  )
  yield* cql`CREATE TABLE ${identifier(keyspaceName, marker)} (id int PRIMARY KEY)`
  yield* Deferred.await(subscribed)
  console.log("awaiting-topology")
  yield* Fiber.join(watcher).pipe(
    Effect.timeoutOrElse({
      duration: topologyTimeout,
      orElse: () => Effect.die(new Error(`no NodeDown then NodeUp of ${stoppedNode} (saw: ${seen.join(", ")})`))
    })
  )
  yield* topology.awaitNodesUp(2, "1 minute")
})

const metricsRecorded = Effect.gen(function* () {
  const summary = yield* Metrics.summary
  yield* expect(summary.requests > 0 && summary.succeeded > 0, "requests counted")
  yield* expect(summary.latency.count > 0, "latencies recorded")
  yield* expect(summary.rowsDecoded >= eventCount, `at least ${eventCount} rows decoded`)
  yield* expect(
    summary.nodes.some((node) => node.node.startsWith(`${contactPoint}:`) && node.latency.count > 0),
    `a latency histogram of ${contactPoint}`
  )
  const snapshot = yield* Metric.snapshot
  yield* expect(
    snapshot.some((metric) => metric.id === "cassandra_requests_total"),
    "cassandra_requests_total in Metric.snapshot"
  )
})

const tlsLayer = (tls: Session.TlsOptions) =>
  CassandraLayer.layer({
    contactPoints: [tlsContactPoint],
    localDataCenter: "datacenter1",
    ...patient,
    tls
  })

const tlsWithVerification = Effect.gen(function* () {
  const [local] = yield* cql<{ release_version: string }>`SELECT release_version FROM system.local`.pipe(
    Effect.provide(tlsLayer({ ca: tlsCa }))
  )
  yield* expect(typeof local?.release_version === "string", "a row over TLS")
  // Verification is on: without the authority that signed the node's certificate, the session must refuse it.
  const refused = yield* Effect.flip(cql`SELECT release_version FROM system.local`.pipe(Effect.provide(tlsLayer({}))))
  yield* expect(refused.reason._tag === "Tls", `a Tls reason without the node's authority (got ${refused.reason._tag})`)
})

/** On Deno: a node its permissions do not grant is refused with a Configuration reason naming the flag to add. */
const denoPermissionDenied = Effect.gen(function* () {
  const refused = yield* Effect.flip(
    cql`SELECT release_version FROM system.local`.pipe(
      Effect.provide(
        CassandraLayer.layer({ contactPoints: [ungrantedAddress], localDataCenter: "datacenter1", ...patient })
      )
    )
  )
  yield* expect(
    refused.reason._tag === "Configuration" && refused.message.includes("--allow-net"),
    `a Configuration reason naming --allow-net (got ${refused.reason._tag}: ${refused.message})`
  )
})

/** The session connected (the layer connects eagerly); prints the server's release for the runner's report. */
const connected = Effect.gen(function* () {
  const [local] = yield* cql<{ release_version: string }>`SELECT release_version FROM system.local`
  yield* expect(typeof local?.release_version === "string", "the node's release version")
  console.log(`cassandra ${local?.release_version}`)
})

const program = Effect.gen(function* () {
  yield* check("connect", connected)
  yield* check("schema", createSchema)
  yield* check("typed-reads-writes", typedReadsAndWrites)
  yield* check("lwt", lightweightTransaction)
  yield* check("batch", batch)
  yield* check("paged-stream", pagedStream)
  yield* check("every-cql-type", everyCqlType)
  yield* check("tls-verified", tlsWithVerification)
  if ("Deno" in globalThis) yield* check("deno-permission-denied", denoPermissionDenied)
  yield* check("topology-events", topologyEvents)
  yield* check("metrics", metricsRecorded)
})

const started = performance.now()
const CassandraLive = Layer.provideMerge(
  CassandraLayer.layer({ contactPoints: [contactPoint], localDataCenter: "datacenter1", ...patient }),
  Metrics.layer({ pollInterval: "1 second" })
)

const exit = await Effect.runPromiseExit(program.pipe(Effect.provide(CassandraLive), Effect.scoped))
if (exit._tag === "Failure") {
  console.error(Cause.pretty(exit.cause))
  process.exit(1)
}
console.log(`done ${Math.round(performance.now() - started)}`)
process.exit(0)
