/**
 * Security of the executor server (auth on every endpoint, the secret kept out of commands, logs and
 * bodies, bounded bodies, streams and tables, loopback binding) and of the SDK (the API token and the
 * sandbox secret, used as canaries, never show up in errors, logs, spans or renderings).
 */
import { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as ExecutorServer from "@effect-koyeb/platform-node/ExecutorServer"
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as fc from "effect/FastCheck"
import * as Inspectable from "effect/Inspectable"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import type * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Util from "node:util"
import { cliBin } from "./utils/cliBin.js"

const SECRET = "srv-CANARY-7f3a9c1e5b2d4086"

interface Reply {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
}

/** One HTTP request with full control over the Authorization header (raw bytes, any case). */
const request = (
  url: string,
  init: { readonly method?: string | undefined; readonly body?: string | undefined; readonly auth?: string | undefined }
): Effect.Effect<Reply> =>
  Effect.async<Reply>((resume) => {
    const headers: Record<string, string> = {}
    if (init.auth !== undefined) headers.authorization = init.auth
    if (init.body !== undefined) headers["content-length"] = String(Buffer.byteLength(init.body))
    const req = Http.request(url, { method: init.method ?? "POST", headers }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (d: string) => (body += d))
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, body })))
    })
    req.on("error", (e) => resume(Effect.die(e)))
    req.end(init.body)
    return Effect.sync(() => req.destroy())
  })

const protectedEndpoints: ReadonlyArray<readonly [string, "GET" | "POST"]> = [
  ["/run", "POST"],
  ["/run_streaming", "POST"],
  ["/write_file", "POST"],
  ["/read_file", "POST"],
  ["/delete_file", "POST"],
  ["/delete_dir", "POST"],
  ["/make_dir", "POST"],
  ["/list_dir", "POST"],
  ["/bind_port", "POST"],
  ["/unbind_port", "POST"],
  ["/start_process", "POST"],
  ["/list_processes", "GET"],
  ["/kill_process", "POST"],
  ["/process_logs_streaming?id=x", "GET"]
]

const badTokens: ReadonlyArray<string | undefined> = [
  undefined,
  "",
  "Bearer",
  "Bearer ",
  `bearer ${SECRET}`,
  `BEARER ${SECRET}`,
  `Bearer  ${SECRET}`,
  `Bearer ${SECRET}x`,
  `Bearer ${SECRET.slice(0, -1)}`,
  `Bearer ${SECRET.slice(0, -1)}X`, // same length, last character wrong
  `Bearer ${"x".repeat(SECRET.length)}`,
  `Bearer ${SECRET.toUpperCase()}`,
  `Bearer ${SECRET}${SECRET}`,
  `Basic ${Buffer.from(`user:${SECRET}`).toString("base64")}`,
  SECRET,
  `Token ${SECRET}`,
  `Bearer ${"a".repeat(6000)}`,
  `Bearer \u00e9${SECRET.slice(1)}`
]

/** Commands and paths whose effect is visible afterwards, to prove a refused request did nothing. */
const sideEffects = (dir: string) =>
  ({
    "/run": { cmd: `touch ${dir}/run` },
    "/run_streaming": { cmd: `touch ${dir}/run_streaming` },
    "/write_file": { path: `${dir}/write_file`, content: "x" },
    "/make_dir": { path: `${dir}/make_dir` },
    "/bind_port": { port: "4242" },
    "/start_process": { cmd: `touch ${dir}/start_process` },
    "/delete_file": { path: `${dir}/keep` },
    "/delete_dir": { path: `${dir}/keepdir` }
  }) as Record<string, unknown>

const tmpDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync("/tmp/security-test-")),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** An in-process executor server with the canary secret, logging into `logs`. */
const server = (options: ExecutorServer.ExecutorServerOptions = {}, logs?: Array<string>) =>
  ExecutorServer.make({ secret: Redacted.make(SECRET), killGracePeriod: "300 millis", ...options }).pipe(
    logs === undefined ? (self) => self : Effect.provide(recordingLogger(logs))
  )

const recordingLogger = (logs: Array<string>) =>
  Layer.merge(
    Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ annotations, cause, logLevel, message }) => {
        logs.push(
          `${logLevel.label} ${Inspectable.format(message)} ${Cause.pretty(cause)} ${Inspectable.format(annotations)}`
        )
      })
    ),
    Logger.minimumLogLevel(LogLevel.All)
  )

/** Every way the value could be shown to a human or a log pipeline. */
const renderings = (value: unknown): Array<string> => {
  const out = [
    String(value),
    Util.inspect(value, { depth: 8, showHidden: true, getters: true }),
    Inspectable.format(value)
  ]
  try {
    out.push(JSON.stringify(value) ?? "")
  } catch {
    // cyclic: the inspections above cover it
  }
  if (value instanceof Error) out.push(value.message, value.stack ?? "")
  if (Exit.isExit(value) && Exit.isFailure(value)) out.push(Cause.pretty(value.cause))
  return out
}

const assertAbsent = (texts: ReadonlyArray<string>, canaries: ReadonlyArray<string>, where: string) => {
  for (const text of texts) {
    for (const canary of canaries) {
      if (text.includes(canary)) {
        assert.fail(`${where}: the canary ${canary.slice(0, 6)}… appears in: ${text.slice(0, 300)}`)
      }
    }
  }
}

/** The executor server's resident memory (VmRSS, bytes) of a child process. */
const rssOf = (pid: number): number => {
  const status = Fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  return Number(kb?.[1] ?? 0) * 1024
}

/** The executor bin as a child process (scoped), with the secret in its environment like the stock executor. */
const spawnBin = Effect.acquireRelease(
  Effect.async<{ readonly child: ChildProcess.ChildProcess; readonly url: string; readonly port: number }>((resume) => {
    const child = ChildProcess.spawn(process.execPath, [
      cliBin,
      "executor",
      "--port",
      "0",
      "--proxy-port",
      "0"
    ], {
      env: { ...process.env, SANDBOX_SECRET: SECRET },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    child.stdout!.on("data", (d) => {
      out += d
      const nl = out.indexOf("\n")
      if (nl >= 0) {
        const event = JSON.parse(out.slice(0, nl)) as { url: string; port: number }
        resume(Effect.succeed({ child, url: event.url, port: event.port }))
      }
    })
  }),
  ({ child }) =>
    Effect.async<void>((resume) => {
      if (child.exitCode !== null) return resume(Effect.void)
      child.once("exit", () => resume(Effect.void))
      child.kill("SIGTERM")
    })
)

describe("ExecutorServer security", () => {
  it.scopedLive("every protected endpoint, on both prefixes, refuses a missing, malformed or wrong token with 401 and does nothing", () =>
    Effect.gen(function*() {
      const dir = yield* tmpDir
      Fs.writeFileSync(`${dir}/keep`, "k")
      Fs.mkdirSync(`${dir}/keepdir`)
      const address = yield* server()
      const effects = sideEffects(dir)
      let refused = 0
      for (const prefix of ["", "/koyeb-sandbox"]) {
        for (const [path, method] of protectedEndpoints) {
          const body = JSON.stringify(effects[path] ?? { path: `${dir}/keep`, id: "x" })
          for (const auth of badTokens) {
            const reply = yield* request(`${address.url}${prefix}${path}`, { method, body, auth })
            assert.strictEqual(reply.status, 401, `${prefix}${path} ${String(auth).slice(0, 40)}`)
            assert.strictEqual(reply.body, "Unauthorized\n")
            assert.notInclude(JSON.stringify(reply.headers), SECRET)
            refused++
          }
        }
      }
      assert.strictEqual(refused, 2 * protectedEndpoints.length * badTokens.length)
      // nothing happened: no file created or removed, no process, no port bound
      assert.deepStrictEqual(Fs.readdirSync(dir).sort(), ["keep", "keepdir"])
      const list = yield* request(`${address.url}/list_processes`, { method: "GET", auth: `Bearer ${SECRET}` })
      assert.deepStrictEqual(JSON.parse(list.body), { processes: [] })
      const bind = yield* request(`${address.url}/bind_port`, { body: `{"port":"4243"}`, auth: `Bearer ${SECRET}` })
      assert.strictEqual(bind.status, 200, "no port was bound by a refused request")
      // the right token works on the same endpoints
      const ok = yield* request(`${address.url}/koyeb-sandbox/run`, {
        body: `{"cmd":"echo ok"}`,
        auth: `Bearer ${SECRET}`
      })
      assert.strictEqual(JSON.parse(ok.body).stdout, "ok\n")
    }))

  it.scopedLive("any other token is refused (prop)", () =>
    Effect.gen(function*() {
      const address = yield* server()
      const token = fc.oneof(
        fc.string({ minLength: 1, maxLength: 60 }),
        fc.nat({ max: SECRET.length - 1 }).chain((i) =>
          fc.string({ minLength: 1, maxLength: 1 }).map((c) => SECRET.slice(0, i) + c + SECRET.slice(i + 1))
        )
      ).filter((t) => t !== SECRET && t.trim() === t && /^[\x21-\x7e]+$/.test(t))
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(token, (t) =>
            Effect.runPromise(
              Effect.map(request(`${address.url}/run`, { body: `{"cmd":"true"}`, auth: `Bearer ${t}` }), (reply) => {
                assert.strictEqual(reply.status, 401, t)
              })
            )),
          { numRuns: 150 }
        )
      )
    }))

  it.scopedLive("the secret is not in any command's environment, argv or output, whichever endpoint runs it", () =>
    Effect.gen(function*() {
      // also passed in the base environment, as the stock executor gets it
      const address = yield* server({ env: { ...process.env, SANDBOX_SECRET: SECRET, OTHER: "kept" } })
      const auth = `Bearer ${SECRET}`
      const probe =
        `echo "[$SANDBOX_SECRET][$OTHER]"; env; set; cat /proc/self/environ | tr '\\0' '\\n'; ps -eo args 2>/dev/null; ` +
        `for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr '\\0' ' '; echo; done`
      const run = yield* request(`${address.url}/run`, { body: JSON.stringify({ cmd: probe }), auth })
      assert.include(JSON.parse(run.body).stdout, "[][kept]")
      const streamed = yield* request(`${address.url}/run_streaming`, { body: JSON.stringify({ cmd: probe }), auth })
      assert.include(streamed.body, "[][kept]")
      const started = yield* request(`${address.url}/start_process`, { body: JSON.stringify({ cmd: probe }), auth })
      const id = JSON.parse(started.body).id as string
      let logs = ""
      for (let i = 0; i < 50 && !logs.includes("stream ended"); i++) {
        logs = (yield* request(`${address.url}/process_logs_streaming?id=${id}`, { method: "GET", auth })).body
        if (!logs.includes("stream ended")) yield* Effect.sleep("50 millis")
      }
      assert.include(logs, "[][kept]")
      const list = yield* request(`${address.url}/list_processes`, { method: "GET", auth })
      assertAbsent([run.body, streamed.body, logs, list.body], [SECRET], "command output")
    }))

  it.scopedLive("the secret never appears in logs or error bodies, whatever fails", () =>
    Effect.gen(function*() {
      const logs: Array<string> = []
      const address = yield* server({ maxBodyBytes: 4096 }, logs)
      const auth = `Bearer ${SECRET}`
      const bodies: Array<string> = []
      const calls: ReadonlyArray<readonly [string, string | undefined, string?]> = [
        ["/run", "not json"],
        ["/run", `{"cmd":1}`],
        ["/run", `{"cmd":"true","cwd":"/nonexistent/${SECRET.slice(0, 3)}"}`],
        ["/run_streaming", `{"cmd":"x\\u0000y"}`],
        ["/run", `{"cmd":"true","env":{"A=B":"x"}}`],
        ["/start_process", `{"cmd":""}`],
        ["/start_process", `{"cmd":"true","env":{"":"x"}}`],
        ["/kill_process", `{"id":"nope"}`],
        ["/read_file", `{"path":"/nonexistent"}`],
        ["/write_file", `{"path":"/proc/nope/x","content":"x"}`],
        ["/list_dir", `{"path":"/etc/hostname"}`],
        ["/delete_dir", `{"path":""}`],
        ["/bind_port", `{"port":""}`],
        ["/write_file", JSON.stringify({ path: "/tmp/x", content: "y".repeat(10_000) })],
        ["/nope", "{}"],
        ["/process_logs_streaming?id=missing", undefined, "GET"],
        ["/start_process", undefined, "GET"]
      ]
      for (const [path, body, method] of calls) {
        const reply = yield* request(`${address.url}${path}`, { method: method ?? "POST", body, auth })
        bodies.push(`${reply.status} ${JSON.stringify(reply.headers)} ${reply.body}`)
      }
      for (const auth of badTokens) {
        const reply = yield* request(`${address.url}/run`, { body: "{}", auth })
        bodies.push(reply.body)
      }
      assert.isTrue(bodies.some((b) => b.startsWith("413")), "the oversized body was refused")
      assertAbsent(bodies, [SECRET], "error body")
      assertAbsent(logs, [SECRET], "server log")
    }))

  it.scopedLive("a body over maxBodyBytes gets 413 without being read: declared or chunked", () =>
    Effect.gen(function*() {
      const address = yield* server({ maxBodyBytes: 1024 * 1024 })
      // a declared 10 GB body: answered before any of it is sent
      const declared = yield* Effect.async<string>((resume) => {
        const socket = Net.connect(address.port, "127.0.0.1", () =>
          socket.write(
            `POST /write_file HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\nContent-Length: 10000000000\r\n\r\n`
          ))
        let text = ""
        socket.on("data", (d) => {
          text += d
          if (text.includes("\r\n\r\n")) {
            socket.destroy()
            resume(Effect.succeed(text))
          }
        })
        return Effect.sync(() => socket.destroy())
      })
      assert.match(declared, /^HTTP\/1\.1 413 /)
      // a chunked body the client would send forever: the server stops reading it
      const chunked = yield* Effect.async<{ status: string; sent: number }>((resume) => {
        const socket = Net.connect(address.port, "127.0.0.1")
        let sent = 0
        let status = ""
        let done = false
        const finish = () => {
          if (done) return
          done = true
          socket.destroy()
          resume(Effect.succeed({ status, sent }))
        }
        const piece = Buffer.alloc(256 * 1024, "a")
        const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n")])
        let stall: NodeJS.Timeout | undefined
        const pump = () => {
          // stop once the server stopped reading (no drain for 2 s) or after 256 MiB
          while (!done && sent < 256 * 1024 * 1024) {
            sent += piece.length
            if (!socket.write(chunk)) {
              stall = setTimeout(finish, 2000)
              return
            }
          }
          finish()
        }
        socket.on("drain", () => {
          clearTimeout(stall)
          pump()
        })
        socket.on("data", (d) => (status ||= String(d).split("\r\n")[0]!))
        socket.on("error", finish)
        socket.on("close", finish)
        socket.write(
          `POST /run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\nTransfer-Encoding: chunked\r\n\r\n`,
          pump
        )
        return Effect.sync(() => {
          clearTimeout(stall)
          socket.destroy()
        })
      })
      assert.match(chunked.status, /^HTTP\/1\.1 413 /)
      // far below what the client was willing to send: the rest was never read
      assert.isBelow(chunked.sent, 64 * 1024 * 1024)
    }))

  it.scopedLive("a slow reader of a huge stream gets backpressure: the server's memory stays bounded", () =>
    Effect.gen(function*() {
      const { child, port } = yield* spawnBin
      const pid = child.pid!
      const baseline = rssOf(pid)
      const socket = yield* Effect.acquireRelease(
        Effect.sync(() => Net.connect(port, "127.0.0.1")),
        (s) => Effect.sync(() => s.destroy())
      )
      const body = JSON.stringify({ cmd: "yes | head -c 200000000" })
      socket.write(
        `POST /run_streaming HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`
      )
      // read the first bytes, then stop reading
      const first = yield* Effect.async<string>((resume) => {
        socket.once("data", (d) => {
          socket.pause()
          resume(Effect.succeed(String(d)))
        })
      })
      assert.match(first, /^HTTP\/1\.1 200 /)
      let peak = 0
      for (let i = 0; i < 8; i++) {
        yield* Effect.sleep("500 millis")
        peak = Math.max(peak, rssOf(pid))
      }
      // 200 MB of output is ~5 GB of SSE: unbounded buffering would show within a second
      assert.isBelow(peak - baseline, 150 * 1024 * 1024, `baseline ${baseline}, peak ${peak}`)
      // the stream is alive and still delivers lines when the reader resumes
      const more = yield* Effect.async<string>((resume) => {
        socket.once("data", (d) => {
          socket.pause()
          resume(Effect.succeed(String(d)))
        })
        socket.resume()
      })
      assert.include(more, `"data":"y"`)
    }))

  it.scopedLive("the finished-process table keeps only maxFinishedProcesses entries", () =>
    Effect.gen(function*() {
      const address = yield* server({ maxFinishedProcesses: 3 })
      const auth = `Bearer ${SECRET}`
      const ids: Array<string> = []
      for (let i = 0; i < 10; i++) {
        const started = yield* request(`${address.url}/start_process`, {
          body: JSON.stringify({ cmd: `echo ${i}` }),
          auth
        })
        ids.push(JSON.parse(started.body).id)
      }
      let processes: Array<{ id: string; status: string }> = []
      for (let i = 0; i < 100; i++) {
        processes =
          JSON.parse((yield* request(`${address.url}/list_processes`, { method: "GET", auth })).body).processes
        if (processes.every((p) => p.status !== "running")) break
        yield* Effect.sleep("50 millis")
      }
      assert.strictEqual(processes.length, 3)
      // the oldest are forgotten: their logs and kill say not found
      const logs = yield* request(`${address.url}/process_logs_streaming?id=${ids[0]}`, { method: "GET", auth })
      assert.include(logs.body, "process not found")
    }))

  it.scopedLive("binds 127.0.0.1 by default, both the API and the TCP proxy, in-process and as the bin", () =>
    Effect.gen(function*() {
      const address = yield* ExecutorServer.make({ secret: Redacted.make(SECRET) })
      assert.strictEqual(address.url, `http://127.0.0.1:${address.port}`)
      const bound = yield* spawnBin
      const listeners = (port: number) => {
        const hex = port.toString(16).toUpperCase().padStart(4, "0")
        return ["/proc/net/tcp", "/proc/net/tcp6"].flatMap((file) =>
          Fs.readFileSync(file, "utf8").split("\n").map((l) => l.trim().split(/\s+/)).filter((f) =>
            f[1]?.endsWith(`:${hex}`) && f[3] === "0A"
          ).map((f) => f[1]!.split(":")[0]!)
        )
      }
      for (const port of [address.port, address.proxyPort, bound.port]) {
        assert.deepStrictEqual(listeners(port), ["0100007F"], `port ${port}`)
      }
    }))
})

// ---------------------------------------------------------------------------------------------
// SDK side

const TOKEN = "koyeb-token-CANARY-5e8d2b7a"

interface RecordedSpan {
  readonly name: string
  readonly attributes: Map<string, unknown>
  readonly events: Array<readonly [string, Record<string, unknown> | undefined]>
  exit?: Exit.Exit<unknown, unknown>
}

const recordingTracer = (spans: Array<RecordedSpan>) => {
  let n = 0
  return Tracer.make({
    span(name, parent, context, links, startTime, kind, options) {
      const record: RecordedSpan = { name, attributes: new Map(Object.entries(options?.attributes ?? {})), events: [] }
      spans.push(record)
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: `span-${++n}`,
        traceId: "trace",
        parent: parent as Option.Option<Tracer.AnySpan>,
        context,
        status: { _tag: "Started", startTime },
        attributes: record.attributes,
        links,
        sampled: true,
        kind,
        end(endTime, exit) {
          ;(span as { status: Tracer.SpanStatus }).status = { _tag: "Ended", startTime, endTime, exit }
          record.exit = exit
        },
        attribute(key, value) {
          record.attributes.set(key, value)
        },
        event(name, _startTime, attributes) {
          record.events.push([name, attributes])
        },
        addLinks() {}
      }
      return span
    },
    context: (f) => f()
  })
}

const Emulator = KoyebEmulator.layer({ token: Redacted.make(TOKEN), isolation: "none", stepDelay: "5 millis" }).pipe(
  Layer.provideMerge(NodeHttpClient.layerUndici)
)

layer(Emulator, { excludeTestServices: true, timeout: "120 seconds" })("SDK secrets (emulator)", (it) => {
  it.scoped("the API token and the sandbox secret never appear in errors, logs, span attributes/events or renderings", () => {
    const spans: Array<RecordedSpan> = []
    const logs: Array<string> = []
    return Effect.gen(function*() {
      const emulator = yield* KoyebEmulator.KoyebEmulator
      const seen: Array<unknown> = []
      const failed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.tap(Effect.exit(effect), (exit) => {
          assert.isTrue(Exit.isFailure(exit))
          seen.push(exit)
          if (Exit.isFailure(exit)) seen.push(...Cause.failures(exit.cause), ...Cause.defects(exit.cause))
        })
      const controlPlane = (token: string) =>
        KoyebControlPlane.layer({
          token: Redacted.make(token),
          host: emulator.url,
          retry: { times: 1, baseDelay: "10 millis" }
        })

      const sandboxSecret = yield* Effect.gen(function*() {
        const sandbox = yield* Sandbox.make({
          name: "canary",
          pollInterval: "50 millis",
          timeout: "60 seconds",
          env: { APP: "1" }
        })
        const secret = Redacted.value(sandbox.client.options.secret)
        assert.isAbove(secret.length, 8)
        seen.push(sandbox, sandbox.info, sandbox.client.options, sandbox.client)
        // successful work through every service
        const result = yield* sandbox.executor.run("echo hi; echo err >&2")
        seen.push(result)
        yield* Stream.runDrain(Stream.take(sandbox.executor.stream("yes"), 3))
        yield* sandbox.filesystem.writeFile("/tmp/canary.txt", "x")
        seen.push(yield* sandbox.filesystem.listDetailed("/tmp"))
        const process = yield* sandbox.processes.launch("sleep 30")
        seen.push(process, yield* sandbox.processes.list)
        yield* process.kill()
        seen.push(yield* sandbox.exposePort(8080))
        const cp = yield* ControlPlane
        const found = yield* cp.get(sandbox.info.id)
        seen.push(found, found.endpoint, yield* cp.list)
        // failures of every kind
        yield* failed(sandbox.executor.run("echo $0; exit 3"))
        yield* failed(sandbox.executor.exec("true", { cwd: "/nonexistent" }))
        yield* failed(sandbox.executor.exec("sleep 5", { timeout: "100 millis" }))
        yield* failed(sandbox.filesystem.readFile("/nonexistent"))
        yield* failed(sandbox.filesystem.writeFile("/proc/nope/x", new Uint8Array(3)))
        yield* failed(sandbox.processes.kill("nope"))
        yield* failed(sandbox.exposePort(0))
        yield* failed(cp.get("nope"))
        const wrongSecret = yield* ExecutorClient.make({
          url: sandbox.client.options.url,
          secret: Redacted.make(`${secret}-wrong`),
          routingKey: sandbox.client.options.routingKey
        })
        yield* failed(wrongSecret.run({ cmd: "true" }))
        yield* failed(Stream.runDrain(wrongSecret.runStreaming({ cmd: "true" })))
        const unreachable = yield* ExecutorClient.make({
          url: "http://127.0.0.1:1",
          secret: sandbox.client.options.secret
        })
        yield* failed(unreachable.run({ cmd: "true" }))
        yield* failed(unreachable.writeFile("/x", "y"))
        return secret
      }).pipe(Effect.scoped, Effect.provide(controlPlane(TOKEN)))
      // a wrong token, also a canary
      yield* failed(
        Effect.flatMap(ControlPlane, (cp) => cp.list).pipe(Effect.provide(controlPlane(`${TOKEN}-wrong`)))
      )
      yield* failed(
        Sandbox.make({ name: "refused", waitReady: false }).pipe(
          Effect.scoped,
          Effect.provide(controlPlane(`${TOKEN}-wrong`))
        )
      )
      return { sandboxSecret, seen }
    }).pipe(
      Effect.provide(Layer.merge(Layer.setTracer(recordingTracer(spans)), recordingLogger(logs))),
      Effect.flatMap(({ sandboxSecret, seen }) =>
        Effect.sync(() => {
          const canaries = [TOKEN, sandboxSecret]
          assert.isAbove(spans.length, 20)
          assert.isTrue(spans.some((s) => s.name.startsWith("Executor.")) && spans.some((s) => s.attributes.size > 0))
          for (const span of spans) {
            const texts = [span.name]
            for (const [key, value] of span.attributes) texts.push(key, ...renderings(value))
            for (const [name, attributes] of span.events) texts.push(name, ...renderings(attributes))
            // what tracing exporters record of an exit: the rendered cause of a failure (the success
            // value, e.g. a platform HttpClientResponse, is not exported)
            if (span.exit !== undefined && Exit.isFailure(span.exit)) texts.push(Cause.pretty(span.exit.cause))
            assertAbsent(texts, canaries, `span ${span.name}`)
          }
          assertAbsent(logs, canaries, "log")
          assert.isAbove(seen.length, 20)
          for (const value of seen) assertAbsent(renderings(value), canaries, "rendering")
        })
      )
    )
  })
})
