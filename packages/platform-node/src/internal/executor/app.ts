/**
 * The HTTP application of the executor server: routing and auth in front of one handler per
 * endpoint, speaking the stock Go executor's wire format. `/x` and `/koyeb-sandbox/x` are the same
 * endpoint; unknown paths are 404 before auth; `/health` needs no auth.
 *
 * @internal
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { isAuthorized } from "./auth.js"
import * as Commands from "./commands.js"
import type { AppContext } from "./context.js"
import * as Files from "./files.js"
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

/** Builds the application. */
export const make = (ctx: AppContext): HttpApp.Default => {
  const health = healthReply(Pty.available(ctx.baseEnv)) // one lookup, at server start
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
    "/spawn": (r) => Interactive.spawn(ctx, sessions, r),
    "/stdin": (r) => Interactive.stdin(sessions, r),
    "/stdin_end": (r) => Interactive.stdinEnd(ctx, sessions, r),
    "/signal": (r) => Interactive.signal(ctx, sessions, r),
    "/resize": (r) => Interactive.resize(ctx, sessions, r),
    "/watch": (r) => Watch.watch(ctx, r)
  }
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const query = request.url.indexOf("?")
    let path = query === -1 ? request.url : request.url.slice(0, query)
    if (path.startsWith(`${prefix}/`)) path = path.slice(prefix.length)
    if (path === "/health") return Effect.succeed(health)
    const handler = Object.hasOwn(routes, path) ? routes[path] : undefined
    if (handler === undefined) return Effect.succeed(notFound)
    if (!isAuthorized(request, ctx.secret)) return Effect.succeed(unauthorized)
    return handler(request)
  })
}
