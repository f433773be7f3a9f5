#!/usr/bin/env -S npx tsx
/**
 * The `effect-koyeb` command line: `create`, `list`, `exec`, `cp`, `logs`, `expose`, `delete`
 * (against Koyeb, or the emulator with `KOYEB_API_HOST`), `executor` and `emulator` to run the
 * servers; `effect-koyeb --help` and `effect-koyeb <command> --help` describe them.
 *
 * `executor [--host H] [--port N] [--proxy-port N]` starts without loading `@effect/cli`: the local
 * backend bundles this file and starts one executor per sandbox. `PORT`, `PROXY_PORT` and
 * `SANDBOX_SECRET` are read like the stock executor (flags win), `EFFECT_KOYEB_PARENT_PID` makes it
 * exit when that process is gone, and it prints one JSON line
 * `{"event":"listening","url":…,"port":…,"proxyPort":…}` when ready.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { parseExecutorArgs, runExecutor } from "../internal/cliExecutor.js"

const [command, ...rest] = process.argv.slice(2)
const fast = command === "executor" ? parseExecutorArgs(rest, process.env) : undefined
if (fast !== undefined) {
  NodeRuntime.runMain(runExecutor(fast), { disableErrorReporting: true })
} else {
  // Not a literal specifier: the executor bundle (built from this file) must not pull in the full CLI.
  const cliModule = "../internal/cli.js"
  ;(import(cliModule) as Promise<typeof import("../internal/cli.js")>).then(
    (cli) => cli.main(process.argv),
    (error: unknown) => {
      process.stderr.write(`effect-koyeb: cannot load the command line: ${String(error)}\n`)
      process.exit(2)
    }
  )
}
