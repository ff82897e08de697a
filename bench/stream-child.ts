/**
 * One streaming variant in a process of its own, so that its peak memory (max RSS) is its alone. Prints one JSON line:
 * `{ rows, seconds, maxRssMb }`.
 *
 *   node --conditions=effect-cassandra/source bench/stream-child.ts <library|driver-stream|driver-collect> <rows> <contact points>
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
  // Every row in memory at once, as code that collects every page of `execute` holds them. Page by page, not one
  // `execute` of every row: a single response of a million rows is more than a small node's heap can build.
  "driver-collect": async () => {
    const client = driverClient()
    await client.connect()
    const collected: Array<Cassandra.types.Row> = []
    let pageState: string | undefined
    do {
      const page = await client.execute(query, [rows], {
        prepare: true,
        fetchSize: pageSize,
        ...(pageState === undefined ? {} : { pageState })
      })
      for (const row of page.rows) collected.push(row)
      pageState = page.pageState ?? undefined
    } while (pageState !== undefined)
    await client.shutdown()
    return collected.length
  }
}

const run = variant === undefined ? undefined : variants[variant]
if (run === undefined || !(rows > 0) || contactPoints === undefined) {
  process.stderr.write(`usage: stream-child.ts <${Object.keys(variants).join("|")}> <rows> <contact points>\n`)
  process.exit(2)
}
process.stdout.write(`${JSON.stringify(await measure(run))}\n`)
