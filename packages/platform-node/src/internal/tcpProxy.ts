/**
 * The executor's raw TCP forwarder, as the stock executor's port 3031: each connection is piped
 * to `127.0.0.1:<bound port>`; with no target bound it is held until the client sends a byte or
 * 100 ms pass, then closed (what keeps TCP health checks green on Koyeb).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import { parseTcpPort } from "./ports.js"

const holdWithoutTargetMillis = 100

/** A listening forwarder. */
export interface TcpProxy {
  readonly port: number
  /** Stops listening and drops its connections now (the scope does it too). Idempotent. */
  readonly close: Effect.Effect<void>
}

/** Listens on `host:port`; `target()` is read for each accepted connection. Closed with the scope. */
export const make = (options: {
  readonly host: string
  readonly port: number
  /** An inherited listening socket, used instead of `host:port`. */
  readonly fd?: number | undefined
  readonly target: () => string | undefined
  /** Not holding this process open while it only listens. */
  readonly unref?: boolean | undefined
}): Effect.Effect<TcpProxy, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const sockets = new Set<Net.Socket>()
    const track = (socket: Net.Socket) => {
      sockets.add(socket)
      socket.once("close", () => sockets.delete(socket))
    }

    const onConnection = (client: Net.Socket) => {
      track(client)
      client.on("error", () => client.destroy())
      const target = options.target()
      if (target === undefined) {
        const timer = setTimeout(() => client.destroy(), holdWithoutTargetMillis)
        client.once("data", () => {
          clearTimeout(timer)
          client.resetAndDestroy()
        })
        client.once("close", () => clearTimeout(timer))
        return
      }
      const port = parseTcpPort(target)
      if (port === undefined) {
        client.destroy()
        return
      }
      client.pause()
      const upstream = Net.connect({ host: "127.0.0.1", port, allowHalfOpen: true })
      track(upstream)
      // no half-close: once either direction has ended and been flushed, both sides are closed
      const closeBoth = () => {
        client.destroy()
        upstream.destroy()
      }
      upstream.once("connect", () => {
        client.pipe(upstream)
        upstream.pipe(client)
        client.resume()
      })
      upstream.on("error", closeBoth)
      upstream.once("finish", closeBoth)
      upstream.once("close", closeBoth)
      client.once("finish", closeBoth)
      client.once("close", closeBoth)
    }

    let stopped: Promise<void> | undefined
    const stop = (server: Net.Server) =>
      Effect.promise(() =>
        stopped ??= new Promise<void>((resolve) => {
          server.close(() => resolve())
          for (const socket of sockets) socket.destroy()
        })
      )

    const server = yield* Effect.acquireRelease(
      Effect.async<Net.Server, Error>((resume) => {
        const server = Net.createServer({ allowHalfOpen: true }, onConnection)
        server.once("error", (error) => resume(Effect.fail(error)))
        server.listen(
          options.fd === undefined ? { host: options.host, port: options.port } : { fd: options.fd },
          () => resume(Effect.succeed(server))
        )
      }),
      (server) => stop(server)
    )
    if (options.unref === true) server.unref()
    const address = server.address() as Net.AddressInfo
    return { port: address.port, close: stop(server) }
  })
