import { generateKeyPairSync } from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as CassandraError from "../../src/CassandraError.ts"
import { makeClientOptions } from "../../src/internal/clientOptions.ts"
import type * as Session from "../../src/Session.ts"

const passphrase = "correct horse battery staple"

/** A client key encrypted with `passphrase`, and the same key in the clear. */
const { privateKey: encryptedKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  publicKeyEncoding: { type: "spki", format: "pem" },
  privateKeyEncoding: { type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase }
})

const base: Session.Options = { contactPoints: ["127.0.0.1"], localDataCenter: "datacenter1" }

const sslOptionsOf = (tls: Session.TlsOptions) =>
  Effect.map(makeClientOptions({ ...base, tls }), (options) => options.sslOptions)

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
      const ssl = yield* sslOptionsOf({})
      assert.deepStrictEqual(ssl, { minVersion: "TLSv1.2", rejectUnauthorized: true })
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
      assert.strictEqual(inline?.key, encryptedKey)
      assert.strictEqual(fromFile?.key, encryptedKey)
      assert.strictEqual(fromFile?.passphrase, passphrase)
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
      assert.include(unreadable.message, "/nonexistent/ca.pem (ENOENT)")
      const garbled = yield* Effect.flip(
        sslOptionsOf({ cert: "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n" })
      )
      assert.instanceOf(garbled.reason, CassandraError.Configuration)
      assert.include(garbled.message, "tls.cert hold PEM certificates")
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
})
