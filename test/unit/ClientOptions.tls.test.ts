import { generateKeyPairSync } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Tls from "node:tls"
import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as CassandraError from "effect-cassandra/CassandraError"
import type * as Session from "effect-cassandra/Session"
import { makeClientOptions } from "../../src/internal/clientOptions.ts"
import { issue, openssl, selfSignedCa } from "../support/certificates.ts"

const passphrase = "correct horse battery staple"

/** A client key encrypted with `passphrase`, and the same key in the clear. */
const { privateKey: encryptedKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  publicKeyEncoding: { type: "spki", format: "pem" },
  privateKeyEncoding: { type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase }
})

/** An unencrypted client key, as `openssl pkcs12 -nodes` would write it after its attribute lines. */
const { privateKey: plainKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  publicKeyEncoding: { type: "spki", format: "pem" },
  privateKeyEncoding: { type: "pkcs8", format: "pem" }
})

const base: Session.Options = { contactPoints: ["127.0.0.1"], localDataCenter: "datacenter1" }

const sslOptionsOf = (tls: Session.TlsOptions) =>
  Effect.map(makeClientOptions({ ...base, tls }), (options) => options.clientOptions.sslOptions)

const temporaryFile = (name: string, content: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "tls-options-"))
      const file = Path.join(directory, name)
      Fs.writeFileSync(file, content)
      return file
    }),
    (file) => Effect.sync(() => Fs.rmSync(Path.dirname(file), { recursive: true, force: true }))
  )

describe("TLS options", () => {
  it.effect("verify the server's certificate and name by default, with TLS 1.2 at least", () =>
    Effect.gen(function* () {
      const { secureContext, ...ssl } = (yield* sslOptionsOf({}))!
      assert.deepStrictEqual(ssl, { minVersion: "TLSv1.2", rejectUnauthorized: true })
      assert.isDefined(secureContext)
    })
  )

  it.effect("turn verification off only through dangerouslyDisableServerVerification", () =>
    Effect.gen(function* () {
      const ssl = yield* sslOptionsOf({ dangerouslyDisableServerVerification: true })
      assert.strictEqual(ssl?.rejectUnauthorized, false)
      const explicit = yield* sslOptionsOf({ dangerouslyDisableServerVerification: false })
      assert.strictEqual(explicit?.rejectUnauthorized, true)
    })
  )

  it.effect("pass the minimum version and the server name on", () =>
    Effect.gen(function* () {
      const ssl = yield* sslOptionsOf({ minVersion: "TLSv1.3", serverName: "db.example.org" })
      assert.deepInclude(ssl, { minVersion: "TLSv1.3", servername: "db.example.org" })
    })
  )

  it.effect("read a PEM key given inline or as a file path alike, and decrypt it with the passphrase", () =>
    Effect.gen(function* () {
      const file = yield* temporaryFile("client.key", encryptedKey)
      const inline = yield* sslOptionsOf({ key: Redacted.make(encryptedKey), passphrase: Redacted.make(passphrase) })
      const fromFile = yield* sslOptionsOf({ key: Redacted.make(file), passphrase: Redacted.make(passphrase) })
      // Both decrypted into the TLS context every connection uses (a wrong passphrase fails, see below).
      for (const ssl of [inline, fromFile]) {
        assert.isDefined(ssl?.secureContext)
        assert.isUndefined(ssl?.key)
        assert.isUndefined(ssl?.passphrase)
      }
    })
  )

  it.effect("fail with Configuration, before connecting, when the passphrase does not decrypt the key", () =>
    Effect.gen(function* () {
      const wrong = yield* Effect.flip(
        sslOptionsOf({ key: Redacted.make(encryptedKey), passphrase: Redacted.make("not the passphrase") })
      )
      const missing = yield* Effect.flip(sslOptionsOf({ key: Redacted.make(encryptedKey) }))
      for (const error of [wrong, missing]) {
        assert.instanceOf(error.reason, CassandraError.Configuration)
        assert.include(error.message, "tls.passphrase decrypts it")
        for (const form of [error.message, JSON.stringify(error), inspect(error)]) {
          assert.notInclude(form, "not the passphrase")
          assert.notInclude(form, encryptedKey.split("\n")[1]!)
        }
      }
    })
  )

  it.effect("fail with Configuration when a PEM file cannot be read or is not PEM", () =>
    Effect.gen(function* () {
      const unreadable = yield* Effect.flip(sslOptionsOf({ ca: "/nonexistent/ca.pem" }))
      assert.instanceOf(unreadable.reason, CassandraError.Configuration)
      assert.include(unreadable.message, "tls.ca is neither PEM text")
      assert.include(unreadable.message, "(ENOENT)")
      const notPem = yield* temporaryFile("ca.der", "binary certificate")
      const wrongFile = yield* Effect.flip(sslOptionsOf({ ca: notPem }))
      assert.include(wrongFile.message, "The file named by tls.ca holds no PEM")
      const garbled = yield* Effect.flip(
        sslOptionsOf({ cert: "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n" })
      )
      assert.instanceOf(garbled.reason, CassandraError.Configuration)
      assert.include(garbled.message, "tls.cert hold PEM certificates")
    })
  )

  it.effect("accept PEM that follows attribute lines, as openssl pkcs12 -nodes writes it", () =>
    Effect.gen(function* () {
      const withAttributes = `Bag Attributes\n    localKeyID: 01 02 03 04\nKey Attributes: <No Attributes>\n${plainKey}`
      const ssl = yield* sslOptionsOf({ key: Redacted.make(withAttributes) })
      assert.isDefined(ssl?.secureContext)
      const file = yield* temporaryFile("client.key", withAttributes)
      const fromFile = yield* sslOptionsOf({ key: Redacted.make(file) })
      assert.isDefined(fromFile?.secureContext)
    })
  )

  it.effect("name the TLS setting that is neither PEM nor a file, and never echo what it holds", () =>
    Effect.gen(function* () {
      const base64Key = Buffer.from(plainKey).toString("base64")
      const wrappedBase64Key = base64Key.replace(/(.{76})/g, "$1\n")
      const cases: ReadonlyArray<readonly [Session.TlsOptions, string, string]> = [
        [{ key: Redacted.make(base64Key) }, "tls.key", base64Key.slice(100, 140)],
        [{ key: Redacted.make(wrappedBase64Key) }, "tls.key", base64Key.slice(100, 140)],
        [{ key: Redacted.make("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC") }, "tls.key", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"],
        [{ cert: base64Key }, "tls.cert", base64Key.slice(100, 140)],
        [{ ca: ["/nonexistent/a.pem", base64Key] }, "tls.ca[0]", "/nonexistent/a.pem"],
        [{ cert: "certificate body\nsecret-line" }, "tls.cert", "secret-line"],
        [{ key: "/etc/client.key-not-redacted" as never }, "tls.key must be Redacted", "client.key-not-redacted"]
      ]
      for (const [tls, setting, secret] of cases) {
        const error = yield* Effect.flip(sslOptionsOf(tls))
        assert.instanceOf(error.reason, CassandraError.Configuration)
        for (const form of [error.message, JSON.stringify(error), inspect(error, { depth: null }), String(error)]) {
          assert.include(form, setting)
          assert.notInclude(form, secret)
          assert.notInclude(form, plainKey.split("\n")[1]!)
        }
      }
    })
  )

  it.effect("keep the password out of the driver options' printed form", () =>
    Effect.gen(function* () {
      const { clientOptions } = yield* makeClientOptions({
        ...base,
        credentials: { username: "app", password: Redacted.make("s3cret-password") }
      })
      assert.notInclude(inspect(clientOptions, { depth: null, showHidden: true }), "s3cret-password")
      // The login itself still sends it, as SASL PLAIN: NUL, user name, NUL, password.
      const authenticator = clientOptions.authProvider!.newAuthenticator("127.0.0.1:9042", "PasswordAuthenticator")
      const response = yield* Effect.callback<Buffer>((resume) => {
        authenticator.initialResponse((error: Error | null, bytes: Buffer) =>
          resume(error ? Effect.die(error) : Effect.succeed(bytes))
        )
      })
      assert.strictEqual(response.toString("utf8"), "\u0000app\u0000s3cret-password")
    })
  )

  it.effect("keep the key and the password out of the settings' printed and JSON forms", () =>
    Effect.gen(function* () {
      const settings: Session.Options = {
        ...base,
        credentials: { username: "app", password: Redacted.make("s3cret-password") },
        tls: { key: Redacted.make(encryptedKey), passphrase: Redacted.make(passphrase) }
      }
      for (const form of [String(settings), inspect(settings, { depth: null }), JSON.stringify(settings)]) {
        assert.notInclude(form, "s3cret-password")
        assert.notInclude(form, passphrase)
        assert.notInclude(form, encryptedKey.split("\n")[1]!)
      }
      yield* Effect.void
    })
  )

  it.effect("accept PEM in every form OpenSSL reads: CRLF, indented, EC, PKCS#8 encrypted, several CAs, bytes", () =>
    Effect.gen(function* () {
      const { privateKey: ecKey } = generateKeyPairSync("ec", {
        namedCurve: "prime256v1",
        publicKeyEncoding: { type: "spki", format: "pem" },
        privateKeyEncoding: { type: "sec1", format: "pem" }
      })
      const keys: ReadonlyArray<readonly [Session.TlsOptions["key"], Session.TlsOptions["passphrase"]]> = [
        [Redacted.make(plainKey.replace(/\n/g, "\r\n")), undefined],
        [Redacted.make(`\n\n   ${plainKey}`), undefined],
        [Redacted.make(ecKey), undefined],
        [Redacted.make(encryptedKey.replace(/\n/g, "\r\n")), Redacted.make(passphrase)],
        [Redacted.make(Buffer.from(plainKey) as never), undefined],
        // One line with escaped line ends, as .env files and JSON secrets often hold PEM.
        [Redacted.make(plainKey.replace(/\n/g, "\\n")), undefined]
      ]
      for (const [key, keyPassphrase] of keys) {
        const ssl = yield* sslOptionsOf({ key, passphrase: keyPassphrase })
        assert.isDefined(ssl?.secureContext)
      }
      const twoCas = `${Tls.rootCertificates[0]}\n${Tls.rootCertificates[1]}`
      const ssl = yield* sslOptionsOf({ ca: [twoCas, Buffer.from(Tls.rootCertificates[2]!) as never] })
      assert.lengthOf(ssl?.ca as ReadonlyArray<unknown>, 2)
      const withBytes = yield* sslOptionsOf({ cert: new Uint8Array(Buffer.from(Tls.rootCertificates[3]!)) as never })
      // The context holds the certificate (whose file may bundle the key): the driver's options do not.
      assert.isDefined(withBytes?.secureContext)
      assert.isUndefined(withBytes?.cert)
    })
  )

  it.effect("never echo a value that Node's own checks of driverOptions.sslOptions would print", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
        [{ key: plainKey, passphrase: 987654321 }, "987654321"],
        [{ key: [{ pem: encryptedKey, passphrase: 24681357 }] }, "24681357"],
        [{ ca: [424242424242] }, "424242424242"],
        [{ key: "/etc/ssl/private/client-key.pem" }, "client-key.pem"],
        [{ minVersion: "TLSv9-secret" }, "TLSv9-secret"]
      ]
      for (const [sslOptions, secret] of cases) {
        const error = yield* Effect.flip(makeClientOptions({ ...base, driverOptions: { sslOptions } }))
        assert.instanceOf(error.reason, CassandraError.Configuration)
        for (const form of [error.message, JSON.stringify(error), inspect(error, { depth: null }), String(error)]) {
          assert.include(form, "TLS")
          assert.notInclude(form, secret)
        }
      }
    })
  )

  it.effect("keep the client key and its passphrase out of the driver's options, in a prebuilt TLS context", () =>
    Effect.gen(function* () {
      const { clientOptions } = yield* makeClientOptions({
        ...base,
        tls: { key: Redacted.make(encryptedKey), passphrase: Redacted.make(passphrase) }
      })
      const printed = inspect(clientOptions, { depth: null, showHidden: true })
      assert.notInclude(printed, encryptedKey.split("\n")[1]!)
      assert.notInclude(printed, passphrase)
      assert.isDefined(clientOptions.sslOptions?.secureContext)
      assert.strictEqual(clientOptions.sslOptions?.rejectUnauthorized, true)
    })
  )

  it.live(
    "connect with mutual TLS through the prebuilt context, as the driver connects",
    () =>
      Effect.gen(function* () {
        const directory = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "tls-mutual-"))),
          (path) => Effect.sync(() => Fs.rmSync(path, { recursive: true, force: true }))
        )
        const signer = selfSignedCa(directory, { name: "ca", subject: "/CN=test-ca", key: "ec", days: 2 })
        for (const name of ["server", "client"]) {
          issue(directory, {
            name,
            subject: `/CN=${name}`,
            key: "ec",
            signer,
            days: 2,
            extensions: ["subjectAltName=DNS:localhost,IP:127.0.0.1"]
          })
        }
        openssl(directory, [
          "pkcs8",
          "-topk8",
          "-in",
          "client.key",
          "-out",
          "client.enc.key",
          "-passout",
          `pass:${passphrase}`
        ])
        const read = (name: string) => Fs.readFileSync(Path.join(directory, name), "utf8")
        const server = Tls.createServer({
          key: read("server.key"),
          cert: read("server.pem"),
          ca: read("ca.pem"),
          requestCert: true,
          rejectUnauthorized: true
        })
        const clientNames: Array<string> = []
        server.on("secureConnection", (socket) => {
          clientNames.push(String(socket.getPeerCertificate().subject?.CN))
          socket.end()
        })
        yield* Effect.acquireRelease(
          Effect.callback<void>((resume) => {
            server.listen(0, "127.0.0.1", () => resume(Effect.void))
          }),
          () => Effect.sync(() => server.close())
        )
        const { clientOptions } = yield* makeClientOptions({
          ...base,
          tls: {
            ca: Path.join(directory, "ca.pem"),
            cert: Path.join(directory, "client.pem"),
            key: Redacted.make(Path.join(directory, "client.enc.key")),
            passphrase: Redacted.make(passphrase)
          }
        })
        const { port } = server.address() as import("node:net").AddressInfo
        // What cassandra-driver's connection does with sslOptions (lib/connection.js).
        // The server ends the connection once it has checked the client's certificate.
        const authorized = yield* Effect.callback<boolean, Error>((resume) => {
          let verified = false
          const socket = Tls.connect(
            port,
            "127.0.0.1",
            { rejectUnauthorized: false, ...clientOptions.sslOptions },
            () => {
              verified = socket.authorized
            }
          )
          socket.on("error", (error) => resume(Effect.fail(error)))
          socket.on("close", () => resume(Effect.succeed(verified)))
          socket.resume()
        })
        assert.isTrue(authorized)
        assert.deepStrictEqual(clientNames, ["client"])
      }).pipe(Effect.scoped),
    60_000
  )
})
