/**
 * The bundles `@effect-koyeb/platform-node` ships, built with esbuild from the TypeScript sources:
 * `dist/cli.cjs` (the whole command line in one file, so that it starts fast), started by the bin
 * `dist/bin/effect-koyeb.cjs` through the code-cache loader, and `dist/executor.cjs` (only the
 * executor server, which the local backend starts once per sandbox). `npm run build` writes them;
 * when the package runs from its sources (this repository's dev loop), `executorCommand.ts` calls
 * `devExecutorBundle` instead, which rebuilds the executor bundle into a cache whenever one of its
 * inputs changed.
 */
import * as Esbuild from "esbuild"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Url from "node:url"
import { loaderSource } from "../src/internal/executorCodeCache.js"

const packageDir = Path.resolve(Path.dirname(Url.fileURLToPath(import.meta.url)), "..")
const entry = Path.join(packageDir, "src", "bin", "effect-koyeb.ts")

/** A module replaced by `contents`: what the executor never loads stays out of its bundle. */
const stub = (name: string, filter: RegExp, contents: string): Esbuild.Plugin => ({
  name,
  setup(build) {
    build.onResolve({ filter }, (args) => ({ path: args.path, namespace: name }))
    build.onLoad({ filter: /.*/, namespace: name }, () => ({ contents, loader: "js" }))
  }
})

// `ws` (imported by the Node HTTP server for upgrades) is a seventh of the executor bundle, and the
// executor serves no WebSocket; the command line is everything but `executor`.
const executorStubs = [
  stub(
    "no-websocket",
    /^ws$/,
    `export class WebSocketServer { constructor() { throw new Error("the executor does not serve WebSockets") } }`
  ),
  stub(
    "no-cli",
    /\/internal\/cli\.js$/,
    `export const main = () => { throw new Error("the executor bundle has no command line") }`
  )
]

const common = (outfile: string): Esbuild.BuildOptions => ({
  entryPoints: [entry],
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  outfile,
  conditions: ["@effect-koyeb/source"],
  metafile: true,
  logLevel: "warning",
  // Identifiers stay readable in stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  // The sources are ESM: in the CommonJS bundle `import.meta.url` is this file's URL.
  banner: { js: `const __import_meta_url = require("node:url").pathToFileURL(__filename).href;` },
  define: { "import.meta.url": "__import_meta_url" }
})

/** Builds the executor-only bundle into `outfile`; returns the source files it was built from. */
export const buildExecutor = async (outfile: string): Promise<ReadonlyArray<string>> => {
  const result = await Esbuild.build({ ...common(outfile), plugins: executorStubs })
  return Object.keys(result.metafile!.inputs).filter((input) => !input.includes(":"))
    .map((input) => Path.resolve(input)).sort()
}

// The bin: `dist/cli.cjs` through the loader, with its code cache in the per-user cache directory
// (as `cacheDirectory` finds it) when that can be written, else without one.
const binPrelude = `#!/usr/bin/env node
{
  const Fs = require("node:fs")
  const Os = require("node:os")
  const Path = require("node:path")
  const cli = Path.join(__dirname, "..", "cli.cjs")
  let cache = ""
  try {
    const dir = Path.join(process.env.XDG_CACHE_HOME || Path.join(Os.homedir(), ".cache"), "effect-koyeb")
    Fs.mkdirSync(dir, { recursive: true })
    Fs.accessSync(dir, Fs.constants.W_OK)
    const stat = Fs.statSync(cli)
    cache = Path.join(dir, "cli-" + process.version + "-" + stat.size + "-" + Math.trunc(stat.mtimeMs) + ".v8cache")
  } catch {}
  process.argv.splice(2, 0, cli, cache)
}
`

/** Builds the command line into `dist/cli.cjs` and its bin `dist/bin/effect-koyeb.cjs`. */
export const buildCli = async (dist: string): Promise<void> => {
  await Esbuild.build(common(Path.join(dist, "cli.cjs")))
  const bin = Path.join(dist, "bin", "effect-koyeb.cjs")
  Fs.writeFileSync(bin, binPrelude + loaderSource.replace(`"use strict"\n`, ""))
  Fs.chmodSync(bin, 0o755)
}

/** A key over the inputs of a build: it changes when any of them is edited, added or removed. */
const inputsKey = (inputs: ReadonlyArray<string>): string | undefined => {
  const hash = Crypto.createHash("sha256").update(`${process.version}\n`)
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

// Other processes may still be about to start an older bundle: only those unused for a day go.
const removeStaleBundles = (dir: string, keep: string): void => {
  const dayAgo = Date.now() - 86_400_000
  for (const name of Fs.readdirSync(dir)) {
    const file = Path.join(dir, name)
    if (!/^executor-.*\.cjs$/.test(name) || file === keep) continue
    try {
      if (Fs.statSync(file).atimeMs < dayAgo) Fs.rmSync(file, { force: true })
    } catch {
      // removed concurrently
    }
  }
}

/** The executor bundle of the current sources, rebuilt into `dir` when an input changed. */
export const devExecutorBundle = async (dir: string): Promise<string> => {
  const manifestPath = Path.join(dir, "executor-manifest.json")
  try {
    const manifest = JSON.parse(Fs.readFileSync(manifestPath, "utf8")) as Manifest
    if (inputsKey(manifest.inputs) === manifest.key && Fs.existsSync(manifest.bundle)) return manifest.bundle
  } catch {
    // no usable bundle
  }
  Fs.mkdirSync(dir, { recursive: true })
  const temp = Path.join(dir, `executor-${process.pid}-${Crypto.randomUUID()}.tmp`)
  const inputs = await buildExecutor(temp)
  const key = inputsKey(inputs) ?? Crypto.randomUUID()
  const bundle = Path.join(dir, `executor-${key}.cjs`)
  Fs.renameSync(temp, bundle)
  const manifestTemp = `${manifestPath}.${process.pid}`
  Fs.writeFileSync(manifestTemp, JSON.stringify({ key, bundle, inputs } satisfies Manifest))
  Fs.renameSync(manifestTemp, manifestPath)
  removeStaleBundles(dir, bundle)
  return bundle
}

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === Url.fileURLToPath(import.meta.url)) {
  const dist = Path.join(packageDir, "dist")
  Fs.mkdirSync(Path.join(dist, "bin"), { recursive: true })
  await Promise.all([buildExecutor(Path.join(dist, "executor.cjs")), buildCli(dist)])
}
