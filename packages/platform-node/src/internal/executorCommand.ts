/**
 * How to start the executor server of a local sandbox as a child process. The package ships the
 * executor as one CommonJS bundle (`dist/executor.cjs`, built by `scripts/bundles.ts`); when this
 * module runs from the TypeScript sources (the repository's dev loop), the same script bundles the
 * current sources on demand. The bundle starts through the code-cache loader of
 * `executorCodeCache.ts` when a writable per-user cache directory exists, and directly otherwise.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Module from "node:module"
import * as Path from "node:path"
import * as Url from "node:url"
import { cacheDirectory, codeCacheFile, warmUp, writeLoader } from "./executorCodeCache.js"

/** A command line that runs the `effect-koyeb` CLI; append `executor …` to it. */
export interface ExecutorCommand {
  readonly command: string
  readonly args: ReadonlyArray<string>
  /** Host paths the command reads (kept visible inside bubblewrap). */
  readonly visiblePaths: ReadonlyArray<string>
}

const nodePrefix = () => Path.dirname(Path.dirname(process.execPath))

/** `dist/executor.cjs`, found from this module inside `dist/esm`, `dist/cjs` or a bundle in `dist/bin`. */
const shippedBundle = (): string => {
  let dir = Path.dirname(Url.fileURLToPath(import.meta.url))
  for (let up = 0; up < 3; up++, dir = Path.dirname(dir)) {
    const bundle = Path.join(dir, "executor.cjs")
    if (Fs.existsSync(bundle)) return bundle
  }
  throw new Error(`the executor bundle (dist/executor.cjs) is missing next to ${Url.fileURLToPath(import.meta.url)}`)
}

interface DevBundles {
  readonly devExecutorBundle: (dir: string) => Promise<string>
}

/** Bundles the current sources into the repository's `node_modules/.cache` (esbuild is a dev dependency there). */
const devBundle = async (): Promise<string> => {
  // Not a literal specifier: the build must not follow it into the scripts.
  const script = new URL("../../scripts/bundles.ts", import.meta.url).href
  const { devExecutorBundle } = (await import(script)) as DevBundles
  const esbuild = Module.createRequire(import.meta.url).resolve("esbuild")
  const modules = `${Path.sep}node_modules`
  return devExecutorBundle(
    Path.join(esbuild.slice(0, esbuild.lastIndexOf(modules) + modules.length), ".cache", "effect-koyeb")
  )
}

const resolve = async (): Promise<ExecutorCommand> => {
  const bundle = import.meta.url.endsWith(".ts") ? await devBundle() : shippedBundle()
  const visible = [nodePrefix(), Path.dirname(bundle)]
  const cacheDir = cacheDirectory()
  if (cacheDir === undefined) return { command: process.execPath, args: [bundle], visiblePaths: visible }
  const loader = writeLoader(cacheDir)
  const cache = codeCacheFile(cacheDir, bundle)
  if (!Fs.existsSync(cache)) await warmUp(loader, bundle, cache)
  return { command: process.execPath, args: [loader, bundle, cache], visiblePaths: [...visible, cacheDir] }
}

let cached: Promise<ExecutorCommand> | undefined

/** The command that starts the executor of a local sandbox (resolved once per process). */
export const executorCommand: Effect.Effect<ExecutorCommand> = Effect.promise(() => (cached ??= resolve()))
