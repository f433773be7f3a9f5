/**
 * How to start the executor server as a child process: the one place that knows whether it runs
 * from a bundle or through tsx. From the TypeScript sources, the CLI is bundled once with esbuild
 * into a CommonJS cache file keyed by its inputs and started through the code-cache loader of
 * `executorCodeCache.ts` (~70 ms to listening; tsx takes ~1 s); when esbuild is missing or fails,
 * tsx runs the sources directly.
 *
 * @internal
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Module from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import * as Effect from "effect/Effect"
import type * as Esbuild from "esbuild"
import { cacheFileOf, warmUp, writeLoader } from "./executorCodeCache.js"

/** A command line that runs the `effect-koyeb` CLI; append `executor …` to it. */
export interface ExecutorCommand {
  readonly command: string
  readonly args: ReadonlyArray<string>
  /** Host paths the command reads (kept visible inside bubblewrap). */
  readonly visiblePaths: ReadonlyArray<string>
}

const nodePrefix = () => Path.dirname(Path.dirname(process.execPath))

const commonAncestor = (paths: ReadonlyArray<string>): string =>
  paths.map((p) => p.split(Path.sep)).reduce((acc, parts) => {
    let i = 0
    while (i < acc.length && i < parts.length && acc[i] === parts[i]) i++
    return acc.slice(0, i)
  }).join(Path.sep) || Path.sep

/** `node_modules/.cache/effect-koyeb` next to the installed esbuild, else a directory under the OS tmpdir. */
const cacheDir = (): string => {
  try {
    const esbuild = Module.createRequire(import.meta.url).resolve("esbuild")
    const at = esbuild.lastIndexOf(`${Path.sep}node_modules${Path.sep}`)
    if (at < 0) throw new Error("esbuild is not under node_modules")
    const modules = esbuild.slice(0, at + `${Path.sep}node_modules`.length)
    const cache = Path.join(modules, ".cache", "effect-koyeb")
    Fs.mkdirSync(cache, { recursive: true })
    Fs.accessSync(cache, Fs.constants.W_OK)
    return cache
  } catch {
    const fallback = Path.join(Os.tmpdir(), "effect-koyeb-cache")
    Fs.mkdirSync(fallback, { recursive: true })
    return fallback
  }
}

// Part of the key: a change of the bundle's format must not reuse an older bundle.
const bundleFormat = "cjs-v8cache-1"

/** A key over the inputs of the last build: changes when any of them is edited, added or removed. */
const inputsKey = (inputs: ReadonlyArray<string>): string | undefined => {
  const hash = Crypto.createHash("sha256").update(`${process.version}\0${bundleFormat}\n`)
  try {
    for (const input of inputs) {
      const stat = Fs.statSync(input)
      hash.update(`${input}\0${stat.size}\0${stat.mtimeMs}\n`)
    }
  } catch {
    return undefined
  }
  return hash.digest("hex").slice(0, 16)
}

interface Manifest {
  readonly key: string
  readonly bundle: string
  readonly inputs: ReadonlyArray<string>
}

// Other processes may still be about to start an older bundle: only remove those unused for a day.
const removeStaleBundles = (dir: string, keep: ReadonlyArray<string>): void => {
  const dayAgo = Date.now() - 86_400_000
  for (const name of Fs.readdirSync(dir)) {
    const file = Path.join(dir, name)
    if (!name.startsWith("executor-") || !/\.(mjs|cjs|v8cache)$/.test(name) || keep.includes(file)) continue
    try {
      if (Fs.statSync(file).atimeMs < dayAgo) Fs.rmSync(file, { force: true })
    } catch {
      // removed concurrently
    }
  }
}

// The executor serves no WebSocket, and `ws` (imported by the Node HTTP server for upgrades) is a
// seventh of the bundle: it is replaced by a stub that fails if an upgrade is ever attempted.
const noWebSocket: Esbuild.Plugin = {
  name: "no-websocket",
  setup(build) {
    build.onResolve({ filter: /^ws$/ }, () => ({ path: "ws", namespace: "no-websocket" }))
    build.onLoad({ filter: /.*/, namespace: "no-websocket" }, () => ({
      contents: `export class WebSocketServer { constructor() { throw new Error("the executor does not serve WebSockets") } }`,
      loader: "js"
    }))
  }
}

/** The bundle of `entry` (built when its inputs changed) and the loader that starts it. */
const bundled = async (entry: string): Promise<{ readonly loader: string; readonly bundle: string }> => {
  const dir = cacheDir()
  const loader = writeLoader(dir)
  const manifestPath = Path.join(dir, "executor-manifest.json")
  let bundle: string | undefined
  try {
    const manifest = JSON.parse(Fs.readFileSync(manifestPath, "utf8")) as Manifest
    if (inputsKey(manifest.inputs) === manifest.key && Fs.existsSync(manifest.bundle)) bundle = manifest.bundle
  } catch {
    // no usable cache
  }
  if (bundle === undefined) {
    const esbuild = await import("esbuild")
    const temp = Path.join(dir, `executor-${process.pid}-${Date.now()}.cjs`)
    const result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      platform: "node",
      format: "cjs",
      target: `node${process.versions.node.split(".")[0]}`,
      outfile: temp,
      metafile: true,
      logLevel: "silent",
      // Identifiers stay readable in stack traces.
      minifyWhitespace: true,
      minifySyntax: true,
      plugins: [noWebSocket]
    })
    const inputs = Object.keys(result.metafile.inputs).filter((input) => !input.startsWith("no-websocket:"))
      .map((input) => Path.resolve(input)).sort()
    const key = inputsKey(inputs) ?? Crypto.randomUUID()
    bundle = Path.join(dir, `executor-${key}.cjs`)
    Fs.renameSync(temp, bundle)
    const manifestTemp = `${manifestPath}.${process.pid}`
    Fs.writeFileSync(manifestTemp, JSON.stringify({ key, bundle, inputs } satisfies Manifest))
    Fs.renameSync(manifestTemp, manifestPath)
    removeStaleBundles(dir, [bundle, cacheFileOf(bundle), loader])
  }
  if (!Fs.existsSync(cacheFileOf(bundle))) await warmUp(loader, bundle)
  return { loader, bundle }
}

const resolve = async (): Promise<ExecutorCommand> => {
  const js = Url.fileURLToPath(new URL("../bin/effect-koyeb.js", import.meta.url))
  if (Fs.existsSync(js)) return { command: process.execPath, args: [js], visiblePaths: [nodePrefix(), Path.dirname(js)] }
  const ts = Url.fileURLToPath(new URL("../bin/effect-koyeb.ts", import.meta.url))
  try {
    const { bundle, loader } = await bundled(ts)
    return { command: process.execPath, args: [loader, bundle], visiblePaths: [nodePrefix(), Path.dirname(bundle)] }
  } catch {
    const tsx = Module.createRequire(import.meta.url).resolve("tsx")
    return {
      command: process.execPath,
      args: ["--import", Url.pathToFileURL(tsx).href, ts],
      visiblePaths: [nodePrefix(), commonAncestor([tsx, ts])]
    }
  }
}

let cached: Promise<ExecutorCommand> | undefined

/** The command that starts the executor of a local sandbox (resolved once per process). */
export const executorCommand: Effect.Effect<ExecutorCommand> = Effect.promise(() => (cached ??= resolve()))
