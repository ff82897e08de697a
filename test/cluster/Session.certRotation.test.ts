/**
 * Certificate rotation without restarting the client, on a real two-node cluster that requires mutual TLS, under
 * fiber-concurrent traffic (idempotent writes and reads at ONE, keyspace replicated twice):
 *
 * - the client certificate and key are replaced on disk by new ones issued under the same root CA, the session
 *   reloads them, a certificate file that is not PEM is then rejected (the last good set kept), and the nodes are
 *   restarted one by one with a trust store that no longer accepts the old certificate, forcing every connection to
 *   be opened again: only the new certificate can open them;
 * - the server certificates are re-issued by a new CA: the session's CA bundle gains the new CA (both trusted during
 *   the overlap), the nodes are restarted one by one with their new certificates, and the session keeps serving.
 *
 * Node trust: the manager's trust store (its `ca.pem`, also what its probes verify the servers with) holds the root
 * CA and the issuing CAs of the client certificates; the client certificates are presented without their issuer, so
 * removing an issuing CA from the trust store revokes every certificate it issued. Each phase prints one line with
 * its request count, failures and lost writes. Addresses 127.0.0.121-122.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as CassandraLayer from "effect-cassandra/Layer"
import * as Metrics from "effect-cassandra/Metrics"
import * as Query from "effect-cassandra/Query"
import * as Topology from "effect-cassandra/Topology"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"
import * as Certificates from "../support/certificates.ts"
import { lostWrites, newTraffic, startClients, stopClients, type Traffic } from "../support/traffic.ts"

const { cql } = Query
const firstAddress = 121
const nodeCount = 2

const temporaryDirectory = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "cert-rotation-"))),
  (directory) => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true }))
)

const read = (file: string) => Fs.readFileSync(file, "utf8")

/** Replaces a file as certificate managers do: the new contents written aside, then renamed over it. */
const replaceByRename = (file: string, contents: string) =>
  Effect.sync(() => {
    Fs.writeFileSync(`${file}.tmp`, contents)
    Fs.renameSync(`${file}.tmp`, file)
  })

/**
 * The test-time certificates, in `directory`: issuing CAs `issuing-old` and `issuing-new` under the cluster's root
 * CA, client certificates `client-old` and `client-new` issued by them, and a new root `ca2` that issued `server2`,
 * valid for the same addresses as the cluster's server certificate.
 */
const makeMaterial = Effect.fnUntraced(function* (directory: string, cluster: LocalCassandra.Cluster) {
  const tlsDirectory = Path.dirname(cluster.tls!.caFile)
  const rootCa = { cert: Path.join(tlsDirectory, "ca.pem"), key: Path.join(tlsDirectory, "ca.key") }
  const issuedFor30Days = (
    name: string,
    subject: string,
    signer: Certificates.CertificateFiles,
    extensions: ReadonlyArray<string> | { readonly file: string }
  ) =>
    Effect.sync(() =>
      Certificates.issue(directory, {
        name,
        subject,
        key: "rsa",
        signer,
        days: 30,
        extensions,
        serial: Date.now() + name.length
      })
    )
  for (const age of ["old", "new"]) {
    const issuing = yield* issuedFor30Days(`issuing-${age}`, `/CN=rotation issuing CA ${age}`, rootCa, [
      "basicConstraints=critical,CA:TRUE",
      "keyUsage=critical,keyCertSign,cRLSign"
    ])
    yield* issuedFor30Days(`client-${age}`, `/CN=cassandra ${age}`, issuing, [
      "extendedKeyUsage=clientAuth",
      "keyUsage=critical,digitalSignature,keyEncipherment"
    ])
  }
  const ca2 = yield* Effect.sync(() =>
    Certificates.selfSignedCa(directory, {
      name: "ca2",
      subject: "/CN=rotation CA 2",
      key: "rsa",
      days: 30,
      extensions: ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]
    })
  )
  yield* issuedFor30Days("server2", "/CN=localhost", ca2, { file: Path.join(tlsDirectory, "server.ext") })
  const file = (name: string) => Path.join(directory, name)
  return {
    rootCa: read(cluster.tls!.caFile),
    ca2: read(file("ca2.pem")),
    issuingOld: read(file("issuing-old.pem")),
    issuingNew: read(file("issuing-new.pem")),
    keystore2: [read(file("server2.key")), read(file("server2.pem")), read(file("ca2.pem"))].join(""),
    file
  }
})

/** Whether a fresh driver client with these PEM files completes a login on node `index` (its own pool only). */
const nodeAccepts = (index: number, files: { readonly ca: string; readonly cert: string; readonly key: string }) =>
  Effect.promise(async () => {
    const address = `127.0.0.${firstAddress + index - 1}`
    const client = new Cassandra.Client({
      contactPoints: [address],
      localDataCenter: "datacenter1",
      sslOptions: { ca: [read(files.ca)], cert: read(files.cert), key: read(files.key), rejectUnauthorized: true },
      socketOptions: { connectTimeout: 15_000 },
      policies: {
        loadBalancing: new Cassandra.policies.loadBalancing.AllowListPolicy(
          new Cassandra.policies.loadBalancing.RoundRobinPolicy(),
          [`${address}:9042`]
        )
      }
    })
    try {
      await client.connect()
      await client.execute("SELECT release_version FROM system.local")
      return true
    } catch {
      return false
    } finally {
      await client.shutdown().catch(() => undefined)
    }
  })

const reloads = (outcome: "loaded" | "rejected") =>
  Effect.map(Metric.value(Metric.withAttributes(Metrics.tlsReloads, { outcome })), (state) => state.count)

/** Waits until the session has counted one more reload of `outcome` than `before`, and returns how long it took. */
const awaitReload = (outcome: "loaded" | "rejected", before: number) =>
  Effect.gen(function* () {
    const started = Date.now()
    yield* reloads(outcome).pipe(
      Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (count) => count > before }),
      Effect.timeout("30 seconds")
    )
    return Date.now() - started
  })

/** Restarts the nodes one after another, waiting after each until the session sees every node up. */
const rollingRestart = (cluster: LocalCassandra.Cluster) =>
  Effect.gen(function* () {
    const topology = yield* Topology.Topology
    for (let index = 1; index <= nodeCount; index++) {
      yield* cluster.stopNode(index)
      yield* cluster.startNode(index)
      yield* topology.awaitNodesUp(nodeCount, "120 seconds")
    }
  })

/** Runs `steps` under client traffic, then checks and prints: every request succeeded, no write was lost. */
const underTraffic = <E, R>(name: string, steps: (traffic: Traffic) => Effect.Effect<string, E, R>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const traffic = newTraffic()
      const clients = yield* startClients(traffic, 2)
      const measured = yield* steps(traffic)
      yield* stopClients(clients)
      const lost = yield* lostWrites(traffic.acknowledged)
      console.log(
        `cert-rotation ${name}: requests=${traffic.requests} failed=${traffic.failed} lost=${lost} ${measured}`
      )
      assert.isAbove(traffic.requests, 0)
      assert.deepStrictEqual(traffic.failures, [])
      assert.strictEqual(lost, 0)
    })
  )

describe("certificate rotation on a mutual-TLS cluster", () => {
  it.live(
    "keeps serving while its client certificate and its CA bundle rotate, through restarts that revoke the old ones",
    () =>
      Effect.gen(function* () {
        const cluster = yield* LocalCassandra.start({
          nodes: nodeCount,
          firstAddress,
          name: "cert-rotation",
          tls: { clientCertificate: true }
        })
        const nodeTls = cluster.tls!
        const keystoreFile = Path.join(Path.dirname(nodeTls.caFile), "server-keystore.pem")
        const directory = yield* temporaryDirectory
        const material = yield* makeMaterial(directory, cluster)

        // The nodes trust both issuing CAs from now on (reloaded in place: no restart).
        yield* replaceByRename(nodeTls.caFile, material.rootCa + material.issuingOld + material.issuingNew)
        for (let index = 1; index <= nodeCount; index++) yield* cluster.nodetool(index, ["reloadssl"])
        const oldFiles = {
          ca: nodeTls.caFile,
          cert: material.file("client-old.pem"),
          key: material.file("client-old.key")
        }
        const newFiles = {
          ca: nodeTls.caFile,
          cert: material.file("client-new.pem"),
          key: material.file("client-new.key")
        }
        assert.isTrue(yield* nodeAccepts(1, oldFiles), "the nodes do not accept the old client certificate yet")

        // The session's own files, which rotation replaces.
        const client = Path.join(directory, "session")
        Fs.mkdirSync(client)
        const sessionFile = (name: string) => Path.join(client, name)
        Fs.writeFileSync(sessionFile("ca.pem"), material.rootCa)
        Fs.writeFileSync(sessionFile("client.pem"), read(oldFiles.cert))
        Fs.writeFileSync(sessionFile("client.key"), read(oldFiles.key))

        const setup = CassandraLayer.layer({
          contactPoints: cluster.contactPoints,
          localDataCenter: cluster.localDataCenter,
          tls: { ca: nodeTls.caFile, cert: nodeTls.clientCertFile!, key: Redacted.make(nodeTls.clientKeyFile!) }
        })
        yield* Effect.gen(function* () {
          yield* cql`CREATE KEYSPACE rotation WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}`
          yield* cql`CREATE TABLE rotation.kv (k int PRIMARY KEY, v text)`
        }).pipe(Effect.provide(setup))

        const session = CassandraLayer.layer({
          contactPoints: cluster.contactPoints,
          localDataCenter: cluster.localDataCenter,
          keyspace: "rotation",
          consistency: "ONE",
          connectTimeout: "20 seconds",
          tls: {
            ca: sessionFile("ca.pem"),
            cert: sessionFile("client.pem"),
            key: Redacted.make(sessionFile("client.key")),
            reloadInterval: "250 millis"
          }
        }).pipe(Layer.provideMerge(Metrics.layer()))

        yield* Effect.gen(function* () {
          const topology = yield* Topology.Topology
          yield* topology.awaitNodesUp(nodeCount, "60 seconds")

          yield* underTraffic("client-certificate", () =>
            Effect.gen(function* () {
              const loaded = yield* reloads("loaded")
              yield* replaceByRename(sessionFile("client.key"), read(newFiles.key))
              yield* replaceByRename(sessionFile("client.pem"), read(newFiles.cert))
              const reloadMs = yield* awaitReload("loaded", loaded)
              // A certificate file that is not PEM replaces nothing: the restarts below need the last good set.
              const rejected = yield* reloads("rejected")
              yield* replaceByRename(sessionFile("client.pem"), "certificate pending\n")
              yield* awaitReload("rejected", rejected)
              // The old issuing CA leaves the nodes' trust: only the new certificate opens connections now.
              yield* replaceByRename(nodeTls.caFile, material.rootCa + material.issuingNew)
              const restartStarted = Date.now()
              yield* rollingRestart(cluster)
              const restartMs = Date.now() - restartStarted
              assert.isFalse(yield* nodeAccepts(1, oldFiles), "a restarted node still accepts the old certificate")
              assert.isTrue(yield* nodeAccepts(1, newFiles))
              // The certificate file is whole again (the same certificate): the next phase changes only the CAs.
              const reloaded = yield* reloads("loaded")
              yield* replaceByRename(sessionFile("client.pem"), read(newFiles.cert))
              yield* awaitReload("loaded", reloaded)
              return `reload_ms=${reloadMs} rolling_restart_ms=${restartMs}`
            })
          )

          yield* underTraffic("ca-bundle", () =>
            Effect.gen(function* () {
              const loaded = yield* reloads("loaded")
              yield* replaceByRename(sessionFile("ca.pem"), material.rootCa + material.ca2)
              yield* awaitReload("loaded", loaded)
              // The nodes present certificates issued by the new CA once restarted (their trust store keeps the
              // root CA, which the manager's probes present, and the new issuing CA).
              yield* replaceByRename(keystoreFile, material.keystore2)
              yield* replaceByRename(nodeTls.caFile, material.rootCa + material.ca2 + material.issuingNew)
              const restartStarted = Date.now()
              yield* rollingRestart(cluster)
              const restartMs = Date.now() - restartStarted
              // A client trusting the old CA alone no longer accepts the nodes: their certificates changed.
              Fs.writeFileSync(material.file("old-bundle.pem"), material.rootCa)
              assert.isFalse(yield* nodeAccepts(2, { ...newFiles, ca: material.file("old-bundle.pem") }))
              return `rolling_restart_ms=${restartMs}`
            })
          )
        }).pipe(Effect.provide(Layer.fresh(session)))
      }).pipe(Effect.scoped),
    900_000
  )
})
