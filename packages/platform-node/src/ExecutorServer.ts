/**
 * A sandbox executor server that speaks the stock Koyeb executor's wire format (`/run`,
 * `/run_streaming`, files, background processes, TCP proxy; with and without the
 * `/koyeb-sandbox` prefix), so Koyeb's SDKs and ours work against it unchanged, while fixing the
 * stock's bugs: no stderr deadlock, no crash or loss on log replay, kills reach the whole process
 * group, bounded memory and bodies, and the sandbox secret is hidden from commands.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Http from "node:http"
import * as ExecutorApp from "./internal/executorApp.js"
import * as GoFiles from "./internal/goFiles.js"
import * as ProcessGroups from "./internal/processGroups.js"
import * as ProcessTable from "./internal/processTable.js"
import * as TcpProxy from "./internal/tcpProxy.js"

/**
 * Options of the executor server; every field is optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecutorServerOptions {
  /** Interface of both listeners (default `127.0.0.1`). */
  readonly host?: string | undefined
  /** HTTP API port (default 0: ephemeral). */
  readonly port?: number | undefined
  /** TCP proxy port (default 0: ephemeral). */
  readonly proxyPort?: number | undefined
  /** The bearer secret (default: the `SANDBOX_SECRET` environment variable). */
  readonly secret?: Redacted.Redacted<string> | undefined
  /** Working directory of commands and base of relative file paths (default `process.cwd()`). */
  readonly cwd?: string | undefined
  /** Base environment of commands (default `process.env`); `SANDBOX_SECRET` is always removed. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** Time between SIGTERM and SIGKILL when a process group is killed (default 2 seconds). */
  readonly killGracePeriod?: Duration.DurationInput | undefined
  /** Largest accepted JSON request body; larger ones get 413 (default 64 MiB). `/write_file_bytes` streams to disk, unbounded. */
  readonly maxBodyBytes?: number | undefined
  /** Lines kept per stream of each background process (default 10 000). */
  readonly logLinesPerStream?: number | undefined
  /** Finished background processes kept in the table (default 1000). */
  readonly maxFinishedProcesses?: number | undefined
}

/**
 * Where a running executor server listens.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecutorServerAddressShape {
  /** Base URL of the HTTP API, e.g. `http://127.0.0.1:41234`. */
  readonly url: string
  readonly port: number
  /** Port of the TCP proxy (what `/bind_port` forwards). */
  readonly proxyPort: number
}

/**
 * The address of the executor server provided by `layer`.
 *
 * @since 0.1.0
 * @category tags
 */
export class ExecutorServerAddress extends Context.Tag("@effect-koyeb/platform-node/ExecutorServerAddress")<
  ExecutorServerAddress,
  ExecutorServerAddressShape
>() {}

/**
 * The executor server could not start: no secret configured, or a port could not be bound.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExecutorServerError extends Schema.TaggedError<ExecutorServerError>(
  "@effect-koyeb/platform-node/ExecutorServerError"
)("ExecutorServerError", {
  reason: Schema.Literal("MissingSecret", "Listen"),
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  get message(): string {
    return `Executor server failed to start (${this.reason}): ${this.detail}`
  }
}

/** Variables of the server's own configuration that commands must not see. */
const hiddenVariables = ["SANDBOX_SECRET", "SANDBOX_SECRET_STDIN", "EFFECT_KOYEB_PARENT_PID"]

const commandEnv = (env: Readonly<Record<string, string | undefined>>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && !hiddenVariables.includes(key)) out[key] = value
  }
  return out
}

const urlHost = (host: string): string =>
  host === "0.0.0.0" || host === "" ? "127.0.0.1" : host === "::" ? "[::1]" : host.includes(":") ? `[${host}]` : host

/**
 * Starts the executor server; both listeners close and every process group it started is killed when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fn("ExecutorServer.make")(function*(options: ExecutorServerOptions = {}) {
  const secret = options.secret ??
    Option.getOrUndefined(
      yield* Config.option(Config.redacted("SANDBOX_SECRET")).pipe(Effect.orElseSucceed(Option.none))
    )
  if (secret === undefined || Redacted.value(secret) === "") {
    return yield* new ExecutorServerError({
      reason: "MissingSecret",
      detail: "SANDBOX_SECRET environment variable not set"
    })
  }
  const host = options.host ?? "127.0.0.1"
  const cwd = options.cwd ?? process.cwd()
  const grace = Duration.decode(options.killGracePeriod ?? Duration.seconds(2))
  const scope = yield* Effect.scope

  const groups = ProcessGroups.make(grace)
  const processes = ProcessTable.make({
    groups,
    scope,
    linesPerStream: options.logLinesPerStream ?? 10_000,
    maxFinished: options.maxFinishedProcesses ?? 1000
  })
  const binding: ExecutorApp.PortBinding = { current: undefined }
  const app = ExecutorApp.make({
    secret: Redacted.value(secret),
    cwd,
    baseEnv: commandEnv(options.env ?? process.env),
    maxBodyBytes: options.maxBodyBytes ?? 64 * 1024 * 1024,
    groups,
    processes,
    files: GoFiles.make(cwd)
  }, binding)

  // No whole-request deadline: a file upload or download may take longer than Node's 5 minutes.
  const httpServer = Http.createServer({ requestTimeout: 0 })
  const server = yield* NodeHttpServer.make(() => httpServer, { host, port: options.port ?? 0 }).pipe(
    Effect.mapError((e) => new ExecutorServerError({ reason: "Listen", detail: String(e.cause), cause: e.cause }))
  )
  // runs before the platform's close: stop accepting, kill every group, then drop open streams
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      httpServer.close()
      yield* groups.killAll
      httpServer.closeAllConnections()
    })
  )
  yield* server.serve(app)
  const proxy = yield* TcpProxy.make({ host, port: options.proxyPort ?? 0, target: () => binding.current }).pipe(
    Effect.mapError((cause) => new ExecutorServerError({ reason: "Listen", detail: String(cause), cause }))
  )
  const port = server.address._tag === "TcpAddress" ? server.address.port : 0
  return { url: `http://${urlHost(host)}:${port}`, port, proxyPort: proxy.port } satisfies ExecutorServerAddressShape
})

/**
 * The executor server as a layer providing its address.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ExecutorServerOptions = {}): Layer.Layer<ExecutorServerAddress, ExecutorServerError> =>
  Layer.scoped(ExecutorServerAddress, make(options))

/** Whether process `pid` exists (EPERM: it exists but belongs to someone else). */
const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Runs the server until interrupted, or until the process `parentPid` is gone (polled every
 * 500 ms): the entry point of `effect-koyeb executor`. When listening it prints one JSON line to
 * stdout: `{"event":"listening","url":…,"port":…,"proxyPort":…}`.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  options: ExecutorServerOptions & { readonly parentPid?: number | undefined } = {}
): Effect.Effect<void, ExecutorServerError> =>
  Effect.scoped(Effect.gen(function*() {
    const address = yield* make(options)
    yield* Console.log(JSON.stringify({ event: "listening", ...address }))
    const parentPid = options.parentPid
    if (parentPid === undefined) return yield* Effect.never
    yield* Effect.repeat(Effect.sync(() => isAlive(parentPid)), {
      schedule: Schedule.spaced(Duration.millis(500)),
      while: (alive) => alive
    })
  }))
