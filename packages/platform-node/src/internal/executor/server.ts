/**
 * The executor server's lifecycle: the listeners of the HTTP API and the TCP proxy, the process
 * groups and the process table, all tied to one scope.
 *
 * @internal
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Http from "node:http"
import type * as Net from "node:net"
import {
  type ExecutorServerAddressShape,
  ExecutorServerError,
  type ExecutorServerOptions
} from "../../ExecutorServer.js"
import { spawnerBinary } from "../executorCommand.js"
import * as GoFiles from "../goFiles.js"
import * as ProcessGroups from "../processGroups.js"
import * as ProcessTable from "../processTable.js"
import * as Spawner from "../spawner.js"
import * as TcpProxy from "../tcpProxy.js"
import * as ExecutorApp from "./app.js"
import type { AppContext, PortBinding } from "./context.js"

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
 * The spawner for this server's commands, started now and stopped with the scope, without holding
 * up the server's start (the first command waits for it); undefined (Node's spawn) when turned off,
 * not built for this platform, or not able to run here.
 */
const startSpawner = (option: string | false | undefined) =>
  Effect.gen(function*() {
    if (option === false) return undefined
    const binary = option ?? (yield* spawnerBinary)
    if (binary === undefined) return undefined
    const started = yield* Effect.acquireRelease(
      Effect.sync(() => Spawner.start(binary).catch(() => undefined)),
      (started) => Effect.promise(() => started.then((spawner) => spawner?.close()))
    )
    return Effect.promise(() => started)
  })

/** Starts the server in the current scope. */
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

  const groups = ProcessGroups.make(grace, yield* startSpawner(options.spawner))
  const processes = ProcessTable.make({
    groups,
    scope,
    linesPerStream: options.logLinesPerStream ?? 10_000,
    maxFinished: options.maxFinishedProcesses ?? 1000
  })
  const binding: PortBinding = { current: undefined }
  const app: AppContext = {
    secret: Redacted.value(secret),
    cwd,
    baseEnv: commandEnv(options.env ?? process.env),
    maxBodyBytes: options.maxBodyBytes ?? 64 * 1024 * 1024,
    groups,
    processes,
    files: GoFiles.make(cwd),
    binding
  }

  // No whole-request deadline: a file upload or download may take longer than Node's 5 minutes.
  const httpServer = Http.createServer({ requestTimeout: 0 })
  const listen: Net.ListenOptions = options.fd === undefined
    ? { host, port: options.port ?? 0 }
    // Node listens on an inherited descriptor given `{ fd }`, which its ListenOptions type omits.
    : ({ fd: options.fd } as Net.ListenOptions)
  const server = yield* NodeHttpServer.make(() => httpServer, listen).pipe(
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
  // Node's request event straight to the app: none of the platform's per-request span, scope and middleware
  yield* ExecutorApp.serve(httpServer, app)
  const proxy = yield* TcpProxy.make({
    host,
    port: options.proxyPort ?? 0,
    fd: options.proxyFd,
    target: () => binding.current
  }).pipe(
    Effect.mapError((cause) => new ExecutorServerError({ reason: "Listen", detail: String(cause), cause }))
  )
  const port = server.address._tag === "TcpAddress" ? server.address.port : 0
  const boundHost = options.fd !== undefined && server.address._tag === "TcpAddress" ? server.address.hostname : host
  return {
    url: `http://${urlHost(boundHost)}:${port}`,
    port,
    proxyPort: proxy.port
  } satisfies ExecutorServerAddressShape
})

/** Serves until interrupted or until `parentPid` is gone, after printing the listening line. */
export const run = (
  options: ExecutorServerOptions & { readonly parentPid?: number | undefined } = {}
): Effect.Effect<void, ExecutorServerError> =>
  Effect.scoped(Effect.gen(function*() {
    const address = yield* make(options)
    yield* Console.log(JSON.stringify({ event: "listening", ...address }))
    const parentPid = options.parentPid
    if (parentPid === undefined) return yield* Effect.never
    yield* Effect.repeat(Effect.sync(() => ProcessGroups.exists(parentPid)), {
      schedule: Schedule.spaced(Duration.millis(500)),
      while: (alive) => alive
    })
  }))
