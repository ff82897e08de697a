import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Cassandra from "cassandra-driver"
import * as Schema from "effect/Schema"
import * as CassandraError from "effect-cassandra/CassandraError"

const host = "127.0.0.41:9042"

/** A Node TLS error as the driver passes it on: Node's text, its code, and OpenSSL's short reason when it has one. */
const tlsError = (code: string, message: string, fields: Record<string, unknown> = {}): Error & { code: string } =>
  Object.assign(new Error(message), { code, ...fields })

/** The failure of a connect where every contact point failed with `inner`. */
const connectFailure = (inner: unknown, context: CassandraError.ErrorContext = {}) =>
  CassandraError.fromDriverError(new Cassandra.errors.NoHostAvailableError({ [host]: inner }), {
    operation: "connect",
    ...context
  })

// The errors below are the ones Node 24 (OpenSSL 3) raised against the secured test node of test/cluster.
const observed: ReadonlyArray<
  readonly [error: Error & { code: string }, problem: CassandraError.TlsProblem, advice: string]
> = [
  [
    tlsError("SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain"),
    "UnknownAuthority",
    "put the certificate of the CA that signed it in tls.ca"
  ],
  [tlsError("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate"), "UnknownAuthority", "tls.ca"],
  [
    tlsError(
      "ERR_TLS_CERT_ALTNAME_INVALID",
      "Hostname/IP does not match certificate's altnames: IP: 127.0.0.43 is not in the cert's list: ",
      { reason: "IP: 127.0.0.43 is not in the cert's list: ", host: "127.0.0.43" }
    ),
    "HostnameMismatch",
    "set tls.serverName to one of them"
  ],
  [tlsError("CERT_HAS_EXPIRED", "certificate has expired"), "Expired", "renew the node's certificate"],
  [tlsError("CERT_NOT_YET_VALID", "certificate is not yet valid"), "Expired", "check the clocks"],
  [
    tlsError(
      "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED",
      "40ADD1C1197F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:918:SSL alert number 116\n",
      { library: "SSL routines", reason: "tlsv13 alert certificate required" }
    ),
    "ClientCertificateRequired",
    "set tls.cert and tls.key"
  ],
  [
    tlsError("ERR_SSL_SSL/TLS_ALERT_BAD_CERTIFICATE", "…:ssl/tls alert bad certificate:…", {
      reason: "ssl/tls alert bad certificate"
    }),
    "ClientCertificateRejected",
    "signed by a CA the node trusts"
  ],
  [
    tlsError("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA", "…:tlsv1 alert unknown ca:…", { reason: "tlsv1 alert unknown ca" }),
    "ClientCertificateRejected",
    "signed by a CA the node trusts"
  ],
  [
    tlsError(
      "ERR_SSL_WRONG_VERSION_NUMBER",
      "402D4736A57F0000:error:0A00010B:SSL routines:tls_validate_record_header:wrong version number:…",
      { reason: "wrong version number" }
    ),
    "ServerNotTls",
    "remove tls, or enable client_encryption_options on the node"
  ],
  [
    tlsError("ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE", "…:ssl/tls alert handshake failure:…", {
      reason: "ssl/tls alert handshake failure"
    }),
    "Handshake",
    "check tls.minVersion, the client certificate"
  ]
]

describe("CassandraError: TLS failures", () => {
  for (const [error, problem, advice] of observed) {
    it(`reads ${error.code} as a Tls reason with the problem ${problem}`, () => {
      const failure = connectFailure(error)
      assert.instanceOf(failure.reason, CassandraError.Tls)
      assert.deepInclude(failure.reason, { problem, code: error.code, coordinator: host })
      assert.include(failure.message, advice)
      assert.include(failure.message, host)
      assert.isFalse(failure.isRetryable)
    })
  }

  it("shows OpenSSL's short reason rather than its error line", () => {
    const failure = connectFailure(observed[5]![0])
    assert.include(failure.message, "(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: tlsv13 alert certificate required)")
    assert.notInclude(failure.message, "rec_layer_s3.c")
  })

  it("names the host a certificate does not cover without listing every name of the certificate", () => {
    const altNames = Array.from({ length: 254 }, (_, octet) => `IP Address:127.0.0.${octet + 1}`).join(", ")
    const failure = connectFailure(
      tlsError(
        "ERR_TLS_CERT_ALTNAME_INVALID",
        `Hostname/IP does not match certificate's altnames: Host: db.example.org. is not in the cert's altnames: ${altNames}`,
        { reason: `Host: db.example.org. is not in the cert's altnames: ${altNames}`, host: "db.example.org" }
      )
    )
    assert.deepInclude(failure.reason, { problem: "HostnameMismatch" })
    assert.include(failure.message, "db.example.org is not among the names and addresses of the certificate")
    assert.isBelow(failure.message.length, 400)
  })

  it("keeps any other long TLS text short", () => {
    const failure = connectFailure(tlsError("ERR_SSL_UNSUPPORTED_PROTOCOL", "x".repeat(1000)))
    assert.deepInclude(failure.reason, { problem: "Handshake" })
    assert.isBelow(failure.message.length, 500)
  })

  it("reads a reset of a plaintext connection as a node that requires TLS, and only then", () => {
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET", syscall: "read", errno: -104 })
    const plaintext = connectFailure(reset, { plaintext: true })
    assert.deepInclude(plaintext.reason, { _tag: "Tls", problem: "TlsRequired", code: "ECONNRESET" })
    assert.include(plaintext.message, "the node requires TLS, so set tls")
    assert.isFalse(plaintext.isRetryable)

    const overTls = connectFailure(reset, { plaintext: false })
    assert.strictEqual(overTls.reason._tag, "NoHostAvailable")
    assert.isTrue(overTls.isRetryable)
  })

  it("lists each host's TLS failure when the hosts failed differently", () => {
    const failure = CassandraError.fromDriverError(
      new Cassandra.errors.NoHostAvailableError({
        [host]: observed[3]![0],
        "127.0.0.42:9042": Object.assign(new Error("connect ECONNREFUSED 127.0.0.42:9042"), {
          code: "ECONNREFUSED",
          syscall: "connect"
        })
      })
    )
    assert.instanceOf(failure.reason, CassandraError.NoHostAvailable)
    const hosts = (failure.reason as CassandraError.NoHostAvailable).hosts
    assert.deepInclude(hosts[0]!, { address: host, reason: "Tls", retryable: false })
    assert.include(hosts[0]!.message, "has expired")
    assert.isTrue(failure.isRetryable)
  })

  it("encodes and decodes the Tls reason through the schema", () => {
    const failure = connectFailure(observed[0]![0])
    const encoded = Schema.encodeSync(CassandraError.CassandraError)(failure)
    assert.deepInclude(encoded.reason, { _tag: "Tls", problem: "UnknownAuthority" })
    const decoded = Schema.decodeSync(CassandraError.CassandraError)(encoded)
    assert.strictEqual(decoded.message, failure.message)
    assert.include(inspect(failure), "UnknownAuthority")
  })
})
