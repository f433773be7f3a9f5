/**
 * The executor's HTTP application served straight from Node's `request` event (`ExecutorApp.serve`)
 * answers byte for byte as when `@effect/platform`'s server serves it (`platformApp` below), keeps
 * the order 404, 401, 405 and the 413 of a large body, and stops a command whose client went away.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as NodeNet from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as ExecutorApp from "../src/internal/executor/app.js"
import type { AppContext } from "../src/internal/executor/context.js"
import * as ExecutorHttp from "../src/internal/executor/http.js"
import * as GoFiles from "../src/internal/goFiles.js"
import * as ProcessGroups from "../src/internal/processGroups.js"
import * as ProcessTable from "../src/internal/processTable.js"
import { alive } from "./utils/hostProcesses.js"

const secret = "app-test-secret"

/** The same dispatch for `@effect/platform`'s HTTP server (with its per-request span, scope and middleware): the reference. */
const platformApp = (ctx: AppContext): HttpApp.Default => {
  const dispatch = ExecutorApp.dispatcher(ctx)
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const reply = dispatch(
      ExecutorHttp.request(
        NodeHttpServerRequest.toIncomingMessage(request),
        NodeHttpServerRequest.toServerResponse(request)
      )
    )
    return HttpServerResponse.isServerResponse(reply) ? Effect.succeed(reply) : reply
  })
}

/** One context served twice: `serve` on one port, the platform's server of `platformApp` on another. */
const servers = (override: Partial<AppContext> = {}) =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "executor-app-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    )
    const groups = ProcessGroups.make(Duration.millis(200))
    yield* Effect.addFinalizer(() => groups.killAll)
    const ctx: AppContext = {
      secret,
      cwd: dir,
      baseEnv: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      maxBodyBytes: 1024,
      groups,
      processes: ProcessTable.make({ groups, scope: yield* Effect.scope, linesPerStream: 100, maxFinished: 10 }),
      files: GoFiles.make(dir),
      binding: { current: undefined },
      ...override
    }
    const direct = Http.createServer()
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => {
        direct.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () => Effect.sync(() => direct.close()).pipe(Effect.zipRight(Effect.sync(() => direct.closeAllConnections())))
    )
    yield* ExecutorApp.serve(direct, ctx)
    const platform = yield* NodeHttpServer.make(() => Http.createServer(), { host: "127.0.0.1", port: 0 })
    yield* platform.serve(platformApp(ctx))
    const portOf = (address: unknown) => (address as Net.AddressInfo).port
    return {
      dir,
      direct: portOf(direct.address()),
      platform: platform.address._tag === "TcpAddress" ? platform.address.port : 0
    }
  })

/** The raw reply to `request` (sent with `Connection: close`), without its `Date` header. */
const exchange = (port: number, request: string) =>
  Effect.async<string>((resume) => {
    const socket = NodeNet.connect(port, "127.0.0.1")
    const chunks: Array<Buffer> = []
    const reply = () => Buffer.concat(chunks).toString("latin1").replace(/\r\nDate: [^\r]*/, "")
    socket.on("data", (chunk) => {
      chunks.push(chunk)
      // an SSE reply keeps its connection open: its last chunk ends the exchange
      if (reply().endsWith("\r\n0\r\n\r\n")) socket.destroy()
    })
    socket.on("close", () => resume(Effect.succeed(reply())))
    socket.write(request)
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.timeout("10 seconds"), Effect.orDie)

const auth = `Authorization: Bearer ${secret}\r\n`
const get = (path: string, headers = auth, method = "GET") =>
  `${method} ${path} HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`
const post = (path: string, body: string, headers = auth) =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\n${headers}Content-Length: ${
    Buffer.byteLength(body)
  }\r\nConnection: close\r\n\r\n${body}`

const requests: ReadonlyArray<readonly [string, string, string]> = [
  ["health", get("/health", ""), "HTTP/1.1 200 OK"],
  ["health, HEAD", get("/koyeb-sandbox/health", "", "HEAD"), "HTTP/1.1 200 OK"],
  ["unknown path, before auth", get("/nope", ""), "HTTP/1.1 404 Not Found"],
  ["no secret", post("/run", `{"cmd":"true"}`, ""), "HTTP/1.1 401 Unauthorized"],
  ["wrong secret", post("/run", `{"cmd":"true"}`, "Authorization: Bearer wrong\r\n"), "HTTP/1.1 401 Unauthorized"],
  ["scheme only", get("/list_processes", "Authorization: Bearer \r\n"), "HTTP/1.1 401 Unauthorized"],
  ["auth before method", post("/read_file_bytes?path=x", "", ""), "HTTP/1.1 401 Unauthorized"],
  ["method", post("/read_file_bytes?path=x", ""), "HTTP/1.1 405 Method Not Allowed"],
  ["run", post("/run", `{"cmd":"printf 'a<&>\\\\377'; echo err >&2; exit 3"}`), "HTTP/1.1 200 OK"],
  ["run, invalid body", post("/run", `{"cmd":1}`), "HTTP/1.1 400 Bad Request"],
  ["run, working directory", post("/run", `{"cmd":"true","cwd":"missing"}`), "HTTP/1.1 400 Bad Request"],
  ["run, body too large", post("/run", `{"cmd":"${"x".repeat(2000)}"}`), "HTTP/1.1 413 Payload Too Large"],
  ["run_streaming", post("/koyeb-sandbox/run_streaming", `{"cmd":"echo a; echo b >&2"}`), "HTTP/1.1 200 OK"],
  ["write_file", post("/write_file", `{"path":"f.txt","content":"hi"}`), "HTTP/1.1 200 OK"],
  ["read_file", post("/read_file", `{"path":"f.txt"}`), "HTTP/1.1 200 OK"],
  ["read_file, missing", post("/read_file", `{"path":"missing"}`), "HTTP/1.1 200 OK"],
  ["read_file_bytes", get("/read_file_bytes?path=f.txt"), "HTTP/1.1 200 OK"],
  ["list_processes", get("/list_processes"), "HTTP/1.1 200 OK"]
]

describe("ExecutorApp.serve", () => {
  it.scopedLive(
    "replies byte for byte as the platform's server, in the order 404, 401, 405",
    () =>
      Effect.gen(function*() {
        const { direct, platform } = yield* servers()
        for (const [name, request, status] of requests) {
          const mine = yield* exchange(direct, request)
          const theirs = yield* exchange(platform, request)
          assert.isTrue(mine.startsWith(`${status}\r\n`), `${name}: ${mine}`)
          assert.strictEqual(mine, theirs, name)
        }
      }),
    30_000
  )

  it.scopedLive(
    "a handler that throws is a 500 with no body, and the server keeps serving",
    () =>
      Effect.gen(function*() {
        const files = GoFiles.make(Os.tmpdir())
        const { direct, platform } = yield* servers({
          files: {
            ...files,
            writeStream: () => {
              throw new Error("boom")
            }
          }
        })
        const request = post("/write_file_bytes?path=x", "data")
        const mine = yield* exchange(direct, request)
        assert.isTrue(mine.startsWith("HTTP/1.1 500 Internal Server Error\r\n"), mine)
        assert.strictEqual(mine, yield* exchange(platform, request))
        assert.isTrue((yield* exchange(direct, get("/health", ""))).startsWith("HTTP/1.1 200 OK\r\n"))
      }),
    30_000
  )

  it.scopedLive("a client that goes away stops its /run command", () =>
    Effect.gen(function*() {
      const { dir, direct } = yield* servers()
      const pidFile = Path.join(dir, "pid")
      const socket = yield* Effect.acquireRelease(
        Effect.sync(() => NodeNet.connect(direct, "127.0.0.1").on("error", () => {})),
        (socket) => Effect.sync(() => socket.destroy())
      )
      socket.write(post("/run", JSON.stringify({ cmd: `echo $$ > ${pidFile}; exec sleep 30` })))
      const pid = yield* Effect.try(() => Number(Fs.readFileSync(pidFile, "utf8"))).pipe(
        Effect.filterOrFail((pid) => pid > 0),
        Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("5 seconds")))
      )
      assert.isTrue(alive(pid))
      socket.destroy()
      yield* Effect.sync(() => alive(pid)).pipe(
        Effect.repeat({ schedule: Schedule.spaced("20 millis").pipe(Schedule.upTo("5 seconds")), while: (a) => a })
      )
      assert.isFalse(alive(pid))
    }), 30_000)
})
