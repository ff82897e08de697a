/**
 * Type-checks every ```ts block under an `@example` tag in the doc comments of src/, so the examples in the API
 * reference cannot rot. Each block becomes a module in .cache/doc-examples (inside the package, so that
 * `effect-cassandra` resolves to src/ through the `effect-cassandra/source` condition) and one `tsc` run checks them
 * all; every error is reported at the line of the source file the example came from.
 *
 *   node scripts/check-doc-examples.ts
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as Path from "node:path"

const root = Path.resolve(import.meta.dirname, "..")
const outputDirectory = Path.join(root, ".cache", "doc-examples")

interface Example {
  /** The source file, relative to the package root. */
  readonly source: string
  /** The 1-based line in the source file of the example's first line of code. */
  readonly firstLine: number
  readonly code: string
}

const sourceFiles = (directory: string): ReadonlyArray<string> =>
  readdirSync(directory, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => Path.join(entry.parentPath, entry.name))
    .sort()

/** The ```ts blocks that follow an `@example` tag in a doc comment, with the comment's leading ` * ` removed. */
const examplesIn = (file: string): ReadonlyArray<Example> => {
  const source = Path.relative(root, file)
  const lines = readFileSync(file, "utf8").split("\n")
  const examples: Array<Example> = []
  const commentText = (line: string) => line.replace(/^\s*\* ?/, "")
  let afterExampleTag = false
  for (let index = 0; index < lines.length; index++) {
    const text = commentText(lines[index] ?? "")
    if (/^@example\b/.test(text)) {
      afterExampleTag = true
    } else if (afterExampleTag && /^```(ts|typescript)\s*$/.test(text)) {
      const code: Array<string> = []
      let end = index + 1
      while (end < lines.length && !/^```\s*$/.test(commentText(lines[end] ?? ""))) {
        code.push(commentText(lines[end] ?? ""))
        end++
      }
      if (end === lines.length) throw new Error(`${source}:${index + 1}: the example's code block is never closed`)
      examples.push({ source, firstLine: index + 2, code: code.join("\n") })
      index = end
    } else if (text.startsWith("@") || text.startsWith("*/")) {
      afterExampleTag = false
    }
  }
  return examples
}

const examples = sourceFiles(Path.join(root, "src")).flatMap(examplesIn)

rmSync(outputDirectory, { recursive: true, force: true })
mkdirSync(outputDirectory, { recursive: true })
const exampleOfFile = new Map<string, Example>()
for (const example of examples) {
  const name = `${example.source.replace(/[/\\]/g, "_").replace(/\.ts$/, "")}_${example.firstLine}.ts`
  exampleOfFile.set(name, example)
  // The trailing export makes each example a module of its own, whether or not it imports anything.
  writeFileSync(Path.join(outputDirectory, name), `${example.code}\nexport {}\n`)
}
writeFileSync(
  Path.join(outputDirectory, "tsconfig.json"),
  JSON.stringify({
    extends: "../../tsconfig.json",
    // An example may declare a value only to show how it is written.
    compilerOptions: { noEmit: true, noUnusedLocals: false, noUnusedParameters: false },
    include: ["*.ts"]
  })
)

const tsc = Path.join(root, "node_modules", "typescript", "bin", "tsc")
let output = ""
try {
  execFileSync(process.execPath, [tsc, "-p", Path.join(outputDirectory, "tsconfig.json"), "--pretty", "false"], {
    cwd: root,
    encoding: "utf8"
  })
} catch (error) {
  const { stdout, stderr } = error as { stdout?: string; stderr?: string }
  output = `${stdout ?? ""}${stderr ?? ""}`
  if (output.trim() === "") throw error
}

// Errors located in src/ itself are the main type check's to report; here only the examples' own count.
const diagnostics = output.split(/\n(?=\S)/).filter((diagnostic) => diagnostic.trim() !== "")
const location = /^(?:.*[/\\])?([^/\\(\s]+\.ts)\((\d+),(\d+)\)/
const exampleErrors = diagnostics.flatMap((diagnostic) => {
  const found = location.exec(diagnostic)
  if (found === null) return [diagnostic]
  const example = exampleOfFile.get(found[1] ?? "")
  if (example === undefined || !diagnostic.includes(outputDirectory.slice(root.length + 1))) return []
  return [diagnostic.replace(location, `${example.source}:${example.firstLine + Number(found[2]) - 1}:${found[3]}`)]
})

if (exampleErrors.length === 0) {
  console.log(`doc examples: the ${examples.length} examples in src/ type-check`)
} else {
  console.error(`doc examples: ${exampleErrors.length} errors in @example blocks of src/\n${exampleErrors.join("\n")}`)
  process.exitCode = 1
}
