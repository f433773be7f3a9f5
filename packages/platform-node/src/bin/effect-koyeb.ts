#!/usr/bin/env node
/**
 * The `effect-koyeb` command line: `create`, `list`, `exec`, `cp`, `logs`, `expose`, `delete`
 * (against Koyeb, or the emulator with `KOYEB_API_HOST`), `executor` and `emulator` to run the
 * servers; `effect-koyeb --help` and `effect-koyeb <command> --help` describe them.
 *
 * `executor [--host H] [--port N] [--proxy-port N]` starts without loading `@effect/cli`: the local
 * backend starts one executor per sandbox from a bundle of this file without the command line
 * (`scripts/bundles.ts`); the package's bin is a bundle of this file with everything. `PORT`,
 * `PROXY_PORT` and `SANDBOX_SECRET` are read like the stock executor (flags win),
 * `EFFECT_KOYEB_PARENT_PID` makes it exit when that process is gone, and it prints one JSON line
 * `{"event":"listening","url":…,"port":…,"proxyPort":…}` when ready. Like every command, it exits
 * 130 when interrupted by SIGINT or SIGTERM.
 *
 * @since 0.1.0
 */
import packageJson from "../../package.json" with { type: "json" }
import { parseExecutorArgs, serveExecutor } from "../internal/cliExecutor.js"

const [command, ...rest] = process.argv.slice(2)
const fast = command === "executor" ? parseExecutorArgs(rest, process.env) : undefined
if (fast !== undefined) {
  serveExecutor(fast)
} else {
  import("../internal/cli.js").then(
    (cli) => cli.main(process.argv, packageJson.version),
    (error: unknown) => {
      process.stderr.write(`effect-koyeb: cannot load the command line: ${String(error)}\n`)
      process.exit(2)
    }
  )
}
