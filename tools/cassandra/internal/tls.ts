/**
 * Generates the throw-away TLS material of a cluster: a CA, a server certificate (valid or deliberately flawed) and a
 * client certificate, all PEM.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Effect } from "effect"
import { failure, firstLineOf, lastLine } from "./errors.ts"
import { addressOf } from "./layout.ts"
import { runCommand } from "./processes.ts"

/**
 * The PEM files of a cluster's TLS material.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsFiles {
  readonly caFile: string
  /** The server's private key followed by its certificate chain: Cassandra's PEM keystore. */
  readonly keystoreFile: string
  readonly clientCertFile: string
  readonly clientKeyFile: string
}

/**
 * Where the TLS material of the cluster in `directory` lives.
 *
 * @since 0.1.0
 * @category utils
 */
export const tlsFilesOf = (directory: string): TlsFiles => {
  const tls = Path.join(directory, "tls")
  return {
    caFile: Path.join(tls, "ca.pem"),
    keystoreFile: Path.join(tls, "server-keystore.pem"),
    clientCertFile: Path.join(tls, "client.pem"),
    clientKeyFile: Path.join(tls, "client.key")
  }
}

/**
 * A throw-away CA, a server certificate valid for every 127.0.0.x address (or flawed as asked), and a client
 * certificate, all PEM.
 *
 * @since 0.1.0
 * @category constructors
 */
export const generateTls = Effect.fnUntraced(function* (
  clusterPath: string,
  serverCertificate: "valid" | "expired" | "otherHost"
) {
  const files = tlsFilesOf(clusterPath)
  const directory = Path.dirname(files.caFile)
  Fs.mkdirSync(directory, { recursive: true })
  // The arguments are the space-separated `words`, then `subject` (which holds spaces) when given.
  const openssl = Effect.fnUntraced(function* (words: string, subject?: string) {
    const args = [...words.split(" "), ...(subject === undefined ? [] : [subject])]
    const result = yield* runCommand("openssl", args, { cwd: directory }).pipe(
      Effect.mapError((error) =>
        failure(
          "TlsSetupFailed",
          error.code === "ENOENT"
            ? "openssl was not found: install openssl (apt-get install openssl)"
            : `openssl could not run: ${firstLineOf(error)}`
        )
      )
    )
    if (result.exitCode !== 0) {
      return yield* failure(
        "TlsSetupFailed",
        `openssl ${args[0]} failed (${lastLine(result.stderr) ?? result.exitCode}): check the openssl installation`
      )
    }
  })
  const serverNames =
    serverCertificate === "otherHost"
      ? "DNS:elsewhere.invalid"
      : ["DNS:localhost", ...Array.from({ length: 254 }, (_, octet) => `IP:${addressOf(octet + 1)}`)].join(",")
  Fs.writeFileSync(
    Path.join(directory, "server.ext"),
    `subjectAltName=${serverNames}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`
  )
  Fs.writeFileSync(
    Path.join(directory, "client.ext"),
    "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
  )
  yield* openssl(
    "req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -subj",
    "/CN=effect-cassandra local test CA"
  )
  // OpenSSL 3.0 has no option for a start date; a negative validity ends the certificate a day before it starts.
  const serverDays = serverCertificate === "expired" ? -1 : 3650
  for (const [name, subject, days] of [
    ["server", "/CN=localhost", serverDays],
    ["client", "/CN=cassandra", 3650]
  ] as const) {
    yield* openssl(`req -newkey rsa:2048 -nodes -keyout ${name}.key -out ${name}.csr -subj`, subject)
    yield* openssl(
      `x509 -req -in ${name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days ${days} -extfile ${name}.ext -out ${name}.pem`
    )
  }
  Fs.writeFileSync(
    files.keystoreFile,
    ["server.key", "server.pem", "ca.pem"].map((file) => Fs.readFileSync(Path.join(directory, file), "utf8")).join("")
  )
  return files
})
