/**
 * The `effect-koyeb` command line as the tests start it: the bin `npm run build` ships
 * (`dist/bin/effect-koyeb.cjs`, with `dist/cli.cjs` and the executor bundle beside it), built from
 * the current sources into the repository's `node_modules/.cache` and rebuilt only when one of
 * them changed, run with plain `node`. Starting it through `tsx` from the sources cost over a
 * second of CPU per run.
 */
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { devCliBundle } from "../../scripts/bundles.js"

const root = Path.resolve(import.meta.dirname, "../../../..")

/** The path of the bin: run it as `node <bin> …args` (resolved once per test file). */
export const cliBin: string = await devCliBundle(Path.join(root, "node_modules", ".cache", "effect-koyeb"))

/** What a finished CLI run printed, and its exit code. */
export interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Starts the CLI, `env` over this process's environment (`undefined` removes a variable), without colours. */
export const spawnCli = (
  args: ReadonlyArray<string>,
  env: Record<string, string | undefined> = {},
  stdin: "ignore" | "pipe" = "ignore"
): ChildProcess.ChildProcess =>
  ChildProcess.spawn(process.execPath, [cliBin, ...args], {
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: [stdin, "pipe", "pipe"]
  })

/** Waits for `child` to end: its exit code and everything it printed. */
export const finish = (child: ChildProcess.ChildProcess): Promise<Finished> =>
  new Promise((resolve, reject) => {
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d) => (stdout += d))
    child.stderr!.on("data", (d) => (stderr += d))
    child.once("error", reject)
    child.once("close", (code) => resolve({ code, stdout, stderr }))
  })

/** Runs the CLI to its end (`stdin` as its input, when given); killed if interrupted. */
export const runCli = (
  args: ReadonlyArray<string>,
  env: Record<string, string | undefined> = {},
  stdin?: string
): Effect.Effect<Finished> =>
  Effect.suspend(() => {
    const child = spawnCli(args, env, stdin === undefined ? "ignore" : "pipe")
    child.stdin?.end(stdin)
    return Effect.promise(() => finish(child)).pipe(Effect.onInterrupt(() => Effect.sync(() => child.kill("SIGKILL"))))
  })
