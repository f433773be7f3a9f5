/**
 * A V8 code cache for the executor bundle. Most of an executor's start-up CPU went into parsing
 * and compiling the ~0.7 MB bundle; a tiny CommonJS loader compiles it with `vm.Script` and the
 * `cachedData` recorded by one warm-up run (outside bubblewrap, where the cache directory is
 * read-only), so that functions compiled while starting and serving the first requests are
 * deserialized instead. The loader and the cache live in a per-user cache directory, never next to
 * the installed package (which may be read-only); a missing or rejected cache only costs the
 * compilation.
 *
 * @internal
 */
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

/**
 * `node <loader> <bundle.cjs> <cache file> …`: runs the bundle as if it were started directly (it sees
 * `process.argv` without the loader's two arguments) and, when the cache was missing or rejected,
 * records it at exit. An empty cache file name runs without a cache. The bin of the package is this
 * loader too, after a prelude that puts the command line's bundle and cache file in `process.argv`.
 */
export const loaderSource = `"use strict"
const Fs = require("node:fs")
const Module = require("node:module")
const Path = require("node:path")
const Vm = require("node:vm")
const bundle = process.argv[2]
const cacheFile = process.argv[3]
process.argv.splice(1, 3, bundle)
let cachedData
try {
  if (cacheFile) cachedData = Fs.readFileSync(cacheFile)
} catch {}
const source = Fs.readFileSync(bundle, "utf8")
const script = new Vm.Script(Module.wrap(source.startsWith("#!") ? "//" + source.slice(2) : source), { filename: bundle, cachedData })
if (cacheFile && (cachedData === undefined || script.cachedDataRejected)) {
  process.once("exit", () => {
    try {
      const temp = cacheFile + "." + process.pid
      Fs.writeFileSync(temp, script.createCachedData())
      Fs.renameSync(temp, cacheFile)
    } catch {}
  })
}
const module_ = { exports: {}, filename: bundle, id: ".", loaded: false }
script.runInThisContext().call(module_.exports, module_.exports, Module.createRequire(bundle), module_, bundle, Path.dirname(bundle))
`

/**
 * The node flags of every executor, and of the runs that build and record its snapshot and code
 * cache (V8 rejects both when its flags differ). An idle executor is mostly young generation and
 * threads: semi-spaces of 1 MiB instead of growing to several (the young generation of an executor
 * that served a few requests is ~2 MiB instead of ~4 MiB) and one V8 background thread instead of
 * four (each thread keeps its own stack and malloc arena).
 */
export const executorFlags: ReadonlyArray<string> = ["--max-semi-space-size=1", "--v8-pool-size=1"]

const loaderName = `executor-loader-${Crypto.createHash("sha256").update(loaderSource).digest("hex").slice(0, 8)}.cjs`

/** Writes the loader into `dir` (once per loader version); returns its path. */
export const writeLoader = (dir: string): string => {
  const loader = Path.join(dir, loaderName)
  if (!Fs.existsSync(loader)) {
    const temp = `${loader}.${process.pid}`
    Fs.writeFileSync(temp, loaderSource)
    Fs.renameSync(temp, loader)
  }
  return loader
}

/** `$XDG_CACHE_HOME/effect-koyeb` or `~/.cache/effect-koyeb` when it can be written, else undefined (no code cache). */
export const cacheDirectory = (): string | undefined => {
  const base = process.env.XDG_CACHE_HOME || Path.join(Os.homedir(), ".cache")
  const dir = Path.join(base, "effect-koyeb")
  try {
    Fs.mkdirSync(dir, { recursive: true })
    Fs.accessSync(dir, Fs.constants.W_OK)
    return dir
  } catch {
    return undefined
  }
}

/**
 * Removes the entries of `dir` named like `stale` but `keep` that were not used for a day: other
 * processes may still be about to start an older one.
 */
export const removeUnused = (dir: string, stale: RegExp, keep: string): void => {
  const dayAgo = Date.now() - 86_400_000
  for (const name of Fs.readdirSync(dir)) {
    const file = Path.join(dir, name)
    if (!stale.test(name) || file === keep) continue
    try {
      if (Fs.statSync(file).atimeMs < dayAgo) Fs.rmSync(file, { recursive: true, force: true })
    } catch {
      // removed concurrently
    }
  }
}

/**
 * The code cache of `bundle` in `dir`, named after the bundle's path, size and time and the node
 * version (V8 rejects a cache made for other sources or another V8). Caches unused for a day go.
 */
export const codeCacheFile = (dir: string, bundle: string): string => {
  const stat = Fs.statSync(bundle)
  const key = Crypto.createHash("sha256").update(
    `${loaderName}\0${process.version}\0${executorFlags.join(" ")}\0${bundle}\0${stat.size}\0${stat.mtimeMs}`
  )
    .digest("hex").slice(0, 16)
  const cache = Path.join(dir, `executor-${key}.v8cache`)
  removeUnused(dir, /\.v8cache$/, cache)
  return cache
}

const request = (url: string, secret: string, path: string, body?: unknown): Promise<unknown> =>
  fetch(`${url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(5_000)
  }).then((response) =>
    response.ok ? response.arrayBuffer() : Promise.reject(new Error(`${path}: HTTP ${response.status}`))
  )

/**
 * Runs the executor once as `node <executorFlags> <args> executor …`: it starts, serves a command
 * and a file round trip, and exits; true when it served them all. Through the loader, the loader
 * records its code cache when it exits (best effort: any failure leaves no cache); with a snapshot
 * blob, it proves that the blob starts an executor.
 */
export const warmUp = (args: ReadonlyArray<string>): Promise<boolean> =>
  new Promise<boolean>((resolve) => {
    const home = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-warmup-"))
    const secret = Crypto.randomBytes(16).toString("hex")
    // The same flags as a real executor (no NODE_OPTIONS), or V8 would reject the cache.
    const child = ChildProcess.spawn(
      process.execPath,
      [...executorFlags, ...args, "executor", "--host", "127.0.0.1", "--port", "0", "--proxy-port", "0"],
      {
        cwd: home,
        env: {
          PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
          HOME: home,
          TMPDIR: home,
          SANDBOX_SECRET_STDIN: "1",
          EFFECT_KOYEB_PARENT_PID: String(process.pid)
        },
        stdio: ["pipe", "pipe", "ignore"]
      }
    )
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
    let served = false
    const finish = () => {
      clearTimeout(timer)
      Fs.rmSync(home, { recursive: true, force: true })
      resolve(served)
    }
    child.on("error", finish)
    child.on("exit", finish)
    child.stdin.end(secret)
    let stdout = ""
    const onData = (chunk: string) => {
      stdout += chunk
      const newline = stdout.indexOf("\n")
      if (newline < 0) return
      child.stdout.off("data", onData).resume()
      let url: string | undefined
      try {
        url = String(JSON.parse(stdout.slice(0, newline)).url)
      } catch {
        // not the listening line
      }
      if (url === undefined) return child.kill("SIGKILL")
      request(url, secret, "/health")
        .then(() => request(url, secret, "/koyeb-sandbox/run", { cmd: "true", cwd: "", env: {} }))
        .then(() => request(url, secret, "/koyeb-sandbox/write_file", { path: "warmup.txt", content: "warm" }))
        .then(() => request(url, secret, "/koyeb-sandbox/read_file", { path: "warmup.txt" }))
        .then(() => {
          served = true
          child.kill("SIGTERM")
        }, () => child.kill("SIGKILL"))
    }
    child.stdout.setEncoding("utf8").on("data", onData)
  })
