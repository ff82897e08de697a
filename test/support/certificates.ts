/**
 * Test-time certificates made with the openssl command line: a self-signed CA, and certificates it (or another CA)
 * issues. Every file is written to the given directory as `<name>.key`, `<name>.pem` (and `<name>.csr`, `<name>.ext`).
 * Synchronous, so that a module can make its material at load; a failed command throws with openssl's error output.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"

/**
 * Runs openssl in `directory`; `env` is added to the environment (a passphrase goes there, not on the command line).
 *
 * @since 0.1.0
 * @category constructors
 */
export const openssl = (directory: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): void => {
  const result = ChildProcess.spawnSync("openssl", args, {
    cwd: directory,
    encoding: "utf8",
    env: { ...process.env, ...env }
  })
  if (result.status !== 0) {
    throw new Error(`openssl ${args[0]} failed: ${result.error?.message ?? result.stderr}`)
  }
}

/**
 * A key pair's algorithm: RSA 2048 bits, or EC on P-256.
 *
 * @since 0.1.0
 * @category models
 */
export type KeyType = "rsa" | "ec"

/**
 * The files of a certificate and its private key, as absolute paths; a CA's are what it signs with.
 *
 * @since 0.1.0
 * @category models
 */
export interface CertificateFiles {
  readonly cert: string
  readonly key: string
}

const newKey = (key: KeyType): ReadonlyArray<string> =>
  key === "rsa" ? ["-newkey", "rsa:2048"] : ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]

const filesOf = (directory: string, name: string): CertificateFiles => ({
  cert: Path.join(directory, `${name}.pem`),
  key: Path.join(directory, `${name}.key`)
})

/**
 * A self-signed CA certificate `name`, valid for `days` from now; `extensions` are x509v3 lines such as
 * `basicConstraints=critical,CA:TRUE` (openssl's defaults when none).
 *
 * @since 0.1.0
 * @category constructors
 */
export const selfSignedCa = (
  directory: string,
  options: {
    readonly name: string
    readonly subject: string
    readonly key: KeyType
    readonly days: number
    readonly extensions?: ReadonlyArray<string>
  }
): CertificateFiles => {
  const { name } = options
  openssl(directory, [
    "req",
    "-x509",
    ...newKey(options.key),
    "-nodes",
    "-days",
    String(options.days),
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    ...(options.extensions ?? []).flatMap((line) => ["-addext", line]),
    "-subj",
    options.subject
  ])
  return filesOf(directory, name)
}

/**
 * A certificate `name` issued by `signer` for a new key, valid for `days` from now (a negative number makes one that
 * expired before it started: OpenSSL 3.0 has no start date option). `extensions`: x509v3 lines (written to
 * `<name>.ext`) or an extension file. `serial`: the certificate's serial number; without it, the serial file openssl
 * keeps next to the signer's certificate, made when missing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const issue = (
  directory: string,
  options: {
    readonly name: string
    readonly subject: string
    readonly key: KeyType
    readonly signer: CertificateFiles
    readonly days: number
    readonly extensions?: ReadonlyArray<string> | { readonly file: string }
    readonly serial?: number
  }
): CertificateFiles => {
  const { name, extensions } = options
  openssl(directory, [
    "req",
    ...newKey(options.key),
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    options.subject
  ])
  let extensionFile: string | undefined
  if (extensions !== undefined && "file" in extensions) {
    extensionFile = extensions.file
  } else if (extensions !== undefined) {
    extensionFile = Path.join(directory, `${name}.ext`)
    Fs.writeFileSync(extensionFile, `${extensions.join("\n")}\n`)
  }
  openssl(directory, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    options.signer.cert,
    "-CAkey",
    options.signer.key,
    ...(options.serial === undefined ? ["-CAcreateserial"] : ["-set_serial", String(options.serial)]),
    "-out",
    `${name}.pem`,
    "-days",
    String(options.days),
    ...(extensionFile === undefined ? [] : ["-extfile", extensionFile])
  ])
  return filesOf(directory, name)
}
