/**
 * The HTTP application of the executor server: routing and auth in front of one handler per
 * endpoint, speaking the stock Go executor's wire format. `/x` and `/koyeb-sandbox/x` are the same
 * endpoint; unknown paths are 404 before auth; `/health` needs no auth. `serve` runs it on a Node
 * server with little per-request work (the tests check its replies byte for byte against the same
 * dispatch served by `@effect/platform`'s server).
 *
 * @internal
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type * as NodeHttp from "node:http"
import { bearer } from "./auth.js"
import * as Commands from "./commands.js"
import type { AppContext } from "./context.js"
import * as Files from "./files.js"
import * as Http from "./http.js"
import { notFound, type Request, type Response, unauthorized } from "./http.js"
import * as Interactive from "./interactive.js"
import * as PortBinding from "./portBinding.js"
import * as Processes from "./processes.js"
import * as Pty from "./pty.js"
import * as Watch from "./watch.js"

/**
 * Extensions over the stock executor, advertised by `/health` (clients must not require them);
 * `pty` only when the commands' `PATH` has `script`, so that clients take their fallback otherwise.
 */
const capabilities = (pty: boolean): ReadonlyArray<string> => [
  "process-group-kill",
  "process-details",
  "ordered-logs",
  "secret-hidden",
  "binary-files",
  "interactive",
  ...(pty ? ["pty"] : []),
  "watch"
]

// written raw, so Go's content sniffing calls the JSON text/plain
const healthReply = (pty: boolean) =>
  HttpServerResponse.text(JSON.stringify({ status: "ok", capabilities: capabilities(pty) }), {
    contentType: "text/plain; charset=utf-8"
  })

const prefix = "/koyeb-sandbox"

/** The endpoint a request URL names: its path without the query and without the `/koyeb-sandbox` prefix. */
export const endpointOf = (url: string): string => {
  const query = url.indexOf("?")
  const path = query === -1 ? url : url.slice(0, query)
  return path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : path
}

/** The endpoints that keep state between requests (background processes, sessions, watches, the port binding). */
export const statefulEndpoints: ReadonlySet<string> = new Set([
  "/bind_port",
  "/unbind_port",
  "/start_process",
  "/list_processes",
  "/kill_process",
  "/process_logs_streaming",
  "/spawn",
  "/stdin",
  "/stdin_end",
  "/signal",
  "/resize",
  "/watch"
])

/** A reply at once (`/health`, 404, 401), or the endpoint's effect. */
export type Dispatch = (request: Request) => Response | Effect.Effect<Response>

/** Routing and auth in front of the endpoints of `ctx`. */
export const dispatcher = (ctx: AppContext): Dispatch => {
  const pty = Pty.available(ctx.baseEnv) // one lookup, at server start
  const health = healthReply(pty)
  const authorized = bearer(ctx.secret)
  const sessions = Interactive.makeSessions()
  const routes: Record<string, (request: Request) => Effect.Effect<Response>> = {
    "/run": (r) => Commands.run(ctx, r),
    "/run_streaming": (r) => Commands.runStreaming(ctx, r),
    "/write_file": (r) => Files.writeFile(ctx, r),
    "/read_file": (r) => Files.readFile(ctx, r),
    "/write_file_bytes": (r) => Files.writeFileBytes(ctx, r),
    "/read_file_bytes": (r) => Files.readFileBytes(ctx, r),
    "/delete_file": (r) => Files.pathOp(ctx, r, ctx.files.deleteFile),
    "/delete_dir": (r) => Files.pathOp(ctx, r, ctx.files.deleteDir),
    "/make_dir": (r) => Files.pathOp(ctx, r, ctx.files.makeDir),
    "/list_dir": (r) => Files.listDir(ctx, r),
    "/bind_port": (r) => PortBinding.bindPort(ctx, r),
    "/unbind_port": () => PortBinding.unbindPort(ctx),
    "/start_process": (r) => Processes.startProcess(ctx, r),
    "/list_processes": (r) => Processes.listProcesses(ctx, r),
    "/kill_process": (r) => Processes.killProcess(ctx, r),
    "/process_logs_streaming": (r) => Processes.processLogs(ctx, r),
    "/spawn": (r) => Interactive.spawn(ctx, sessions, r, pty),
    "/stdin": (r) => Interactive.stdin(sessions, r),
    "/stdin_end": (r) => Interactive.stdinEnd(ctx, sessions, r),
    "/signal": (r) => Interactive.signal(ctx, sessions, r),
    "/resize": (r) => Interactive.resize(ctx, sessions, r),
    "/watch": (r) => Watch.watch(ctx, r)
  }
  return (request) => {
    const path = endpointOf(request.url)
    if (path === "/health") return health
    const handler = Object.hasOwn(routes, path) ? routes[path] : undefined
    if (handler === undefined) return notFound
    if (!authorized(request.headers.authorization)) return unauthorized
    return handler(request)
  }
}

/** Requests handed to another server as they are (see `serve`). */
export interface Forward {
  readonly endpoints: ReadonlySet<string>
  readonly handle: (incoming: NodeHttp.IncomingMessage, response: NodeHttp.ServerResponse) => void
}

/**
 * Serves the application on `server` for the lifetime of the current scope, straight from Node's
 * `request` event: none of `@effect/platform`'s per-request work (a span, a scope, middleware, a
 * fiber for replies known at once). As there, each endpoint runs uninterruptibly but where it
 * says otherwise, a client that goes away before the reply has ended interrupts it, and a defect
 * is a `500` with no body (or the end of a body already started). The endpoints of `forward` go
 * to its handler untouched (it answers them, auth included).
 */
export const serve = (
  server: NodeHttp.Server,
  ctx: AppContext,
  forward?: Forward
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.flatMap(Effect.runtime<never>(), (runtime) => {
    const runFork = Runtime.runFork(runtime)
    const dispatch = dispatcher(ctx)
    const listener = (incoming: NodeHttp.IncomingMessage, response: NodeHttp.ServerResponse) => {
      if (forward !== undefined && forward.endpoints.has(endpointOf(incoming.url!))) {
        return forward.handle(incoming, response)
      }
      const request = Http.request(incoming, response)
      let reply: Response | Effect.Effect<Response>
      try {
        reply = dispatch(request)
      } catch (defect) {
        // a handler that throws while building its effect gets a 500, as in a fiber
        reply = Effect.die(defect)
      }
      const rest = HttpServerResponse.isServerResponse(reply)
        ? Http.write(request, reply)
        : Effect.flatMap(reply, (r) => Http.write(request, r) ?? Effect.void)
      if (rest === undefined) return
      const fiber = runFork(Effect.uninterruptible(Effect.catchAllCause(rest, failed(response))))
      response.once("close", () => {
        if (!response.writableEnded) fiber.unsafeInterruptAsFork(fiber.id())
      })
    }
    return Effect.acquireRelease(
      Effect.sync(() => server.on("request", listener)),
      () => Effect.sync(() => server.off("request", listener))
    )
  })

const failed = (response: NodeHttp.ServerResponse) => (cause: Cause.Cause<never>) =>
  Effect.sync(() => {
    if (!response.headersSent && !Cause.isInterruptedOnly(cause)) response.writeHead(500)
    if (!response.writableEnded) response.end()
  })
