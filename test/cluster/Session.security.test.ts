/**
 * TLS, mutual TLS and password authentication against real secured nodes started by the project's manager: client
 * encryption required (no plaintext), client certificates required, PasswordAuthenticator with CassandraAuthorizer.
 * Every failure is asserted by its typed reason, with a message that says what to check and holds no secret. The
 * certificates are generated at test time: by the manager into the cluster's directory, and here (another CA, an
 * encrypted copy of the client key) into a temporary folder.
 *
 * The addresses are 127.0.0.41 (mutual TLS), 127.0.0.42 (expired certificate) and 127.0.0.43 (certificate for
 * another host).
 */
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { inspect } from "node:util"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Schema from "effect/Schema"
import * as CassandraError from "effect-cassandra/CassandraError"
import * as Query from "effect-cassandra/Query"
import * as Session from "effect-cassandra/Session"
import * as LocalCassandra from "../../tools/cassandra/LocalCassandra.ts"
import * as Certificates from "../support/certificates.ts"
import { recordingTracer, runProgram } from "../support/programs.ts"

const { cql } = Query

const temporaryDirectory = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "security-"))),
  (directory) => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true }))
)

const randomSecret = (prefix: string) => `${prefix}-${randomBytes(12).toString("hex")}`

/** The mutual-TLS node and the test-time material around it. */
class SecureNode extends Context.Service<
  SecureNode,
  {
    readonly cluster: LocalCassandra.Cluster
    readonly caFile: string
    readonly certFile: string
    readonly keyFile: string
    /** The certificate of a CA that signed nothing the node presents. */
    readonly otherCaFile: string
    /** The client key, encrypted with `passphrase`. */
    readonly encryptedKeyFile: string
    readonly passphrase: Redacted.Redacted
  }
>()("test/SecureNode") {}

const SecureNodeLive = Layer.effect(
  SecureNode,
  Effect.gen(function* () {
    const cluster = yield* LocalCassandra.start({
      firstAddress: 41,
      name: "security-mutual",
      tls: { clientCertificate: true },
      auth: true
    })
    const files = cluster.tls!
    const directory = yield* temporaryDirectory
    yield* Effect.sync(() =>
      Certificates.selfSignedCa(directory, {
        name: "other-ca",
        subject: "/CN=security test: an unrelated CA",
        key: "rsa",
        days: 1
      })
    )
    const passphrase = randomSecret("passphrase")
    // The passphrase goes through the environment, not the command line.
    yield* Effect.sync(() =>
      Certificates.openssl(
        directory,
        [
          "pkey",
          "-in",
          files.clientKeyFile!,
          "-aes256",
          "-passout",
          "env:KEY_PASSPHRASE",
          "-out",
          "client-encrypted.key"
        ],
        { KEY_PASSPHRASE: passphrase }
      )
    )
    return {
      cluster,
      caFile: files.caFile,
      certFile: files.clientCertFile!,
      keyFile: files.clientKeyFile!,
      otherCaFile: Path.join(directory, "other-ca.pem"),
      encryptedKeyFile: Path.join(directory, "client-encrypted.key"),
      passphrase: Redacted.make(passphrase)
    }
  })
)

/** Session options for the node: its CA, the client certificate and key, the superuser; `overrides` win. */
const optionsFor = (node: SecureNode["Service"], overrides: Partial<Session.Options> = {}): Session.Options => ({
  contactPoints: [...node.cluster.contactPoints],
  localDataCenter: node.cluster.localDataCenter,
  credentials: node.cluster.credentials!,
  tls: { ca: node.caFile, cert: node.certFile, key: Redacted.make(node.keyFile) },
  connectTimeout: "20 seconds",
  ...overrides
})

const query = <A>(session: Session.Session, statement: Query.Statement<A>) =>
  Effect.provideService(statement, Session.Session, session)

/**
 * Runs CQL text with no bound values: role statements take their password only as a literal (these are random hex).
 */
const runText = (session: Session.Session, text: string) => session.execute({ query: text, params: [], options: {} })

/** A keyspace with a table every role may read and one that only the superuser may. */
const createTables = (admin: Session.Session) =>
  Effect.gen(function* () {
    yield* runText(
      admin,
      "CREATE KEYSPACE IF NOT EXISTS security WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    yield* runText(admin, "CREATE TABLE IF NOT EXISTS security.public_notes (id int PRIMARY KEY, body text)")
    yield* runText(admin, "CREATE TABLE IF NOT EXISTS security.salaries (id int PRIMARY KEY, amount int)")
  })

/** A login role with this password, allowed to read `security.public_notes` only. */
const createRole = (admin: Session.Session, role: string, password: string) =>
  Effect.gen(function* () {
    yield* createTables(admin)
    yield* runText(admin, `CREATE ROLE IF NOT EXISTS ${role} WITH LOGIN = true AND PASSWORD = '${password}'`)
    yield* runText(admin, `GRANT SELECT ON security.public_notes TO ${role}`)
  })

/** The error a session with these options fails to connect with. */
const connectFailure = (options: Session.Options) => Effect.flip(Effect.scoped(Session.make(options)))

/** Asserts the failure is a `Tls` reason with this problem and a message that points at `setting`. */
const assertTls = (error: CassandraError.CassandraError, problem: CassandraError.TlsProblem, setting: string) => {
  assert.instanceOf(error.reason, CassandraError.Tls, error.message)
  assert.strictEqual((error.reason as CassandraError.Tls).problem, problem, error.message)
  assert.include(error.message, setting)
  assert.isFalse(error.isRetryable)
}

/** Every form of an error a user or a log could see. */
const errorForms = (error: CassandraError.CassandraError) => [
  error.message,
  String(error),
  inspect(error, { depth: null }),
  JSON.stringify(error),
  JSON.stringify(Schema.encodeSync(CassandraError.CassandraError)(error)),
  Cause.pretty(Cause.fail(error))
]

const assertNoSecret = (texts: ReadonlyArray<string>, secrets: ReadonlyArray<string>) => {
  for (const text of texts) {
    for (const secret of secrets) assert.notInclude(text, secret, "a secret leaked")
  }
}

/** The full 64-character lines of a PEM body: any copy of the key would hold them. */
const pemBodyLines = (file: string) =>
  Fs.readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.length === 64)

layer(SecureNodeLive, { timeout: "10 minutes", excludeTestServices: true })("a mutual TLS and password node", (it) => {
  // The layer leaves the test services out, so these tests run on the live clock like the other cluster tests.

  it.effect("connects with the CA, a client certificate and a password, from files or inline PEM", () =>
    Effect.gen(function* () {
      const node = yield* SecureNode
      const fromFiles = yield* Session.make(optionsFor(node, { applicationName: "security-files" }))
      const [local] = yield* query(fromFiles, cql`SELECT release_version FROM system.local`)
      assert.strictEqual(local?.release_version, node.cluster.version)

      const inline = yield* Session.make(
        optionsFor(node, {
          applicationName: "security-inline",
          tls: {
            ca: Fs.readFileSync(node.caFile, "utf8"),
            cert: Fs.readFileSync(node.certFile, "utf8"),
            key: Redacted.make(Fs.readFileSync(node.encryptedKeyFile, "utf8")),
            passphrase: node.passphrase,
            minVersion: "TLSv1.3",
            serverName: "localhost"
          }
        })
      )
      const clients = yield* query(
        inline,
        cql`SELECT ssl_enabled, ssl_protocol, username, client_options FROM system_views.clients`
      )
      const inlineConnections = clients.filter(
        (row) => (row.client_options as ReadonlyMap<string, string>).get("APPLICATION_NAME") === "security-inline"
      )
      assert.isNotEmpty(inlineConnections)
      for (const row of inlineConnections) {
        assert.deepInclude(row, { ssl_enabled: true, ssl_protocol: "TLSv1.3", username: "cassandra" })
      }
    })
  )

  it.effect("reads the login and the TLS files from environment variables", () =>
    Effect.gen(function* () {
      const node = yield* SecureNode
      const env = {
        CASSANDRA_CONTACT_POINTS: node.cluster.contactPoints.join(","),
        CASSANDRA_CA: node.caFile,
        CASSANDRA_CERT: node.certFile,
        CASSANDRA_KEY: node.encryptedKeyFile,
        CASSANDRA_KEY_PASSPHRASE: Redacted.value(node.passphrase),
        CASSANDRA_USERNAME: "cassandra",
        CASSANDRA_PASSWORD: "cassandra"
      }
      const SessionFromEnv = Session.layerConfig({
        contactPoints: Config.String("CASSANDRA_CONTACT_POINTS").pipe(Config.map((points) => points.split(","))),
        localDataCenter: Config.succeed("datacenter1"),
        tls: Config.all({
          ca: Config.String("CASSANDRA_CA"),
          cert: Config.String("CASSANDRA_CERT"),
          key: Config.Redacted("CASSANDRA_KEY"),
          passphrase: Config.Redacted("CASSANDRA_KEY_PASSPHRASE")
        }),
        credentials: Config.all({
          username: Config.String("CASSANDRA_USERNAME"),
          password: Config.Redacted("CASSANDRA_PASSWORD")
        })
      }).pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
      const rows = yield* cql`SELECT release_version FROM system.local`.pipe(Effect.provide(SessionFromEnv))
      assert.strictEqual(rows[0]?.release_version, node.cluster.version)
    })
  )

  it.effect("refuses a server certificate signed by a CA that tls.ca does not hold", () =>
    Effect.gen(function* () {
      const node = yield* SecureNode
      const error = yield* connectFailure(optionsFor(node, { tls: { ...optionsFor(node).tls, ca: node.otherCaFile } }))
      assertTls(error, "UnknownAuthority", "tls.ca")
      const withoutCa = yield* connectFailure(optionsFor(node, { tls: { ...optionsFor(node).tls, ca: undefined } }))
      assertTls(withoutCa, "UnknownAuthority", "tls.ca")
    })
  )

  it.effect("refuses a server name the certificate does not list", () =>
    Effect.gen(function* () {
      const node = yield* SecureNode
      const error = yield* connectFailure(
        optionsFor(node, { tls: { ...optionsFor(node).tls, serverName: "db.example.org" } })
      )
      assertTls(error, "HostnameMismatch", "tls.serverName")
      assert.include(error.message, "db.example.org")
    })
  )

  it.effect("asks for a client certificate when the node requires one and none is given", () =>
    Effect.gen(function* () {
      const node = yield* SecureNode
      const error = yield* connectFailure(optionsFor(node, { tls: { ca: node.caFile } }))
      assertTls(error, "ClientCertificateRequired", "tls.cert and tls.key")
    })
  )

  it.effect("tells a plaintext client that the node requires TLS", () =>
    Effect.gen(function* () {
      const node = yield* SecureNode
      const error = yield* connectFailure(optionsFor(node, { tls: undefined }))
      assertTls(error, "TlsRequired", "set tls")
    })
  )

  it.effect("refuses a wrong password without showing it", () =>
    Effect.gen(function* () {
      const node = yield* SecureNode
      const password = randomSecret("wrong-password")
      const error = yield* connectFailure(
        optionsFor(node, { credentials: { username: "cassandra", password: Redacted.make(password) } })
      )
      assert.deepInclude(error.reason, { _tag: "Authentication", refusedByServer: true })
      assert.include(error.message, "check the username and password")
      assert.isFalse(error.isRetryable)
      assertNoSecret(errorForms(error), [password])
    })
  )

  it.effect("refuses a key that the passphrase does not decrypt before connecting", () =>
    Effect.gen(function* () {
      const node = yield* SecureNode
      const wrong = randomSecret("wrong-passphrase")
      const error = yield* connectFailure(
        optionsFor(node, {
          tls: { ...optionsFor(node).tls, key: Redacted.make(node.encryptedKeyFile), passphrase: Redacted.make(wrong) }
        })
      )
      assert.strictEqual(error.reason._tag, "Configuration")
      assert.include(error.message, "tls.passphrase")
      assertNoSecret(errorForms(error), [wrong, Redacted.value(node.passphrase), ...pemBodyLines(node.keyFile)])
    })
  )

  it.effect("fails with Unauthorized when the role lacks the permission on the table", () =>
    Effect.gen(function* () {
      const node = yield* SecureNode
      const admin = yield* Session.make(optionsFor(node))
      const password = randomSecret("reader-password")
      yield* createRole(admin, "reader", password)

      const reader = yield* Session.make(
        optionsFor(node, { credentials: { username: "reader", password: Redacted.make(password) } })
      )
      yield* query(reader, cql`SELECT * FROM security.public_notes`)
      const error = yield* Effect.flip(query(reader, cql`SELECT * FROM security.salaries`))
      assert.instanceOf(error.reason, CassandraError.Unauthorized)
      assert.include(error.message, "reader has no SELECT permission")
      assert.include(error.message, "security.salaries")
      assert.isFalse(error.isRetryable)
      assertNoSecret(errorForms(error), [password])
    })
  )

  it.effect("keeps the password, the passphrase and the private key out of logs, errors, spans and settings", () =>
    Effect.gen(function* () {
      const node = yield* SecureNode
      const password = randomSecret("app-password")
      const admin = yield* Session.make(optionsFor(node))
      yield* createRole(admin, "app", password)
      const secrets = [
        password,
        Redacted.value(node.passphrase),
        ...pemBodyLines(node.keyFile),
        ...pemBodyLines(node.encryptedKeyFile)
      ]

      const seen: Array<string> = []
      const { spans, tracer } = recordingTracer()
      const capture = Logger.make((options) => {
        seen.push(inspect(options.message, { depth: null }), Cause.pretty(options.cause))
      })
      // The driver emits its log events through the client's own `emit`, bound when the client is created, so the
      // spy is in place before the session creates its client and sees the connection's events too.
      const originalEmit = Cassandra.Client.prototype.emit
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          Cassandra.Client.prototype.emit = function (
            this: Cassandra.Client,
            event: string | symbol,
            ...args: Array<unknown>
          ) {
            if (event === "log") seen.push(inspect(args, { depth: null }))
            return originalEmit.call(this, event, ...args)
          }
        }),
        () =>
          Effect.sync(() => {
            Cassandra.Client.prototype.emit = originalEmit
          })
      )

      const settings = optionsFor(node, {
        credentials: { username: "app", password: Redacted.make(password) },
        tls: {
          ca: node.caFile,
          cert: node.certFile,
          key: Redacted.make(Fs.readFileSync(node.encryptedKeyFile, "utf8")),
          passphrase: node.passphrase
        }
      })
      const wrongLogin = { ...settings, credentials: { username: "app", password: Redacted.make(`${password}x`) } }
      const run = Effect.gen(function* () {
        yield* Effect.logDebug("settings", settings)
        const session = yield* Session.make(settings)
        yield* query(session, cql`SELECT release_version FROM system.local`)
        const unauthorized = yield* Effect.flip(query(session, cql`SELECT * FROM security.salaries`))
        const refused = yield* connectFailure(wrongLogin)
        yield* Effect.logError("failures", unauthorized, refused)
        return [unauthorized, refused]
      }).pipe(
        Effect.withSpan("security-test"),
        Effect.scoped,
        Effect.provide(Logger.layer([capture])),
        Effect.provideService(References.MinimumLogLevel, "Debug"),
        Effect.withTracer(tracer)
      )
      const errors = yield* run
      assert.deepStrictEqual(
        errors.map((error) => error.reason._tag),
        ["Unauthorized", "Authentication"]
      )
      assert.isNotEmpty(
        seen.filter((line) => line.includes("127.0.0.41")),
        "the driver's log events were captured"
      )
      assert.isTrue(
        spans.some((span) => span.attributes.size > 0),
        "the request spans were captured"
      )
      const spanTexts = spans.map((span) =>
        inspect(
          { name: span.name, attributes: [...span.attributes], events: span.events, status: span.status },
          { depth: null }
        )
      )
      const settingForms = [String(settings), inspect(settings, { depth: null }), JSON.stringify(settings)]
      assertNoSecret([...seen, ...spanTexts, ...settingForms, ...errors.flatMap(errorForms)], secrets)
    })
  )

  it.effect("runs examples/secure-connection.ts against the node", () =>
    Effect.gen(function* () {
      const node = yield* SecureNode
      const password = randomSecret("example-password")
      const admin = yield* Session.make(optionsFor(node))
      yield* createRole(admin, "example_app", password)
      const result = yield* runProgram("examples/secure-connection.ts", {
        CASSANDRA_CONTACT_POINTS: node.cluster.contactPoints.join(","),
        CASSANDRA_CA: node.caFile,
        CASSANDRA_CERT: node.certFile,
        CASSANDRA_KEY: node.encryptedKeyFile,
        CASSANDRA_KEY_PASSPHRASE: Redacted.value(node.passphrase),
        CASSANDRA_USERNAME: "example_app",
        CASSANDRA_PASSWORD: password
      })
      assert.strictEqual(result.code, 0, result.output)
      assert.match(result.output, /connected to security-mutual \(Cassandra 5\.0\.\d+\) over TLS/)
      assertNoSecret([result.output], [password, Redacted.value(node.passphrase)])
    })
  )
})

/** Starts a single TLS node that presents a flawed certificate, and the session options that trust its CA. */
const flawedNode = (octet: number, name: string, serverCertificate: "expired" | "otherHost") =>
  Effect.map(
    LocalCassandra.start({ firstAddress: octet, name, tls: { clientCertificate: false, serverCertificate } }),
    (cluster): Session.Options => ({
      contactPoints: [...cluster.contactPoints],
      localDataCenter: cluster.localDataCenter,
      tls: { ca: cluster.tls!.caFile },
      connectTimeout: "20 seconds"
    })
  )

describe("nodes with a flawed certificate", () => {
  it.live("refuses an expired server certificate", () =>
    Effect.gen(function* () {
      const options = yield* flawedNode(42, "security-expired", "expired")
      const error = yield* connectFailure(options)
      assertTls(error, "Expired", "renew the node's certificate")
    })
  )

  it.live("refuses a certificate that does not list the node's address, unless tls.serverName names it", () =>
    Effect.gen(function* () {
      const options = yield* flawedNode(43, "security-otherhost", "otherHost")
      const error = yield* connectFailure(options)
      assertTls(error, "HostnameMismatch", "tls.serverName")
      assert.include(error.message, "127.0.0.43")

      const named = yield* Session.make({ ...options, tls: { ...options.tls, serverName: "elsewhere.invalid" } })
      const rows = yield* query(named, cql`SELECT release_version FROM system.local`)
      assert.lengthOf(rows, 1)

      const unverified = yield* Session.make({
        ...options,
        tls: { dangerouslyDisableServerVerification: true }
      })
      assert.lengthOf(yield* query(unverified, cql`SELECT release_version FROM system.local`), 1)
    })
  )
})
