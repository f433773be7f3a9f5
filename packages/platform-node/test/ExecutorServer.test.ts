import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Module from "node:module"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import * as ExecutorServer from "@effect-koyeb/platform-node/ExecutorServer"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Exit from "effect/Exit"

const secret = "test-secret-0123456789"

class Server extends Context.Tag("test/Server")<Server, ExecutorServer.ExecutorServerAddressShape>() {}

const serverLayer = Layer.scoped(
  Server,
  ExecutorServer.make({ secret: Redacted.make(secret), killGracePeriod: "300 millis" })
)

interface Reply {
  readonly status: number
  readonly contentType: string | null
  readonly headers: Headers
  readonly text: string
}

const request = (
  url: string,
  init: { readonly method?: string; readonly body?: string; readonly auth?: string | null } = {}
): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const headers: Record<string, string> = {}
    const auth = init.auth === undefined ? `Bearer ${secret}` : init.auth
    if (auth !== null) headers.authorization = auth
    const response = await fetch(url, {
      method: init.method ?? (init.body === undefined ? "GET" : "POST"),
      headers,
      ...(init.body !== undefined ? { body: init.body } : {})
    })
    return {
      status: response.status,
      contentType: response.headers.get("content-type"),
      headers: response.headers,
      text: await response.text()
    }
  })

const call = (path: string, body?: unknown, init: { readonly method?: string; readonly auth?: string | null } = {}) =>
  Effect.flatMap(Server, (server) =>
    request(`${server.url}${path}`, {
      ...init,
      ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {})
    }))

interface SseEvent {
  readonly event: string
  readonly data: string
}

const parseSse = (text: string): Array<SseEvent> => {
  assert.isTrue(text.endsWith("\n\n"), "stream ends with a blank line")
  return text.slice(0, -2).split("\n\n").map((block) => {
    const [event, data, ...rest] = block.split("\n")
    assert.strictEqual(rest.length, 0)
    assert.isTrue(event!.startsWith("event: ") && data!.startsWith("data: "), block)
    return { event: event!.slice(7), data: data!.slice(6) }
  })
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Polls `check` every 50 ms (at most ~10 s) until it is true; returns its last value. */
const eventually = <R>(check: Effect.Effect<boolean, never, R>, attempts = 200): Effect.Effect<boolean, never, R> =>
  Effect.flatMap(check, (ok) =>
    ok || attempts <= 1 ? Effect.succeed(ok) : Effect.zipRight(Effect.sleep("50 millis"), eventually(check, attempts - 1)))

const gone = (...pids: Array<number>) => eventually(Effect.sync(() => pids.every((pid) => !isAlive(pid))))

const startProcess = (cmd: string) =>
  Effect.map(call("/start_process", { cmd }), (reply) => {
    assert.strictEqual(reply.status, 201, reply.text)
    return JSON.parse(reply.text) as { id: string; pid: number; status: string }
  })

const logs = (id: string) => Effect.map(call(`/process_logs_streaming?id=${encodeURIComponent(id)}`), (r) => parseSse(r.text))

const statusOf = (id: string) =>
  Effect.map(call("/list_processes"), (r) =>
    (JSON.parse(r.text) as { processes: Array<{ id: string; status: string; exit_code?: number }> }).processes
      .find((p) => p.id === id))

/** Reads a streaming response until `until` matches the text so far, then aborts the request. */
const readThenAbort = (url: string, init: RequestInit, until: (text: string) => boolean) =>
  Effect.promise(async () => {
    const controller = new AbortController()
    const response = await fetch(url, { ...init, signal: controller.signal })
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let text = ""
    while (!until(text)) {
      const { done, value } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
    controller.abort()
    await reader.cancel().catch(() => {})
    return text
  })

layer(serverLayer, { excludeTestServices: true })("ExecutorServer wire", (it) => {
  it.effect("/health needs no auth, on both prefixes, raw JSON as text/plain", () =>
    Effect.gen(function*() {
      for (const path of ["/health", "/koyeb-sandbox/health"]) {
        const reply = yield* call(path, undefined, { auth: null })
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.contentType, "text/plain; charset=utf-8")
        const body = JSON.parse(reply.text)
        assert.strictEqual(body.status, "ok")
        assert.include(body.capabilities, "process-group-kill")
        assert.isFalse(reply.text.endsWith("\n"))
      }
    }))

  it.effect("unknown paths are 404 before auth", () =>
    Effect.gen(function*() {
      for (const path of ["/nope", "/run/", "/koyeb-sandbox", "/koyeb-sandbox/nope"]) {
        const reply = yield* call(path, undefined, { auth: null })
        assert.strictEqual(reply.status, 404)
        assert.strictEqual(reply.text, "404 page not found\n")
      }
    }))

  it.effect("401 for a missing, malformed or wrong token", () =>
    Effect.gen(function*() {
      for (const auth of [null, `bearer ${secret}`, `Basic ${secret}`, "Bearer ", `Bearer ${secret}x`, "Bearer wrong"]) {
        const reply = yield* call("/run", { cmd: "true" }, { auth })
        assert.strictEqual(reply.status, 401, String(auth))
        assert.strictEqual(reply.text, "Unauthorized\n")
        assert.strictEqual(reply.contentType, "text/plain; charset=utf-8")
        assert.strictEqual(reply.headers.get("x-content-type-options"), "nosniff")
      }
    }))

  it.effect("405 only where the stock checks methods", () =>
    Effect.gen(function*() {
      const cases: Array<[string, string]> = [
        ["/start_process", "GET"],
        ["/list_processes", "POST"],
        ["/kill_process", "GET"],
        ["/process_logs_streaming?id=x", "POST"]
      ]
      for (const [path, method] of cases) {
        const reply = yield* call(path, undefined, { method })
        assert.strictEqual(reply.status, 405, path)
        assert.strictEqual(reply.text, "Method not allowed\n")
      }
      const server = yield* Server
      const get = yield* Effect.promise(() =>
        fetch(`${server.url}/koyeb-sandbox/run`, {
          method: "PUT",
          headers: { authorization: `Bearer ${secret}` },
          body: JSON.stringify({ cmd: "echo put" })
        }).then((r) => r.text())
      )
      assert.strictEqual(get, `{"stdout":"put\\n","stderr":"","code":0}\n`)
    }))

  it.effect("400 Invalid request for empty bodies and type mismatches; Go decoding rules otherwise", () =>
    Effect.gen(function*() {
      for (
        const [path, body] of [
          ["/run", ""],
          ["/run", "{"],
          ["/run", `{"cmd": 1}`],
          ["/run", `{"cmd":"true","env":{"A":1}}`],
          ["/bind_port", `{"port": 8080}`],
          ["/read_file", `[]`]
        ] as const
      ) {
        const reply = yield* call(path, body)
        assert.strictEqual(reply.status, 400, `${path} ${body}`)
        assert.strictEqual(reply.text, "Invalid request\n")
      }
      // unknown fields ignored, trailing garbage ignored, case-insensitive keys, null accepted
      const reply = yield* call("/run", `{"CMD":"echo $A","extra":[1],"env":{"A":"x"},"cwd":null} trailing`)
      assert.strictEqual(reply.text, `{"stdout":"x\\n","stderr":"","code":0}\n`)
    }))

  it.effect("/run: buffered result, error only on non-zero, -1 for signal death, HTML escaping", () =>
    Effect.gen(function*() {
      const ok = yield* call("/run", { cmd: "printf '<a&b>'; printf 'e' >&2" })
      assert.strictEqual(ok.status, 200)
      assert.strictEqual(ok.contentType, "application/json")
      assert.strictEqual(ok.text, `{"stdout":"\\u003ca\\u0026b\\u003e","stderr":"e","code":0}\n`)
      const failed = yield* call("/run", { cmd: "exit 7" })
      assert.strictEqual(failed.text, `{"stdout":"","stderr":"","error":"Non-zero exit code","code":7}\n`)
      const killed = yield* call("/run", { cmd: "kill -9 $$" })
      assert.strictEqual(JSON.parse(killed.text).code, -1)
      const empty = yield* call("/run", {})
      assert.strictEqual(empty.text, `{"stdout":"","stderr":"","code":0}\n`)
    }))

  it.effect("/run: invalid cwd is 400, a valid cwd is used, relative cwd resolved", () =>
    Effect.gen(function*() {
      const bad = yield* call("/run", { cmd: "pwd", cwd: "/definitely/not/here" })
      assert.strictEqual(bad.status, 400)
      assert.strictEqual(bad.text, "Invalid working directory: /definitely/not/here\n")
      const file = yield* call("/run", { cmd: "pwd", cwd: "/etc/hostname" })
      assert.strictEqual(file.status, 400)
      const good = yield* call("/run", { cmd: "pwd", cwd: "/tmp" })
      assert.strictEqual(JSON.parse(good.text).stdout, "/tmp\n")
    }))

  it.effect("the secret is not in a command's environment; request env overrides", () =>
    Effect.gen(function*() {
      const reply = yield* call("/run", { cmd: "echo \"[$SANDBOX_SECRET]\"; env | grep -c " + secret + " || true" })
      assert.strictEqual(JSON.parse(reply.text).stdout, "[]\n0\n")
      const env = yield* call("/run", { cmd: "echo $HOME", env: { HOME: "/override" } })
      assert.strictEqual(JSON.parse(env.text).stdout, "/override\n")
    }))

  it.effect("/run does not deadlock with more than 64 KiB on stderr", () =>
    Effect.gen(function*() {
      const reply = yield* call("/run", { cmd: "head -c 300000 /dev/zero | tr '\\0' x >&2; echo done" })
      const body = JSON.parse(reply.text)
      assert.strictEqual(body.stdout, "done\n")
      assert.strictEqual(body.stderr.length, 300000)
    }))

  it.effect("/run_streaming: exact SSE framing, line splitting and headers", () =>
    Effect.gen(function*() {
      const reply = yield* call("/koyeb-sandbox/run_streaming", { cmd: "printf 'a\\ny\\rz\\r\\r\\n\\n<c>'; exit 3" })
      assert.strictEqual(reply.status, 200)
      assert.strictEqual(reply.contentType, "text/event-stream")
      assert.strictEqual(reply.headers.get("cache-control"), "no-cache")
      assert.strictEqual(reply.headers.get("connection"), "keep-alive")
      assert.strictEqual(
        reply.text,
        "event: output\ndata: {\"data\":\"a\",\"stream\":\"stdout\"}\n\n" +
          "event: output\ndata: {\"data\":\"y\\rz\",\"stream\":\"stdout\"}\n\n" +
          "event: output\ndata: {\"data\":\"\",\"stream\":\"stdout\"}\n\n" +
          "event: output\ndata: {\"data\":\"\\u003cc\\u003e\",\"stream\":\"stdout\"}\n\n" +
          "event: complete\ndata: {\"code\":3,\"error\":true}\n\n"
      )
    }))

  it.effect("/run_streaming: every line of both streams arrives, UTF-8 never split", () =>
    Effect.gen(function*() {
      const reply = yield* call("/run_streaming", {
        cmd: "seq 1 20000; yes 'é€😀' | head -n 30000 >&2"
      })
      const events = parseSse(reply.text)
      const out = events.filter((e) => e.event === "output").map((e) => JSON.parse(e.data) as { data: string; stream: string })
      const stdout = out.filter((e) => e.stream === "stdout").map((e) => e.data)
      const stderr = out.filter((e) => e.stream === "stderr").map((e) => e.data)
      assert.strictEqual(stdout.length, 20000)
      assert.isTrue(stdout.every((line, i) => line === String(i + 1)))
      assert.strictEqual(stderr.length, 30000)
      assert.isTrue(stderr.every((line) => line === "é€😀"))
      assert.deepStrictEqual(events.at(-1), { event: "complete", data: `{"code":0,"error":false}` })
    }))

  it.effect("/run_streaming: a start failure is an SSE error event", () =>
    Effect.gen(function*() {
      const reply = yield* call("/run_streaming", { cmd: `echo ${"x".repeat(140_000)}` })
      assert.strictEqual(reply.status, 200)
      assert.strictEqual(reply.text, `event: error\ndata: {"error": "Failed to start command"}\n\n`)
      const run = yield* call("/run", { cmd: `echo ${"x".repeat(140_000)}` })
      assert.strictEqual(run.status, 500)
      assert.strictEqual(run.text, "Failed to start command\n")
    }))

  it.effect("/run_streaming: client disconnect kills the whole process group, even when silent", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const text = yield* readThenAbort(`${server.url}/run_streaming`, {
        method: "POST",
        headers: { authorization: `Bearer ${secret}` },
        body: JSON.stringify({ cmd: "sleep 300 & echo $!; wait" })
      }, (t) => t.includes("\n\n"))
      const pid = Number(JSON.parse(parseSse(text)[0]!.data).data)
      assert.isTrue(pid > 0)
      assert.isTrue(yield* gone(pid), "grandchild sleep killed")
    }))

  it.effect("background process: 201 reply, listed, complete logs for short processes", () =>
    Effect.gen(function*() {
      for (let run = 0; run < 5; run++) {
        const started = yield* startProcess("seq 1 300")
        assert.deepStrictEqual(Object.keys(started), ["id", "pid", "status"])
        assert.strictEqual(started.status, "running")
        assert.match(started.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
        const events = yield* logs(started.id)
        assert.deepStrictEqual(events.at(-1), { event: "complete", data: `{"message": "stream ended"}` })
        const lines = events.filter((e) => e.event === "log").map((e) => JSON.parse(e.data))
        assert.strictEqual(lines.length, 300)
        assert.deepStrictEqual(Object.keys(lines[0]), ["timestamp", "stream", "data"])
        assert.isTrue(lines.every((l, i) => l.data === String(i + 1) && l.stream === "stdout"))
        const listed = yield* statusOf(started.id)
        assert.strictEqual(listed?.status, "completed")
        assert.strictEqual(listed?.exit_code, 0)
      }
      const list = yield* call("/list_processes")
      assert.strictEqual(list.contentType, "application/json")
      const first = JSON.parse(list.text).processes[0]
      assert.deepStrictEqual(Object.keys(first).filter((k) => ["command", "id", "pid", "status"].includes(k)), [
        "command",
        "id",
        "pid",
        "status"
      ])
    }))

  it.effect("/start_process validation", () =>
    Effect.gen(function*() {
      const empty = yield* call("/start_process", { cmd: "" })
      assert.strictEqual(empty.status, 400)
      assert.strictEqual(empty.text, "Command is required\n")
      const cwd = yield* call("/start_process", { cmd: "true", cwd: "/nope" })
      assert.strictEqual(cwd.text, "Invalid working directory: /nope\n")
      const tooLong = yield* call("/start_process", { cmd: `echo ${"x".repeat(140_000)}` })
      assert.strictEqual(tooLong.status, 500)
      const body = JSON.parse(tooLong.text)
      assert.deepStrictEqual([body.id, body.pid, body.status], ["", 0, ""])
      assert.match(body.error, /^failed to start command: /)
    }))

  it.effect("/kill_process: SIGTERM to the group, then status killed; refusals", () =>
    Effect.gen(function*() {
      const started = yield* startProcess("sleep 300 & echo $!; wait")
      const server = yield* Server
      const text = yield* readThenAbort(
        `${server.url}/process_logs_streaming?id=${started.id}`,
        { headers: { authorization: `Bearer ${secret}` } },
        (t) => t.includes("\n\n")
      )
      const grandchild = Number(JSON.parse(parseSse(text)[0]!.data).data)
      assert.isTrue(isAlive(grandchild))
      const killed = yield* call("/kill_process", { id: started.id })
      assert.strictEqual(killed.status, 200)
      assert.strictEqual(killed.text, `{"success":true,"message":"Process killed successfully"}\n`)
      assert.isTrue(yield* gone(grandchild), "grandchild killed")
      assert.isTrue(yield* eventually(Effect.map(statusOf(started.id), (p) => p?.status === "killed")))
      const again = yield* call("/kill_process", { id: started.id })
      assert.strictEqual(again.status, 400)
      assert.strictEqual(again.text, `{"success":false,"error":"process is not running (status: killed)"}\n`)
      const unknown = yield* call("/kill_process", { id: "nope" })
      assert.strictEqual(unknown.text, `{"success":false,"error":"process not found: nope"}\n`)
      const missing = yield* call("/kill_process", {})
      assert.strictEqual(missing.text, "Process ID is required\n")
    }))

  it.effect("/process_logs_streaming: unknown id (escaped), missing id", () =>
    Effect.gen(function*() {
      const unknown = yield* call(`/process_logs_streaming?id=${encodeURIComponent("a\"b")}`)
      assert.strictEqual(unknown.status, 200)
      assert.strictEqual(unknown.contentType, "text/event-stream")
      assert.strictEqual(unknown.text, `event: error\ndata: {"error": "process not found: a\\"b"}\n\n`)
      const missing = yield* call("/process_logs_streaming")
      assert.strictEqual(missing.status, 400)
      assert.strictEqual(missing.text, "Process ID is required\n")
    }))

  it.effect("a 2 MB line does not hang a background process", () =>
    Effect.gen(function*() {
      const started = yield* startProcess("head -c 2000000 /dev/zero | tr '\\0' a; echo; echo after")
      const events = yield* logs(started.id)
      const lines = events.filter((e) => e.event === "log").map((e) => (JSON.parse(e.data) as { data: string }).data)
      assert.strictEqual(lines.at(-1), "after")
      assert.strictEqual(lines.slice(0, -1).join("").length, 2_000_000)
      assert.strictEqual((yield* statusOf(started.id))?.status, "completed")
    }))

  it.effect("files: round trip, omitted fields, Go error strings", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "executor-test-"))
      const p = (name: string) => Path.join(dir, name)
      const j = (r: Reply) => r.text
      assert.strictEqual(j(yield* call("/make_dir", { path: p("a/b") })), `{"success":true}\n`)
      assert.strictEqual(j(yield* call("/make_dir", { path: p("a/b") })), `{"success":true}\n`)
      assert.strictEqual(j(yield* call("/write_file", { path: p("a/f.txt"), content: "héllo" })), `{"success":true}\n`)
      assert.strictEqual(j(yield* call("/read_file", { path: p("a/f.txt") })), `{"content":"héllo"}\n`)
      assert.strictEqual(j(yield* call("/write_file", { path: p("empty") })), `{"success":true}\n`)
      assert.strictEqual(j(yield* call("/read_file", { path: p("empty") })), `{}\n`)
      assert.strictEqual(j(yield* call("/list_dir", { path: p("a") })), `{"entries":["b","f.txt"]}\n`)
      assert.strictEqual(j(yield* call("/list_dir", { path: p("a/b") })), `{}\n`)
      const missing = p("missing")
      assert.strictEqual(j(yield* call("/read_file", { path: missing })), `{"error":"open ${missing}: no such file or directory"}\n`)
      assert.strictEqual(j(yield* call("/read_file", { path: p("a") })), `{"error":"read ${p("a")}: is a directory"}\n`)
      assert.strictEqual(j(yield* call("/list_dir", { path: p("empty") })), `{"error":"readdirent ${p("empty")}: not a directory"}\n`)
      assert.strictEqual(
        j(yield* call("/write_file", { path: p("no/f"), content: "x" })),
        `{"error":"open ${p("no/f")}: no such file or directory","success":false}\n`
      )
      assert.strictEqual(
        j(yield* call("/write_file", { path: p("a"), content: "x" })),
        `{"error":"open ${p("a")}: is a directory","success":false}\n`
      )
      assert.strictEqual(
        j(yield* call("/delete_file", { path: p("a") })),
        `{"error":"remove ${p("a")}: directory not empty","success":false}\n`
      )
      assert.strictEqual(
        j(yield* call("/delete_file", { path: missing })),
        `{"error":"remove ${missing}: no such file or directory","success":false}\n`
      )
      assert.strictEqual(
        j(yield* call("/make_dir", { path: p("empty/x/y") })),
        `{"error":"mkdir ${p("empty")}: not a directory","success":false}\n`
      )
      assert.strictEqual(j(yield* call("/make_dir", { path: "" })), `{"error":"mkdir : no such file or directory","success":false}\n`)
      assert.strictEqual(j(yield* call("/delete_dir", { path: `${p("a")}/.` })), `{"error":"RemoveAll ${p("a")}/.: invalid argument","success":false}\n`)
      assert.strictEqual(j(yield* call("/delete_file", { path: p("a/b") })), `{"success":true}\n`)
      assert.strictEqual(j(yield* call("/delete_dir", { path: p("a") })), `{"success":true}\n`)
      assert.strictEqual(j(yield* call("/delete_dir", { path: missing })), `{"success":true}\n`)
      assert.isFalse(Fs.existsSync(p("a")))
      Fs.rmSync(dir, { recursive: true, force: true })
    }))

  it.effect("bind_port / unbind_port and the TCP proxy", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const required = yield* call("/bind_port", { port: "" })
      assert.strictEqual(required.status, 400)
      assert.strictEqual(required.text, "Port is required\n")
      // an echo server to forward to
      const echo = Net.createServer((s) => s.pipe(s))
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => {
          echo.listen(0, "127.0.0.1", () => resume(Effect.void))
        }),
        () => Effect.sync(() => void echo.close())
      )
      const port = String((echo.address() as Net.AddressInfo).port)
      // nothing bound: the proxy closes the connection
      const closedWithoutTarget = yield* Effect.promise(() =>
        new Promise<boolean>((resolve) => {
          const s = Net.connect(server.proxyPort, "127.0.0.1")
          s.on("error", () => {})
          s.on("close", () => resolve(true))
        })
      )
      assert.isTrue(closedWithoutTarget)
      const bound = yield* call("/bind_port", { port })
      assert.strictEqual(bound.text, `{"message":"Port binding configured","port":"${port}","success":true}\n`)
      const conflict = yield* call("/bind_port", { port })
      assert.strictEqual(conflict.status, 409)
      assert.strictEqual(conflict.text, `{"current_port":"${port}","error":"Port already bound","success":false}\n`)
      const echoed = yield* Effect.promise(() =>
        new Promise<string>((resolve, reject) => {
          const s = Net.connect(server.proxyPort, "127.0.0.1", () => s.write("ping through proxy"))
          s.on("data", (d) => {
            resolve(d.toString())
            s.destroy()
          })
          s.on("error", reject)
        })
      )
      assert.strictEqual(echoed, "ping through proxy")
      const unbound = yield* call("/unbind_port", "not json at all")
      assert.strictEqual(unbound.text, `{"message":"Port binding removed","success":true}\n`)
    }).pipe(Effect.scoped))
})

describe("ExecutorServer options and lifecycle", () => {
  const withServer = (options: ExecutorServer.ExecutorServerOptions) =>
    Effect.provideServiceEffect(Server, ExecutorServer.make({ secret: Redacted.make(secret), ...options }))

  it.scopedLive("413 over maxBodyBytes, by Content-Length and while reading a chunked body", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const declared = yield* call("/write_file", { path: "/tmp/x", content: "y".repeat(5000) })
      assert.strictEqual(declared.status, 413)
      const chunked = yield* Effect.promise(() =>
        fetch(`${server.url}/write_file`, {
          method: "POST",
          headers: { authorization: `Bearer ${secret}` },
          body: new ReadableStream({
            start(controller) {
              for (let i = 0; i < 10; i++) controller.enqueue(new TextEncoder().encode("x".repeat(1000)))
              controller.close()
            }
          }),
          duplex: "half"
        } as RequestInit).then((r) => r.status, () => 413)
      )
      assert.strictEqual(chunked, 413)
      const small = yield* call("/run", { cmd: "echo ok" })
      assert.strictEqual(small.status, 200)
    }).pipe(withServer({ maxBodyBytes: 1024 })))

  it.scopedLive("log replay of 30 000 lines: no crash, chronological, no duplicates", () =>
    Effect.gen(function*() {
      const started = yield* startProcess("i=1; while [ $i -le 15000 ]; do echo o$i; echo e$i >&2; i=$((i+1)); done")
      assert.isTrue(yield* eventually(Effect.map(statusOf(started.id), (p) => p?.status === "completed")))
      const events = yield* logs(started.id)
      const lines = events.filter((e) => e.event === "log").map((e) => JSON.parse(e.data) as { stream: string; data: string })
      assert.strictEqual(lines.length, 30000)
      const out = lines.filter((l) => l.stream === "stdout").map((l) => l.data)
      const err = lines.filter((l) => l.stream === "stderr").map((l) => l.data)
      assert.isTrue(out.every((d, i) => d === `o${i + 1}`))
      assert.isTrue(err.every((d, i) => d === `e${i + 1}`))
      // merged by time, not all stdout then all stderr
      assert.isBelow(lines.findIndex((l) => l.stream === "stderr"), 15000)
      const health = yield* call("/health", undefined, { auth: null })
      assert.strictEqual(health.status, 200)
    }).pipe(withServer({ logLinesPerStream: 15_000 })))

  it.scopedLive("log buffers keep the last logLinesPerStream lines", () =>
    Effect.gen(function*() {
      const started = yield* startProcess("seq 1 12000")
      const lines = (yield* logs(started.id)).filter((e) => e.event === "log").map((e) => JSON.parse(e.data).data)
      assert.strictEqual(lines.length, 10000)
      assert.isTrue(lines.every((d, i) => d === String(i + 2001)))
    }).pipe(withServer({})))

  it.live("closing the scope kills every process group and both listeners", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const address = yield* ExecutorServer.make({ secret: Redacted.make(secret) }).pipe(Scope.extend(scope))
      const started = yield* Effect.provideService(startProcess("sleep 300"), Server, address)
      const run = yield* Effect.provideService(call("/run", { cmd: "sleep 301 >/dev/null 2>&1 & echo $!" }), Server, address)
      const daemon = Number(JSON.parse(run.text).stdout)
      assert.isTrue(isAlive(started.pid) && isAlive(daemon))
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(yield* gone(started.pid, daemon))
      const refused = yield* Effect.promise(() => fetch(`${address.url}/health`).then(() => false, () => true))
      assert.isTrue(refused)
    }))

  it.live("a missing secret fails with ExecutorServerError", () =>
    Effect.gen(function*() {
      const result = yield* Effect.flip(Effect.scoped(ExecutorServer.make({ secret: Redacted.make("") })))
      assert.strictEqual(result._tag, "ExecutorServerError")
      assert.strictEqual(result.reason, "MissingSecret")
    }))

  it.live("bin: prints the listening line, serves, and exits when its parent is gone", () =>
    Effect.promise(async () => {
      const parent = ChildProcess.spawn("sleep", ["3"], { stdio: "ignore" })
      const bin = Path.join(import.meta.dirname, "../src/bin/effect-koyeb.ts")
      const tsx = Url.pathToFileURL(Module.createRequire(import.meta.url).resolve("tsx")).href
      const child = ChildProcess.spawn(process.execPath, ["--import", tsx, bin, "executor", "--port", "0", "--proxy-port=0"], {
        env: { ...process.env, SANDBOX_SECRET: secret, EFFECT_KOYEB_PARENT_PID: String(parent.pid) },
        stdio: ["ignore", "pipe", "inherit"]
      })
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
      const line = await new Promise<string>((resolve) => {
        let out = ""
        child.stdout.on("data", (d) => {
          out += d
          if (out.includes("\n")) resolve(out.split("\n")[0]!)
        })
      })
      const event = JSON.parse(line)
      assert.deepStrictEqual(Object.keys(event), ["event", "url", "port", "proxyPort"])
      assert.strictEqual(event.url, `http://127.0.0.1:${event.port}`)
      const run = await fetch(`${event.url}/run`, {
        method: "POST",
        headers: { authorization: `Bearer ${secret}` },
        body: JSON.stringify({ cmd: "echo \"[$EFFECT_KOYEB_PARENT_PID$SANDBOX_SECRET]\"" })
      }).then((r) => r.json())
      assert.strictEqual(run.stdout, "[]\n")
      assert.strictEqual(await exited, 0)
    }))
})
