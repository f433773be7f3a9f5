/**
 * The programs of `examples/` as the tests run them: bundled from the current sources (ES modules
 * sharing their chunks) with the executor bundle beside them, as the published package has it,
 * into the repository's `node_modules/.cache`, rebuilt only when one of the sources changed; each
 * runs with plain `node`. Through `tsx` every run compiled the SDK's sources again, about 2 s of
 * CPU per example.
 */
import * as Esbuild from "esbuild"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { buildExecutor, devBuild, inputsOf } from "../../scripts/bundles.js"

const root = Path.resolve(import.meta.dirname, "../../../..")
const examplesDir = Path.join(root, "examples")

/** The example programs, by file name. */
export const examples: ReadonlyArray<string> = Fs.readdirSync(examplesDir)
  .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts")).sort()

const build = async (outdir: string): Promise<ReadonlyArray<string>> => {
  const [bundled, executor] = await Promise.all([
    Esbuild.build({
      entryPoints: examples.map((file) => Path.join(examplesDir, file)),
      bundle: true,
      splitting: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outdir,
      outExtension: { ".js": ".mjs" },
      conditions: ["@effect-koyeb/source"],
      metafile: true,
      logLevel: "warning",
      // CommonJS dependencies inside ES modules still `require` Node's built-ins
      banner: {
        js:
          `import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);`
      }
    }),
    // found next to the bundled `executorCommand` module, as in `dist`
    buildExecutor(Path.join(outdir, "executor.cjs"))
  ])
  // the directory too: an example added or removed changes its time
  return Array.from(new Set([examplesDir, ...inputsOf(bundled), ...executor])).sort()
}

const dir = await devBuild(Path.join(root, "node_modules", ".cache", "effect-koyeb"), "examples", "", build)

/** The bundled program of `examples/<file>`. */
export const exampleBundle = (file: string): string => Path.join(dir, file.replace(/\.ts$/, ".mjs"))
