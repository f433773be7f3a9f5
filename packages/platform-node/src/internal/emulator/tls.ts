/**
 * The emulator's TLS material, made with the `openssl` command line (no npm dependency): a CA of
 * its own and a server certificate it signs for `localhost`, `127.0.0.1`, `::1`, the host the
 * emulator binds and every app domain (`*.koyeb.localhost`). Keys and certificates live in a
 * temporary directory removed with the scope; clients trust the CA file.
 *
 * @internal
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

/** The parent domain of the app domains handed out with TLS (covered by the wildcard SAN). */
export const APP_DOMAIN_SUFFIX = "koyeb.localhost"

/** The TLS material could not be made (`openssl` missing or failing). */
export class TlsError extends Data.TaggedError("TlsError")<{ readonly detail: string; readonly cause?: unknown }> {}

/** A CA and the server certificate it signed, as PEM. */
export interface TlsMaterial {
  /** Path of the CA certificate (PEM). */
  readonly caPath: string
  readonly ca: string
  readonly key: string
  readonly cert: string
}

const run = (openssl: string, args: ReadonlyArray<string>, cwd: string) =>
  Effect.async<void, TlsError>((resume) => {
    const child = ChildProcess.execFile(openssl, args, { cwd, timeout: 30_000 }, (error, _stdout, stderr) => {
      if (error === null) return resume(Effect.void)
      const missing = (error as NodeJS.ErrnoException).code === "ENOENT"
      resume(Effect.fail(
        new TlsError({
          detail: missing
            ? `\`${openssl}\` was not found: TLS needs the openssl command line to make its certificates`
            : `openssl ${args[0]} failed: ${String(stderr).trim() || error.message}`,
          cause: error
        })
      ))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** Makes the CA and the server certificate for `host` in a temporary directory removed with the scope. */
export const make = Effect.fnUntraced(function*(host: string, openssl = "openssl") {
  const dir = yield* Effect.acquireRelease(
    Effect.try({
      try: () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-tls-")),
      catch: (cause) => new TlsError({ detail: `cannot create a temporary directory: ${String(cause)}`, cause })
    }),
    (dir) => Effect.promise(() => Fs.promises.rm(dir, { recursive: true, force: true }).catch(() => undefined))
  )
  const names = new Set(["DNS:localhost", `DNS:*.${APP_DOMAIN_SUFFIX}`, "IP:127.0.0.1", "IP:::1"])
  if (host !== "" && host !== "0.0.0.0" && host !== "::") names.add(Net.isIP(host) ? `IP:${host}` : `DNS:${host}`)
  yield* Effect.try({
    try: () =>
      Fs.writeFileSync(
        Path.join(dir, "server.ext"),
        `subjectAltName=${[...names].join(",")}\nbasicConstraints=critical,CA:FALSE\n` +
          "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
      ),
    catch: (cause) => new TlsError({ detail: `cannot write in ${dir}: ${String(cause)}`, cause })
  })
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  yield* run(openssl, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "30",
    "-subj",
    "/CN=effect-koyeb emulator CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign"
  ], dir)
  yield* run(openssl, ["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"], dir)
  yield* run(openssl, [
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "30",
    "-extfile",
    "server.ext",
    "-out",
    "server.pem"
  ], dir)
  return yield* Effect.try({
    try: (): TlsMaterial => ({
      caPath: Path.join(dir, "ca.pem"),
      ca: Fs.readFileSync(Path.join(dir, "ca.pem"), "utf8"),
      key: Fs.readFileSync(Path.join(dir, "server.key"), "utf8"),
      cert: Fs.readFileSync(Path.join(dir, "server.pem"), "utf8")
    }),
    catch: (cause) => new TlsError({ detail: `cannot read the certificates: ${String(cause)}`, cause })
  })
})
