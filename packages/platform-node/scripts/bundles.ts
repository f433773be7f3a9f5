/**
 * The bundles `@effect-koyeb/platform-node` ships, built with esbuild from the TypeScript sources:
 * `dist/cli.cjs` (the whole command line in one file, so that it starts fast), started by the bin
 * `dist/bin/effect-koyeb.cjs` through the code-cache loader, `dist/executor.cjs` (only the
 * executor server, which the local backend starts once per sandbox) and `dist/executor-snapshot.cjs`
 * (the entry of the executor's startup snapshot). `npm run build` writes them;
 * when the package runs from its sources (this repository's dev loop), `executorCommand.ts` calls
 * `devExecutorBundle` and `devExecutorSnapshot` instead, which rebuild them into a cache whenever
 * one of their inputs changed; the tests start the command line the same way (`devCliBundle`).
 */
import * as Esbuild from "esbuild"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Url from "node:url"
import { loaderSource, removeUnused } from "../src/internal/executorCodeCache.js"
import { spawnerFile } from "../src/internal/spawner.js"

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

// Node 20 cannot snapshot these modules' native state (building fails on `node:http`'s parser),
// so the snapshot's modules get objects whose properties load the real module on first use, at run time.
const lazyBuiltins = new Set([
  "child_process",
  "dgram",
  "dns",
  "http",
  "http2",
  "https",
  "net",
  "tls",
  "worker_threads"
])
const lazyBuiltinsPlugin: Esbuild.Plugin = {
  name: "lazy-builtins",
  setup(build) {
    build.onResolve({ filter: /^(node:)?[a-z_0-9]+$/ }, (args) => {
      const name = args.path.replace(/^node:/, "")
      if (!lazyBuiltins.has(name)) return undefined
      return args.namespace === "lazy-builtins"
        ? { path: `node:${name}`, external: true }
        : { path: `node:${name}`, namespace: "lazy-builtins" }
    })
    build.onLoad({ filter: /.*/, namespace: "lazy-builtins" }, async (args) => {
      const names = Object.keys(await import(args.path)).filter((name) => name !== "default")
      const id = JSON.stringify(args.path)
      return {
        loader: "js",
        contents: `let real; const load = () => real ??= require(${id});\n` +
          names.map((name) =>
            `Object.defineProperty(exports, ${JSON.stringify(name)}, { enumerable: true, get: () => load()[${
              JSON.stringify(name)
            }] });`
          ).join("\n")
      }
    })
  }
}

/** The source files a build read. */
export const inputsOf = (result: Esbuild.BuildResult): ReadonlyArray<string> =>
  Object.keys(result.metafile!.inputs).filter((input) => !input.includes(":")).map((input) => Path.resolve(input))
    .sort()

/** Builds the executor-only bundle into `outfile`; returns the source files it was built from. */
export const buildExecutor = async (outfile: string): Promise<ReadonlyArray<string>> =>
  inputsOf(await Esbuild.build({ ...common(outfile), plugins: executorStubs }))

/**
 * Builds the entry of the executor's startup snapshot (`executorSnapshot.ts` turns it into a blob
 * for the running node); returns the source files it was built from.
 */
export const buildExecutorSnapshot = async (outfile: string): Promise<ReadonlyArray<string>> =>
  inputsOf(
    await Esbuild.build({
      ...common(outfile),
      entryPoints: [Path.join(packageDir, "src", "internal", "executorSnapshotEntry.ts")],
      plugins: [lazyBuiltinsPlugin, ...executorStubs]
    })
  )

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

/** Builds the command line into `dist/cli.cjs` and its bin `dist/bin/effect-koyeb.cjs`; returns the source files it was built from. */
export const buildCli = async (dist: string): Promise<ReadonlyArray<string>> => {
  const result = await Esbuild.build(common(Path.join(dist, "cli.cjs")))
  const bin = Path.join(dist, "bin", "effect-koyeb.cjs")
  Fs.mkdirSync(Path.dirname(bin), { recursive: true })
  Fs.writeFileSync(bin, binPrelude + loaderSource.replace(`"use strict"\n`, ""))
  Fs.chmodSync(bin, 0o755)
  return inputsOf(result)
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

/**
 * The output of `build` (a file `<name>-<key><extension>`, or a directory when the extension is
 * empty) for the current sources, rebuilt into `dir` when an input changed. `build` returns the
 * source files it read. One manifest per copy of this package: a copy elsewhere that shares
 * `node_modules` (a baseline checkout in /tmp) must not get this copy's bundles, nor this one its.
 */
export const devBuild = async (
  dir: string,
  name: string,
  extension: string,
  build: (output: string) => Promise<ReadonlyArray<string>>
): Promise<string> => {
  const copy = Crypto.createHash("sha256").update(packageDir).digest("hex").slice(0, 8)
  const manifestPath = Path.join(dir, `${name}-manifest-${copy}.json`)
  try {
    const manifest = JSON.parse(Fs.readFileSync(manifestPath, "utf8")) as Manifest
    if (inputsKey(manifest.inputs) === manifest.key && Fs.existsSync(manifest.bundle)) return manifest.bundle
  } catch {
    // no usable bundle
  }
  Fs.mkdirSync(dir, { recursive: true })
  const temp = Path.join(dir, `${name}-${process.pid}-${Crypto.randomUUID()}.tmp`)
  const inputs = await build(temp)
  const key = inputsKey(inputs) ?? Crypto.randomUUID()
  const bundle = Path.join(dir, `${name}-${key}${extension}`)
  try {
    Fs.renameSync(temp, bundle)
  } catch (error) {
    // a directory cannot replace the same build made concurrently: keep that one
    Fs.rmSync(temp, { recursive: true, force: true })
    if (!Fs.existsSync(bundle)) throw error
  }
  const manifestTemp = `${manifestPath}.${process.pid}`
  Fs.writeFileSync(manifestTemp, JSON.stringify({ key, bundle, inputs } satisfies Manifest))
  Fs.renameSync(manifestTemp, manifestPath)
  removeUnused(dir, new RegExp(`^${name}-[0-9a-f-]+${extension.replace(".", "\\.")}$`), bundle)
  return bundle
}

/** The executor bundle of the current sources, rebuilt into `dir` when an input changed. */
export const devExecutorBundle = (dir: string): Promise<string> => devBuild(dir, "executor", ".cjs", buildExecutor)

/** The executor's snapshot entry for the current sources, rebuilt into `dir` when an input changed. */
export const devExecutorSnapshot = (dir: string): Promise<string> =>
  devBuild(dir, "executor-snapshot", ".cjs", buildExecutorSnapshot)

const spawnerSource = Path.join(packageDir, "native", "spawner.c")

/**
 * Compiles `native/spawner.c` into `outfile` with the system's `cc`, static where the C library
 * allows (one binary for glibc and musl systems of this architecture); returns its source.
 */
export const buildSpawner = async (outfile: string): Promise<ReadonlyArray<string>> => {
  const compile = (extra: ReadonlyArray<string>) =>
    new Promise<void>((resolve, reject) =>
      ChildProcess.execFile(
        "cc",
        ["-O2", "-s", "-Wall", ...extra, "-o", outfile, spawnerSource],
        (error) => error === null ? resolve() : reject(error)
      )
    )
  await compile(["-static"]).catch(() => compile([]))
  return [spawnerSource]
}

/** The spawner compiled from the current source into `dir` (rebuilt when it changed). */
export const devSpawner = (dir: string): Promise<string> => devBuild(dir, "spawner", "", buildSpawner)

/**
 * Builds everything `dist` ships but the module builds: the command line, its bin, the executor,
 * its snapshot entry and the spawner (left out, with a warning, where no C compiler is installed:
 * the executor then starts commands with Node's own spawn).
 */
const buildBundles = async (dist: string): Promise<ReadonlyArray<string>> => {
  Fs.mkdirSync(dist, { recursive: true })
  const spawner = buildSpawner(Path.join(dist, spawnerFile)).catch((error: unknown) => {
    process.emitWarning(`effect-koyeb-spawner not built (${String(error)}); commands will use Node's spawn`)
    return []
  })
  const builds = await Promise.all([
    buildExecutor(Path.join(dist, "executor.cjs")),
    buildExecutorSnapshot(Path.join(dist, "executor-snapshot.cjs")),
    buildCli(dist),
    spawner
  ])
  return Array.from(new Set(builds.flat())).sort()
}

/**
 * The bin of the command line built from the current sources, in a directory laid out as `dist`
 * (the executor bundle next to it), rebuilt into `dir` when an input changed.
 */
export const devCliBundle = async (dir: string): Promise<string> =>
  Path.join(await devBuild(dir, "cli", "", buildBundles), "bin", "effect-koyeb.cjs")

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === Url.fileURLToPath(import.meta.url)) {
  await buildBundles(Path.join(packageDir, "dist"))
}
