/**
 * One streaming variant in a process of its own, so that its peak memory (max RSS) is its alone. Prints one JSON line:
 * `{ rows, seconds, maxRssMb }`.
 *
 *   node --conditions=effect-cassandra/source bench/stream-child.ts <library|driver-stream|driver-execute> <rows> <contact points>
 */
import * as Cassandra from "cassandra-driver"
import { Effect, Stream } from "effect"
import { Query, Session } from "effect-cassandra"
import { pageSize, wideTable } from "./tables.ts"

const [variant, rowsArgument, contactPoints] = process.argv.slice(2)
const rows = Number(rowsArgument)
const localDataCenter = "datacenter1"
const points = (contactPoints ?? "").split(",")
const query = `SELECT * FROM ${wideTable} LIMIT ?`

const driverClient = () => new Cassandra.Client({ contactPoints: points, localDataCenter, encoding: Session.encoding })

const measure = async (count: () => Promise<number>) => {
  const started = performance.now()
  const counted = await count()
  const seconds = (performance.now() - started) / 1000
  return { rows: counted, seconds, maxRssMb: process.resourceUsage().maxRSS / 1024 }
}

const variants: Record<string, () => Promise<number>> = {
  library: () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const session = yield* Session.make({ contactPoints: points, localDataCenter })
          const statement = Query.cql`SELECT * FROM ${Query.identifier("bench", "wide")} LIMIT ${rows}`.withOptions({
            pageSize
          })
          return yield* Stream.runCount(statement.stream).pipe(Effect.provideService(Session.Session, session))
        })
      )
    ),
  // The driver's own paged iteration: one page in memory at a time, like the library's stream.
  "driver-stream": async () => {
    const client = driverClient()
    await client.connect()
    let counted = 0
    await new Promise<void>((resolve, reject) => {
      client
        .stream(query, [rows], { prepare: true, fetchSize: pageSize, autoPage: true })
        .on("readable", function (this: NodeJS.ReadableStream) {
          while (this.read() !== null) counted++
        })
        .on("end", resolve)
        .on("error", reject)
    })
    await client.shutdown()
    return counted
  },
  // The whole result in one `execute`: every row in memory at once.
  "driver-execute": async () => {
    const client = driverClient()
    await client.connect()
    const result = await client.execute(query, [rows], { prepare: true, fetchSize: rows })
    await client.shutdown()
    return result.rowLength
  }
}

const run = variant === undefined ? undefined : variants[variant]
if (run === undefined || !(rows > 0) || contactPoints === undefined) {
  process.stderr.write(`usage: stream-child.ts <${Object.keys(variants).join("|")}> <rows> <contact points>\n`)
  process.exit(2)
}
process.stdout.write(`${JSON.stringify(await measure(run))}\n`)
