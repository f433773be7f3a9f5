/**
 * `effect-koyeb executor` without `@effect/cli`: the local backend starts one executor per sandbox,
 * so the bin parses the usual flags itself and leaves help and mistakes to the full command line.
 *
 * @internal
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Fs from "node:fs"
import * as ExecutorServer from "../ExecutorServer.js"
import { isTcpPort } from "./ports.js"

/** The flags of `effect-koyeb executor`. */
export interface ExecutorArgs {
  readonly host: string
  readonly port: number
  readonly proxyPort: number
  /** Inherited listening sockets (the local backend's), used instead of `--port` / `--proxy-port`. */
  readonly fd?: number | undefined
  readonly proxyFd?: number | undefined
  /** The spawner binary (the local backend's; default: the one next to this bundle). */
  readonly spawner?: string | undefined
}

/** A port flag: decimal digits naming a TCP port, or 0 for any free port. */
const portOf = (value: string | undefined): number | undefined => {
  const port = Number(value)
  return value !== undefined && /^[0-9]+$/.test(value) && (port === 0 || isTcpPort(port)) ? port : undefined
}

/** A file descriptor flag: decimal digits. */
const fdOf = (value: string | undefined): number | undefined =>
  value !== undefined && /^[0-9]{1,9}$/.test(value) ? Number(value) : undefined

/**
 * Parses `[--host H] [--port N] [--proxy-port N] [--fd N] [--proxy-fd N] [--spawner PATH]` (also `--flag=value`),
 * with `PORT` / `PROXY_PORT` as defaults; undefined for anything else (help, unknown or invalid
 * flags), which `@effect/cli` handles. `--fd` / `--proxy-fd` / `--spawner` are the local backend's, not shown in help.
 */
export const parseExecutorArgs = (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>
): ExecutorArgs | undefined => {
  let host: string | undefined = "127.0.0.1"
  let port = portOf(env.PORT || "3030")
  let proxyPort = portOf(env.PROXY_PORT || "3031")
  let fd: number | undefined
  let proxyFd: number | undefined
  let spawner: string | undefined
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1
    const flag = eq < 0 ? arg : arg.slice(0, eq)
    const value = eq < 0 ? args[++i] : arg.slice(eq + 1)
    if (flag === "--host") host = value === undefined || value === "" ? undefined : value
    else if (flag === "--port") port = portOf(value)
    else if (flag === "--proxy-port") proxyPort = portOf(value)
    else if (flag === "--spawner" && value !== undefined && value !== "") spawner = value
    else if (flag === "--fd" || flag === "--proxy-fd") {
      const fdValue = fdOf(value)
      if (fdValue === undefined) return undefined
      if (flag === "--fd") fd = fdValue
      else proxyFd = fdValue
    } else return undefined
    if (host === undefined || port === undefined || proxyPort === undefined) return undefined
  }
  return host === undefined || port === undefined || proxyPort === undefined
    ? undefined
    : { host, port, proxyPort, fd, proxyFd, spawner }
}

/**
 * Runs the executor server until interrupted, or until `EFFECT_KOYEB_PARENT_PID` is gone; a start
 * failure is printed on stderr. With `SANDBOX_SECRET_STDIN=1` the secret is read from standard
 * input instead of `SANDBOX_SECRET`, so it is not in `/proc/<pid>/environ` where the sandbox's
 * commands could read it.
 */
export const runExecutor = (options: ExecutorArgs): Effect.Effect<void, ExecutorServer.ExecutorServerError> => {
  const parent = process.env.EFFECT_KOYEB_PARENT_PID
  const parentPid = parent !== undefined && parent !== "" ? Number(parent) : undefined
  const secret = process.env.SANDBOX_SECRET_STDIN === "1"
    ? Redacted.make(Fs.readFileSync(0, "utf8").trim())
    : undefined
  return ExecutorServer.run({ ...options, parentPid, secret }).pipe(
    Effect.tapErrorTag("ExecutorServerError", (e) => Effect.sync(() => process.stderr.write(`${e.message}\n`)))
  )
}

/**
 * Serves `options` until interrupted, then exits like every command: 130 when interrupted
 * (SIGINT / SIGTERM), 1 when it failed to start.
 */
export const serveExecutor = (options: ExecutorArgs): void =>
  NodeRuntime.runMain(runExecutor(options), {
    disableErrorReporting: true,
    teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) ? 0 : Cause.isInterruptedOnly(exit.cause) ? 130 : 1)
  })

/**
 * Runs `executor …` (the arguments after the script) with `serveExecutor`; exits 2 when the
 * arguments are not the executor's, which only the full command line explains.
 */
export const runExecutorMain = (argv: ReadonlyArray<string>): void => {
  const [command, ...rest] = argv
  const fast = command === "executor" ? parseExecutorArgs(rest, process.env) : undefined
  if (fast === undefined) {
    process.stderr.write(`effect-koyeb: the executor snapshot only runs \`executor\` with its flags\n`)
    process.exit(2)
  }
  serveExecutor(fast)
}
