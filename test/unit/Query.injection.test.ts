import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as CassandraError from "effect-cassandra/CassandraError"
import * as Query from "effect-cassandra/Query"
import { Session } from "effect-cassandra/Session"
import * as fc from "fast-check"

const { cql, identifier } = Query

/** Every string key the statement module reads or writes on a value: a forged object may carry any of them. */
const libraryKeys = [
  "~effect-cassandra/Query/Statement",
  "~effect-cassandra/Query/Identifier",
  "~effect-cassandra/Query/Fragment",
  "text",
  "params",
  "parts",
  "options",
  "invalid",
  "problem",
  "session",
  "_id",
  "parameterCount",
  "withOptions",
  "page",
  "stream",
  "result",
  "conditional",
  "__proto__",
  "constructor",
  "toJSON"
]

const jsonValue = fc.jsonValue().map((json) => JSON.parse(JSON.stringify(json)) as unknown)

/** Objects parsed from JSON that carry the library's own property names, with JSON or hostile CQL values. */
const forged = fc
  .dictionary(
    fc.constantFrom(...libraryKeys),
    fc.oneof(
      jsonValue,
      fc.constant("x = 1; DROP TABLE users --"),
      fc.constant(["x", 'y"; DROP TABLE t; --']),
      fc.constant(true)
    ),
    { minKeys: 1 }
  )
  .map((object) => JSON.parse(JSON.stringify(object)) as unknown)

const anyValue = fc.oneof(jsonValue, forged)

/** A session that fails the test if anything reaches it: the statements below must fail before sending. */
const unreachableSession: Session = {
  client: undefined as never,
  keyspace: undefined,
  execute: () => Effect.die("a request was sent"),
  batch: () => Effect.die("a batch was sent"),
  inFlight: Effect.succeed(0)
}

const runWithoutSending = <A>(effect: Effect.Effect<A, CassandraError.CassandraError, Session>) =>
  Effect.runSyncExit(Effect.provideService(effect, Session, unreachableSession))

const failureReason = <A>(exit: Exit.Exit<A, CassandraError.CassandraError>) => {
  assert.isTrue(Exit.isFailure(exit), "the statement should have failed before sending")
  const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
  assert.strictEqual(error?._tag, "Fail")
  return error?._tag === "Fail" ? error.error.reason : undefined
}

describe("Query.cql injection", () => {
  it("keeps the CQL text of any JSON-shaped value, including objects carrying the library's property names", () => {
    fc.assert(
      fc.property(fc.array(anyValue, { maxLength: 6 }), (values) => {
        const strings = Object.assign(
          Array.from({ length: values.length + 1 }, (_, index) => `part${index} `),
          { raw: [] as Array<string> }
        ) as unknown as TemplateStringsArray
        const statement = cql(strings, ...values)
        assert.strictEqual(statement.text, strings.join("?"))
        assert.deepStrictEqual(statement.params, values)
      }),
      { numRuns: 500 }
    )
  })

  it("treats a JSON look-alike of a statement or identifier as a bound value", () => {
    const statementLike = JSON.parse(
      '{"~effect-cassandra/Query/Statement":"~effect-cassandra/Query/Statement","text":"1; DROP TABLE users","params":[],"invalid":[]}'
    )
    const identifierLike = JSON.parse(
      '{"~effect-cassandra/Query/Identifier":"~effect-cassandra/Query/Identifier","parts":["users\\" WHERE 1=1 --"]}'
    )
    const statement = cql`SELECT * FROM t WHERE a = ${statementLike} AND b = ${identifierLike}`
    assert.strictEqual(statement.text, "SELECT * FROM t WHERE a = ? AND b = ?")
    assert.deepStrictEqual(statement.params, [statementLike, identifierLike])
    assert.isFalse(Query.isStatement(statementLike))
    assert.isFalse(Query.isIdentifier(identifierLike))
  })

  it("does not recognise a copy of a built statement, identifier or fragment", () => {
    const built = cql`SELECT * FROM t`
    const name = identifier("t")
    const list = Query.inList([1, 2])
    for (const copy of [{ ...built }, Object.assign({}, name), { ...list }, structuredCloneable(built)]) {
      assert.isFalse(Query.isStatement(copy))
      assert.isFalse(Query.isIdentifier(copy))
      assert.isFalse(Query.isFragment(copy))
      assert.strictEqual(cql`SELECT ${copy}`.text, "SELECT ?")
    }
    assert.isTrue(Query.isStatement(built))
    assert.isTrue(Query.isIdentifier(name))
    assert.isTrue(Query.isFragment(list))
    assert.isTrue(Query.isFragment(built))
  })

  it("fails with InvalidIdentifier before sending for hostile names", () => {
    const hostile = [
      'users"; DROP TABLE t; --',
      "naïve",
      "名前",
      "",
      "a".repeat(49),
      "a b",
      "a.b",
      "`a`",
      "a\u0000",
      "😀"
    ]
    for (const name of hostile) {
      const exit = runWithoutSending(cql`SELECT * FROM ${identifier("ks", name)}`)
      const reason = failureReason(exit)
      assert.strictEqual(reason?._tag, "InvalidIdentifier", `name ${JSON.stringify(name)}`)
      const batchExit = runWithoutSending(Query.batch([cql`DELETE FROM ${identifier(name)} WHERE k = ${1}`]))
      assert.strictEqual(failureReason(batchExit)?._tag, "InvalidIdentifier")
    }
    // The same hostile identifier at one call site, twice: the second call is refused as the first was.
    const hostileName = identifier("ks", 'users"; DROP TABLE t; --')
    for (let call = 0; call < 2; call++) {
      assert.strictEqual(failureReason(runWithoutSending(cql`SELECT * FROM ${hostileName}`))?._tag, "InvalidIdentifier")
    }
    const forgedStatement = JSON.parse('{"text":"DROP TABLE users","params":[]}') as Query.Statement
    const forgedBatch = runWithoutSending(Query.batch([cql`DELETE FROM t WHERE k = ${1}`, forgedStatement]))
    assert.strictEqual(failureReason(forgedBatch)?._tag, "InvalidArgument")
    const listExit = runWithoutSending(cql`SELECT ${Query.identifiers(["ok", 'bad"'])} FROM t`)
    assert.strictEqual(failureReason(listExit)?._tag, "InvalidIdentifier")
    const noParts = (identifier as (...parts: Array<string>) => Query.Identifier)()
    assert.strictEqual(failureReason(runWithoutSending(cql`SELECT * FROM ${noParts}`))?._tag, "InvalidIdentifier")
    assert.strictEqual(cql`SELECT ${identifier("a".repeat(48))} FROM t`.text, `SELECT "${"a".repeat(48)}" FROM t`)
  })
})

/** A plain-data copy, as a value that went through a message queue would arrive. */
const structuredCloneable = (statement: Query.Statement) =>
  JSON.parse(JSON.stringify({ ...statement, text: statement.text, params: statement.params })) as unknown

describe("Query fragments", () => {
  it("joins fragments with a separator, keeping each one's parameters in order", () => {
    const conditions = [cql`a = ${1}`, cql`b = ${2}`, cql`c IN ${Query.inList(["x", "y"])}`]
    const statement = cql`SELECT * FROM t WHERE ${Query.join(conditions, " AND ")} LIMIT ${10}`
    assert.strictEqual(statement.text, "SELECT * FROM t WHERE a = ? AND b = ? AND c IN (?, ?) LIMIT ?")
    assert.deepStrictEqual(statement.params, [1, 2, "x", "y", 10])
  })

  it("joins with a comma by default and gives an empty text for no fragments", () => {
    assert.strictEqual(
      cql`SELECT ${Query.join([identifier("a"), identifier("b")])} FROM t`.text,
      `SELECT "a", "b" FROM t`
    )
    assert.strictEqual(cql`x${Query.join([])}y`.text, "xy")
  })

  it("refuses a separator that is not punctuation or AND/OR, before sending", () => {
    const separator = "; DROP TABLE t; --" as unknown as Query.Separator
    const statement = cql`SELECT * FROM t WHERE ${Query.join([cql`a = ${1}`, cql`b = ${2}`], separator)}`
    assert.notInclude(statement.text, "DROP")
    const reason = failureReason(runWithoutSending(statement))
    assert.strictEqual(reason?._tag, "InvalidArgument")
  })

  it("writes a list of identifiers quoted", () => {
    const statement = cql`SELECT ${Query.identifiers(["id", "Name", "email"])} FROM t`
    assert.strictEqual(statement.text, `SELECT "id", "Name", "email" FROM t`)
    assert.deepStrictEqual(statement.params, [])
  })

  it("binds each value of an IN list", () => {
    const ids = [3, 1, 4]
    const statement = cql`SELECT * FROM t WHERE k IN ${Query.inList(ids)}`
    assert.strictEqual(statement.text, "SELECT * FROM t WHERE k IN (?, ?, ?)")
    assert.deepStrictEqual(statement.params, ids)
    const forgedValue = JSON.parse('{"text":"1) OR (1=1","params":[]}')
    const forgedList = cql`SELECT * FROM t WHERE k IN ${Query.inList([forgedValue])}`
    assert.strictEqual(forgedList.text, "SELECT * FROM t WHERE k IN (?)")
    assert.deepStrictEqual(forgedList.params, [forgedValue])
  })

  it("fails an empty IN list or identifier list with a typed error before sending", () => {
    const emptyIn = cql`SELECT * FROM t WHERE k IN ${Query.inList([])}`
    const reason = failureReason(runWithoutSending(emptyIn))
    assert.strictEqual(reason?._tag, "InvalidArgument")
    assert.include(reason?.message ?? "", "IN list")
    const emptyColumns = cql`SELECT ${Query.identifiers([])} FROM t`
    assert.strictEqual(failureReason(runWithoutSending(emptyColumns))?._tag, "InvalidArgument")
    const emptyPage = runWithoutSending(emptyIn.page())
    assert.strictEqual(failureReason(emptyPage)?._tag, "InvalidArgument")
    const emptyBatch = runWithoutSending(Query.batch([cql`DELETE FROM t WHERE k IN ${Query.inList([])}`]))
    assert.strictEqual(failureReason(emptyBatch)?._tag, "InvalidArgument")
  })
})

/** A session that records what it was asked to send and answers with the given pages, in order. */
const recordingSession = (pages: ReadonlyArray<{ readonly rows: Array<Query.Row>; readonly pageState?: string }>) => {
  const sent: Array<string> = []
  let next = 0
  const session: Session = {
    client: undefined as never,
    keyspace: undefined,
    execute: (request) =>
      Effect.sync(() => {
        sent.push(request.query)
        const page = pages[next++] ?? { rows: [] }
        return { rows: page.rows, pageState: page.pageState ?? null } as never
      }),
    batch: (requests) =>
      Effect.sync(() => {
        sent.push(`BATCH ${requests.map((request) => request.query).join("; ")}`)
        return { rows: undefined, wasApplied: () => true } as never
      }),
    inFlight: Effect.succeed(0)
  }
  return { session, sent }
}

describe("Query forgeries made in code", () => {
  it("does not run, batch or inline a value given a statement's prototype or a Proxy of a statement", () => {
    const real = cql`SELECT * FROM t WHERE k = ${1}`
    const forgedByPrototype = Object.setPrototypeOf(
      { text: "DROP TABLE users", params: [], options: {} },
      Object.getPrototypeOf(real)
    ) as Query.Statement
    const proxied = new Proxy(real, {
      get: (target, key, receiver) => (key === "text" ? "DROP TABLE users" : Reflect.get(target, key, receiver))
    })
    for (const forged of [forgedByPrototype, proxied]) {
      assert.isFalse(Query.isStatement(forged))
      assert.isFalse(Query.isFragment(forged))
      assert.strictEqual(cql`SELECT ${forged}`.text, "SELECT ?")
      const { session, sent } = recordingSession([])
      const batchExit = Effect.runSyncExit(Effect.provideService(Query.batch([forged]), Session, session))
      assert.strictEqual(failureReason(batchExit)?._tag, "InvalidArgument")
      Effect.runSyncExit(Effect.provideService(Effect.exit(forged), Session, session))
      assert.deepStrictEqual(sent, [], "a forged statement must never reach the session")
    }
  })

  it("cannot build a fragment through a built value's constructor or by changing it afterwards", () => {
    const real = cql`SELECT * FROM t WHERE k = ${1}`
    type Constructor = new (...args: Array<unknown>) => unknown
    const StatementClass = (real as unknown as { constructor: Constructor }).constructor
    const IdentifierClass = (identifier("t") as unknown as { constructor: Constructor }).constructor
    const args = ["DROP TABLE users", [], {}, undefined, undefined]
    for (const make of [
      () => new StatementClass(...args),
      () => Reflect.construct(StatementClass, args),
      () => Reflect.construct(Object.getPrototypeOf(StatementClass), args),
      () => new IdentifierClass(['x" ; DROP TABLE users; --'])
    ]) {
      let made: unknown
      try {
        made = make()
      } catch {
        made = undefined
      }
      assert.notInclude(cql`SELECT ${made}`.text, "DROP")
    }
    try {
      ;(real as unknown as { text: string }).text = "DROP TABLE users"
    } catch {
      // A built statement's text cannot be assigned.
    }
    assert.strictEqual(cql`${real}`.text, "SELECT * FROM t WHERE k = ?")
    const name = identifier("users")
    try {
      ;(name.parts as Array<string>)[0] = 'users" WHERE 1=1 --'
    } catch {
      // An identifier's parts cannot be changed.
    }
    assert.strictEqual(cql`SELECT * FROM ${name}`.text, `SELECT * FROM "users"`)
  })

  it("reads a name once and refuses a name that is not a string, without throwing", () => {
    let reads = 0
    const changing = { toString: () => (reads++ === 0 ? "ok" : 'x" ; DROP TABLE t; --') }
    const fromJson = JSON.parse('{"toString":"x"}')
    for (const part of [changing, fromJson, 42, null, ["a"]]) {
      const statement = cql`SELECT * FROM ${identifier(part as unknown as string)}`
      assert.notInclude(statement.text, "DROP")
      const reason = failureReason(runWithoutSending(statement))
      assert.strictEqual(reason?._tag, "InvalidIdentifier")
      assert.notInclude(reason?.message ?? "", "DROP")
      const listed = cql`SELECT ${Query.identifiers(["id", part as unknown as string])} FROM t`
      assert.strictEqual(failureReason(runWithoutSending(listed))?._tag, "InvalidIdentifier")
    }
  })

  it("fails a helper given something that is not a list with a typed error, not a throw", () => {
    for (const notAList of [undefined, null, 42, { length: 2 }]) {
      const fragments = [
        Query.inList(notAList as unknown as Iterable<unknown>),
        Query.join(notAList as unknown as Iterable<unknown>),
        Query.identifiers(notAList as unknown as ReadonlyArray<string>)
      ]
      for (const fragment of fragments) {
        const reason = failureReason(runWithoutSending(cql`SELECT * FROM t WHERE k IN ${fragment}`))
        assert.strictEqual(reason?._tag, "InvalidArgument")
      }
    }
  })

  it("builds the text of a strings array that changed since its last use", () => {
    const strings = Object.assign(["SELECT a FROM t WHERE k = ", ""], { raw: [] }) as unknown as Array<string>
    assert.strictEqual(cql(strings as unknown as TemplateStringsArray, 1).text, "SELECT a FROM t WHERE k = ?")
    strings[0] = "SELECT b FROM t WHERE k = "
    assert.strictEqual(cql(strings as unknown as TemplateStringsArray, 1).text, "SELECT b FROM t WHERE k = ?")
  })

  it("prints a statement whose options have the wrong types without throwing", () => {
    const statement = cql`SELECT * FROM t`.withOptions({
      consistency: 10n as never,
      pageSize: { secret: "hunter2" } as never,
      executionProfile: Symbol("p") as never
    })
    const json = JSON.stringify(statement)
    assert.notInclude(json, "hunter2")
    assert.notInclude(String(statement), "hunter2")
  })

  it("inlines a built fragment as it was built, whatever is defined on it afterwards, at every call", () => {
    const order = cql`ORDER BY c`
    Object.defineProperty(order, "text", { value: "; DROP TABLE users" })
    let reads = 0
    Object.defineProperty(order, "params", { get: () => (reads++ % 2 === 0 ? ["alice"] : []) })
    const page = (limit: unknown) => cql`SELECT * FROM t ${order} LIMIT ${limit}`
    for (let call = 0; call < 4; call++) {
      const statement = page(10)
      assert.strictEqual(statement.text, "SELECT * FROM t ORDER BY c LIMIT ?", `call ${call}`)
      assert.deepStrictEqual(statement.params, [10], `call ${call}`)
    }
  })

  it("gives every call at a call site what an unfrozen copy of its strings gives, whatever came before", () => {
    const a = identifier("a")
    const b = identifier("ks", "b")
    const hostile = identifier('x"; DROP TABLE t; --')
    const notAString = identifier(42 as unknown as string)
    const inlinable = [
      a,
      b,
      hostile,
      notAString,
      cql`ORDER BY c`,
      cql`ORDER BY c`.withOptions({ consistency: "ONE" }),
      Query.identifiers(["x", "y"]),
      Query.identifiers([]),
      Query.inList([]),
      Query.join([a, b], " AND "),
      Query.join([a], "; DROP" as Query.Separator),
      cql`${1} + 1`,
      Query.inList(["alice", new Uint8Array([1])])
    ]
    const bound = [
      1,
      "alice",
      undefined,
      null,
      new Uint8Array([7, 8]),
      { ...a },
      JSON.parse('{"text":"DROP TABLE users","params":[]}'),
      new Proxy(a, {})
    ]
    const pieces = ["SELECT ", " FROM ", " WHERE k = ", ""]
    const handFrozen = Object.freeze(
      Object.assign([...pieces], { raw: Object.freeze([...pieces]) })
    ) as unknown as TemplateStringsArray
    const callSites = [
      (v: ReadonlyArray<unknown>) => cql`SELECT ${v[0]} FROM ${v[1]} WHERE k = ${v[2]}`,
      (v: ReadonlyArray<unknown>) => cql`SELECT * FROM ${v[0]}`,
      (v: ReadonlyArray<unknown>) => cql(handFrozen, ...v)
    ]
    const unfrozen = [
      Object.assign(["SELECT ", " FROM ", " WHERE k = ", ""], { raw: [] }),
      Object.assign(["SELECT * FROM ", ""], { raw: [] }),
      Object.assign([...pieces], { raw: [] })
    ] as unknown as ReadonlyArray<TemplateStringsArray>
    const outcome = (statement: Query.Statement) => {
      const exit = runWithoutSending(statement)
      const reason = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      return reason?._tag === "Fail" ? `${reason.error.reason._tag}: ${reason.error.message}` : "sendable"
    }
    // Names built anew at each call, some writing the same text as others while refusing different names.
    const builtPerCall = [
      () => identifier("a"),
      () => identifier("a", "b"),
      () => identifier('a"."b'),
      () => identifier('a".', '"b'),
      () => identifier("a", '"b')
    ]
    const value = fc.oneof(fc.constantFrom(...inlinable), fc.constantFrom(...bound), fc.constantFrom(...builtPerCall))
    const call = fc.record({
      site: fc.integer({ min: 0, max: callSites.length - 1 }),
      values: fc.array(value, { minLength: 1, maxLength: 4 })
    })
    fc.assert(
      fc.property(fc.array(call, { minLength: 1, maxLength: 12 }), (calls) => {
        for (const call of calls) {
          const { site } = call
          const values = call.values.map((value) =>
            builtPerCall.some((build) => build === value) ? (value as () => unknown)() : value
          )
          const used = site === 2 ? values : Array.from({ length: site === 0 ? 3 : 1 }, (_, index) => values[index])
          const statement = callSites[site]!(used)
          const fresh = cql(unfrozen[site]!, ...used)
          assert.strictEqual(statement.text, fresh.text)
          assert.deepStrictEqual(statement.params, fresh.params)
          for (const param of statement.params) assert.isFalse(param instanceof Uint8Array && !Buffer.isBuffer(param))
          assert.strictEqual(outcome(statement), outcome(fresh))
        }
      }),
      { numRuns: 500 }
    )
  })
})

describe("Query fragments at scale", () => {
  it("writes 1,000 identifiers and 100,000 IN values, each bound", () => {
    const names = Array.from({ length: 1_000 }, (_, index) => `c${index}`)
    const columns = cql`SELECT ${Query.identifiers(names)} FROM t`
    assert.strictEqual(columns.text, `SELECT ${names.map((name) => `"${name}"`).join(", ")} FROM t`)
    const values = Array.from({ length: 100_000 }, (_, index) => index)
    const list = cql`SELECT * FROM t WHERE k IN ${Query.inList(values)}`
    assert.strictEqual(list.params.length, 100_000)
    assert.strictEqual(list.text.split("?").length - 1, 100_000)
  })
})

describe("Query.batch sessions", () => {
  it("runs a batch of bound statements on their session, and refuses statements bound to different sessions", () => {
    const first = recordingSession([])
    const second = recordingSession([])
    const context = recordingSession([])
    const cqlFirst = Effect.runSync(Effect.provideService(Query.template, Session, first.session))
    const cqlSecond = Effect.runSync(Effect.provideService(Query.template, Session, second.session))
    const onFirst = Query.batch([
      cqlFirst`UPDATE t SET v = ${1} WHERE k = ${1}`,
      cql`UPDATE t SET v = ${2} WHERE k = ${2}`
    ])
    assert.isTrue(Exit.isSuccess(Effect.runSyncExit(Effect.provideService(onFirst, Session, context.session))))
    assert.deepStrictEqual(first.sent, ["BATCH UPDATE t SET v = ? WHERE k = ?; UPDATE t SET v = ? WHERE k = ?"])
    assert.deepStrictEqual(context.sent, [])
    // Only bound statements: nothing to provide.
    assert.isTrue(Exit.isSuccess(Effect.runSyncExit(Query.batch([cqlSecond`DELETE FROM t WHERE k = ${1}`]))))
    assert.strictEqual(second.sent.length, 1)
    const mixed = Query.batch([cqlFirst`DELETE FROM t WHERE k = ${1}`, cqlSecond`DELETE FROM t WHERE k = ${2}`])
    assert.strictEqual(failureReason(Effect.runSyncExit(mixed))?._tag, "InvalidArgument")
    assert.strictEqual(
      failureReason(Effect.runSyncExit(cqlFirst.batch([cqlSecond`DELETE FROM t WHERE k = ${2}`])))?._tag,
      "InvalidArgument"
    )
    assert.strictEqual(first.sent.length, 1)
    assert.strictEqual(second.sent.length, 1)
    // An empty batch is refused before any session is needed.
    assert.strictEqual(failureReason(Effect.runSyncExit(Query.batch([])))?._tag, "InvalidArgument")
  })
})
