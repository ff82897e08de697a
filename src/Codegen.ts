/**
 * TypeScript generated from a live keyspace: a `CqlType.Udt` schema per user-defined type and a `Table` definition
 * per table, with every CQL type (primitives, nested frozen collections, tuples, UDTs inside collections, vectors,
 * counters), static columns and clustering order. Key columns are required, every other column, UDT field and tuple
 * element is `CqlType.NullOr`, as Cassandra may hold no value there. The module is formatted as Biome formats it and
 * is the same, byte for byte, for a keyspace created from its own definitions.
 *
 * The `effect-cassandra generate --keyspace KS [--out DIR]` command writes it to a file.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as CassandraError from "./CassandraError.ts"
import { renderKeyspace } from "./internal/codegen.ts"
import { readKeyspace } from "./internal/liveSchema.ts"
import type { Session } from "./Session.ts"

/**
 * A keyspace that cannot be written as a module: it does not exist, or it holds names the library cannot quote
 * (anything but `[A-Za-z0-9_]{1,48}`), a column or field named `__proto__` (which neither an object literal nor the
 * driver's rows can hold), types it cannot read (custom Java types), or a table that changed while it was read.
 * Every problem is listed.
 *
 * @since 0.1.0
 * @category errors
 */
export class CodegenError extends Schema.TaggedError<CodegenError>("effect-cassandra/CodegenError")("CodegenError", {
  keyspace: Schema.String,
  problems: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `The keyspace ${this.keyspace} cannot be generated: ${this.problems.join("; ")}`
  }
}

/**
 * The TypeScript module of a keyspace, read from the cluster's `system_schema` through the session.
 *
 * @example
 * ```ts
 * import { writeFileSync } from "node:fs"
 * import { Effect } from "effect"
 * import { Codegen } from "effect-cassandra"
 *
 * const program = Effect.map(Codegen.generate("shop"), (module) => writeFileSync("src/shop.ts", module))
 * ```
 *
 * @since 0.1.0
 * @category generation
 */
export const generate = (
  keyspace: string
): Effect.Effect<string, CodegenError | CassandraError.CassandraError, Session> =>
  Effect.flatMap(readKeyspace(keyspace), (live) => {
    if (Option.isNone(live)) return Effect.fail(new CodegenError({ keyspace, problems: ["it does not exist"] }))
    const module = renderKeyspace(live.value)
    return typeof module === "string"
      ? Effect.succeed(module)
      : Effect.fail(new CodegenError({ keyspace, problems: module.problems }))
  })
