/**
 * How to start the executor server of a local sandbox as a child process. The package ships the
 * executor as one CommonJS bundle (`dist/executor.cjs`, built by `scripts/bundles.ts`); when this
 * module runs from the TypeScript sources (the repository's dev loop), the same script bundles the
 * current sources on demand. When a writable per-user cache directory exists, the executor starts
 * from a V8 startup snapshot (`executorSnapshot.ts`, built from `executor-snapshot.cjs` the same
 * way), else, when the snapshot cannot be built or does not start, through the code-cache loader of
 * `executorCodeCache.ts`; without that directory it starts directly. Each way, node runs with
 * `executorFlags` (a smaller young generation, one V8 background thread).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Url from "node:url"
import { cacheDirectory, codeCacheFile, executorFlags, warmUp, writeLoader } from "./executorCodeCache.js"
import { snapshotBlob } from "./executorSnapshot.js"
import { spawnerFile } from "./spawner.js"

/** A command line that runs the `effect-koyeb` CLI; append `executor …` to it. */
export interface ExecutorCommand {
  readonly command: string
  readonly args: ReadonlyArray<string>
  /** Host paths the command reads (kept visible inside bubblewrap). */
  readonly visiblePaths: ReadonlyArray<string>
  /** The spawner to pass as `executor --spawner <path>` (undefined: none for this platform). */
  readonly spawner: string | undefined
}

const nodePrefix = () => Path.dirname(Path.dirname(process.execPath))

/** `dist/<name>`, found from this module inside `dist/esm`, `dist/cjs` or a bundle in `dist/bin`. */
const shippedBundle = (name: string): string => {
  let dir = Path.dirname(Url.fileURLToPath(import.meta.url))
  for (let up = 0; up < 3; up++, dir = Path.dirname(dir)) {
    const bundle = Path.join(dir, name)
    if (Fs.existsSync(bundle)) return bundle
  }
  throw new Error(`the executor bundle (dist/${name}) is missing next to ${Url.fileURLToPath(import.meta.url)}`)
}

interface DevBundles {
  readonly devExecutorBundle: (dir: string) => Promise<string>
  readonly devExecutorSnapshot: (dir: string) => Promise<string>
  readonly devSpawner: (dir: string) => Promise<string>
}

/** Bundles the current sources into the repository's `node_modules/.cache` (esbuild is a dev dependency there). */
const devBundle = async (name: keyof DevBundles): Promise<string> => {
  // Not a literal specifier: the build must not follow it into the scripts.
  const script = new URL("../../scripts/bundles.ts", import.meta.url).href
  const bundles = (await import(script)) as DevBundles
  // Loaded here, not at the top: the executor's startup snapshot holds this module, and node does
  // not vouch for `node:module` in snapshots.
  const { createRequire } = await import("node:module")
  const esbuild = createRequire(import.meta.url).resolve("esbuild")
  const modules = `${Path.sep}node_modules`
  return bundles[name](
    Path.join(esbuild.slice(0, esbuild.lastIndexOf(modules) + modules.length), ".cache", "effect-koyeb")
  )
}

const fromSources = import.meta.url.endsWith(".ts")

/** The snapshot of the executor in `cacheDir`, undefined when its entry is missing or it cannot be built. */
const snapshot = async (cacheDir: string): Promise<string | undefined> => {
  try {
    return await snapshotBlob(
      cacheDir,
      fromSources ? await devBundle("devExecutorSnapshot") : shippedBundle("executor-snapshot.cjs")
    )
  } catch {
    return undefined
  }
}

/**
 * `effect-koyeb-spawner` (`native/spawner.c`, see `spawner.ts`): next to the bundles in `dist`, or
 * compiled from the sources into the cache; undefined off Linux or where it was not built.
 */
const findSpawner = async (): Promise<string | undefined> => {
  if (process.platform !== "linux") return undefined
  try {
    return fromSources ? await devBundle("devSpawner") : shippedBundle(spawnerFile)
  } catch {
    return undefined
  }
}

let spawnerCached: Promise<string | undefined> | undefined
const spawnerPath = () => (spawnerCached ??= findSpawner())

/** The spawner binary for this process's executors (looked up once per process). */
export const spawnerBinary: Effect.Effect<string | undefined> = Effect.promise(spawnerPath)

const resolve = async (): Promise<ExecutorCommand> => {
  const cacheDir = cacheDirectory()
  const spawner = await spawnerPath()
  const spawnerDir = spawner === undefined ? [] : [Path.dirname(spawner)]
  const blob = cacheDir === undefined ? undefined : await snapshot(cacheDir)
  if (cacheDir !== undefined && blob !== undefined) {
    return {
      command: process.execPath,
      args: [...executorFlags, "--snapshot-blob", blob],
      visiblePaths: [nodePrefix(), cacheDir, ...spawnerDir],
      spawner
    }
  }
  const bundle = fromSources ? await devBundle("devExecutorBundle") : shippedBundle("executor.cjs")
  const visible = [nodePrefix(), Path.dirname(bundle), ...spawnerDir]
  if (cacheDir === undefined) {
    return { command: process.execPath, args: [...executorFlags, bundle], visiblePaths: visible, spawner }
  }
  const loader = writeLoader(cacheDir)
  const cache = codeCacheFile(cacheDir, bundle)
  if (!Fs.existsSync(cache)) await warmUp([loader, bundle, cache])
  return {
    command: process.execPath,
    args: [...executorFlags, loader, bundle, cache],
    visiblePaths: [...visible, cacheDir],
    spawner
  }
}

let cached: Promise<ExecutorCommand> | undefined

/** The command that starts the executor of a local sandbox (resolved once per process). */
export const executorCommand: Effect.Effect<ExecutorCommand> = Effect.promise(() => (cached ??= resolve()))
