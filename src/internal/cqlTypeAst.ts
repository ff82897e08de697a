/**
 * CQL type text as a tree: parsed from the text `CqlType.cqlTypeOf` gives and from the text Cassandra keeps in
 * `system_schema`, brought to the one form Cassandra stores, and printed back the way Cassandra prints it.
 */

/** The CQL types of one word, by the name Cassandra prints (`varchar` is stored as `text`). */
export const primitiveNames = [
  "ascii",
  "bigint",
  "blob",
  "boolean",
  "counter",
  "date",
  "decimal",
  "double",
  "duration",
  "float",
  "inet",
  "int",
  "smallint",
  "text",
  "time",
  "timestamp",
  "timeuuid",
  "tinyint",
  "uuid",
  "varint"
] as const

export type PrimitiveName = (typeof primitiveNames)[number]

export type CqlTypeNode =
  | { readonly _tag: "Primitive"; readonly name: PrimitiveName }
  | { readonly _tag: "List" | "Set"; readonly element: CqlTypeNode }
  | { readonly _tag: "Map"; readonly key: CqlTypeNode; readonly value: CqlTypeNode }
  | { readonly _tag: "Tuple"; readonly elements: ReadonlyArray<CqlTypeNode> }
  | { readonly _tag: "Vector"; readonly element: CqlTypeNode; readonly dimension: number }
  | { readonly _tag: "Frozen"; readonly type: CqlTypeNode }
  /** A user-defined type, by its name as stored (case kept), with the keyspace when the text named one. */
  | { readonly _tag: "Udt"; readonly keyspace: string | undefined; readonly name: string }

/** Why a type text could not be read, with the position (0-based) where reading stopped; never the whole text. */
export interface ParseFailure {
  readonly position: number
  readonly expected: string
}

const primitiveSet: ReadonlySet<string> = new Set(primitiveNames)

const isPrimitiveName = (name: string): name is PrimitiveName => primitiveSet.has(name)

type Token =
  | { readonly kind: "word"; readonly text: string; readonly quoted: boolean; readonly position: number }
  | { readonly kind: "<" | ">" | "," | "." | "end"; readonly position: number }

const wordCharacter = /[A-Za-z0-9_]/

const tokenize = (text: string): Array<Token> | ParseFailure => {
  const tokens: Array<Token> = []
  let index = 0
  while (index < text.length) {
    const character = text[index]!
    if (character === " ") {
      index++
    } else if (character === "<" || character === ">" || character === "," || character === ".") {
      tokens.push({ kind: character, position: index })
      index++
    } else if (character === '"') {
      // A quoted name: `""` stands for one `"`.
      let name = ""
      let end = index + 1
      for (;;) {
        if (end >= text.length) return { position: index, expected: "a closing quote" }
        if (text[end] === '"') {
          if (text[end + 1] !== '"') break
          name += '"'
          end += 2
        } else {
          name += text[end]
          end++
        }
      }
      tokens.push({ kind: "word", text: name, quoted: true, position: index })
      index = end + 1
    } else if (wordCharacter.test(character)) {
      const start = index
      while (index < text.length && wordCharacter.test(text[index]!)) index++
      tokens.push({ kind: "word", text: text.slice(start, index), quoted: false, position: start })
    } else {
      return { position: index, expected: "a type name, <, >, or a comma" }
    }
  }
  tokens.push({ kind: "end", position: text.length })
  return tokens
}

const isFailure = (value: unknown): value is ParseFailure =>
  typeof value === "object" && value !== null && "expected" in value

class Parser {
  index = 0
  readonly tokens: ReadonlyArray<Token>
  constructor(tokens: ReadonlyArray<Token>) {
    this.tokens = tokens
  }

  next(): Token {
    return this.tokens[Math.min(this.index++, this.tokens.length - 1)]!
  }

  peek(): Token {
    return this.tokens[Math.min(this.index, this.tokens.length - 1)]!
  }

  expect(kind: "<" | ">" | "," | "end"): ParseFailure | undefined {
    const token = this.next()
    return token.kind === kind ? undefined : { position: token.position, expected: kind === "end" ? "the end" : kind }
  }

  /** Parameters between `<` and `>`, separated by commas. */
  parameters(): Array<CqlTypeNode> | ParseFailure {
    const open = this.expect("<")
    if (open !== undefined) return open
    const parameters: Array<CqlTypeNode> = []
    for (;;) {
      const parameter = this.type()
      if (isFailure(parameter)) return parameter
      parameters.push(parameter)
      const token = this.next()
      if (token.kind === ">") return parameters
      if (token.kind !== ",") return { position: token.position, expected: ", or >" }
    }
  }

  withParameters(
    count: number,
    position: number,
    name: string,
    build: (parameters: ReadonlyArray<CqlTypeNode>) => CqlTypeNode
  ): CqlTypeNode | ParseFailure {
    const parameters = this.parameters()
    if (isFailure(parameters)) return parameters
    return parameters.length === count || (count === -1 && parameters.length > 0)
      ? build(parameters)
      : { position, expected: `${count === -1 ? "at least 1" : count} type parameter(s) for ${name}` }
  }

  vector(position: number): CqlTypeNode | ParseFailure {
    const open = this.expect("<")
    if (open !== undefined) return open
    const element = this.type()
    if (isFailure(element)) return element
    const comma = this.expect(",")
    if (comma !== undefined) return comma
    const dimension = this.next()
    if (dimension.kind !== "word" || dimension.quoted || !/^[1-9][0-9]{0,8}$/.test(dimension.text)) {
      return { position: dimension.kind === "end" ? position : dimension.position, expected: "a vector dimension" }
    }
    const close = this.expect(">")
    if (close !== undefined) return close
    return { _tag: "Vector", element, dimension: Number(dimension.text) }
  }

  type(): CqlTypeNode | ParseFailure {
    const token = this.next()
    if (token.kind !== "word") return { position: token.position, expected: "a type name" }
    // Only the lower-case spelling is a primitive: both sides of this parser print primitives in lower case, while a
    // CqlType.Udt name keeps its case (`Udt("Text", …)` is the type `"Text"`). A collection keyword names a type only
    // with parameters: Cassandra prints a type created as `"list"` unquoted.
    if (!token.quoted && this.peek().kind !== "<") {
      if (token.text === "varchar") return { _tag: "Primitive", name: "text" }
      if (isPrimitiveName(token.text)) return { _tag: "Primitive", name: token.text }
    } else if (!token.quoted) {
      const keyword = token.text.toLowerCase()
      switch (keyword) {
        case "list":
        case "set":
          return this.withParameters(1, token.position, keyword, ([element]) => ({
            _tag: keyword === "list" ? "List" : "Set",
            element: element!
          }))
        case "map":
          return this.withParameters(2, token.position, keyword, ([key, value]) => ({
            _tag: "Map",
            key: key!,
            value: value!
          }))
        case "tuple":
          return this.withParameters(-1, token.position, keyword, (elements) => ({ _tag: "Tuple", elements }))
        case "frozen":
          return this.withParameters(1, token.position, keyword, ([type]) => ({ _tag: "Frozen", type: type! }))
        case "vector":
          return this.vector(token.position)
      }
    }
    if (this.peek().kind === ".") {
      this.next()
      const name = this.next()
      if (name.kind !== "word") return { position: name.position, expected: "a type name after the keyspace" }
      return { _tag: "Udt", keyspace: token.text, name: name.text }
    }
    return { _tag: "Udt", keyspace: undefined, name: token.text }
  }
}

/** Reads CQL type text: `int`, `frozen<list<int>>`, `"MyType"`, `ks.address`, `vector<float, 3>`. */
export const parse = (text: string): CqlTypeNode | ParseFailure => {
  const tokens = tokenize(text)
  if (isFailure(tokens)) return tokens
  const parser = new Parser(tokens)
  const type = parser.type()
  if (isFailure(type)) return type
  return parser.expect("end") ?? type
}

export { isFailure as isParseFailure }

/**
 * The type as Cassandra stores it: `varchar` is `text`; a tuple is always frozen; everything inside a frozen type,
 * a collection, a tuple or a vector is frozen; freezing a vector or a primitive changes nothing.
 */
export const canonical = (type: CqlTypeNode, frozen = false): CqlTypeNode => {
  switch (type._tag) {
    case "Primitive":
      return type
    case "Udt":
      return frozen ? { _tag: "Frozen", type } : type
    case "List":
    case "Set":
      return freezeIf(frozen, { _tag: type._tag, element: canonical(type.element, true) })
    case "Map":
      return freezeIf(frozen, { _tag: "Map", key: canonical(type.key, true), value: canonical(type.value, true) })
    case "Tuple":
      return {
        _tag: "Frozen",
        type: { _tag: "Tuple", elements: type.elements.map((element) => canonical(element, true)) }
      }
    case "Vector":
      return { _tag: "Vector", element: canonical(type.element, true), dimension: type.dimension }
    case "Frozen":
      return canonical(type.type, true)
  }
}

const freezeIf = (frozen: boolean, type: CqlTypeNode): CqlTypeNode => (frozen ? { _tag: "Frozen", type } : type)

/** The same type with every user-defined type named without its keyspace, for comparing types of one keyspace. */
export const withoutKeyspaces = (type: CqlTypeNode): CqlTypeNode => {
  switch (type._tag) {
    case "Primitive":
      return type
    case "Udt":
      return type.keyspace === undefined ? type : { _tag: "Udt", keyspace: undefined, name: type.name }
    case "List":
    case "Set":
      return { _tag: type._tag, element: withoutKeyspaces(type.element) }
    case "Map":
      return { _tag: "Map", key: withoutKeyspaces(type.key), value: withoutKeyspaces(type.value) }
    case "Tuple":
      return { _tag: "Tuple", elements: type.elements.map(withoutKeyspaces) }
    case "Vector":
      return { _tag: "Vector", element: withoutKeyspaces(type.element), dimension: type.dimension }
    case "Frozen":
      return { _tag: "Frozen", type: withoutKeyspaces(type.type) }
  }
}

/** The user-defined types named inside a type. */
export const udtsOf = (
  type: CqlTypeNode
): ReadonlyArray<{ readonly keyspace: string | undefined; readonly name: string }> => {
  switch (type._tag) {
    case "Primitive":
      return []
    case "Udt":
      return [type]
    case "List":
    case "Set":
    case "Vector":
      return udtsOf(type.element)
    case "Map":
      return [...udtsOf(type.key), ...udtsOf(type.value)]
    case "Tuple":
      return type.elements.flatMap(udtsOf)
    case "Frozen":
      return udtsOf(type.type)
  }
}

// Cassandra prints a name unquoted when it is a lower-case identifier (reserved words aside, which the names a
// type can have here never are: `CqlType` names them).
const printName = (name: string) => (/^[a-z][a-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`)

/** The type's text as Cassandra prints it in `system_schema`. */
export const print = (type: CqlTypeNode): string => {
  switch (type._tag) {
    case "Primitive":
      return type.name
    case "Udt":
      return type.keyspace === undefined ? printName(type.name) : `${printName(type.keyspace)}.${printName(type.name)}`
    case "List":
      return `list<${print(type.element)}>`
    case "Set":
      return `set<${print(type.element)}>`
    case "Map":
      return `map<${print(type.key)}, ${print(type.value)}>`
    case "Tuple":
      return `tuple<${type.elements.map(print).join(", ")}>`
    case "Vector":
      return `vector<${print(type.element)}, ${type.dimension}>`
    case "Frozen":
      return `frozen<${print(type.type)}>`
  }
}
