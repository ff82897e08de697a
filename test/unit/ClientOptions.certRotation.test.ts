/**
 * Certificate rotation without restart, against a local mutual-TLS server that records the client certificate of
 * each connection: the driver opens every connection with `tls.connect(port, host, sslOptions)` (lib/connection.js),
 * copying `sslOptions` key by key, and so do these tests.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import type * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Tls from "node:tls"
import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Metrics from "effect-cassandra/Metrics"
import * as Session from "effect-cassandra/Session"
import { afterAll } from "vitest"
import { makeClientOptions } from "../../src/internal/clientOptions.ts"
import { issue, selfSignedCa } from "../support/certificates.ts"

const base: Session.Options = { contactPoints: ["127.0.0.1"], localDataCenter: "datacenter1" }

/** A CA and client certificates `alpha`, `beta` (valid) and `old` (expired), signed by it, and a server's. */
const material = (() => {
  const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cert-rotation-"))
  const signer = selfSignedCa(directory, { name: "ca", subject: "/CN=rotation test CA", key: "rsa", days: 2 })
  for (const [name, days] of [
    ["server", 2],
    ["alpha", 2],
    ["beta", 2],
    ["old", -1]
  ] as const) {
    issue(directory, {
      name,
      subject: `/CN=${name}`,
      key: "rsa",
      signer,
      days,
      ...(name === "server" ? { extensions: ["subjectAltName=DNS:localhost,IP:127.0.0.1"] } : {})
    })
  }
  const read = (name: string) => Fs.readFileSync(Path.join(directory, name), "utf8")
  return { directory, read }
})()

afterAll(() => Fs.rmSync(material.directory, { recursive: true, force: true }))

/** A folder holding `client.pem` and `client.key` (a copy of `name`'s), and the CA. */
const clientFolder = (name: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cert-rotation-client-"))
      Fs.writeFileSync(Path.join(directory, "ca.pem"), material.read("ca.pem"))
      Fs.writeFileSync(Path.join(directory, "client.pem"), material.read(`${name}.pem`))
      Fs.writeFileSync(Path.join(directory, "client.key"), material.read(`${name}.key`))
      return {
        directory,
        tls: {
          ca: Path.join(directory, "ca.pem"),
          cert: Path.join(directory, "client.pem"),
          key: Redacted.make(Path.join(directory, "client.key"))
        }
      }
    }),
    ({ directory }) => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true }))
  )

/** Replaces a file as certificate managers do: the new contents written aside, then renamed over it. */
const replaceByRename = (file: string, contents: string) => {
  Fs.writeFileSync(`${file}.tmp`, contents)
  Fs.renameSync(`${file}.tmp`, file)
}

/** Rotates the client folder to `name`'s set, key first, each file replaced by rename. */
const rotate = (directory: string, name: string) => {
  replaceByRename(Path.join(directory, "client.key"), material.read(`${name}.key`))
  replaceByRename(Path.join(directory, "client.pem"), material.read(`${name}.pem`))
}

/** `name`'s set as tls.certificates yields it. */
const setOf = (name: string): Session.TlsCertificates => ({
  ca: material.read("ca.pem"),
  cert: material.read(`${name}.pem`),
  key: Redacted.make(material.read(`${name}.key`))
})

/** A mutual-TLS server trusting the CA: it echoes what it receives, and returns the name of each client first. */
const echoServer = Effect.acquireRelease(
  Effect.callback<Tls.Server>((resume) => {
    const server = Tls.createServer(
      {
        key: material.read("server.key"),
        cert: material.read("server.pem"),
        ca: material.read("ca.pem"),
        requestCert: true,
        rejectUnauthorized: true
      },
      (socket) => {
        socket.write(`${socket.getPeerCertificate().subject?.CN}\n`)
        socket.pipe(socket)
      }
    )
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.sync(() => server.close())
)

/** Opens a connection as the driver does, and returns it with the client name the server saw. */
const connect = (server: Tls.Server, sslOptions: Tls.ConnectionOptions) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly socket: Tls.TLSSocket; readonly name: string }, Error>((resume) => {
      const { port } = server.address() as Net.AddressInfo
      // What cassandra-driver's connection does with sslOptions (lib/connection.js).
      const socket = Tls.connect(port, "127.0.0.1", Object.assign({ rejectUnauthorized: false }, sslOptions))
      socket.setEncoding("utf8")
      socket.once("error", (error) => resume(Effect.fail(error)))
      socket.once("data", (line: string) => resume(Effect.succeed({ socket, name: line.trim() })))
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

/** What the server echoes back on an open connection. */
const echo = (socket: Tls.TLSSocket, text: string) =>
  Effect.callback<string>((resume) => {
    socket.once("data", (data: string) => resume(Effect.succeed(data)))
    socket.write(text)
  })

const nameOfNewConnection = (server: Tls.Server, sslOptions: Tls.ConnectionOptions) =>
  Effect.scoped(Effect.map(connect(server, sslOptions), ({ name }) => name))

/** Polls until `condition` holds, for at most 10 seconds. */
const eventually = <E, R>(condition: Effect.Effect<boolean, E, R>) =>
  condition.pipe(
    Effect.flatMap((holds) => (holds ? Effect.void : Effect.fail("not yet" as const))),
    Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 500 })
  )

/** Waits until a new connection presents `name`'s certificate. */
const untilNewConnectionsAre = (server: Tls.Server, sslOptions: Tls.ConnectionOptions, name: string) =>
  eventually(Effect.map(nameOfNewConnection(server, sslOptions), (presented) => presented === name))

const warnings: Array<{ readonly message: string; readonly cause: Cause.Cause<unknown> }> = []
const capturingLogs = Logger.layer([
  Logger.make(({ logLevel, message, cause }) => {
    if (logLevel === "Warn") warnings.push({ message: String(message), cause })
  })
])

const reloads = (outcome: "loaded" | "rejected") =>
  Effect.map(Metric.value(Metric.withAttributes(Metrics.tlsReloads, { outcome })), (state) => state.count)

/** The session's TLS options as built, with the metrics layer and a fresh registry, the logs captured. */
const sslOptionsOf = (tls: Session.TlsOptions) =>
  Effect.flatMap(makeClientOptions({ ...base, tls }), ({ clientOptions, keepCertificatesCurrent }) =>
    Effect.as(keepCertificatesCurrent, clientOptions.sslOptions!)
  )

/** The echo server, a client folder holding alpha's set, and options reloading that folder every 20 milliseconds. */
const reloadingAlpha = Effect.gen(function* () {
  const server = yield* echoServer
  const folder = yield* clientFolder("alpha")
  const sslOptions = yield* sslOptionsOf({ ...folder.tls, reloadInterval: "20 millis" })
  return { server, folder, sslOptions }
})

/** How many handles (sockets, timers, watchers) keep the process alive. */
const activeHandles = () => (process as unknown as { _getActiveHandles(): Array<unknown> })._getActiveHandles().length

const withMetricsAndLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.provide(Layer.merge(Metrics.layer({ pollInterval: "1 hour" }), capturingLogs)),
    Effect.provideService(Metric.MetricRegistry, new Map()),
    Effect.ensuring(Effect.sync(() => warnings.splice(0)))
  )

/** No logged rejection names the folder or holds a line of any PEM. */
const assertNoSecretIn = (logged: ReadonlyArray<{ readonly cause: Cause.Cause<unknown> }>, folder: string) => {
  const pemLines = ["alpha.pem", "alpha.key", "beta.pem", "beta.key"].map((name) => material.read(name).split("\n")[1]!)
  for (const { cause } of logged) {
    const printed = inspect(Cause.squash(cause), { depth: null })
    assert.notInclude(printed, folder)
    for (const line of pemLines) assert.notInclude(printed, line)
  }
}

/** The rejection just logged: a Configuration reason naming `setting`, with no path and no PEM in any form. */
const assertRejectionReported = (setting: string, folder: string) => {
  assert.lengthOf(warnings, 1)
  const { message, cause } = warnings[0]!
  assert.include(message, "TLS certificates not reloaded")
  const error = Cause.squash(cause) as CassandraError.CassandraError
  assert.instanceOf(error.reason, CassandraError.Configuration)
  const pemLines = ["alpha.pem", "alpha.key", "beta.pem", "beta.key"].map((name) => material.read(name).split("\n")[1]!)
  for (const form of [error.message, JSON.stringify(error), inspect(error, { depth: null }), message]) {
    if (form !== message) assert.include(form, setting)
    assert.notInclude(form, folder)
    for (const line of pemLines) assert.notInclude(form, line)
  }
}

describe("certificate rotation", () => {
  it.live("new connections use a certificate and key replaced by rename; open ones keep working", () =>
    withMetricsAndLogs(
      Effect.gen(function* () {
        const { server, folder, sslOptions } = yield* reloadingAlpha
        const open = yield* connect(server, sslOptions)
        assert.strictEqual(open.name, "alpha")
        rotate(folder.directory, "beta")
        yield* untilNewConnectionsAre(server, sslOptions, "beta")
        assert.strictEqual(yield* echo(open.socket, "still here"), "still here")
        assert.isAtLeast(yield* reloads("loaded"), 1)
        // The key stays out of the driver's options, whose printed form a debugger shows.
        assert.notInclude(inspect(sslOptions, { depth: null, showHidden: true }), "PRIVATE KEY")
      })
    )
  )

  it.live("load a set swapped in at once behind a symbolic link, as Kubernetes updates a mounted secret", () =>
    withMetricsAndLogs(
      Effect.gen(function* () {
        const server = yield* echoServer
        const folder = yield* clientFolder("alpha")
        const version = (name: string) => {
          const directory = Path.join(folder.directory, `..${name}`)
          Fs.mkdirSync(directory)
          Fs.writeFileSync(Path.join(directory, "client.pem"), material.read(`${name}.pem`))
          Fs.writeFileSync(Path.join(directory, "client.key"), material.read(`${name}.key`))
          // The link is made aside and renamed over the old one: both files change in one step.
          Fs.symlinkSync(directory, Path.join(folder.directory, "..data.tmp"))
          Fs.renameSync(Path.join(folder.directory, "..data.tmp"), Path.join(folder.directory, "..data"))
        }
        version("alpha")
        const linked = (file: string) => Path.join(folder.directory, "..data", file)
        const sslOptions = yield* sslOptionsOf({
          ca: folder.tls.ca,
          cert: linked("client.pem"),
          key: Redacted.make(linked("client.key")),
          reloadInterval: "20 millis"
        })
        assert.strictEqual(yield* nameOfNewConnection(server, sslOptions), "alpha")
        version("beta")
        yield* untilNewConnectionsAre(server, sslOptions, "beta")
        assert.strictEqual(yield* reloads("loaded"), 1)
        assert.strictEqual(yield* reloads("rejected"), 0)
        assert.lengthOf(warnings, 0)
      })
    )
  )

  it.live("keep the last good set when the new certificate is not PEM, and load the next good one", () =>
    withMetricsAndLogs(
      Effect.gen(function* () {
        const { server, folder, sslOptions } = yield* reloadingAlpha
        const before = sslOptions.secureContext
        replaceByRename(Path.join(folder.directory, "client.pem"), "certificate pending\n")
        yield* eventually(Effect.map(reloads("rejected"), (count) => count === 1))
        assertRejectionReported("tls.cert", folder.directory)
        assert.strictEqual(sslOptions.secureContext, before)
        assert.strictEqual(yield* nameOfNewConnection(server, sslOptions), "alpha")
        // Reported once, not at every look.
        yield* Effect.sleep("200 millis")
        assert.strictEqual(yield* reloads("rejected"), 1)
        rotate(folder.directory, "beta")
        yield* untilNewConnectionsAre(server, sslOptions, "beta")
      })
    )
  )

  it.live("keep the last good set when the new key does not match the certificate", () =>
    withMetricsAndLogs(
      Effect.gen(function* () {
        const { server, folder, sslOptions } = yield* reloadingAlpha
        // The certificate is rotated, its key not (yet): a half-done rotation.
        replaceByRename(Path.join(folder.directory, "client.pem"), material.read("beta.pem"))
        yield* eventually(Effect.map(reloads("rejected"), (count) => count === 1))
        assertRejectionReported("tls.key", folder.directory)
        assert.strictEqual(yield* nameOfNewConnection(server, sslOptions), "alpha")
        replaceByRename(Path.join(folder.directory, "client.key"), material.read("beta.key"))
        yield* untilNewConnectionsAre(server, sslOptions, "beta")
        assert.strictEqual(yield* reloads("loaded"), 1)
      })
    )
  )

  it.live("keep the last good set when the new certificate has expired", () =>
    withMetricsAndLogs(
      Effect.gen(function* () {
        const { server, folder, sslOptions } = yield* reloadingAlpha
        rotate(folder.directory, "old")
        // The key may be looked at before its certificate is renamed too: that half-done set is rejected as well.
        yield* eventually(
          Effect.sync(() =>
            warnings.some(({ cause }) => (Cause.squash(cause) as Error).message.includes("tls.cert expired on"))
          )
        )
        assert.strictEqual(yield* nameOfNewConnection(server, sslOptions), "alpha")
      })
    )
  )

  it.live("keep the last good set while a file is deleted, and load it when it is back", () =>
    withMetricsAndLogs(
      Effect.gen(function* () {
        const { server, folder, sslOptions } = yield* reloadingAlpha
        Fs.rmSync(Path.join(folder.directory, "client.pem"))
        yield* eventually(Effect.map(reloads("rejected"), (count) => count === 1))
        assertRejectionReported("tls.cert", folder.directory)
        assert.include((Cause.squash(warnings[0]!.cause) as Error).message, "ENOENT")
        assert.strictEqual(yield* nameOfNewConnection(server, sslOptions), "alpha")
        rotate(folder.directory, "beta")
        yield* untilNewConnectionsAre(server, sslOptions, "beta")
      })
    )
  )

  it.live("take each set from tls.certificates, and keep the last good one when it fails", () =>
    withMetricsAndLogs(
      Effect.gen(function* () {
        class SecretStoreUnavailable extends Data.TaggedError("SecretStoreUnavailable")<{ readonly token: string }> {}
        const server = yield* echoServer
        const store = yield* Ref.make<Session.TlsCertificates | "down">(setOf("alpha"))
        const certificates = Effect.flatMap(Ref.get(store), (set) =>
          set === "down" ? Effect.fail(new SecretStoreUnavailable({ token: "s3cret-token" })) : Effect.succeed(set)
        )
        const sslOptions = yield* sslOptionsOf({ certificates, reloadInterval: "20 millis" })
        assert.strictEqual(yield* nameOfNewConnection(server, sslOptions), "alpha")
        yield* Ref.set(store, "down")
        yield* eventually(Effect.map(reloads("rejected"), (count) => count >= 1))
        const error = Cause.squash(warnings[0]!.cause) as CassandraError.CassandraError
        assert.include(error.message, "tls.certificates failed with SecretStoreUnavailable")
        assert.notInclude(inspect(error, { depth: null }), "s3cret-token")
        assert.strictEqual(yield* nameOfNewConnection(server, sslOptions), "alpha")
        yield* Ref.set(store, setOf("beta"))
        yield* untilNewConnectionsAre(server, sslOptions, "beta")
      })
    )
  )

  it.effect("refuse a build whose certificate set cannot be used, or whose reload cannot work", () =>
    Effect.gen(function* () {
      const folder = yield* clientFolder("old")
      const cases: ReadonlyArray<readonly [Session.TlsOptions, string]> = [
        [folder.tls, "tls.cert expired on"],
        [
          { ca: material.read("ca.pem"), reloadInterval: "1 minute" },
          "tls.reloadInterval has nothing to reload: give tls.ca, tls.cert or tls.key as file paths, or tls.certificates"
        ],
        [{ ...folder.tls, reloadInterval: "0 millis" }, "tls.reloadInterval must be at least 1 millisecond"],
        [
          { cert: folder.tls.cert, certificates: Effect.succeed({}) },
          "tls.cert cannot be given with tls.certificates, which yields the whole set"
        ],
        [{ certificates: "not an effect" as never }, "tls.certificates must be an Effect"],
        [{ certificates: Effect.succeed(null as never) }, "tls.certificates must be an object"]
      ]
      for (const [tls, detail] of cases) {
        const error = yield* Effect.flip(sslOptionsOf(tls))
        assert.instanceOf(error.reason, CassandraError.Configuration)
        assert.include(error.message, detail)
      }
      const stale = yield* Effect.flip(
        makeClientOptions({
          ...base,
          tls: { ca: folder.tls.ca, reloadInterval: "1 minute" },
          driverOptions: { sslOptions: { ca: material.read("ca.pem") } }
        })
      )
      assert.include(
        stale.message,
        "driverOptions.sslOptions.ca cannot be given with tls.reloadInterval or tls.certificates"
      )
    })
  )
})

describe("certificate rotation against hostile files and sources", () => {
  /** Fails the test instead of hanging it: the effects under test must end by themselves. */
  const within = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.timeoutOrElse(effect, {
      duration: "20 seconds",
      orElse: () => Effect.die(new Error("did not end within 20 seconds"))
    })

  /** `within`, with the metrics layer and the logs captured. */
  const withinLogged = <A, E, R>(effect: Effect.Effect<A, E, R>) => within(withMetricsAndLogs(effect))

  it.live(
    "refuse a FIFO, a directory or an oversized file at a PEM path at build, without blocking",
    () =>
      within(
        Effect.gen(function* () {
          const folder = yield* clientFolder("alpha")
          const fifo = Path.join(folder.directory, "fifo.pem")
          execFileSync("mkfifo", [fifo])
          const huge = Path.join(folder.directory, "huge.pem")
          // 100 MB, sparse: a path that names something other than a certificate must not be read whole.
          Fs.writeFileSync(huge, material.read("alpha.pem"))
          Fs.truncateSync(huge, 100 * 1024 * 1024)
          for (const [path, detail] of [
            [fifo, "not a regular file"],
            [folder.directory, "not a regular file"],
            [huge, "104857600 bytes, more than the 1048576 a PEM file may hold"]
          ] as const) {
            const error = yield* Effect.flip(sslOptionsOf({ ...folder.tls, cert: path }))
            assert.instanceOf(error.reason, CassandraError.Configuration)
            assert.include(error.message, "tls.cert")
            assert.include(error.message, detail)
            assert.notInclude(error.message, folder.directory)
          }
        })
      ),
    30_000
  )

  it.live(
    "keep the last good set when a FIFO or an oversized file replaces the certificate, then load the next",
    () =>
      withinLogged(
        Effect.gen(function* () {
          const { server, folder, sslOptions } = yield* reloadingAlpha
          const cert = folder.tls.cert
          execFileSync("mkfifo", [`${cert}.fifo`])
          Fs.renameSync(`${cert}.fifo`, cert)
          yield* eventually(Effect.map(reloads("rejected"), (count) => count === 1))
          assertRejectionReported("tls.cert", folder.directory)
          Fs.writeFileSync(`${cert}.huge`, material.read("beta.pem"))
          Fs.truncateSync(`${cert}.huge`, 100 * 1024 * 1024)
          Fs.renameSync(`${cert}.huge`, cert)
          yield* eventually(Effect.map(reloads("rejected"), (count) => count === 2))
          assert.strictEqual(yield* nameOfNewConnection(server, sslOptions), "alpha")
          rotate(folder.directory, "beta")
          yield* untilNewConnectionsAre(server, sslOptions, "beta")
        })
      ),
    30_000
  )

  it.live(
    "bound a tls.certificates Effect that never ends, at build and at reload",
    () =>
      withinLogged(
        Effect.gen(function* () {
          const server = yield* echoServer
          const built = yield* Effect.flip(
            makeClientOptions({ ...base, connectTimeout: "200 millis", tls: { certificates: Effect.never } })
          )
          assert.include(
            built.message,
            "tls.certificates did not yield a certificate set within 200ms (the connect timeout)"
          )
          const store = yield* Ref.make<Session.TlsCertificates | "hang" | "interrupt">(setOf("alpha"))
          const certificates = Effect.flatMap(Ref.get(store), (set) =>
            set === "hang" ? Effect.never : set === "interrupt" ? Effect.interrupt : Effect.succeed(set)
          )
          const sslOptions = yield* Effect.flatMap(
            makeClientOptions({
              ...base,
              connectTimeout: "200 millis",
              tls: { certificates, reloadInterval: "20 millis" }
            }),
            ({ clientOptions, keepCertificatesCurrent }) =>
              Effect.as(keepCertificatesCurrent, clientOptions.sslOptions!)
          )
          yield* Ref.set(store, "hang")
          yield* eventually(Effect.map(reloads("rejected"), (count) => count >= 1))
          assert.include(
            (Cause.squash(warnings[0]!.cause) as Error).message,
            "tls.certificates did not yield a certificate set within 200ms (the connect timeout)"
          )
          yield* Ref.set(store, "interrupt")
          yield* eventually(
            Effect.sync(() =>
              warnings.some(({ cause }) =>
                String((Cause.squash(cause) as Error).message).includes("tls.certificates was interrupted")
              )
            )
          )
          assert.strictEqual(yield* nameOfNewConnection(server, sslOptions), "alpha")
          yield* Ref.set(store, setOf("beta"))
          yield* untilNewConnectionsAre(server, sslOptions, "beta")
        })
      ),
    30_000
  )

  it.live("leave no key in the driver's options when the certificate file also holds it", () =>
    Effect.gen(function* () {
      const folder = yield* clientFolder("alpha")
      const combined = Path.join(folder.directory, "combined.pem")
      Fs.writeFileSync(combined, material.read("alpha.pem") + material.read("alpha.key"))
      const settings: ReadonlyArray<Session.TlsOptions> = [
        { ...folder.tls, cert: combined },
        { ...folder.tls, cert: combined, reloadInterval: "1 minute" }
      ]
      for (const tls of settings) {
        const sslOptions = yield* sslOptionsOf(tls)
        assert.notInclude(inspect(sslOptions, { depth: null, showHidden: true }), "PRIVATE KEY")
      }
    })
  )

  it.live("stop looking at the files once the session's scope closes", () =>
    withMetricsAndLogs(
      Effect.gen(function* () {
        const folder = yield* clientFolder("alpha")
        const handlesBefore = activeHandles()
        yield* Effect.scoped(sslOptionsOf({ ...folder.tls, reloadInterval: "20 millis" }))
        rotate(folder.directory, "beta")
        yield* Effect.sleep("300 millis")
        assert.strictEqual(yield* reloads("loaded"), 0)
        assert.strictEqual(yield* reloads("rejected"), 0)
        const handlesAfter = activeHandles()
        assert.isAtMost(handlesAfter, handlesBefore)
      })
    )
  )

  it.live(
    "leave no reloading behind a session whose build failed, when the caller retries in one scope",
    () =>
      withinLogged(
        Effect.gen(function* () {
          const folder = yield* clientFolder("alpha")
          // Nothing listens there: each build fails at connect, as a retry loop waiting for the cluster sees it.
          const options: Session.Options = {
            contactPoints: ["127.0.0.149"],
            localDataCenter: "datacenter1",
            connectTimeout: "2 seconds",
            tls: { ...folder.tls, reloadInterval: "20 millis" }
          }
          for (let attempt = 0; attempt < 3; attempt++) {
            const exit = yield* Effect.exit(Session.make(options))
            assert.isTrue(exit._tag === "Failure")
          }
          rotate(folder.directory, "beta")
          yield* Effect.sleep("300 millis")
          assert.strictEqual(yield* reloads("loaded"), 0)
        })
      ),
    30_000
  )

  it.live(
    "keep the last good set when the new chain has the wrong intermediate, or the CA file is emptied",
    () =>
      withinLogged(
        Effect.gen(function* () {
          const { server, folder, sslOptions } = yield* reloadingAlpha
          // beta's certificate followed by a certificate that did not issue it: every server would refuse the chain.
          replaceByRename(Path.join(folder.directory, "client.key"), material.read("beta.key"))
          replaceByRename(
            Path.join(folder.directory, "client.pem"),
            material.read("beta.pem") + material.read("server.pem")
          )
          yield* eventually(Effect.map(reloads("rejected"), (count) => count >= 1))
          assert.include(
            (Cause.squash(warnings.at(-1)!.cause) as Error).message,
            "tls.cert: certificate 2 of the chain did not issue certificate 1"
          )
          assert.strictEqual(yield* nameOfNewConnection(server, sslOptions), "alpha")
          assert.strictEqual(yield* reloads("loaded"), 0)
          Fs.writeFileSync(Path.join(folder.directory, "ca.pem"), "")
          yield* eventually(
            Effect.sync(() =>
              warnings.some(({ cause }) =>
                (Cause.squash(cause) as Error).message.includes("The file named by tls.ca holds no PEM")
              )
            )
          )
          assert.strictEqual(yield* nameOfNewConnection(server, sslOptions), "alpha")
          assert.strictEqual(yield* reloads("loaded"), 0)
        })
      ),
    30_000
  )

  it.effect(
    "refuse at build a symbolic link loop, an unusable interval, and a certificates Effect that dies or yields garbage",
    () =>
      Effect.gen(function* () {
        const folder = yield* clientFolder("alpha")
        const loop = Path.join(folder.directory, "loop.pem")
        Fs.symlinkSync(loop, loop)
        const pem = material.read("alpha.key")
        const cases: ReadonlyArray<readonly [Session.TlsOptions, string]> = [
          [
            { ...folder.tls, cert: loop },
            "tls.cert is neither PEM text (no -----BEGIN line) nor a readable file path (ELOOP)"
          ],
          [{ ...folder.tls, reloadInterval: Number.NaN }, "tls.reloadInterval must be at least 1 millisecond"],
          [{ ...folder.tls, reloadInterval: "-1 second" }, "tls.reloadInterval must be at least 1 millisecond"],
          [{ ...folder.tls, reloadInterval: "30 days" }, "tls.reloadInterval must be at most 2147483647 milliseconds"],
          [{ ...folder.tls, reloadInterval: Duration.infinity }, "tls.reloadInterval must be finite"],
          [{ certificates: Effect.die(new Error(pem)) }, "tls.certificates died"],
          [
            {
              certificates: Effect.sync(() => {
                throw new Error(pem)
              })
            },
            "tls.certificates died"
          ],
          [
            { certificates: Effect.succeed({ cert: 42 } as never) },
            "tls.certificates.cert must be PEM text, its bytes or a file path, got a number"
          ],
          [{ certificates: Effect.succeed({ key: pem } as never) }, "tls.certificates.key must be Redacted"]
        ]
        for (const [tls, detail] of cases) {
          const error = yield* Effect.flip(sslOptionsOf(tls))
          assert.instanceOf(error.reason, CassandraError.Configuration)
          assert.include(error.message, detail)
          for (const form of [error.message, inspect(error, { depth: null })]) {
            assert.notInclude(form, folder.directory)
            assert.notInclude(form, pem.split("\n")[1]!)
          }
        }
      })
  )

  it.live(
    "keep the last good set while the certificate is rewritten in place, and load it once complete",
    () =>
      withinLogged(
        Effect.gen(function* () {
          const { server, folder, sslOptions } = yield* reloadingAlpha
          const cert = folder.tls.cert
          const beta = material.read("beta.pem")
          // A writer that truncates the file and has written half of it when the session looks.
          Fs.writeFileSync(cert, beta.slice(0, beta.length / 2))
          yield* eventually(Effect.map(reloads("rejected"), (count) => count >= 1))
          assert.strictEqual(yield* nameOfNewConnection(server, sslOptions), "alpha")
          Fs.appendFileSync(cert, beta.slice(beta.length / 2))
          Fs.writeFileSync(Path.join(folder.directory, "client.key"), material.read("beta.key"))
          yield* untilNewConnectionsAre(server, sslOptions, "beta")
          assertNoSecretIn(warnings, folder.directory)
        })
      ),
    30_000
  )
})
