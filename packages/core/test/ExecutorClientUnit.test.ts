import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import type { FilesystemErrorReason } from "@effect-koyeb/core/SandboxError"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"

// In-memory executor: each test answers requests with a web Response.
type Handler = (request: HttpClientRequest.HttpClientRequest, url: URL) => Response

const makeClient = (handler: Handler, options?: Partial<ExecutorClient.ExecutorClientOptions>) =>
  ExecutorClient.make({ url: "http://executor.test/koyeb-sandbox/", secret: Redacted.make("s3cret"), ...options }).pipe(
    Effect.provideService(
      HttpClient.HttpClient,
      HttpClient.make((request, url) => Effect.sync(() => HttpClientResponse.fromWeb(request, handler(request, url))))
    )
  )

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body) + "\n", { status, headers: { "content-type": "application/json" } })

const text = (body: string, status: number) =>
  new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } })

const encoder = new TextEncoder()

// An SSE body delivered as the given byte chunks.
const sseChunks = (chunks: ReadonlyArray<Uint8Array>) =>
  new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(chunk)
        controller.close()
      }
    }),
    { status: 200, headers: { "content-type": "text/event-stream" } }
  )

const sse = (body: string) => sseChunks([encoder.encode(body)])

const frame = (event: string, data: string) => `event: ${event}\ndata: ${data}\n\n`

const output = (stream: "stdout" | "stderr", data: string) => frame("output", JSON.stringify({ data, stream }))

const bodyText = (request: HttpClientRequest.HttpClientRequest): string =>
  request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""

const collect = <A, E>(stream: Stream.Stream<A, E>) => Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

/** `/run_streaming` read both ways, as a stream and whole: they must agree; returns the stream's outcome. */
const runStreamingBoth = (client: ExecutorClient.ExecutorClientShape, request: ExecutorClient.CommandRequest) =>
  Effect.gen(function*() {
    const streamed = yield* Effect.either(collect(client.runStreaming(request)))
    const whole = yield* Effect.either(client.runStreamingCollect(request))
    const outcome = <E extends { readonly _tag: string; readonly message: string }>(
      either: Either.Either<ReadonlyArray<ExecutorClient.RunStreamEvent>, E>
    ) =>
      Either.match(either, {
        onLeft: (error) => ({ failed: error._tag, message: error.message }),
        onRight: (events) => ({ events: [...events] })
      })
    assert.deepStrictEqual(outcome(whole), outcome(streamed))
    return yield* streamed
  })

describe("ExecutorClient (in-memory executor)", () => {
  describe("requests", () => {
    it.effect("sends URL, bearer secret, routing key and a JSON body, without trace headers", () =>
      Effect.gen(function*() {
        const seen: Array<HttpClientRequest.HttpClientRequest> = []
        const client = yield* makeClient((request) => {
          seen.push(request)
          return json({ stdout: "hi\n", stderr: "", code: 0 })
        }, { routingKey: "rk-1" })
        const reply = yield* client.run({ cmd: "echo hi", cwd: "/tmp", env: { A: "1" } })
        assert.deepStrictEqual(reply, { stdout: "hi\n", stderr: "", code: 0 })
        const request = seen[0]!
        assert.strictEqual(request.url, "http://executor.test/koyeb-sandbox/run")
        assert.strictEqual(request.method, "POST")
        assert.strictEqual(request.headers["authorization"], "Bearer s3cret")
        assert.strictEqual(request.headers["x-routing-key"], "rk-1")
        assert.strictEqual(request.headers["traceparent"], undefined)
        assert.strictEqual(request.headers["b3"], undefined)
        assert.strictEqual(request.body._tag === "Uint8Array" && request.body.contentType, "application/json")
        assert.deepStrictEqual(JSON.parse(bodyText(request)), { cmd: "echo hi", cwd: "/tmp", env: { A: "1" } })
      }))

    it.effect("omits X-Routing-Key when there is none and url-encodes the process id of log streams", () =>
      Effect.gen(function*() {
        const seen: Array<URL> = []
        const headers: Array<string | undefined> = []
        const client = yield* makeClient((request, url) => {
          seen.push(url)
          headers.push(request.headers["x-routing-key"])
          return sse(frame("complete", `{"message": "stream ended"}`))
        }, { url: "http://127.0.0.1:3030" })
        yield* Stream.runDrain(client.processLogs("a b&c/?"))
        assert.strictEqual(seen[0]!.pathname, "/process_logs_streaming")
        assert.strictEqual(seen[0]!.searchParams.get("id"), "a b&c/?")
        assert.strictEqual(headers[0], undefined)
      }))

    it.effect("layerConfig reads EXECUTOR_URL, EXECUTOR_SECRET and EXECUTOR_ROUTING_KEY", () =>
      Effect.gen(function*() {
        const seen: Array<HttpClientRequest.HttpClientRequest> = []
        const http = HttpClient.make((request) =>
          Effect.sync(() => {
            seen.push(request)
            return HttpClientResponse.fromWeb(request, json({ status: "ok" }))
          })
        )
        const env = new Map([
          ["EXECUTOR_URL", "http://gateway.test/koyeb-sandbox"],
          ["EXECUTOR_SECRET", "from-env"],
          ["EXECUTOR_ROUTING_KEY", "rk-env"]
        ])
        const client = yield* ExecutorClient.ExecutorClient.pipe(
          Effect.provide(
            ExecutorClient.layerConfig().pipe(
              Layer.provide(Layer.succeed(HttpClient.HttpClient, http)),
              Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env)))
            )
          )
        )
        yield* client.health
        assert.strictEqual(seen[0]!.url, "http://gateway.test/koyeb-sandbox/health")
        assert.strictEqual(seen[0]!.headers["authorization"], "Bearer from-env")
        assert.strictEqual(seen[0]!.headers["x-routing-key"], "rk-env")
        assert.strictEqual(String(client.options.secret), "<redacted>")
      }))

    it.effect("maps a transport failure to ExecutorError Transport", () =>
      Effect.gen(function*() {
        const client = yield* ExecutorClient.make({ url: "http://executor.test", secret: Redacted.make("x") }).pipe(
          Effect.provideService(
            HttpClient.HttpClient,
            HttpClient.make((request) =>
              Effect.fail(
                new HttpClientError.RequestError({ request, reason: "Transport", cause: new Error("ECONNREFUSED") })
              )
            )
          )
        )
        const error = yield* Effect.flip(client.health)
        assert.strictEqual(error._tag, "ExecutorError")
        assert.strictEqual(error._tag === "ExecutorError" && error.reason, "Transport")
        const streamError = yield* Effect.flip(Stream.runDrain(client.runStreaming({ cmd: "true" })))
        assert.strictEqual(streamError._tag === "ExecutorError" && streamError.reason, "Transport")
      }))

    it.effect("bounds non-streaming requests by requestTimeout", () =>
      Effect.gen(function*() {
        const client = yield* ExecutorClient.make({
          url: "http://executor.test",
          secret: Redacted.make("x"),
          requestTimeout: "2 seconds"
        }).pipe(Effect.provideService(HttpClient.HttpClient, HttpClient.make(() => Effect.never)))
        const fiber = yield* Effect.fork(Effect.flip(client.run({ cmd: "sleep 100" })))
        yield* TestClock.adjust("2 seconds")
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag, "ExecutorError")
        assert.strictEqual(error._tag === "ExecutorError" && error.reason, "Transport")
        assert.include(error.message, "2s")
      }))

    it.effect("maps 401 to Unauthorized on every kind of endpoint", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() => text("Unauthorized\n", 401))
        assert.strictEqual((yield* Effect.flip(client.run({ cmd: "true" })))._tag, "Unauthorized")
        assert.strictEqual((yield* Effect.flip(client.readFile("/x")))._tag, "Unauthorized")
        assert.strictEqual((yield* Effect.flip(client.listProcesses))._tag, "Unauthorized")
        assert.strictEqual(
          (yield* Effect.flip(Stream.runDrain(client.runStreaming({ cmd: "true" }))))._tag,
          "Unauthorized"
        )
        assert.strictEqual((yield* Effect.flip(Stream.runDrain(client.processLogs("id"))))._tag, "Unauthorized")
      }))

    it.effect("maps an unexpected status to ExecutorError Status with the body text", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() => text("upstream unavailable\n", 503))
        const error = yield* Effect.flip(client.run({ cmd: "true" }))
        assert.strictEqual(error._tag, "ExecutorError")
        if (error._tag !== "ExecutorError") return
        assert.strictEqual(error.reason, "Status")
        assert.strictEqual(error.status, 503)
        assert.strictEqual(error.detail, "upstream unavailable")
      }))

    it.effect("truncates long status bodies", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() => text("x".repeat(100_000), 502))
        const error = yield* Effect.flip(client.listProcesses)
        assert.isTrue(error._tag === "ExecutorError" && error.detail.length < 2000)
      }))
  })

  describe("/run", () => {
    it.effect("maps a bad cwd to InvalidArgument cwd", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() => text("Invalid working directory: /nope\n", 400))
        const error = yield* Effect.flip(client.run({ cmd: "pwd", cwd: "/nope" }))
        assert.strictEqual(error._tag, "InvalidArgument")
        assert.strictEqual(error._tag === "InvalidArgument" && error.argument, "cwd")
      }))

    it.effect("maps a start failure to InvalidArgument only for a command over 128 KiB", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() => text("Failed to start command\n", 500))
        const long = yield* Effect.flip(client.run({ cmd: `echo ${"a".repeat(140_000)}` }))
        assert.strictEqual(long._tag === "InvalidArgument" && long.argument, "command")
        const env = yield* Effect.flip(client.run({ cmd: "true", env: { BIG: "é".repeat(70_000) } }))
        assert.strictEqual(env._tag === "InvalidArgument" && env.argument, "env")
        const short = yield* Effect.flip(client.run({ cmd: "true" }))
        assert.strictEqual(short._tag === "ExecutorError" && short.reason, "Status")
      }))

    it.effect("fails with Decode when the reply has no exit code or is not JSON", () =>
      Effect.gen(function*() {
        const noCode = yield* makeClient(() => json({ stdout: "", stderr: "" }))
        const error = yield* Effect.flip(noCode.run({ cmd: "true" }))
        assert.strictEqual(error._tag === "ExecutorError" && error.reason, "Decode")
        const html = yield* makeClient(() => new Response("<html>gateway</html>", { status: 200 }))
        const error2 = yield* Effect.flip(html.run({ cmd: "true" }))
        assert.strictEqual(error2._tag === "ExecutorError" && error2.reason, "Decode")
      }))

    it.effect("keeps the exit code of a failed command (not an error at this level)", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() =>
          json({ stdout: "", stderr: "boom\n", error: "Non-zero exit code", code: -1 })
        )
        assert.deepStrictEqual(yield* client.run({ cmd: "kill -9 $$" }), { stdout: "", stderr: "boom\n", code: -1 })
      }))
  })

  describe("/run_streaming", () => {
    const body = output("stdout", "héllo wörld ✓ 𝄞") + frame("ping", "{}") + output("stderr", "") +
      `: a comment\n` + output("stdout", "tab\tand \"quotes\" \\ \u0000") + frame("complete", `{"code":3,"error":true}`)
    const expected: ReadonlyArray<ExecutorClient.RunStreamEvent> = [
      { _tag: "Output", stream: "stdout", data: "héllo wörld ✓ 𝄞" },
      { _tag: "Output", stream: "stderr", data: "" },
      { _tag: "Output", stream: "stdout", data: "tab\tand \"quotes\" \\ \u0000" },
      { _tag: "Complete", code: 3 }
    ]

    it.effect("decodes output and complete, ignoring unknown events and comments", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() => sse(body))
        assert.deepStrictEqual(yield* runStreamingBoth(client, { cmd: "x" }), expected)
      }))

    it.effect("decodes the same events at every chunk boundary, UTF-8 sequences split included", () =>
      Effect.gen(function*() {
        const bytes = encoder.encode(body)
        for (let cut = 1; cut < bytes.length; cut++) {
          const client = yield* makeClient(() => sseChunks([bytes.subarray(0, cut), bytes.subarray(cut)]))
          assert.deepStrictEqual(yield* runStreamingBoth(client, { cmd: "x" }), expected, `cut at ${cut}`)
        }
        const single = Array.from(bytes, (byte) => Uint8Array.of(byte))
        const client = yield* makeClient(() => sseChunks(single))
        assert.deepStrictEqual(yield* runStreamingBoth(client, { cmd: "x" }), expected, "one byte per chunk")
      }))

    it.effect("accepts CRLF and CR line endings (split across chunks too)", () =>
      Effect.gen(function*() {
        const crlf = body.replaceAll("\n", "\r\n")
        const cr = body.replaceAll("\n", "\r")
        for (const variant of [crlf, cr]) {
          const bytes = encoder.encode(variant)
          for (const cut of [1, 14, 15, 16, bytes.length - 1]) {
            const client = yield* makeClient(() => sseChunks([bytes.subarray(0, cut), bytes.subarray(cut)]))
            assert.deepStrictEqual(yield* runStreamingBoth(client, { cmd: "x" }), expected)
          }
        }
      }))

    it.effect("joins multi-line data and tolerates a BOM and `data:` without a space", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() =>
          sse(
            `\uFEFFevent:output\ndata:{"data":"a",\ndata: "stream":"stdout"}\n\nevent: complete\ndata: {"code":0}\n\n`
          )
        )
        assert.deepStrictEqual(yield* runStreamingBoth(client, { cmd: "x" }), [
          { _tag: "Output", stream: "stdout", data: "a" },
          { _tag: "Complete", code: 0 }
        ])
      }))

    it.effect("output data decodes exactly as JSON does, with or without escapes; raw control characters are refused", () =>
      Effect.gen(function*() {
        const datas = [
          "",
          "plain 123",
          `x","stream":"stderr"}`,
          `a\\b`,
          "quote \" inside",
          "ctrl \u0001 \t",
          "é€😀 \ud800",
          `{"data":"nested","stream":"stdout"}`
        ]
        const frames = datas.map((data, i) => output(i % 2 === 0 ? "stdout" : "stderr", data)).join("")
        const client = yield* makeClient(() => sse(frames + frame("complete", `{"code":0}`)))
        assert.deepStrictEqual(yield* runStreamingBoth(client, { cmd: "x" }), [
          ...datas.map((data, i): ExecutorClient.RunStreamEvent => ({
            _tag: "Output",
            stream: i % 2 === 0 ? "stdout" : "stderr",
            data
          })),
          { _tag: "Complete", code: 0 }
        ])
        const raw = yield* makeClient(() => sse(frame("output", `{"data":"a\u0001b","stream":"stdout"}`)))
        const error = yield* Effect.flip(runStreamingBoth(raw, { cmd: "x" }))
        assert.strictEqual(error._tag === "ExecutorError" ? error.reason : error._tag, "Decode")
      }))

    it.effect("stops at complete even when bytes follow", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() => sse(frame("complete", `{"code":0,"error":false}`) + "garbage\n"))
        assert.deepStrictEqual(yield* runStreamingBoth(client, { cmd: "x" }), [{ _tag: "Complete", code: 0 }])
      }))

    it.effect("fails with Protocol when the body ends without complete (after emitting what came)", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() => sse(output("stdout", "one") + `event: complete\ndata: {"code":0}\n`))
        const seen: Array<ExecutorClient.RunStreamEvent> = []
        const error = yield* Effect.flip(
          Stream.runForEach(client.runStreaming({ cmd: "x" }), (event) => Effect.sync(() => seen.push(event)))
        )
        assert.deepStrictEqual(seen, [{ _tag: "Output", stream: "stdout", data: "one" }])
        assert.strictEqual(error._tag, "ExecutorError")
        if (error._tag !== "ExecutorError") return
        assert.strictEqual(error.reason, "Protocol")
        assert.strictEqual(error.detail, "stream ended without complete")
      }))

    it.effect("fails with Decode on a malformed output or complete frame", () =>
      Effect.gen(function*() {
        for (
          const bad of [
            frame("output", "not json"),
            frame("output", `{"data":1,"stream":"stdout"}`),
            frame("output", `{"data":"x","stream":"stdin"}`),
            frame("output", `["x"]`),
            frame("complete", `{"code":"0"}`),
            frame("complete", `{}`)
          ]
        ) {
          const client = yield* makeClient(() => sse(bad + frame("complete", `{"code":0}`)))
          const error = yield* Effect.flip(runStreamingBoth(client, { cmd: "x" }))
          assert.strictEqual(error._tag === "ExecutorError" && error.reason, "Decode", bad)
        }
      }))

    it.effect("turns an oversize event into ExecutorError Protocol, whether split or in one chunk", () =>
      Effect.gen(function*() {
        const big = output("stdout", "x".repeat(5000)) + frame("complete", `{"code":0}`)
        const bytes = encoder.encode(big)
        for (
          const chunks of [
            [bytes],
            Array.from({ length: 50 }, (_, i) => bytes.subarray(i * 100, (i + 1) * 100)).concat([bytes.subarray(5000)])
          ]
        ) {
          const client = yield* makeClient(() => sseChunks(chunks), { maxEventSize: 1000 })
          const error = yield* Effect.flip(runStreamingBoth(client, { cmd: "x" }))
          assert.strictEqual(error._tag === "ExecutorError" && error.reason, "Protocol")
        }
        const fits = yield* makeClient(() => sse(big), { maxEventSize: 6000 })
        assert.strictEqual((yield* runStreamingBoth(fits, { cmd: "x" })).length, 2)
      }))

    it.effect("maps the hand-written error event", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() => sse(frame("error", `{"error": "Failed to start command"}`)))
        const long = yield* Effect.flip(runStreamingBoth(client, { cmd: "a".repeat(140_000) }))
        assert.strictEqual(long._tag === "InvalidArgument" && long.argument, "command")
        const short = yield* Effect.flip(runStreamingBoth(client, { cmd: "true" }))
        assert.strictEqual(short._tag === "ExecutorError" && short.reason, "Protocol")
        assert.include(short.message, "Failed to start command")
      }))

    it.effect("checks the status before parsing: 400 bad cwd is InvalidArgument, 500 is Status", () =>
      Effect.gen(function*() {
        const cwd = yield* makeClient(() => text("Invalid working directory: /nope\n", 400))
        const error = yield* Effect.flip(runStreamingBoth(cwd, { cmd: "pwd", cwd: "/nope" }))
        assert.strictEqual(error._tag === "InvalidArgument" && error.argument, "cwd")
        const status = yield* makeClient(() => text(frame("complete", `{"code":0}`), 500))
        const error2 = yield* Effect.flip(runStreamingBoth(status, { cmd: "true" }))
        assert.strictEqual(error2._tag === "ExecutorError" && error2.status, 500)
      }))

    it.effect("emits many events per pull (chunked), not one element per chunk", () =>
      Effect.gen(function*() {
        const many = Array.from({ length: 100 }, (_, i) => output("stdout", String(i))).join("") +
          frame("complete", `{"code":0}`)
        const client = yield* makeClient(() => sse(many))
        const chunks = yield* Stream.runCollect(Stream.chunks(client.runStreaming({ cmd: "seq 100" })))
        assert.strictEqual(Chunk.size(chunks), 1)
        assert.strictEqual(Chunk.size(Chunk.unsafeGet(chunks, 0)), 101)
      }))
  })

  describe("file endpoints", () => {
    // every Go error text the stock file endpoints return, with the tag/reason it must map to
    const cases: ReadonlyArray<readonly [string, "FileNotFound" | FilesystemErrorReason]> = [
      ["open /a/b: no such file or directory", "FileNotFound"],
      ["read /tmp: is a directory", "IsADirectory"],
      ["readdirent /etc/hosts: not a directory", "NotADirectory"],
      ["open /tmp: is a directory", "IsADirectory"],
      ["remove /missing: no such file or directory", "FileNotFound"],
      ["remove /tmp/full: directory not empty", "DirectoryNotEmpty"],
      ["mkdir /etc/hosts: not a directory", "NotADirectory"],
      ["mkdir : no such file or directory", "FileNotFound"],
      ["open : no such file or directory", "FileNotFound"],
      ["remove : no such file or directory", "FileNotFound"],
      ["RemoveAll /tmp/x/.: invalid argument", "InvalidPath"],
      ["open /root/secret: permission denied", "PermissionDenied"],
      ["unlinkat /proc/1: operation not permitted", "PermissionDenied"],
      ["open /a: b/c: no such file or directory", "FileNotFound"],
      ["open /x: read-only file system", "Unknown"],
      ["no such file or directory", "Unknown"],
      ["Not Found", "Unknown"],
      ["sh: 1: mv: not found", "Unknown"]
    ]

    it.effect("classifies the exact Go error texts", () =>
      Effect.gen(function*() {
        for (const [message, expected] of cases) {
          const client = yield* makeClient(() => json({ error: message, success: false }))
          const error = yield* Effect.flip(client.deleteFile("/p"))
          if (expected === "FileNotFound") {
            assert.strictEqual(error._tag, "FileNotFound", message)
            assert.strictEqual(error._tag === "FileNotFound" && error.path, "/p")
          } else {
            assert.strictEqual(error._tag, "FilesystemError", message)
            assert.strictEqual(error._tag === "FilesystemError" && error.reason, expected, message)
            assert.strictEqual(error._tag === "FilesystemError" && error.detail, message)
          }
        }
      }))

    it.effect("reads the error of bodies without success (read_file, list_dir)", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() => json({ error: "open /nope: no such file or directory" }))
        assert.strictEqual((yield* Effect.flip(client.readFile("/nope")))._tag, "FileNotFound")
        assert.strictEqual((yield* Effect.flip(client.listDir("/nope")))._tag, "FileNotFound")
      }))

    it.effect("defaults an absent content to \"\" and absent entries to []", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() => json({}))
        assert.strictEqual(yield* client.readFile("/empty"), "")
        assert.deepStrictEqual(yield* client.listDir("/empty"), [])
      }))

    it.effect("returns content and entries, and sends the path (and content) in the body", () =>
      Effect.gen(function*() {
        const bodies: Array<unknown> = []
        const client = yield* makeClient((request, url) => {
          bodies.push([url.pathname, JSON.parse(bodyText(request))])
          return url.pathname.endsWith("/read_file")
            ? json({ content: "ü\n" })
            : url.pathname.endsWith("/list_dir")
            ? json({ entries: [".a", "b"] })
            : json({ success: true })
        })
        assert.strictEqual(yield* client.readFile("/f"), "ü\n")
        assert.deepStrictEqual(yield* client.listDir("/d"), [".a", "b"])
        yield* client.writeFile("/f", "x")
        yield* client.makeDir("/d")
        yield* client.deleteDir("/d")
        assert.deepStrictEqual(bodies, [
          ["/koyeb-sandbox/read_file", { path: "/f" }],
          ["/koyeb-sandbox/list_dir", { path: "/d" }],
          ["/koyeb-sandbox/write_file", { path: "/f", content: "x" }],
          ["/koyeb-sandbox/make_dir", { path: "/d" }],
          ["/koyeb-sandbox/delete_dir", { path: "/d" }]
        ])
      }))

    it.effect("success:false without an error is FilesystemError Unknown; a non-JSON 200 is Decode; 400 is Status", () =>
      Effect.gen(function*() {
        const noText = yield* makeClient(() => json({ success: false }))
        const error = yield* Effect.flip(noText.makeDir("/d"))
        assert.strictEqual(error._tag === "FilesystemError" && error.reason, "Unknown")
        const garbage = yield* makeClient(() => text("oops", 200))
        const error2 = yield* Effect.flip(garbage.writeFile("/f", ""))
        assert.strictEqual(error2._tag === "ExecutorError" && error2.reason, "Decode")
        // HTTP status text never decides a file error, even one that looks like "not found"
        const notFound = yield* makeClient(() => text("404 page not found\n", 404))
        const error3 = yield* Effect.flip(notFound.readFile("/f"))
        assert.strictEqual(error3._tag === "ExecutorError" && error3.reason, "Status")
      }))
  })

  describe("ports and processes", () => {
    it.effect("bindPort: 409 is PortAlreadyBound, 400 Port is required is InvalidArgument", () =>
      Effect.gen(function*() {
        const conflict = yield* makeClient(() =>
          json({ current_port: "8080", error: "Port already bound", success: false }, 409)
        )
        const error = yield* Effect.flip(conflict.bindPort("9090"))
        assert.deepStrictEqual(error._tag === "PortAlreadyBound" && [error.port, error.currentPort], ["9090", "8080"])
        const empty = yield* makeClient(() => text("Port is required\n", 400))
        const error2 = yield* Effect.flip(empty.bindPort(""))
        assert.strictEqual(error2._tag === "InvalidArgument" && error2.argument, "port")
        const ok = yield* makeClient(() => json({ message: "Port binding configured", port: "8080", success: true }))
        yield* ok.bindPort("8080")
        yield* ok.unbindPort
      }))

    it.effect("startProcess: 201 decodes; 400 texts are InvalidArgument; 500 JSON is ExecutorError or E2BIG", () =>
      Effect.gen(function*() {
        const ok = yield* makeClient(() => json({ id: "u-1", pid: 42, status: "running" }, 201))
        assert.deepStrictEqual(yield* ok.startProcess({ cmd: "sleep 1" }), { id: "u-1", pid: 42, status: "running" })
        const empty = yield* makeClient(() => text("Command is required\n", 400))
        assert.strictEqual(
          (yield* Effect.flip(empty.startProcess({ cmd: "" }))).message,
          "Invalid command: Command is required"
        )
        const cwd = yield* makeClient(() => text("Invalid working directory: /x\n", 400))
        const error = yield* Effect.flip(cwd.startProcess({ cmd: "ls", cwd: "/x" }))
        assert.strictEqual(error._tag === "InvalidArgument" && error.argument, "cwd")
        const e2big = yield* makeClient(() =>
          json({
            id: "",
            pid: 0,
            status: "",
            error: "failed to start command: fork/exec /usr/bin/sh: argument list too long"
          }, 500)
        )
        const error2 = yield* Effect.flip(e2big.startProcess({ cmd: "a".repeat(140_000) }))
        assert.strictEqual(error2._tag === "InvalidArgument" && error2.argument, "command")
        const other = yield* makeClient(() =>
          json({ id: "", pid: 0, status: "", error: "failed to start command: exec: \"sh\": not found" }, 500)
        )
        const error3 = yield* Effect.flip(other.startProcess({ cmd: "true" }))
        assert.strictEqual(
          error3._tag === "ExecutorError" && error3.detail,
          "failed to start command: exec: \"sh\": not found"
        )
      }))

    it.effect("listProcesses decodes ProcessInfo instances and tolerates extra fields", () =>
      Effect.gen(function*() {
        const client = yield* makeClient(() =>
          json({
            processes: [{ command: "sleep 9", id: "p1", pid: 7, status: "running", exit_code: null, extra: 1 }]
          })
        )
        const list = yield* client.listProcesses
        assert.strictEqual(list.length, 1)
        assert.isTrue(list[0]!.isRunning)
        assert.strictEqual(list[0]!.command, "sleep 9")
        const none = yield* makeClient(() => json({ processes: [] }))
        assert.deepStrictEqual(yield* none.listProcesses, [])
      }))

    it.effect("killProcess maps not found, not running, already finished and empty id", () =>
      Effect.gen(function*() {
        const notFound = yield* makeClient(() => json({ success: false, error: "process not found: zz" }, 400))
        assert.strictEqual((yield* Effect.flip(notFound.killProcess("zz")))._tag, "ProcessNotFound")
        const done = yield* makeClient(() =>
          json({ success: false, error: "process is not running (status: completed)" }, 400)
        )
        const error = yield* Effect.flip(done.killProcess("p"))
        assert.strictEqual(error._tag === "ProcessNotRunning" && error.status, "completed")
        const raced = yield* makeClient(() => json({ success: false, error: "os: process already finished" }, 400))
        const error2 = yield* Effect.flip(raced.killProcess("p"))
        assert.strictEqual(error2._tag === "ProcessNotRunning" && error2.status, "finished")
        const noId = yield* makeClient(() => text("Process ID is required\n", 400))
        assert.strictEqual((yield* Effect.flip(noId.killProcess("")))._tag, "ProcessNotFound")
        const ok = yield* makeClient(() => json({ success: true, message: "Process killed successfully" }))
        yield* ok.killProcess("p")
      }))

    it.effect("processLogs decodes log lines until complete; error event is ProcessNotFound", () =>
      Effect.gen(function*() {
        const log = (stream: string, data: string) =>
          frame("log", JSON.stringify({ timestamp: "2026-11-27T01:56:40.187623309Z", stream, data }))
        const client = yield* makeClient(() =>
          sse(log("stdout", "a") + log("stderr", "b") + frame("complete", `{"message": "stream ended"}`))
        )
        const lines = yield* collect(client.processLogs("p"))
        assert.deepStrictEqual(lines.map((line) => [line.stream, line.data]), [["stdout", "a"], ["stderr", "b"]])
        const missing = yield* makeClient(() => sse(frame("error", `{"error": "process not found: a"b"}`)))
        const error = yield* Effect.flip(Stream.runDrain(missing.processLogs(`a"b`)))
        assert.strictEqual(error._tag === "ProcessNotFound" && error.id, `a"b`)
        const truncated = yield* makeClient(() => sse(log("stdout", "a")))
        const error2 = yield* Effect.flip(Stream.runDrain(truncated.processLogs("p")))
        assert.strictEqual(error2._tag === "ExecutorError" && error2.reason, "Protocol")
        const bad = yield* makeClient(() => sse(frame("log", `{"stream":"stdout"}`)))
        const error3 = yield* Effect.flip(Stream.runDrain(bad.processLogs("p")))
        assert.strictEqual(error3._tag === "ExecutorError" && error3.reason, "Decode")
      }))

    it.effect("health parses JSON sent as text/plain and optional capabilities", () =>
      Effect.gen(function*() {
        const stock = yield* makeClient(() => text(`{"status":"ok"}`, 200))
        assert.deepStrictEqual(yield* stock.health, { status: "ok" })
        const ours = yield* makeClient(() => json({ status: "ok", capabilities: ["base64"] }))
        assert.deepStrictEqual(yield* ours.health, { status: "ok", capabilities: ["base64"] })
      }))
  })

  describe("capabilities and isHealthy", () => {
    // A client whose `/health` replies are produced by `reply` (which may wait), counting them.
    const probed = (reply: () => Effect.Effect<Response>) => {
      const counter = { probes: 0 }
      const client = ExecutorClient.make({ url: "http://executor.test", secret: Redacted.make("s") }).pipe(
        Effect.provideService(
          HttpClient.HttpClient,
          HttpClient.make((request) =>
            Effect.map(
              Effect.suspend(() => {
                counter.probes++
                return reply()
              }),
              (response) => HttpClientResponse.fromWeb(request, response)
            )
          )
        )
      )
      return Effect.map(client, (client) => ({ client, counter }))
    }

    it.effect("capabilities: asked once, when first needed, and shared by every caller", () =>
      Effect.gen(function*() {
        const { client, counter } = yield* probed(() =>
          Effect.succeed(json({ status: "ok", capabilities: ["binary-files", "process-group-kill"] }))
        )
        assert.strictEqual(counter.probes, 0)
        const all = yield* Effect.all([client.capabilities, client.capabilities, client.capabilities], {
          concurrency: "unbounded"
        })
        for (const capabilities of all) {
          assert.deepStrictEqual([...capabilities].sort(), ["binary-files", "process-group-kill"])
        }
        yield* client.capabilities
        assert.strictEqual(counter.probes, 1)
      }))

    it.effect("capabilities: none from a stock executor, a failed probe or one slower than 2 seconds", () =>
      Effect.gen(function*() {
        const stock = yield* probed(() => Effect.succeed(text(`{"status":"ok"}`, 200)))
        assert.strictEqual((yield* stock.client.capabilities).size, 0)
        const failing = yield* probed(() => Effect.succeed(text("boom", 500)))
        assert.strictEqual((yield* failing.client.capabilities).size, 0)
        const slow = yield* probed(() =>
          Effect.as(Effect.sleep("3 seconds"), json({ status: "ok", capabilities: ["binary-files"] }))
        )
        const fiber = yield* Effect.fork(slow.client.capabilities)
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual((yield* Fiber.join(fiber)).size, 0)
        // the answer is kept: no second probe
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual((yield* slow.client.capabilities).size, 0)
        assert.strictEqual(slow.counter.probes, 1)
      }))

    it.effect("capabilities: interrupting the first caller neither cancels nor repeats the probe", () =>
      Effect.gen(function*() {
        const { client, counter } = yield* probed(() =>
          Effect.as(Effect.sleep("1 second"), json({ status: "ok", capabilities: ["binary-files"] }))
        )
        const first = yield* Effect.fork(client.capabilities)
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(first)
        const second = yield* Effect.fork(client.capabilities)
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual([...(yield* Fiber.join(second))], ["binary-files"])
        assert.strictEqual(counter.probes, 1)
      }))

    it.effect("isHealthy: a healthy status within 5 seconds, never a failure", () =>
      Effect.gen(function*() {
        for (const status of ["ok", "healthy", "READY"]) {
          const { client } = yield* probed(() => Effect.succeed(json({ status })))
          assert.isTrue(yield* client.isHealthy, status)
        }
        const starting = yield* probed(() => Effect.succeed(json({ status: "starting" })))
        assert.isFalse(yield* starting.client.isHealthy)
        const failing = yield* probed(() => Effect.succeed(text("boom", 503)))
        assert.isFalse(yield* failing.client.isHealthy)
        const slow = yield* probed(() => Effect.as(Effect.sleep("6 seconds"), json({ status: "ok" })))
        const fiber = yield* Effect.fork(slow.client.isHealthy)
        yield* TestClock.adjust("5 seconds")
        assert.isFalse(yield* Fiber.join(fiber))
      }))
  })
})
