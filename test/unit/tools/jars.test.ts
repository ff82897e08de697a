import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  downloadedBytes,
  ensureJars,
  libDirectoryOf,
  mavenFailure,
  mavenFailureReason
} from "../../../tools/cassandra/internal/jars.ts"

// A stand-in for mvn, first on PATH: it writes `files` into the output directory, prints `output`, exits with `code`.
const withFakeMaven = <A, E>(
  script: { readonly files: ReadonlyArray<string>; readonly output: string; readonly code: number },
  effect: Effect.Effect<A, E>
) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const bin = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fake-mvn-"))
      const touches = script.files.map((file) => `touch "$out/${file}"`).join("\n")
      Fs.writeFileSync(
        Path.join(bin, "mvn"),
        `#!/bin/sh\nfor a in "$@"; do case "$a" in -DoutputDirectory=*) out="\${a#-DoutputDirectory=}";; esac; done\n` +
          `mkdir -p "$out"\n${touches}\ncat <<'OUT'\n${script.output}\nOUT\nexit ${script.code}\n`,
        { mode: 0o755 }
      )
      const path = process.env.PATH
      process.env.PATH = `${bin}:${path}`
      return { bin, path }
    }),
    () => effect,
    ({ bin, path }) =>
      Effect.sync(() => {
        process.env.PATH = path
        Fs.rmSync(bin, { recursive: true, force: true })
      })
  )

describe("jars", () => {
  it("counts the bytes of each file Maven reports downloaded, and nothing else", () => {
    const downloaded = (line: string) => downloadedBytes(line)
    assert.strictEqual(
      downloaded(
        "Downloaded from central: https://repo.maven.apache.org/maven2/org/apache/cassandra/cassandra-all/5.0.8/cassandra-all-5.0.8.jar (9.8 MB at 3.1 MB/s)"
      ),
      9_800_000
    )
    assert.strictEqual(
      downloaded("[INFO] Downloaded from central: https://example.invalid/a.pom (2.1 kB at 40 kB/s)"),
      2_100
    )
    assert.strictEqual(downloaded("Downloaded from central: https://example.invalid/a.sha1 (40 B at 1 kB/s)"), 40)
    assert.isUndefined(downloaded("Downloading from central: https://example.invalid/a.jar"))
    assert.isUndefined(downloaded("[INFO] Copying cassandra-all-5.0.8.jar to /tmp/lib/cassandra-all-5.0.8.jar"))
  })

  it("says why Maven failed with its first specific error line, not a heading or the generic advice after it", () => {
    assert.strictEqual(
      mavenFailureReason(
        [
          "[INFO] Scanning for projects...",
          "[ERROR] Failed to execute goal on project cassandra-runtime: Could not find artifact org.apache.cassandra:cassandra-all:jar:9.9.9 in central -> [Help 1]",
          "[ERROR] ",
          "[ERROR] Re-run Maven using the -X switch to enable full debug logging."
        ].join("\n")
      ),
      "Failed to execute goal on project cassandra-runtime: Could not find artifact org.apache.cassandra:cassandra-all:jar:9.9.9 in central -> [Help 1]"
    )
    assert.strictEqual(
      mavenFailureReason(
        [
          "[ERROR] [ERROR] Some problems were encountered while processing the POMs:",
          "[FATAL] Non-readable POM /tmp/pom.xml: /tmp/pom.xml (No such file or directory) @ ",
          "[ERROR] The build could not read 1 project -> [Help 1]"
        ].join("\n")
      ),
      "Non-readable POM /tmp/pom.xml: /tmp/pom.xml (No such file or directory) @"
    )
    assert.strictEqual(
      mavenFailureReason("Error: JAVA_HOME is not defined correctly."),
      "Error: JAVA_HOME is not defined correctly."
    )
    assert.isUndefined(mavenFailureReason("\n"))
  })

  it("tells a release Maven Central lacks from a Maven that cannot reach Maven Central", () => {
    const missing = mavenFailure(
      "9.9.9",
      "[ERROR] Failed to execute goal on project cassandra-runtime: Could not resolve dependencies for project x:y:pom:1: Could not find artifact org.apache.cassandra:cassandra-all:jar:9.9.9 in central (https://repo.maven.apache.org/maven2) -> [Help 1]",
      1
    )
    assert.strictEqual(missing.reason, "VersionNotFound")
    assert.include(missing.message, "cassandra-all 9.9.9 is not on Maven Central")
    const noRange = mavenFailure(
      undefined,
      "[ERROR] Failed to execute goal on project cassandra-runtime: Could not resolve dependencies: No versions available for org.apache.cassandra:cassandra-all:jar:[5.0.0,5.0.999] within specified range -> [Help 1]",
      1
    )
    assert.strictEqual(noRange.reason, "VersionNotFound")
    assert.include(noRange.message, "[5.0.0,5.0.999]")
    const offline = mavenFailure(
      "5.0.4",
      "[ERROR] Failed to execute goal on project cassandra-runtime: Could not resolve dependencies for project x:y:pom:1: Failed to collect dependencies at org.apache.cassandra:cassandra-all:jar:5.0.4: Could not transfer artifact org.apache.cassandra:cassandra-all:pom:5.0.4 from/to central (https://repo.maven.apache.org/maven2): repo.maven.apache.org: Temporary failure in name resolution -> [Help 1]",
      1
    )
    assert.strictEqual(offline.reason, "MavenFailed")
    assert.include(offline.message, "Temporary failure in name resolution")
  })

  it.effect(
    "names a version Maven Central does not have, and leaves no jar directory behind to trip the next run",
    () => {
      const version = "0.0.1-unit"
      return Effect.gen(function* () {
        const error = yield* Effect.flip(
          withFakeMaven(
            {
              files: ["guava-33.jar"],
              output:
                "[ERROR] Failed to execute goal on project cassandra-runtime: Could not resolve dependencies for project effect-cassandra.local:cassandra-runtime:pom:1: org.apache.cassandra:cassandra-all:jar:0.0.1-unit was not found in https://repo.maven.apache.org/maven2 during a previous attempt. -> [Help 1]",
              code: 1
            },
            ensureJars(version)
          )
        )
        assert.strictEqual(error.reason, "VersionNotFound")
        assert.include(error.message, "cassandra-all 0.0.1-unit")
        assert.isFalse(Fs.existsSync(libDirectoryOf(version)), "the failed fetch's directory is removed")
      }).pipe(Effect.ensuring(Effect.sync(() => Fs.rmSync(libDirectoryOf(version), { recursive: true, force: true }))))
    }
  )

  it.effect(
    "completes a fetch that an earlier run left half-written, even when Maven now resolves another patch",
    () => {
      const version = "0.0.2-unit"
      const directory = libDirectoryOf(version)
      return Effect.gen(function* () {
        Fs.mkdirSync(directory, { recursive: true })
        Fs.writeFileSync(Path.join(directory, "cassandra-all-0.0.1.jar"), "")
        const jars = yield* withFakeMaven(
          { files: ["cassandra-all-0.0.2.jar", "jamm-0.4.0.jar"], output: "[INFO] BUILD SUCCESS", code: 0 },
          ensureJars(version)
        )
        assert.strictEqual(jars.version, "0.0.2")
        assert.strictEqual(jars.jamm, Path.join(directory, "jamm-0.4.0.jar"))
      }).pipe(Effect.ensuring(Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true }))))
    }
  )
})
