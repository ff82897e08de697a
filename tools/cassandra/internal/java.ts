/**
 * Finds the Java the nodes run on, and the JVM flags that Java release needs.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect } from "effect"
import { failure } from "./errors.ts"
import { toolDirectory } from "./layout.ts"
import { runCommand } from "./processes.ts"

/**
 * The Java releases the nodes may run on, preferred first; each needs a `jvm<major>.flags` file. Cassandra 5.0 runs
 * on 17 (not on 24+), and so does 6.0 (checked with 6.0-alpha2).
 */
const javaMajors: ReadonlyArray<number> = [17]

const javaMissingHint = `install openjdk-${javaMajors[0]}-jdk-headless or set CASSANDRA_JAVA_HOME to a Java ${javaMajors.join(" or ")} JDK`

const javaMajorVersion = (javaHome: string): Effect.Effect<number | undefined> =>
  runCommand(Path.join(javaHome, "bin", "java"), ["-version"]).pipe(
    Effect.map((result) => {
      const major = /version "(\d+)/.exec(result.stderr)?.[1]
      return major === undefined ? undefined : Number(major)
    }),
    Effect.orElseSucceed(() => undefined)
  )

interface Java {
  readonly path: string
  readonly major: number
}

/**
 * Finds a Java the nodes run on: CASSANDRA_JAVA_HOME, else JAVA_HOME, else /usr/lib/jvm/*, preferred release first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveJava = Effect.fnUntraced(function* () {
  const explicit = process.env.CASSANDRA_JAVA_HOME
  if (explicit !== undefined && explicit !== "") {
    const major = yield* javaMajorVersion(explicit)
    if (major !== undefined && javaMajors.includes(major)) return { path: Path.join(explicit, "bin", "java"), major }
    const found = major === undefined ? "has no working bin/java" : `is Java ${major}`
    return yield* failure("JavaMissing", `CASSANDRA_JAVA_HOME=${explicit} ${found}: ${javaMissingHint}`)
  }
  const installed = Fs.existsSync("/usr/lib/jvm")
    ? Fs.readdirSync("/usr/lib/jvm")
        .sort()
        .map((entry) => Path.join("/usr/lib/jvm", entry))
        .filter((home) => Fs.existsSync(Path.join(home, "bin", "java")))
    : []
  const found: Array<Java> = []
  for (const home of [process.env.JAVA_HOME, ...installed]) {
    if (!home) continue
    const major = yield* javaMajorVersion(home)
    if (major !== undefined) found.push({ path: Path.join(home, "bin", "java"), major })
  }
  for (const major of javaMajors) {
    const java = found.find((candidate) => candidate.major === major)
    if (java !== undefined) return java
  }
  return yield* failure("JavaMissing", `Java ${javaMajors.join(" or ")} was not found: ${javaMissingHint}`)
})

/**
 * The JVM flags Cassandra needs on a Java release (module exports and opens), from `jvm<major>.flags`.
 *
 * @since 0.1.0
 * @category utils
 */
export const readJvmFlags = (javaMajor: number): ReadonlyArray<string> =>
  Fs.readFileSync(Path.join(toolDirectory, `jvm${javaMajor}.flags`), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith("#"))
