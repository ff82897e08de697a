/**
 * A fake Cassandra cluster for unit tests: nodes on given loopback addresses speaking native protocol v4 well enough
 * for cassandra-driver to connect (STARTUP, OPTIONS, REGISTER, the system tables it reads, PREPARE, QUERY, EXECUTE,
 * BATCH), answering each application statement as a test's script says (rows, a server error such as a read or write
 * timeout, Overloaded, Unavailable, Unprepared, or no answer at all) and recording every arrival with its node and
 * consistency. For what only a server's answers can show (the driver's retry decisions end to end); never a stand-in
 * for Cassandra in an integration test.
 */
import * as Crypto from "node:crypto"
import * as Net from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

// ---------------------------------------------------------------------------------------------------------------
// A fake Cassandra node, native protocol v4
// ---------------------------------------------------------------------------------------------------------------

const consistencyCodes = {
  ANY: 0,
  ONE: 1,
  TWO: 2,
  THREE: 3,
  QUORUM: 4,
  ALL: 5,
  LOCAL_QUORUM: 6,
  EACH_QUORUM: 7,
  SERIAL: 8,
  LOCAL_SERIAL: 9,
  LOCAL_ONE: 10
} as const
/** A consistency level by its protocol name. */
export type ConsistencyName = keyof typeof consistencyCodes
const consistencyName = (code: number) =>
  (Object.keys(consistencyCodes) as Array<ConsistencyName>).find((name) => consistencyCodes[name] === code) ??
  `#${code}`

/** One statement of the application as a fake node received it. */
export interface Arrival {
  readonly node: string
  readonly query: string
  readonly consistency: string
  readonly at: number
}

/** How a fake node answers one arrival of an application statement. */
export type Answer =
  | { readonly _tag: "Void" }
  | { readonly _tag: "Rows" }
  | {
      readonly _tag: "WriteTimeout"
      readonly consistency: ConsistencyName
      readonly received: number
      readonly blockFor: number
      readonly writeType: string
    }
  | {
      readonly _tag: "ReadTimeout"
      readonly consistency: ConsistencyName
      readonly received: number
      readonly blockFor: number
      readonly dataPresent: boolean
    }
  | { readonly _tag: "Unavailable"; readonly consistency: ConsistencyName; readonly required: number }
  | { readonly _tag: "Overloaded"; readonly message: string }
  | { readonly _tag: "Unprepared" }
  | { readonly _tag: "Hang" }

/** The answer to the `nth` arrival (from 0, counted over the whole fake cluster) of a statement, after `delay` ms. */
export type Script = (arrival: Arrival, nth: number) => Answer | { readonly answer: Answer; readonly delay: number }

const shortOf = (n: number) => {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}
const intOf = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}
const stringOf = (s: string) => Buffer.concat([shortOf(Buffer.byteLength(s)), Buffer.from(s)])
const bytesOf = (b: Buffer | undefined) => (b === undefined ? intOf(-1) : Buffer.concat([intOf(b.length), b]))
const shortBytesOf = (b: Buffer) => Buffer.concat([shortOf(b.length), b])
const inetOf = (address: string) => Buffer.from(address.split(".").map(Number))
const uuidOf = (hex: string) => Buffer.from(hex.replaceAll("-", ""), "hex")
const setOfText = (values: ReadonlyArray<string>) =>
  Buffer.concat([intOf(values.length), ...values.map((value) => bytesOf(Buffer.from(value)))])

const types = { uuid: shortOf(0x0c), varchar: shortOf(0x0d), inet: shortOf(0x10), boolean: shortOf(0x04) }
const setOfVarchar = Buffer.concat([shortOf(0x22), types.varchar])

const rowsOf = (
  table: string,
  columns: ReadonlyArray<readonly [string, Buffer]>,
  rows: ReadonlyArray<ReadonlyArray<Buffer | undefined>>
) =>
  Buffer.concat([
    intOf(2),
    intOf(0x0001),
    intOf(columns.length),
    stringOf("system"),
    stringOf(table),
    ...columns.flatMap(([name, type]) => [stringOf(name), type]),
    intOf(rows.length),
    ...rows.flatMap((row) => row.map(bytesOf))
  ])

const schemaVersion = uuidOf("5a1c395e-b41f-11e5-9f22-ba0be0483c18")
const hostIdOf = (address: string) => Crypto.createHash("md5").update(address).digest()

const localRows = (address: string, index: number) =>
  rowsOf(
    "local",
    [
      ["key", types.varchar],
      ["data_center", types.varchar],
      ["rack", types.varchar],
      ["release_version", types.varchar],
      ["partitioner", types.varchar],
      ["cluster_name", types.varchar],
      ["host_id", types.uuid],
      ["schema_version", types.uuid],
      ["rpc_address", types.inet],
      ["tokens", setOfVarchar]
    ],
    [
      [
        Buffer.from("local"),
        Buffer.from("dc1"),
        Buffer.from("rack1"),
        Buffer.from("4.1.0"),
        Buffer.from("org.apache.cassandra.dht.Murmur3Partitioner"),
        Buffer.from("fake"),
        hostIdOf(address),
        schemaVersion,
        inetOf(address),
        setOfText([String(index * 1000)])
      ]
    ]
  )

const peersRows = (peers: ReadonlyArray<string>, all: ReadonlyArray<string>) =>
  rowsOf(
    "peers",
    [
      ["peer", types.inet],
      ["rpc_address", types.inet],
      ["data_center", types.varchar],
      ["rack", types.varchar],
      ["release_version", types.varchar],
      ["host_id", types.uuid],
      ["schema_version", types.uuid],
      ["tokens", setOfVarchar]
    ],
    peers.map((peer) => [
      inetOf(peer),
      inetOf(peer),
      Buffer.from("dc1"),
      Buffer.from("rack1"),
      Buffer.from("4.1.0"),
      hostIdOf(peer),
      schemaVersion,
      setOfText([String(all.indexOf(peer) * 1000)])
    ])
  )

const emptyRows = Buffer.concat([intOf(2), intOf(0x0001), intOf(0), stringOf("ks"), stringOf("t"), intOf(0)])

const errorBody = (code: number, message: string, extra: Buffer = Buffer.alloc(0)) =>
  Buffer.concat([intOf(code), stringOf(message), extra])

const answerBody = (answer: Answer, preparedId: Buffer | undefined): readonly [opcode: number, body: Buffer] => {
  switch (answer._tag) {
    case "Void":
      return [0x08, intOf(1)]
    case "Rows":
      return [0x08, emptyRows]
    case "WriteTimeout":
      return [
        0x00,
        errorBody(
          0x1100,
          "write timeout",
          Buffer.concat([
            shortOf(consistencyCodes[answer.consistency]),
            intOf(answer.received),
            intOf(answer.blockFor),
            stringOf(answer.writeType)
          ])
        )
      ]
    case "ReadTimeout":
      return [
        0x00,
        errorBody(
          0x1200,
          "read timeout",
          Buffer.concat([
            shortOf(consistencyCodes[answer.consistency]),
            intOf(answer.received),
            intOf(answer.blockFor),
            Buffer.from([answer.dataPresent ? 1 : 0])
          ])
        )
      ]
    case "Unavailable":
      return [
        0x00,
        errorBody(
          0x1000,
          "unavailable",
          Buffer.concat([shortOf(consistencyCodes[answer.consistency]), intOf(answer.required), intOf(0)])
        )
      ]
    case "Overloaded":
      return [0x00, errorBody(0x1001, answer.message)]
    case "Unprepared":
      return [0x00, errorBody(0x2500, "unprepared", shortBytesOf(preparedId ?? Buffer.alloc(16)))]
    case "Hang":
      return [-1, Buffer.alloc(0)]
  }
}

/** A request frame's body, read from the start. */
class Reader {
  offset = 0
  readonly body: Buffer
  constructor(body: Buffer) {
    this.body = body
  }
  byte() {
    return this.body.readUInt8(this.offset++)
  }
  short() {
    const value = this.body.readUInt16BE(this.offset)
    this.offset += 2
    return value
  }
  int() {
    const value = this.body.readInt32BE(this.offset)
    this.offset += 4
    return value
  }
  longString() {
    const length = this.int()
    const value = this.body.toString("utf8", this.offset, this.offset + length)
    this.offset += length
    return value
  }
  shortBytes() {
    const length = this.short()
    const value = this.body.subarray(this.offset, this.offset + length)
    this.offset += length
    return Buffer.from(value)
  }
  values() {
    const count = this.short()
    for (let i = 0; i < count; i++) {
      const length = this.int()
      if (length > 0) this.offset += length
    }
  }
}

/** A fake cluster of nodes on `addresses` (one shared port), answering application statements by `script`. */
export interface FakeCluster {
  readonly addresses: ReadonlyArray<string>
  readonly port: number
  readonly arrivals: Array<Arrival>
  /** Forgets every prepared statement on `address`, as a restarted node does. */
  readonly forgetPrepared: (address: string) => void
}

const isSystemQuery = (query: string) => /\bsystem(_\w+)?\./i.test(query)

const listen = (server: Net.Server, address: string, port: number) =>
  new Promise<number>((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, address, () => resolve((server.address() as Net.AddressInfo).port))
  })

/** Starts a fake cluster for the life of the scope: every node listening, closed (connections included) at its end. */
export const fakeCluster = (
  addresses: ReadonlyArray<string>,
  script: Script
): Effect.Effect<FakeCluster, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const arrivals: Array<Arrival> = []
      const prepared = new Map<string, Map<string, string>>(addresses.map((address) => [address, new Map()]))
      const sockets = new Set<Net.Socket>()
      const timers = new Set<ReturnType<typeof setTimeout>>()
      const serve = (address: string) => (socket: Net.Socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => undefined)
        let pending = Buffer.alloc(0)
        const reply = (stream: number, opcode: number, body: Buffer) => {
          const header = Buffer.alloc(9)
          header.writeUInt8(0x84, 0)
          header.writeUInt8(0, 1)
          header.writeInt16BE(stream, 2)
          header.writeUInt8(opcode, 4)
          header.writeInt32BE(body.length, 5)
          if (!socket.destroyed) socket.write(Buffer.concat([header, body]))
        }
        const statement = (stream: number, query: string, consistency: number, id: Buffer | undefined) => {
          const arrival: Arrival = { node: address, query, consistency: consistencyName(consistency), at: Date.now() }
          const nth = arrivals.filter((earlier) => earlier.query === query).length
          arrivals.push(arrival)
          const scripted = script(arrival, nth)
          const { answer, delay } = "_tag" in scripted ? { answer: scripted, delay: 0 } : scripted
          const [opcode, body] = answerBody(answer, id)
          if (opcode < 0) return
          if (delay === 0) return reply(stream, opcode, body)
          const timer = setTimeout(() => {
            timers.delete(timer)
            reply(stream, opcode, body)
          }, delay)
          timers.add(timer)
        }
        const frame = (version: number, stream: number, opcode: number, body: Buffer) => {
          if ((version & 0x7f) !== 4) {
            return reply(stream, 0x00, errorBody(0x000a, "Invalid or unsupported protocol version (5); use v4"))
          }
          const reader = new Reader(body)
          switch (opcode) {
            case 0x05:
              return reply(
                stream,
                0x06,
                Buffer.concat([
                  shortOf(2),
                  stringOf("CQL_VERSION"),
                  shortOf(1),
                  stringOf("3.4.5"),
                  stringOf("COMPRESSION"),
                  shortOf(0)
                ])
              )
            case 0x01:
            case 0x0b:
              return reply(stream, 0x02, Buffer.alloc(0))
            case 0x07: {
              const query = reader.longString()
              const consistency = reader.short()
              if (/system\.local/i.test(query))
                return reply(stream, 0x08, localRows(address, addresses.indexOf(address)))
              if (/system\.peers/i.test(query)) {
                return reply(
                  stream,
                  0x08,
                  peersRows(
                    addresses.filter((peer) => peer !== address),
                    addresses
                  )
                )
              }
              if (isSystemQuery(query)) return reply(stream, 0x08, emptyRows)
              return statement(stream, query, consistency, undefined)
            }
            case 0x09: {
              const query = reader.longString()
              const id = Crypto.createHash("md5").update(query).digest()
              prepared.get(address)?.set(id.toString("hex"), query)
              const markers = isSystemQuery(query) ? 0 : (query.match(/\?/g) ?? []).length
              return reply(
                stream,
                0x08,
                Buffer.concat([
                  intOf(4),
                  shortBytesOf(id),
                  intOf(0x0001),
                  intOf(markers),
                  intOf(0),
                  stringOf("ks"),
                  stringOf("t"),
                  ...Array.from({ length: markers }, (_, i) => [stringOf(`p${i}`), types.varchar]).flat(),
                  intOf(0x0004),
                  intOf(0)
                ])
              )
            }
            case 0x0a: {
              const id = reader.shortBytes()
              const consistency = reader.short()
              const query = prepared.get(address)?.get(id.toString("hex"))
              if (query === undefined) {
                return reply(stream, 0x00, errorBody(0x2500, "unprepared", shortBytesOf(id)))
              }
              if (isSystemQuery(query)) return reply(stream, 0x08, emptyRows)
              return statement(stream, query, consistency, id)
            }
            case 0x0d: {
              reader.byte()
              const count = reader.short()
              const queries: Array<string> = []
              for (let i = 0; i < count; i++) {
                const kind = reader.byte()
                if (kind === 0) queries.push(reader.longString())
                else queries.push(prepared.get(address)?.get(reader.shortBytes().toString("hex")) ?? "?")
                reader.values()
              }
              const consistency = reader.short()
              return statement(stream, `BATCH ${queries.join("; ")}`, consistency, undefined)
            }
            default:
              return reply(stream, 0x00, errorBody(0x000a, `opcode ${opcode}`))
          }
        }
        socket.on("data", (chunk) => {
          pending = Buffer.concat([pending, chunk])
          while (pending.length >= 9) {
            const length = pending.readInt32BE(5)
            if (pending.length < 9 + length) break
            const version = pending.readUInt8(0)
            const stream = pending.readInt16BE(2)
            const opcode = pending.readUInt8(4)
            const body = pending.subarray(9, 9 + length)
            pending = pending.subarray(9 + length)
            frame(version, stream, opcode, body)
          }
        })
      }
      const servers = addresses.map((address) => Net.createServer(serve(address)))
      const port = await listen(servers[0]!, addresses[0]!, 0)
      for (let i = 1; i < servers.length; i++) await listen(servers[i]!, addresses[i]!, port)
      const close = () =>
        Promise.all(
          servers.map((server) => {
            for (const timer of timers) clearTimeout(timer)
            for (const socket of sockets) socket.destroy()
            return new Promise<void>((resolve) => server.close(() => resolve()))
          })
        )
      const cluster: FakeCluster = {
        addresses,
        port,
        arrivals,
        forgetPrepared: (address) => prepared.get(address)?.clear()
      }
      return { cluster, close }
    }),
    ({ close }) => Effect.promise(close)
  ).pipe(Effect.map(({ cluster }) => cluster))
