/**
 * How a local sandbox becomes ready, and what its readiness costs: one `/health` request on a bare
 * loopback connection when the executor starts, none in `waitReady` while that executor runs.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Http from "node:http"
import * as Net from "node:net"
import * as LocalBackend from "../src/internal/localControlPlane.js"
import { firstHealth, type LocalExecutorProcess, type SpawnExecutor } from "../src/internal/localRuntime.js"

/** A loopback server handling each connection with `onConnection`, closed with the scope; its port. */
const loopbackServer = (onConnection: (server: Net.Server) => void) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: Net.Server; readonly sockets: Set<Net.Socket> }>((resume) => {
      const server = Net.createServer()
      const sockets = new Set<Net.Socket>()
      server.on("connection", (socket) => {
        sockets.add(socket)
        socket.once("close", () => sockets.delete(socket))
      })
      onConnection(server)
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, sockets })))
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        for (const socket of sockets) socket.destroy()
      })
  ).pipe(Effect.map(({ server }) => (server.address() as Net.AddressInfo).port))

const answering = (status: number) =>
  loopbackServer((server) => {
    const http = Http.createServer((request, response) => {
      response.statusCode = request.url === "/health" ? status : 404
      response.end("{}")
    })
    server.on("connection", (socket) => http.emit("connection", socket))
  })

describe("the first /health of a starting executor", () => {
  it.scopedLive("is true for a 2xx answer and false for any other", () =>
    Effect.gen(function*() {
      assert.isTrue(yield* firstHealth(yield* answering(200)))
      assert.isFalse(yield* firstHealth(yield* answering(503)))
      assert.isFalse(yield* firstHealth(yield* answering(404)))
    }))

  it.scopedLive("is false for a connection closed without an answer, or a port nobody listens on", () =>
    Effect.gen(function*() {
      const hangUp = yield* loopbackServer((server) => server.on("connection", (socket) => socket.destroy()))
      assert.isFalse(yield* firstHealth(hangUp))
      const garbage = yield* loopbackServer((server) => server.on("connection", (socket) => socket.end("hello\r\n")))
      assert.isFalse(yield* firstHealth(garbage))
      const free = yield* Effect.async<number>((resume) => {
        const probe = Net.createServer().listen(0, "127.0.0.1", () => {
          const port = (probe.address() as Net.AddressInfo).port
          probe.close(() => resume(Effect.succeed(port)))
        })
      })
      assert.isFalse(yield* firstHealth(free))
    }))
})

/** Executors that start at once and answer nothing (their URL is a closed port); `crash` ends the last one. */
const silentExecutors = Effect.sync(() => {
  const crashes: Array<Deferred.Deferred<void>> = []
  const spawn: SpawnExecutor = (options) =>
    Effect.gen(function*() {
      const exited = yield* Deferred.make<void>()
      crashes.push(exited)
      return {
        id: options.id,
        dir: `/nonexistent/${options.id}`,
        url: "http://127.0.0.1:9",
        port: 9,
        proxyPort: 9,
        pid: -1,
        secret: options.secret,
        isolation: "none",
        network: "shared",
        home: "/nonexistent",
        kill: Deferred.succeed(exited, undefined).pipe(Effect.asVoid),
        exited: Deferred.await(exited)
      } satisfies LocalExecutorProcess
    })
  return { spawn, crash: Effect.suspend(() => Deferred.succeed(crashes.at(-1)!, undefined)) }
})

describe("waitReady of the local backend", () => {
  it.scopedLive("answers without a request while the executor that answered at start runs; a crashed one is gone", () =>
    Effect.gen(function*() {
      const executors = yield* silentExecutors
      const cp = yield* LocalBackend.make({ isolation: "none" }, executors.spawn)
      const { endpoint, info } = yield* cp.create({})
      // Nothing answers at its URL: a request would fail until the timeout.
      const ready = yield* cp.waitReady(info.id, { timeout: "2 seconds", pollInterval: "50 millis" })
      assert.strictEqual(ready.url, endpoint.url)
      yield* executors.crash
      yield* cp.list.pipe(Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (list) => list.length === 0 }))
      const gone = yield* Effect.flip(cp.waitReady(info.id, { timeout: "2 seconds", pollInterval: "50 millis" }))
      assert.strictEqual(gone._tag, "SandboxNotFound")
    }))
})
