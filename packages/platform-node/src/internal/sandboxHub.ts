/**
 * The executor API of one local sandbox, served by this process: the sandbox's only process is
 * its spawner (pid 1 of its namespaces), which starts the commands of `/run` and `/run_streaming`
 * and does the file operations, with every path resolved inside the sandbox. The endpoints that
 * keep state between requests (background processes, interactive sessions, watches, the port
 * binding) go to a full executor started inside the sandbox on their first use, listening on the
 * two sockets the spawner inherited; a sandbox that never uses them runs no node process.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import { endToEnd } from "./endToEnd.js"
import * as ExecutorApp from "./executor/app.js"
import type { AppContext } from "./executor/context.js"
import type { ExecutorCommand } from "./executorCommand.js"
import * as GoFiles from "./goFiles.js"
import * as ProcessGroups from "./processGroups.js"
import * as ProcessTable from "./processTable.js"
import type { Spawner } from "./spawner.js"
import * as TcpProxy from "./tcpProxy.js"

/** What a hub serves. */
export interface HubOptions {
  readonly spawner: Spawner
  readonly secret: Redacted.Redacted<string>
  /** The commands' default working directory and the base of relative file paths, as the sandbox sees it. */
  readonly home: string
  /** The commands' base environment. */
  readonly env: Readonly<Record<string, string>>
  /** What the executor started inside gets on top of `env` (its own variables, which it hides from its commands). */
  readonly executorEnv: Readonly<Record<string, string>>
  /** Loopback ports of the API and the proxy (a sandbox waking from sleep keeps its address); default: free ones. */
  readonly ports?: { readonly api: number; readonly proxy: number } | undefined
  /**
   * The executor started inside on demand, and the loopback ports of the sockets the spawner
   * holds for it (its fds 3 and 4: API and proxy).
   */
  readonly inner: { readonly command: ExecutorCommand; readonly apiPort: number; readonly proxyPort: number }
}

/** A serving hub. */
export interface Hub {
  readonly port: number
  readonly proxyPort: number
  /** Stops serving and drops open connections (also done by the scope). Idempotent. */
  readonly close: Effect.Effect<void>
}

// the executor server's defaults
const gracePeriod = Duration.seconds(2)
const maxBodyBytes = 64 * 1024 * 1024

const badGateway = (response: Http.ServerResponse) => {
  if (!response.headersSent) {
    response.writeHead(502, { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" })
  }
  response.end(response.headersSent ? undefined : "the sandbox's executor is not available\n")
}

/** Serves the sandbox's API and its proxy on loopback for the lifetime of the scope. */
export const serve = (options: HubOptions): Effect.Effect<Hub, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const { inner, spawner } = options
    const groups = ProcessGroups.make(gracePeriod, Effect.succeed(spawner), true)
    const ctx: AppContext = {
      secret: Redacted.value(options.secret),
      cwd: options.home,
      baseEnv: options.env,
      maxBodyBytes,
      groups,
      // never consulted: its endpoints are the inner executor's
      processes: ProcessTable.make({ groups, scope, linesPerStream: 0, maxFinished: 0 }),
      files: GoFiles.make(options.home, spawner.files),
      binding: { current: undefined }
    }

    // Started once, again after it exited; requests wait in its socket's backlog until it accepts.
    let innerStart: Promise<void> | undefined
    let innerUp = false
    const innerEnv = { ...options.env, ...options.executorEnv }
    const startInner = () =>
      innerStart ??= spawner.spawn({
        path: inner.command.command,
        args: [
          inner.command.command,
          ...inner.command.args,
          "executor",
          "--fd",
          "3",
          "--proxy-fd",
          "4",
          ...(inner.command.spawner === undefined ? [] : ["--spawner", inner.command.spawner])
        ],
        cwd: options.home,
        env: innerEnv,
        stdin: true,
        inherit: true
      }).then((child) => {
        child.stdin.end(Redacted.value(options.secret))
        child.stdout.resume()
        child.stderr.resume()
        innerUp = true
        child.once("exit", () => {
          innerUp = false
          innerStart = undefined
        })
      }, (error: unknown) => {
        innerStart = undefined
        throw error
      })

    const agent = new Http.Agent({ keepAlive: true })
    const forward = (incoming: Http.IncomingMessage, response: Http.ServerResponse) => {
      startInner().then(() => {
        if (response.destroyed) return
        const upstream = Http.request({
          host: "127.0.0.1",
          port: inner.apiPort,
          method: incoming.method,
          path: incoming.url,
          headers: endToEnd(incoming.headers),
          agent
        }, (reply) => {
          // its headers as it wrote them (Date included)
          response.sendDate = false
          response.writeHead(reply.statusCode ?? 502, reply.statusMessage, endToEnd(reply.headers))
          reply.pipe(response)
        })
        upstream.on("error", () => badGateway(response))
        response.once("close", () => {
          if (!response.writableEnded) upstream.destroy()
        })
        incoming.pipe(upstream)
      }, () => badGateway(response))
    }

    const server = Http.createServer({ requestTimeout: 0 })
    yield* Effect.acquireRelease(
      Effect.async<void, Error>((resume) => {
        server.once("error", (error) => resume(Effect.fail(error)))
        server.listen({ host: "127.0.0.1", port: options.ports?.api ?? 0 }, () => resume(Effect.void))
      }),
      () => Effect.sync(() => close())
    )
    // the sandbox must not hold this process open
    server.unref()
    yield* ExecutorApp.serve(server, ctx, { endpoints: ExecutorApp.statefulEndpoints, handle: forward })
    const proxy = yield* TcpProxy.make({
      host: "127.0.0.1",
      port: options.ports?.proxy ?? 0,
      target: () => (innerUp ? String(inner.proxyPort) : undefined),
      unref: true
    })
    let closed = false
    const close = () => {
      if (closed) return
      closed = true
      server.close()
      server.closeAllConnections()
      agent.destroy()
    }
    return {
      port: (server.address() as { port: number }).port,
      proxyPort: proxy.port,
      close: Effect.zipRight(Effect.sync(close), proxy.close)
    } satisfies Hub
  })
