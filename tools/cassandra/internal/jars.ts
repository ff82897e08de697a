/**
 * Fetches the jars of a Cassandra release (`cassandra-all` and its runtime dependencies) from Maven Central into the
 * cache, once per release, reporting the download as it goes.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect } from "effect"
import { failure, firstLineOf, type LocalCassandraError } from "./errors.ts"
import { cacheDirectory, toolDirectory } from "./layout.ts"
import { runCommand } from "./processes.ts"
import { withProgress } from "./progress.ts"

/** The Maven version range of the default release: the newest 5.0.x patch. */
const defaultVersionRange = "[5.0.0,5.0.999]"

/**
 * What a Cassandra release on Maven Central looks like: "5.0.4", "6.0-alpha2".
 *
 * @since 0.1.0
 * @category constants
 */
export const versionPattern = /^\d+\.\d+(\.\d+)?(-[A-Za-z0-9]+(\.[A-Za-z0-9]+)*)?$/

/**
 * Where the jars of a release live: the default release's in `lib` (as before versions could be chosen).
 *
 * @since 0.1.0
 * @category utils
 */
export const libDirectoryOf = (version: string | undefined) =>
  Path.join(cacheDirectory, version === undefined ? "lib" : `lib-${version}`)

// Written only after Maven finished, so that an interrupted copy is completed on the next start.
const completeMarkerOf = (libDirectory: string) => Path.join(libDirectory, ".complete")

const removeDirectory = (directory: string) => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true }))

/**
 * The jars of one Cassandra release: its version, directory (the classpath) and the jamm agent.
 *
 * @since 0.1.0
 * @category models
 */
export interface Jars {
  readonly version: string
  readonly directory: string
  readonly jamm: string
}

/**
 * Reads the release and the jamm agent out of a filled jar directory.
 *
 * @since 0.1.0
 * @category constructors
 */
export const readJars = Effect.fnUntraced(function* (libDirectory: string) {
  const files = yield* Effect.try({
    try: () => Fs.readdirSync(libDirectory),
    catch: () => failure("MavenFailed", `${libDirectory} is missing: start the cluster again to fetch its jars`)
  })
  const versions = files.flatMap((file) => /^cassandra-all-(.+)\.jar$/.exec(file)?.[1] ?? [])
  const jamm = files.find((file) => /^jamm-.*\.jar$/.test(file))
  if (versions.length !== 1 || jamm === undefined) {
    return yield* failure(
      "MavenFailed",
      `${libDirectory} holds ${versions.length} cassandra-all jars and ${jamm === undefined ? "no" : "a"} jamm jar: delete the directory and start again`
    )
  }
  return { version: versions[0]!, directory: libDirectory, jamm: Path.join(libDirectory, jamm) } satisfies Jars
})

/**
 * Why Maven failed, from its output: the first line tagged [FATAL], else the first [ERROR] line that is not a
 * heading (ending with ":"), without its tags; else the last line. The lines after it are generic advice.
 *
 * @since 0.1.0
 * @category parsing
 */
export const mavenFailureReason = (output: string): string | undefined => {
  const lines = output
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
  const untagged = (line: string) => line.replace(/^(\[(ERROR|FATAL)\]\s*)+/, "").trim()
  const reason =
    lines.find((line) => line.startsWith("[FATAL]")) ??
    lines.find((line) => line.startsWith("[ERROR]") && untagged(line) !== "" && !untagged(line).endsWith(":")) ??
    lines.at(-1)
  return reason === undefined ? undefined : untagged(reason)
}

// Maven's words for a cassandra-all release it cannot find: an exact version, or no version in the default range.
const versionNotFoundPattern =
  /cassandra-all:jar:\S+ was not found|Could not find artifact org\.apache\.cassandra:cassandra-all:|No versions available for org\.apache\.cassandra:cassandra-all:/

/**
 * The failure of a Maven run that exited with `exitCode`: `VersionNotFound` when Maven Central has no such
 * cassandra-all release, else `MavenFailed` with Maven's reason.
 *
 * @since 0.1.0
 * @category parsing
 */
export const mavenFailure = (version: string | undefined, output: string, exitCode: number): LocalCassandraError => {
  const requested = version ?? defaultVersionRange
  if (versionNotFoundPattern.test(output)) {
    return failure(
      "VersionNotFound",
      `cassandra-all ${requested} is not on Maven Central: pick a release listed at https://repo.maven.apache.org/maven2/org/apache/cassandra/cassandra-all/`
    )
  }
  const reason = mavenFailureReason(output) ?? `exit code ${exitCode}`
  return failure(
    "MavenFailed",
    `Maven could not fetch cassandra-all ${requested} (${reason}): check the version on Maven Central, access to it, or ~/.m2/settings.xml`
  )
}

const byteUnits: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }

/**
 * The size in bytes of the file Maven reports fetched on `line` ("Downloaded from central: <url> (2.1 kB at 40
 * kB/s)"); undefined for any other line.
 *
 * @since 0.1.0
 * @category parsing
 */
export const downloadedBytes = (line: string): number | undefined => {
  const match = /^(?:\[INFO\] )?Downloaded from [^:]+: \S+ \((\d+(?:\.\d+)?) (B|kB|MB|GB)\b/.exec(line)
  return match === null ? undefined : Number(match[1]) * byteUnits[match[2]!]!
}

/**
 * Copies cassandra-all `version` (default the newest 5.0.x) and its runtime dependencies from Maven, once.
 *
 * @since 0.1.0
 * @category constructors
 */
export const ensureJars = Effect.fnUntraced(function* (version: string | undefined) {
  const libDirectory = libDirectoryOf(version)
  if (Fs.existsSync(completeMarkerOf(libDirectory))) return yield* readJars(libDirectory)
  const fetching = `fetching Apache Cassandra ${version ?? "5.0"}`
  yield* Effect.logInfo(`${fetching} with Maven into ${libDirectory}`)
  // Maven copies into a directory of this process's own, published whole once complete: a failed or interrupted
  // fetch leaves nothing that a later run (or another process fetching the same release) would mistake for jars.
  const staging = `${libDirectory}.partial-${process.pid}`
  yield* Effect.try({
    try: () => {
      Fs.rmSync(staging, { recursive: true, force: true })
      Fs.mkdirSync(staging, { recursive: true })
    },
    catch: (cause) => failure("FileSystemFailed", `could not create ${staging}: ${firstLineOf(cause)}`)
  })
  const downloaded = { files: 0, bytes: 0 }
  const countDownload = (line: string) => {
    const bytes = downloadedBytes(line)
    if (bytes === undefined) return
    downloaded.files++
    downloaded.bytes += bytes
  }
  const maven = runCommand(
    "mvn",
    [
      // Not quiet: its "Downloaded from" lines are the progress.
      "-B",
      "-f",
      Path.join(toolDirectory, "pom.xml"),
      "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
      "-DincludeScope=runtime",
      `-Dcassandra.version=${version ?? defaultVersionRange}`,
      `-DoutputDirectory=${staging}`
    ],
    { onStdoutLine: countDownload }
  )
  const fetched = withProgress(
    maven,
    (elapsed) =>
      `${fetching}: ${downloaded.files} files (${(downloaded.bytes / 1e6).toFixed(1)} MB) downloaded in ${elapsed}`
  ).pipe(
    Effect.mapError((error) =>
      error.code === "ENOENT"
        ? failure("MavenMissing", "Maven (mvn) was not found: install maven (apt-get install maven)")
        : failure("MavenFailed", `Maven could not run: ${firstLineOf(error)}`)
    ),
    Effect.flatMap((result) =>
      result.exitCode === 0
        ? Effect.void
        : Effect.fail(mavenFailure(version, `${result.stdout}\n${result.stderr}`, result.exitCode))
    ),
    Effect.andThen(
      Effect.try({
        try: () => {
          Fs.writeFileSync(completeMarkerOf(staging), `${new Date().toISOString()}\n`)
          // Another process may have published the same release meanwhile; else an older, unmarked copy is replaced.
          if (Fs.existsSync(completeMarkerOf(libDirectory))) return
          Fs.rmSync(libDirectory, { recursive: true, force: true })
          Fs.renameSync(staging, libDirectory)
        },
        catch: (cause) => failure("FileSystemFailed", `could not fill ${libDirectory}: ${firstLineOf(cause)}`)
      })
    ),
    Effect.ensuring(removeDirectory(staging))
  )
  yield* fetched
  return yield* readJars(libDirectory)
})
