/**
 * TLS certificates that change while a session runs. The driver builds each connection's TLS options from its
 * `sslOptions` when the connection opens (`lib/connection.js` copies them key by key), so a `secureContext` getter
 * on those options gives every new connection the context of the last certificate set that loaded, while the
 * connections already open keep theirs. A fiber looks at the certificates every reload interval and builds a new
 * context only when they changed; a set that cannot be used is reported (a log line with its typed error, which holds
 * no PEM and no path, and the `cassandra_tls_reloads_total` metric) and the last good context stays in place.
 */
import { createHash, X509Certificate } from "node:crypto"
import { stat } from "node:fs/promises"
import type * as tls from "node:tls"
import { createSecureContext } from "node:tls"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import * as CassandraError from "../CassandraError.ts"
import * as Metrics from "../Metrics.ts"
import { MetricsHub } from "./metricsRecorder.ts"

/** One certificate set as PEM text, with the passphrase of its key. */
export interface PemSet {
  readonly ca?: Array<string> | undefined
  readonly cert?: string | undefined
  readonly key?: string | undefined
  readonly passphrase?: string | undefined
}

/** The first line of an error's text, without the value Node's own argument checks append ("Received …"). */
const problemOf = (cause: unknown) =>
  `${(cause as NodeJS.ErrnoException).code ?? "error"}: ${
    String((cause as Error).message)
      .split("\n")[0]!
      .split(". Received")[0]
  }`

/** When the first certificate of a PEM chain expires; undefined when there is none OpenSSL reads as PEM. */
const expiryOf = (cert: unknown): Date | undefined => {
  if (typeof cert !== "string" && !(cert instanceof Uint8Array)) return undefined
  try {
    return new Date(new X509Certificate(cert).validTo)
  } catch {
    return undefined
  }
}

const pemCertificate = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

/**
 * The position (from 1) of the first certificate of a PEM chain that did not issue the one before it, as TLS 1.2
 * requires (each following certificate certifies the one preceding it), or undefined. Such a chain loads, and every
 * server refuses it: a rotation that bundled the wrong intermediate must not replace a good set.
 */
const brokenLinkOf = (cert: unknown): number | undefined => {
  if (typeof cert !== "string") return undefined
  const chain = cert.match(pemCertificate) ?? []
  for (let index = 1; index < chain.length; index++) {
    try {
      const issued = new X509Certificate(chain[index - 1]!)
      const issuer = new X509Certificate(chain[index]!)
      if (!(issued.checkIssued(issuer) && issued.verify(issuer.publicKey))) return index + 1
    } catch {
      // What OpenSSL loaded but X509Certificate cannot read is left to the server to judge.
      return undefined
    }
  }
  return undefined
}

/**
 * Builds the TLS context of `options`, so that unreadable PEM, a key that does not match its certificate, a wrong
 * passphrase or an expired client certificate fail here, with what to check, rather than as a handshake error on
 * every connection. OpenSSL's texts name the problem, never the key or the passphrase.
 */
export const secureContextOf = (options: tls.SecureContextOptions) =>
  Effect.suspend(() => {
    let context: tls.SecureContext
    try {
      context = createSecureContext(options)
    } catch (cause) {
      return Effect.fail(
        CassandraError.configuration(
          `The TLS settings cannot be used (${problemOf(cause)}): check that tls.ca and tls.cert hold PEM certificates, that tls.key is the PEM key of tls.cert, and that tls.passphrase decrypts it`
        )
      )
    }
    // The server would refuse an expired certificate or a broken chain at every handshake; say so once.
    const cert = Array.isArray(options.cert) ? options.cert[0] : options.cert
    const validTo = expiryOf(cert)
    if (validTo !== undefined && validTo.getTime() <= Date.now()) {
      return Effect.fail(
        CassandraError.configuration(
          `tls.cert expired on ${validTo.toISOString()}: give a certificate that is valid now`
        )
      )
    }
    const brokenLink = brokenLinkOf(cert)
    return brokenLink === undefined
      ? Effect.succeed(context)
      : Effect.fail(
          CassandraError.configuration(
            `tls.cert: certificate ${brokenLink} of the chain did not issue certificate ${brokenLink - 1}: give the client certificate first, then each issuer in order`
          )
        )
  })

/** Where the certificates of a reloading session come from, and how often they are looked at. */
export interface CertificateSource {
  readonly intervalMillis: number
  /**
   * The certificate set when it changed since the last look, else undefined. A set that changed is returned (or its
   * failure reported) once, so an unchanged bad set is not reported again at every look.
   */
  readonly changed: Effect.Effect<PemSet | undefined, CassandraError.CassandraError>
}

/** A digest of a certificate set: what a source remembers of the last set it returned, rather than the key itself. */
export const digestOf = (set: PemSet): string =>
  createHash("sha256")
    .update(JSON.stringify([set.ca ?? null, set.cert ?? null, set.key ?? null, set.passphrase ?? null]))
    .digest("hex")

/**
 * What identifies the current contents of these files, a `stat` each: device, inode, size and times, so that a file
 * rewritten in place, replaced by a rename or behind a swapped symbolic link (as Kubernetes updates secrets) all
 * count as changed. A file that cannot be looked at counts by its error code, so its loss is reported once.
 */
export const filesVersion = (paths: ReadonlyArray<string>): Effect.Effect<string> =>
  Effect.promise(() =>
    Promise.all(
      paths.map((path) =>
        stat(path, { bigint: true }).then(
          (s) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`,
          (error: NodeJS.ErrnoException) => `!${error.code ?? "error"}`
        )
      )
    ).then((versions) => versions.join("|"))
  )

/**
 * `sslOptions` for the driver whose `secureContext` is read anew by every connection it opens, and the Effect that
 * keeps that context current for the lifetime of the scope it runs in: a session runs it once it has connected, so
 * that a build that fails leaves nothing looking at the certificates. `options` are what each connection is given
 * besides the context, and what every context is built with (versions, ciphers) besides the certificate set.
 */
export const reloadingSslOptions = (
  initial: tls.SecureContext,
  options: tls.ConnectionOptions,
  source: CertificateSource
): { readonly sslOptions: tls.ConnectionOptions; readonly keepCurrent: Effect.Effect<void, never, Scope.Scope> } => {
  let current = initial
  const sslOptions: tls.ConnectionOptions = { ...options }
  Object.defineProperty(sslOptions, "secureContext", { enumerable: true, get: () => current })
  const keepCurrent = Effect.gen(function* () {
    const hub = yield* MetricsHub
    const record = (outcome: "loaded" | "rejected") =>
      hub === undefined ? Effect.void : Metric.update(Metric.withAttributes(Metrics.tlsReloads, { outcome }), 1)
    const look = source.changed.pipe(
      Effect.flatMap((set) =>
        set === undefined
          ? Effect.void
          : Effect.map(secureContextOf({ ...options, ...set }), (context) => {
              current = context
            }).pipe(
              Effect.andThen(record("loaded")),
              Effect.andThen(Effect.logInfo("TLS certificates reloaded: new connections use them"))
            )
      ),
      Effect.catch((error) =>
        record("rejected").pipe(
          Effect.andThen(
            Effect.logWarning(
              "TLS certificates not reloaded: new connections keep using the last set that loaded",
              Cause.fail(error)
            )
          )
        )
      ),
      Effect.annotateLogs({ component: "CertificateReload" })
    )
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(source.intervalMillis), look)))
  })
  return { sslOptions, keepCurrent }
}
