/**
 * How to start the executor server as a child process: the one place that knows whether it runs
 * from a bundle or through tsx. From the TypeScript sources, the CLI is bundled once with esbuild
 * into a cache file keyed by its inputs (Node loads the bundle in ~0.1 s, tsx takes ~1 s); when
 * esbuild is missing or fails, tsx runs the sources directly.
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

/** A key over the inputs of the last build: changes when any of them is edited, added or removed. */
const inputsKey = (inputs: ReadonlyArray<string>): string | undefined => {
  const hash = Crypto.createHash("sha256").update(process.version)
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
const removeStaleBundles = (dir: string, keep: string): void => {
  const dayAgo = Date.now() - 86_400_000
  for (const name of Fs.readdirSync(dir)) {
    const file = Path.join(dir, name)
    if (!name.startsWith("executor-") || !name.endsWith(".mjs") || file === keep) continue
    try {
      if (Fs.statSync(file).atimeMs < dayAgo) Fs.rmSync(file, { force: true })
    } catch {
      // removed concurrently
    }
  }
}

const bundled = async (entry: string): Promise<string> => {
  const dir = cacheDir()
  const manifestPath = Path.join(dir, "executor-manifest.json")
  try {
    const manifest = JSON.parse(Fs.readFileSync(manifestPath, "utf8")) as Manifest
    if (inputsKey(manifest.inputs) === manifest.key && Fs.existsSync(manifest.bundle)) return manifest.bundle
  } catch {
    // no usable cache
  }
  const esbuild = await import("esbuild")
  const temp = Path.join(dir, `executor-${process.pid}-${Date.now()}.mjs`)
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    target: `node${process.versions.node.split(".")[0]}`,
    outfile: temp,
    metafile: true,
    logLevel: "silent",
    // Bundled CommonJS dependencies (ws, undici) call require() for Node built-ins.
    banner: { js: `import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);` }
  })
  const inputs = Object.keys(result.metafile.inputs).map((input) => Path.resolve(input)).sort()
  const key = inputsKey(inputs) ?? Crypto.randomUUID()
  const bundle = Path.join(dir, `executor-${key}.mjs`)
  Fs.renameSync(temp, bundle)
  const manifestTemp = `${manifestPath}.${process.pid}`
  Fs.writeFileSync(manifestTemp, JSON.stringify({ key, bundle, inputs } satisfies Manifest))
  Fs.renameSync(manifestTemp, manifestPath)
  removeStaleBundles(dir, bundle)
  return bundle
}

const resolve = async (): Promise<ExecutorCommand> => {
  const js = Url.fileURLToPath(new URL("../bin/effect-koyeb.js", import.meta.url))
  if (Fs.existsSync(js)) return { command: process.execPath, args: [js], visiblePaths: [nodePrefix(), Path.dirname(js)] }
  const ts = Url.fileURLToPath(new URL("../bin/effect-koyeb.ts", import.meta.url))
  try {
    const bundle = await bundled(ts)
    return { command: process.execPath, args: [bundle], visiblePaths: [nodePrefix(), Path.dirname(bundle)] }
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
