import * as ExecutorWire from "@effect-koyeb/core/ExecutorWire"
import * as ExecutorServer from "@effect-koyeb/platform-node/ExecutorServer"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { cliBin } from "./utils/cliBin.js"
import { openFiles } from "./utils/hostProcesses.js"

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
  Effect.flatMap(
    check,
    (ok) =>
      ok || attempts <= 1
        ? Effect.succeed(ok)
        : Effect.zipRight(Effect.sleep("50 millis"), eventually(check, attempts - 1))
  )

const gone = (...pids: Array<number>) => eventually(Effect.sync(() => pids.every((pid) => !isAlive(pid))))

const startProcess = (cmd: string) =>
  Effect.map(call("/start_process", { cmd }), (reply) => {
    assert.strictEqual(reply.status, 201, reply.text)
    return JSON.parse(reply.text) as { id: string; pid: number; status: string }
  })

const logs = (id: string) =>
  Effect.map(call(`/process_logs_streaming?id=${encodeURIComponent(id)}`), (r) => parseSse(r.text))

const statusOf = (id: string) =>
  Effect.map(
    call("/list_processes"),
    (r) =>
      (JSON.parse(r.text) as { processes: Array<{ id: string; status: string; exit_code?: number }> }).processes
        .find((p) => p.id === id)
  )

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
      for (
        const auth of [null, `bearer ${secret}`, `Basic ${secret}`, "Bearer ", `Bearer ${secret}x`, "Bearer wrong"]
      ) {
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

  it.effect("Go decoding: zero values, null, repeated keys, lone surrogates", () =>
    Effect.gen(function*() {
      for (
        const [path, body] of [
          ["/run", `{"env":[]}`],
          ["/run", `{"env":{"A":{}}}`],
          ["/run", `"true"`],
          // Go reports a type mismatch even when a later key sets the field again
          ["/run", `{"cmd":1,"CMD":"true"}`],
          ["/kill_process", `{"id":["x"]}`],
          ["/write_file", `{"path":"x","content":{}}`]
        ] as const
      ) {
        const reply = yield* call(path, body)
        assert.strictEqual(reply.status, 400, `${path} ${body}`)
        assert.strictEqual(reply.text, "Invalid request\n")
      }
      // a top-level null is the zero struct: an empty command
      assert.strictEqual((yield* call("/run", "null")).text, `{"stdout":"","stderr":"","code":0}\n`)
      // a null field changes nothing; a null map value is the empty string; the last key wins
      const kept = yield* call("/run", `{"cmd":"echo \\"[$A]\\"","CMD":null,"env":{"A":null}}`)
      assert.strictEqual(kept.text, `{"stdout":"[]\\n","stderr":"","code":0}\n`)
      const last = yield* call("/run", `{"Cmd":"echo first","cmd":"echo second"}`)
      assert.strictEqual(JSON.parse(last.text).stdout, "second\n")
      // lone surrogates decode as U+FFFD
      const surrogate = yield* call("/run", `{"cmd":"printf %s \\"\\ud800\\""}`)
      assert.strictEqual(JSON.parse(surrogate.text).stdout, "\ufffd")
      // a missing field is the zero value: /bind_port without a port is "Port is required"
      const bind = yield* call("/bind_port", `{}`)
      assert.strictEqual(bind.status, 400)
      assert.strictEqual(bind.text, "Port is required\n")
    }))

  it.effect("the request schemas of ExecutorWire encode what the server decodes", () =>
    Effect.sync(() => {
      const request = Schema.decodeUnknownSync(ExecutorWire.CommandRequest)({ cmd: "true", env: { A: null } })
      assert.deepStrictEqual(request, { cmd: "true", cwd: "", env: { A: "" } })
      assert.deepStrictEqual(Schema.encodeSync(ExecutorWire.CommandRequest)(request), request)
      assert.deepStrictEqual(Schema.decodeUnknownSync(ExecutorWire.WriteFileRequest)({ path: "a", content: null }), {
        path: "a",
        content: ""
      })
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
      const out = events.filter((e) => e.event === "output").map((e) =>
        JSON.parse(e.data) as { data: string; stream: string }
      )
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
      assert.strictEqual(
        j(yield* call("/read_file", { path: missing })),
        `{"error":"open ${missing}: no such file or directory"}\n`
      )
      assert.strictEqual(j(yield* call("/read_file", { path: p("a") })), `{"error":"read ${p("a")}: is a directory"}\n`)
      assert.strictEqual(
        j(yield* call("/list_dir", { path: p("empty") })),
        `{"error":"readdirent ${p("empty")}: not a directory"}\n`
      )
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
      assert.strictEqual(
        j(yield* call("/make_dir", { path: "" })),
        `{"error":"mkdir : no such file or directory","success":false}\n`
      )
      assert.strictEqual(
        j(yield* call("/delete_dir", { path: `${p("a")}/.` })),
        `{"error":"RemoveAll ${p("a")}/.: invalid argument","success":false}\n`
      )
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
      const lines = events.filter((e) => e.event === "log").map((e) =>
        JSON.parse(e.data) as { stream: string; data: string }
      )
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
      // read once it has ended: a reader following the live output would see every line
      assert.isTrue(yield* eventually(Effect.map(statusOf(started.id), (p) => p?.status === "completed")))
      const lines = (yield* logs(started.id)).filter((e) => e.event === "log").map((e) => JSON.parse(e.data).data)
      assert.strictEqual(lines.length, 10000)
      assert.isTrue(lines.every((d, i) => d === String(i + 2001)))
    }).pipe(withServer({})))

  it.live("closing the scope kills every process group and both listeners", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const address = yield* ExecutorServer.make({ secret: Redacted.make(secret) }).pipe(Scope.extend(scope))
      const started = yield* Effect.provideService(startProcess("sleep 300"), Server, address)
      const run = yield* Effect.provideService(
        call("/run", { cmd: "sleep 301 >/dev/null 2>&1 & echo $!" }),
        Server,
        address
      )
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

  it.scopedLive("layerConfig reads the options from Config", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), "executor-config-")))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      const layer = ExecutorServer.layerConfig({
        secret: Config.redacted("TEST_SECRET"),
        cwd: Config.string("TEST_CWD")
      })
      const context = yield* Layer.build(layer).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["TEST_SECRET", secret], ["TEST_CWD", dir]])))
      )
      const address = Context.get(context, ExecutorServer.ExecutorServerAddress)
      const reply = yield* request(`${address.url}/run`, { body: JSON.stringify({ cmd: "pwd" }) })
      assert.strictEqual(JSON.parse(reply.text).stdout, `${dir}\n`)
    }))

  it.live("bin: prints the listening line, serves, and exits when its parent is gone", () =>
    Effect.promise(async () => {
      // The parent dies when the test says so, not after a fixed time that a slow start could outlast.
      const parent = ChildProcess.spawn("sleep", ["600"], { stdio: "ignore" })
      try {
        const child = ChildProcess.spawn(process.execPath, [
          cliBin,
          "executor",
          "--port",
          "0",
          "--proxy-port=0"
        ], {
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
        parent.kill("SIGKILL")
        assert.strictEqual(await exited, 0)
      } finally {
        parent.kill("SIGKILL")
      }
    }))
})

/** The descriptors of this process (the server runs in it) open on `path`. */
const fdsOn = (path: string): Array<string> =>
  openFiles("self").filter((open) => open.path === path).map((open) => open.fd)

const fdCount = () => Fs.readdirSync("/proc/self/fd").length

/** The file offset of descriptor `fd` of this process (0 once it is closed). */
const fdPosition = (fd: string): number => {
  try {
    return Number(/^pos:\s+(\d+)$/m.exec(Fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))?.[1] ?? 0)
  } catch {
    return 0
  }
}

const MiB = 1024 * 1024

layer(serverLayer, { excludeTestServices: true })("ExecutorServer binary-files extension", (it) => {
  const tempDir = Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "executor-bin-"))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )
  const auth = { authorization: `Bearer ${secret}` }
  const octet = { ...auth, "content-type": "application/octet-stream" }
  const success = `{"success":true}\n`
  const bytesUrl = (base: string, endpoint: "write_file_bytes" | "read_file_bytes", path: string | undefined) =>
    `${base}/${endpoint}${path === undefined ? "" : `?path=${encodeURIComponent(path)}`}`

  /** Uploads `body`: bytes go with a Content-Length, a stream chunked. */
  const upload = (base: string, path: string | undefined, body: Uint8Array | ReadableStream<Uint8Array>) =>
    Effect.promise(async () => {
      const response = await fetch(bytesUrl(base, "write_file_bytes", path), {
        method: "POST",
        headers: octet,
        body,
        duplex: "half"
      } as RequestInit)
      return { status: response.status, contentType: response.headers.get("content-type"), text: await response.text() }
    })

  const download = (base: string, path: string | undefined) =>
    Effect.promise(async () => {
      const response = await fetch(bytesUrl(base, "read_file_bytes", path), { headers: auth })
      return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) }
    })

  /** A POST through `agent`, `write` sending (part of) the body; resolves on the response. */
  const post = (agent: Http.Agent | false, url: string, write: (request: Http.ClientRequest) => void) =>
    Effect.promise(() =>
      new Promise<{ status: number; text: string; reused: boolean; request: Http.ClientRequest }>((resolve, reject) => {
        const request = Http.request(url, { method: "POST", agent, headers: octet }, (response) => {
          let text = ""
          response.setEncoding("utf8")
          response.on("data", (d) => text += d)
          response.on(
            "end",
            () => resolve({ status: response.statusCode!, text, reused: request.reusedSocket, request })
          )
        })
        request.on("error", reject)
        write(request)
      })
    )

  it.effect("/health lists binary-files", () =>
    Effect.gen(function*() {
      const capabilities = JSON.parse((yield* call("/health", undefined, { auth: null })).text).capabilities
      assert.include(capabilities, "binary-files")
      assert.notInclude(capabilities, "base64-files")
    }))

  it.scoped("all 256 byte values, random bytes, empty and 20 MiB files round trip byte-exact, on both prefixes", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const dir = yield* tempDir
      const cases: Array<[string, Uint8Array]> = [
        ["all", Uint8Array.from({ length: 256 }, (_, i) => i)],
        ["empty", new Uint8Array(0)],
        ["zero", new Uint8Array(1)],
        ["random", Crypto.randomBytes(300_001)],
        ["large", Crypto.randomBytes(20 * MiB + 3)]
      ]
      for (const base of [server.url, `${server.url}/koyeb-sandbox`]) {
        for (const [name, bytes] of cases) {
          const path = Path.join(dir, name)
          const written = yield* upload(base, path, bytes)
          assert.strictEqual(written.status, 200)
          assert.strictEqual(written.contentType, "application/json")
          assert.strictEqual(written.text, success)
          assert.isTrue(Fs.readFileSync(path).equals(bytes), `${name} on disk`)
          assert.strictEqual(Fs.statSync(path).mode & 0o777, 0o644 & ~process.umask())
          const read = yield* download(base, path)
          assert.strictEqual(read.status, 200)
          assert.strictEqual(read.headers.get("content-type"), "application/octet-stream")
          assert.isNull(read.headers.get("content-length"))
          assert.strictEqual(read.headers.get("transfer-encoding"), "chunked")
          assert.isTrue(read.bytes.equals(bytes), `${name} read back`)
          Fs.rmSync(path)
        }
      }
      // an existing file is truncated and keeps its mode, as /write_file does
      const existing = Path.join(dir, "existing")
      Fs.writeFileSync(existing, "a much longer previous content")
      Fs.chmodSync(existing, 0o600)
      assert.strictEqual((yield* upload(server.url, existing, Buffer.from([1, 2]))).text, success)
      assert.deepStrictEqual([...Fs.readFileSync(existing)], [1, 2])
      assert.strictEqual(Fs.statSync(existing).mode & 0o777, 0o600)
      // procfs files have size 0: they are read as a stream, not by size
      const status = yield* download(server.url, "/proc/self/status")
      assert.strictEqual(status.status, 200)
      assert.include(status.bytes.toString(), `\nPid:\t${process.pid}\n`)
    }))

  it.scoped("a body streamed in hundreds of small chunks is written whole", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const dir = yield* tempDir
      const bytes = Crypto.randomBytes(1_000_000)
      let offset = 0
      let chunks = 0
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (offset >= bytes.length) return controller.close()
          const size = 1 + ((chunks * 997) % 4096)
          controller.enqueue(bytes.subarray(offset, offset + size))
          offset += size
          chunks++
        }
      })
      const path = Path.join(dir, "chunked")
      assert.strictEqual((yield* upload(server.url, path, body)).text, success)
      assert.isAbove(chunks, 400)
      assert.isTrue(Fs.readFileSync(path).equals(bytes))
    }))

  it.scoped("paths: spaces, unicode, newlines and URL syntax percent-encoded, form encoding, relative paths", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const dir = yield* tempDir
      for (const name of ["with space", "ünïcødé 😀", "new\nline", "a+b&c=d#e?f%25g%", "tab\t\"quote\"'"]) {
        const path = Path.join(dir, name)
        assert.strictEqual((yield* upload(server.url, path, Buffer.from(name))).text, success, JSON.stringify(name))
        assert.strictEqual(Fs.readFileSync(path, "utf8"), name)
        assert.strictEqual((yield* download(server.url, path)).bytes.toString(), name)
      }
      // `+` for a space, as form encoding (URLSearchParams) writes it
      const form = Path.join(dir, "form space+plus")
      const formQuery = new URLSearchParams({ path: form }).toString()
      assert.include(formQuery, "+")
      const written = yield* Effect.promise(() =>
        fetch(`${server.url}/write_file_bytes?${formQuery}`, { method: "POST", headers: octet, body: "form" }).then((
          r
        ) => r.text())
      )
      assert.strictEqual(written, success)
      assert.strictEqual(Fs.readFileSync(form, "utf8"), "form")
      // relative paths resolve against the executor's cwd; errors name the path as given
      const local = yield* ExecutorServer.make({ secret: Redacted.make(secret), cwd: dir })
      Fs.mkdirSync(Path.join(dir, "sub"))
      assert.strictEqual((yield* upload(local.url, "sub/rel", Buffer.from([0, 1]))).text, success)
      assert.deepStrictEqual([...Fs.readFileSync(Path.join(dir, "sub/rel"))], [0, 1])
      assert.deepStrictEqual([...(yield* download(local.url, "./sub/../sub/rel")).bytes], [0, 1])
      assert.strictEqual(
        (yield* upload(local.url, "missing/rel", Buffer.from([0]))).text,
        `{"error":"open missing/rel: no such file or directory","success":false}\n`
      )
      const missing = yield* download(local.url, "missing/rel")
      assert.strictEqual(missing.status, 422)
      assert.strictEqual(missing.bytes.toString(), `{"error":"open missing/rel: no such file or directory"}\n`)
    }))

  it.scoped("Go's error texts: 200 for writes as /write_file, 422 JSON for reads", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const dir = yield* tempDir
      const orphan = Path.join(dir, "no/f")
      const missing = Path.join(dir, "missing")
      const writes: Array<[string | undefined, string]> = [
        [orphan, `open ${orphan}: no such file or directory`],
        [dir, `open ${dir}: is a directory`],
        [undefined, "open : no such file or directory"],
        ["", "open : no such file or directory"],
        // escaped as in every Go JSON reply
        [Path.join(dir, "<&>/f"), `open ${dir}/\\u003c\\u0026\\u003e/f: no such file or directory`],
        // a write failing mid-stream
        ["/dev/full", "write /dev/full: no space left on device"]
      ]
      for (const [path, error] of writes) {
        const reply = yield* upload(server.url, path, Buffer.alloc(MiB))
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.contentType, "application/json")
        assert.strictEqual(reply.text, `{"error":"${error}","success":false}\n`)
      }
      assert.isFalse(Fs.existsSync(orphan))
      const reads: Array<[string | undefined, string]> = [
        [missing, `open ${missing}: no such file or directory`],
        [dir, `read ${dir}: is a directory`],
        [undefined, "open : no such file or directory"],
        // the first read fails: still before any byte
        ["/proc/self/mem", "read /proc/self/mem: input/output error"]
      ]
      for (const [path, error] of reads) {
        const reply = yield* download(server.url, path)
        assert.strictEqual(reply.status, 422)
        assert.strictEqual(reply.headers.get("content-type"), "application/json")
        assert.strictEqual(reply.bytes.toString(), `{"error":"${error}"}\n`)
      }
    }))

  it.effect("401 without the secret and 405 for other methods, on both prefixes", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const dir = Os.tmpdir()
      for (const base of [server.url, `${server.url}/koyeb-sandbox`]) {
        const path = Path.join(dir, `never-${Crypto.randomUUID()}`)
        for (const auth of [null, `Bearer wrong`, secret]) {
          const write = yield* request(bytesUrl(base, "write_file_bytes", path), { method: "POST", body: "x", auth })
          const read = yield* request(bytesUrl(base, "read_file_bytes", "/etc/hostname"), { auth })
          for (const reply of [write, read]) {
            assert.strictEqual(reply.status, 401)
            assert.strictEqual(reply.text, "Unauthorized\n")
          }
        }
        assert.isFalse(Fs.existsSync(path))
        for (const method of ["GET", "PUT"]) {
          const reply = yield* request(bytesUrl(base, "write_file_bytes", path), { method })
          assert.strictEqual(reply.status, 405, method)
          assert.strictEqual(reply.text, "Method not allowed\n")
        }
        assert.isFalse(Fs.existsSync(path))
        for (const method of ["POST", "HEAD"]) {
          const reply = yield* request(bytesUrl(base, "read_file_bytes", "/etc/hostname"), { method })
          assert.strictEqual(reply.status, 405, method)
        }
      }
    }))

  it.scoped("the stock /write_file and /read_file are unchanged: an encoding field is ignored; no body limit here", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "t")
      assert.strictEqual((yield* call("/write_file", { path, content: "QQ==", encoding: "base64" })).text, success)
      assert.strictEqual(Fs.readFileSync(path, "utf8"), "QQ==")
      assert.strictEqual(
        (yield* call("/read_file", { path, encoding: "base64", offset: 1 })).text,
        `{"content":"QQ=="}\n`
      )
      const small = yield* ExecutorServer.make({ secret: Redacted.make(secret), maxBodyBytes: 1024 })
      const json = yield* request(`${small.url}/write_file`, {
        body: JSON.stringify({ path, content: "x".repeat(2000) })
      })
      assert.strictEqual(json.status, 413)
      const bytes = Crypto.randomBytes(100_000)
      assert.strictEqual((yield* upload(small.url, path, bytes)).text, success)
      assert.isTrue(Fs.readFileSync(path).equals(bytes))
    }))

  it.scoped("a refused body gets its reply before it is sent whole; the connection stays usable", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const dir = yield* tempDir
      const agent = yield* Effect.acquireRelease(
        Effect.sync(() => new Http.Agent({ keepAlive: true, maxSockets: 1 })),
        (agent) => Effect.sync(() => agent.destroy())
      )
      // the client frees the connection once both its request and the reply are complete; a
      // request issued before that would wait for it and not count as reusing it
      const freed = () => new Promise<void>((resolve) => agent.once("free", () => resolve()))
      const orphan = Path.join(dir, "no/f")
      const refusedFreed = freed()
      // the body is never ended until the reply is in: a server waiting for it would hang here
      const refused = yield* post(
        agent,
        bytesUrl(server.url, "write_file_bytes", orphan),
        (r) => r.write(Buffer.alloc(4 * MiB))
      )
      assert.strictEqual(refused.text, `{"error":"open ${orphan}: no such file or directory","success":false}\n`)
      refused.request.end(Buffer.alloc(4 * MiB))
      yield* Effect.promise(() => refusedFreed)
      const path = Path.join(dir, "after")
      const next = yield* post(agent, bytesUrl(server.url, "write_file_bytes", path), (r) => r.end(Buffer.from("next")))
      assert.strictEqual(next.text, success)
      assert.isTrue(next.reused)
      assert.strictEqual(Fs.readFileSync(path, "utf8"), "next")
      // a write failing mid-stream leaves the connection usable too
      const fullFreed = freed()
      const full = yield* post(
        agent,
        bytesUrl(server.url, "write_file_bytes", "/dev/full"),
        (r) => r.end(Buffer.alloc(4 * MiB))
      )
      assert.strictEqual(full.text, `{"error":"write /dev/full: no space left on device","success":false}\n`)
      yield* Effect.promise(() => fullFreed)
      const last = yield* post(agent, bytesUrl(server.url, "write_file_bytes", path), (r) => r.end(Buffer.from("last")))
      assert.strictEqual(last.text, success)
      assert.isTrue(last.reused)
      assert.strictEqual(Fs.readFileSync(path, "utf8"), "last")
      // a client sending `Connection: close` (as a proxy may) gets the whole reply too: the server
      // ends it only once the body is in, so its close does not reset a connection still receiving
      for (let i = 0; i < 5; i++) {
        const closing = yield* post(
          false,
          bytesUrl(server.url, "write_file_bytes", orphan),
          (r) => r.write(Buffer.alloc(4 * MiB))
        )
        assert.strictEqual(closing.text, refused.text)
        closing.request.destroy()
      }
    }))

  it.scoped("an aborted upload keeps what arrived, closes the file, and the server keeps serving", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const dir = yield* tempDir
      const path = Path.join(dir, "partial")
      const sent = Crypto.randomBytes(MiB)
      const baseline = fdCount()
      const partial = Http.request(bytesUrl(server.url, "write_file_bytes", path), { method: "POST", headers: octet })
      partial.on("error", () => {})
      partial.write(sent)
      assert.isTrue(yield* eventually(Effect.sync(() => Fs.existsSync(path) && Fs.statSync(path).size === sent.length)))
      assert.strictEqual(fdsOn(path).length, 1)
      partial.destroy()
      assert.isTrue(yield* eventually(Effect.sync(() => fdsOn(path).length === 0 && fdCount() <= baseline)))
      assert.isTrue(Fs.readFileSync(path).equals(sent))
      const again = Crypto.randomBytes(1000)
      assert.strictEqual((yield* upload(server.url, path, again)).text, success)
      assert.isTrue((yield* download(server.url, path)).bytes.equals(again))
    }))

  it.scoped("a download is paced by its reader; one left mid-way closes the file, and the server keeps serving", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const dir = yield* tempDir
      const path = Path.join(dir, "huge")
      // 1 GiB, sparse
      Fs.writeFileSync(path, "")
      Fs.truncateSync(path, 1024 * MiB)
      const baseline = fdCount()
      const controller = new AbortController()
      const reader = yield* Effect.promise(() =>
        fetch(bytesUrl(server.url, "read_file_bytes", path), { headers: auth, signal: controller.signal }).then((r) =>
          r.body!.getReader()
        )
      )
      let received = 0
      while (received < 4 * MiB) {
        const chunk = yield* Effect.promise(() => reader.read())
        assert.isFalse(chunk.done)
        received += chunk.value!.length
      }
      const [fd] = fdsOn(path)
      assert.isDefined(fd)
      // the server stops reading the file while nobody reads the body
      let position = -1
      assert.isTrue(
        yield* eventually(Effect.sync(() => {
          const now = fdPosition(fd!)
          const still = now === position
          position = now
          return still
        }))
      )
      assert.isBelow(position, 256 * MiB)
      controller.abort()
      yield* Effect.promise(() => reader.cancel().catch(() => {}))
      assert.isTrue(yield* eventually(Effect.sync(() => fdsOn(path).length === 0 && fdCount() <= baseline)))
      Fs.truncateSync(path, 10)
      assert.isTrue((yield* download(server.url, path)).bytes.equals(Buffer.alloc(10)))
    }))

  it.scoped("200 MiB up and down do not grow the process's memory by more than 50 MiB", () =>
    Effect.gen(function*() {
      const server = yield* Server
      const dir = yield* tempDir
      const path = Path.join(dir, "big")
      const total = 200 * MiB
      // one chunk sent over and over: the client holds nothing either
      const chunk = Buffer.alloc(MiB, 7)
      const baseline = process.memoryUsage().rss
      let peak = baseline
      const sampler = yield* Effect.acquireRelease(
        Effect.sync(() => setInterval(() => peak = Math.max(peak, process.memoryUsage().rss), 5)),
        (timer) => Effect.sync(() => clearInterval(timer))
      )
      let sent = 0
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= total) return controller.close()
          controller.enqueue(chunk)
          sent += chunk.length
        }
      }, { highWaterMark: 0 })
      assert.strictEqual((yield* upload(server.url, path, body)).text, success)
      assert.strictEqual(Fs.statSync(path).size, total)
      const received = yield* Effect.promise(async () => {
        const response = await fetch(bytesUrl(server.url, "read_file_bytes", path), { headers: auth })
        const reader = response.body!.getReader()
        let count = 0
        for (let part = await reader.read(); !part.done; part = await reader.read()) count += part.value.length
        return count
      })
      assert.strictEqual(received, total)
      clearInterval(sampler)
      assert.isBelow(peak - baseline, 50 * MiB)
    }))
})
