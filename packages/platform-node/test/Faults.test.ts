/**
 * Data-plane faults: every one must end in the typed error the signature promises, within a
 * bounded time, and never as a defect or a hang. A real executor process is crashed in the middle
 * of a stream, a file transfer and a log stream; hostile loopback servers reset connections,
 * truncate replies, send malformed, unknown or oversize SSE events, or never answer.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Processes from "@effect-koyeb/core/Processes"
import type { ExecutorError, Timeout } from "@effect-koyeb/core/SandboxError"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { spawnExecutor } from "../src/internal/localRuntime.js"
import * as Faults from "./utils/faultServers.js"
import { openFiles } from "./utils/hostProcesses.js"
import { withoutCapabilities } from "./utils/TestExecutor.js"

// Only a guard: a fault that is not noticed fails the test instead of hanging it.
const hangGuard = Duration.seconds(30)

/** Runs `self` expecting a typed failure: no success, no defect, no interruption, no hang. */
const failureOf = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const exit = yield* self.pipe(
      Effect.timeoutFail({ duration: hangGuard, onTimeout: () => "hang guard fired" as const }),
      Effect.exit
    )
    if (Exit.isSuccess(exit)) return assert.fail(`expected a failure, got ${String(exit.value)}`)
    assert.isFalse(Cause.isDie(exit.cause), `a defect: ${Cause.pretty(exit.cause)}`)
    const error = Cause.failureOption(exit.cause)
    if (Option.isNone(error)) return assert.fail(`no typed failure: ${Cause.pretty(exit.cause)}`)
    assert.notStrictEqual(error.value, "hang guard fired")
    return error.value as Exclude<E, "hang guard fired">
  })

const assertExecutorError = (
  error: unknown,
  reasons: ReadonlyArray<ExecutorError["reason"]>,
  endpoint: string,
  detail?: RegExp
) => {
  const e = error as ExecutorError
  assert.strictEqual(e._tag, "ExecutorError", String(error))
  assert.include(reasons, e.reason, e.message)
  assert.strictEqual(e.endpoint, endpoint)
  if (detail !== undefined) assert.match(e.detail, detail)
}

const secret = Redacted.make("fault-secret")

/** A live scoped test with an HTTP client whose connections live as long as the test. */
const itLive = <E>(name: string, self: () => Effect.Effect<void, E, HttpClient.HttpClient | Scope.Scope>) =>
  it.scopedLive(name, () => Effect.provide(self(), NodeHttpClient.layerUndici))

/** A wire client on `url`, with the given options. */
const clientAt = (url: string, options: Partial<ExecutorClient.ExecutorClientOptions> = {}) =>
  ExecutorClient.make({ url, secret, ...options })

/** A real executor child process (no isolation: it is crashed from outside), with services bound to it. */
const realExecutorWith = (options: Partial<ExecutorClient.ExecutorClientOptions>) =>
  Effect.gen(function*() {
    const key = Redacted.make(Crypto.randomBytes(24).toString("base64url"))
    // a node executor serving the API (not this process), so that it can be killed or frozen
    const proc = yield* spawnExecutor({
      id: `faults-${Crypto.randomUUID()}`,
      secret: key,
      isolation: "none",
      hub: false
    })
    const client = yield* ExecutorClient.make({ ...options, url: proc.url, secret: key })
    const provide = <A>(make: Effect.Effect<A, never, ExecutorClient.ExecutorClient>) =>
      Effect.provideService(make, ExecutorClient.ExecutorClient, client)
    // the stock protocol: no `/health` capabilities, so bytes travel through base64 commands
    return {
      proc,
      client,
      executor: yield* provide(Executor.make),
      fs: yield* provide(Filesystem.make),
      stockFs: yield* Effect.provideService(
        Filesystem.make,
        ExecutorClient.ExecutorClient,
        withoutCapabilities(client)
      ),
      processes: yield* provide(Processes.make)
    }
  })

const realExecutor = realExecutorWith({})

/** Whether the executor has `name` open (the `binary-files` transfers run no command to look for). */
const hasOpen = (pid: number, name: string) => () => openFiles(pid).some((open) => open.path.endsWith(name))

/** Freezes a process (SIGSTOP): its sockets still accept connections, but nothing answers. */
const freeze = (pid: number) => Effect.sync(() => process.kill(pid, "SIGSTOP"))

describe("a real executor killed mid-operation", () => {
  itLive("Executor.stream fails with ExecutorError, and its cleanup does not hang", () =>
    Effect.gen(function*() {
      const { executor, proc } = yield* realExecutor
      const error = yield* failureOf(
        executor.stream("i=0; while true; do echo line $i; i=$((i+1)); sleep 0.01; done").pipe(
          Stream.tap((chunk) => chunk.data === "line 3" ? Faults.crash(proc.pid) : Effect.void),
          Stream.runDrain
        )
      )
      assertExecutorError(error, ["Transport", "Protocol"], "/run_streaming")
      yield* proc.exited
    }))

  itLive("Executor.run fails with ExecutorError when the command is cut off", () =>
    Effect.gen(function*() {
      const { executor, proc } = yield* realExecutor
      const fiber = yield* Effect.fork(failureOf(executor.run("echo started; sleep 600")))
      yield* Faults.until(() => Faults.descendants(proc.pid).some((d) => d.command.startsWith("sleep 600")))
      yield* Faults.crash(proc.pid)
      assertExecutorError(yield* Fiber.join(fiber), ["Transport", "Protocol"], "/run_streaming")
    }))

  itLive(
    "Filesystem.writeFile of a large binary fails with ExecutorError (binary-files extension)",
    () =>
      Effect.gen(function*() {
        const { fs, proc } = yield* realExecutor
        const home = Path.join(proc.dir, "home")
        const content = Crypto.randomBytes(256 * 1024 * 1024)
        const fiber = yield* Effect.fork(failureOf(fs.writeFile("big.bin", content)))
        // the upload is landing in the destination
        yield* Faults.until(hasOpen(proc.pid, "/big.bin"))
        yield* Faults.crash(proc.pid)
        assertExecutorError(yield* Fiber.join(fiber), ["Transport", "Protocol"], "/write_file_bytes")
        assert.isBelow(Fs.statSync(Path.join(home, "big.bin")).size, content.length)
      })
  )

  itLive(
    "Filesystem.writeFile of a large binary fails with ExecutorError (stock protocol)",
    () =>
      Effect.gen(function*() {
        const { proc, stockFs } = yield* realExecutor
        const home = Path.join(proc.dir, "home")
        const content = Crypto.randomBytes(48 * 1024 * 1024)
        const fiber = yield* Effect.fork(failureOf(stockFs.writeFile("big.bin", content)))
        // the first staged chunk on disk: the transfer is under way
        yield* Faults.until(() => Fs.readdirSync(home).some((name) => name.startsWith(".effect-koyeb-")))
        yield* Faults.crash(proc.pid)
        assertExecutorError(yield* Fiber.join(fiber), ["Transport", "Protocol"], "/write_file")
        assert.isFalse(Fs.existsSync(Path.join(home, "big.bin")))
      })
  )

  itLive(
    "Filesystem.readFile of a large binary fails with ExecutorError (binary-files extension)",
    () =>
      Effect.gen(function*() {
        const { fs, proc } = yield* realExecutor
        Fs.writeFileSync(Path.join(proc.dir, "home", "big.bin"), Crypto.randomBytes(256 * 1024 * 1024))
        const fiber = yield* Effect.fork(failureOf(fs.readFile("big.bin")))
        yield* Faults.until(hasOpen(proc.pid, "/big.bin"))
        yield* Faults.crash(proc.pid)
        assertExecutorError(yield* Fiber.join(fiber), ["Transport", "Protocol"], "/read_file_bytes")
      })
  )

  itLive(
    "Filesystem.readFile of a large binary fails with ExecutorError (stock protocol)",
    () =>
      Effect.gen(function*() {
        const { proc, stockFs } = yield* realExecutor
        Fs.writeFileSync(Path.join(proc.dir, "home", "big.bin"), Crypto.randomBytes(64 * 1024 * 1024))
        const fiber = yield* Effect.fork(failureOf(stockFs.readFile("big.bin")))
        yield* Faults.until(() => Faults.descendants(proc.pid).some((d) => d.command.includes("base64 -w")))
        yield* Faults.crash(proc.pid)
        assertExecutorError(yield* Fiber.join(fiber), ["Transport", "Protocol"], "/run_streaming")
      })
  )

  for (const stock of [false, true]) {
    itLive(
      `Filesystem.readStream fails with ExecutorError after the first bytes (${
        stock ? "stock protocol" : "binary-files extension"
      })`,
      () =>
        Effect.gen(function*() {
          const services = yield* realExecutor
          const { proc } = services
          Fs.writeFileSync(Path.join(proc.dir, "home", "big.bin"), Crypto.randomBytes(64 * 1024 * 1024))
          let first = true
          const error = yield* failureOf(
            (stock ? services.stockFs : services.fs).readStream("big.bin").pipe(
              Stream.tap(() => {
                if (!first) return Effect.void
                first = false
                return Faults.crash(proc.pid)
              }),
              Stream.runDrain
            )
          )
          assert.isFalse(first)
          assertExecutorError(error, ["Transport", "Protocol"], stock ? "/run_streaming" : "/read_file_bytes")
        })
    )
  }

  itLive("Processes.logs fails with ExecutorError", () =>
    Effect.gen(function*() {
      const { proc, processes } = yield* realExecutor
      const handle = yield* processes.launch("i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done")
      const error = yield* failureOf(
        handle.logs.pipe(
          Stream.tap((line) => line.data === "tick 2" ? Faults.crash(proc.pid) : Effect.void),
          Stream.runDrain
        )
      )
      assertExecutorError(error, ["Transport", "Protocol"], "/run_streaming")
    }))

  itLive("calls to an executor that is gone fail with ExecutorError Transport", () =>
    Effect.gen(function*() {
      const { client, executor, fs, proc } = yield* realExecutor
      yield* Faults.crash(proc.pid)
      yield* proc.exited
      assertExecutorError(yield* failureOf(client.health), ["Transport"], "/health")
      assertExecutorError(yield* failureOf(executor.run("true")), ["Transport"], "/run_streaming")
      assertExecutorError(yield* failureOf(fs.readFileString("x")), ["Transport"], "/read_file")
    }))
})

describe("a real executor frozen mid-operation (accepts, never answers)", () => {
  itLive(
    "Executor.stream ends with its timeout, and the kill request in its cleanup is bounded by requestTimeout",
    () =>
      Effect.gen(function*() {
        const { executor, proc } = yield* realExecutorWith({ requestTimeout: "1 second" })
        const error = yield* failureOf(
          executor.stream("echo ready; sleep 602", { timeout: "2 seconds" }).pipe(
            Stream.tap((chunk) => chunk.data === "ready" ? freeze(proc.pid) : Effect.void),
            Stream.runDrain
          )
        )
        assert.strictEqual((error as Timeout)._tag, "Timeout")
      })
  )

  for (const stock of [false, true]) {
    itLive(
      `Filesystem.writeFile of a large binary fails with ExecutorError Transport after requestTimeout (${
        stock ? "stock protocol" : "binary-files extension"
      })`,
      () =>
        Effect.gen(function*() {
          const services = yield* realExecutorWith({ requestTimeout: "1 second" })
          const { proc } = services
          const home = Path.join(proc.dir, "home")
          const fs = stock ? services.stockFs : services.fs
          const fiber = yield* Effect.fork(
            failureOf(fs.writeFile("big.bin", Crypto.randomBytes(stock ? 48 * 1024 * 1024 : 256 * 1024 * 1024)))
          )
          // the transfer is under way: a staged chunk on disk, or the upload landing in the destination
          yield* Faults.until(
            stock
              ? () => Fs.readdirSync(home).some((name) => name.startsWith(".effect-koyeb-"))
              : hasOpen(proc.pid, "/big.bin")
          )
          yield* freeze(proc.pid)
          assertExecutorError(
            yield* Fiber.join(fiber),
            ["Transport"],
            stock ? "/write_file" : "/write_file_bytes",
            /no complete reply within 1s/
          )
        })
    )
  }

  itLive(
    "Processes.logs, stopped by the caller, stops its reader with a bounded request",
    () =>
      Effect.gen(function*() {
        const { proc, processes } = yield* realExecutorWith({ requestTimeout: "1 second" })
        const handle = yield* processes.launch("i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done")
        const lines = yield* handle.logs.pipe(
          Stream.tap((line) => line.data === "tick 2" ? freeze(proc.pid) : Effect.void),
          Stream.take(3),
          Stream.runCollect,
          Effect.timeout(hangGuard)
        )
        assert.deepStrictEqual(Chunk.toReadonlyArray(lines).map((line) => line.data), ["tick 0", "tick 1", "tick 2"])
      })
  )
})

describe("a hostile server", () => {
  itLive("a connection reset in the middle of a reply body is ExecutorError Transport", () =>
    Effect.gen(function*() {
      const url = yield* Faults.serve((_, response) =>
        Faults.truncatedBody(response, JSON.stringify({ stdout: "x".repeat(1000), stderr: "", code: 0 }), 100)
      )
      const client = yield* clientAt(url)
      assertExecutorError(yield* failureOf(client.run({ cmd: "true" })), ["Transport"], "/run")
    }))

  itLive(
    "a connection reset in the middle of an SSE stream is ExecutorError Transport, after the lines before it",
    () =>
      Effect.gen(function*() {
        const url = yield* Faults.serve((_, response) => {
          Faults.sseHead(response)
          response.write(
            Faults.output("stdout", "one") + "event: output\ndata: {\"da",
            () => setTimeout(() => response.socket?.resetAndDestroy(), 50)
          )
        })
        const client = yield* clientAt(url)
        const seen: Array<string> = []
        const error = yield* failureOf(
          client.runStreaming({ cmd: "x" }).pipe(
            Stream.runForEach((event) => Effect.sync(() => event._tag === "Output" && seen.push(event.data)))
          )
        )
        assert.deepStrictEqual(seen, ["one"])
        assertExecutorError(error, ["Transport"], "/run_streaming")
      })
  )

  itLive("a reply truncated mid-JSON is ExecutorError Decode (/run, /read_file)", () =>
    Effect.gen(function*() {
      const url = yield* Faults.serve((request, response) => {
        const body = request.url === "/run" ? "{\"stdout\":\"abc\",\"std" : "{\"success\":true,\"content\":\"ab"
        response.writeHead(200, { "Content-Type": "application/json" })
        response.end(body)
      })
      const client = yield* clientAt(url)
      assertExecutorError(yield* failureOf(client.run({ cmd: "true" })), ["Decode"], "/run")
      assertExecutorError(yield* failureOf(client.readFile("a")), ["Decode"], "/read_file")
    }))

  itLive(
    "a reply cut off before its Content-Length is ExecutorError Transport (/read_file)",
    () =>
      Effect.gen(function*() {
        const url = yield* Faults.serve((_, response) =>
          Faults.truncatedBody(response, JSON.stringify({ success: true, content: "y".repeat(100_000) }), 30_000)
        )
        const client = yield* clientAt(url)
        assertExecutorError(yield* failureOf(client.readFile("a")), ["Transport"], "/read_file")
      })
  )

  itLive(
    "malformed SSE frames (comments, lines without a colon, unknown fields, nameless events) are skipped",
    () =>
      Effect.gen(function*() {
        const url = yield* Faults.serve((_, response) => {
          Faults.sseHead(response)
          response.write(": comment\nno colon at all\nbogus: field\nid: 7\nretry: 1\n\n")
          response.write("data: a message without event\n\n\r\n\n\u0000\n")
          response.write(Faults.output("stdout", "kept"))
          response.end(Faults.complete(0))
        })
        const client = yield* clientAt(url)
        const events = yield* client.runStreaming({ cmd: "x" }).pipe(Stream.runCollect, Effect.timeout(hangGuard))
        assert.deepStrictEqual(Chunk.toReadonlyArray(events), [
          { _tag: "Output", stream: "stdout", data: "kept" },
          { _tag: "Complete", code: 0 }
        ])
      })
  )

  itLive("an output event that is not JSON is ExecutorError Decode", () =>
    Effect.gen(function*() {
      const url = yield* Faults.serve((_, response) => {
        Faults.sseHead(response)
        response.write(Faults.output("stdout", "kept"))
        response.end("event: output\ndata: {not json\n\n" + Faults.complete(0))
      })
      const client = yield* clientAt(url)
      assertExecutorError(
        yield* failureOf(Stream.runDrain(client.runStreaming({ cmd: "x" }))),
        ["Decode"],
        "/run_streaming",
        /bad output event/
      )
    }))

  itLive(
    "unknown events are ignored; a stream that ends without complete is ExecutorError Protocol",
    () =>
      Effect.gen(function*() {
        const url = yield* Faults.serve((request, response) => {
          Faults.sseHead(response)
          response.write(
            Faults.frame("frobnicate", "{}") + Faults.frame("progress", "50%") + Faults.output("stderr", "e")
          )
          response.end(request.url?.startsWith("/process_logs_streaming") ? Faults.frame("heartbeat", "") : "")
        })
        const client = yield* clientAt(url)
        const seen: Array<string> = []
        const error = yield* failureOf(
          client.runStreaming({ cmd: "x" }).pipe(
            Stream.runForEach((event) => Effect.sync(() => event._tag === "Output" && seen.push(event.data)))
          )
        )
        assert.deepStrictEqual(seen, ["e"])
        assertExecutorError(error, ["Protocol"], "/run_streaming", /ended without complete/)
        assertExecutorError(
          yield* failureOf(Stream.runDrain(client.processLogs("p1"))),
          ["Protocol"],
          "/process_logs_streaming",
          /ended without complete/
        )
      })
  )

  itLive(
    "an SSE event over maxEventSize is ExecutorError Protocol, whether its line ends or not",
    () =>
      Effect.gen(function*() {
        const url = yield* Faults.serve((request, response) => {
          Faults.sseHead(response)
          response.write(Faults.output("stdout", "small"))
          switch (request.headers["x-routing-key"]) {
            case "one-line":
              response.write(Faults.output("stdout", "z".repeat(5000)))
              break
            case "many-lines":
              response.write(`event: output\n${"data: zzzzzzzzzz\n".repeat(1000)}`)
              break
            default:
              // a line that never ends: the limit applies before the newline arrives
              response.write(`event: output\ndata: ${"z".repeat(5000)}`)
          }
          // then the peer keeps the connection open: only the limit can end the stream
        })
        for (const routingKey of ["one-line", "many-lines", "endless"]) {
          const client = yield* clientAt(url, { maxEventSize: 4096, routingKey })
          const seen: Array<string> = []
          const error = yield* failureOf(
            client.runStreaming({ cmd: "x" }).pipe(
              Stream.runForEach((event) => Effect.sync(() => event._tag === "Output" && seen.push(event.data)))
            )
          )
          assert.deepStrictEqual(seen, ["small"], routingKey)
          assertExecutorError(error, ["Protocol"], "/run_streaming", /exceeded 4096 characters/)
        }
      })
  )

  itLive(
    "a server that accepts and never answers: requestTimeout ends every buffered call with Transport",
    () =>
      Effect.gen(function*() {
        const url = yield* Faults.serve(() => {})
        const client = yield* clientAt(url, { requestTimeout: "300 millis" })
        assertExecutorError(yield* failureOf(client.health), ["Transport"], "/health", /no complete reply within/)
        assertExecutorError(yield* failureOf(client.run({ cmd: "true" })), ["Transport"], "/run", /no complete reply/)
        assertExecutorError(yield* failureOf(client.readFile("a")), ["Transport"], "/read_file", /no complete reply/)
        assertExecutorError(
          yield* failureOf(client.listProcesses),
          ["Transport"],
          "/list_processes",
          /no complete reply/
        )
      })
  )

  itLive(
    "a server that sends headers and never a body: requestTimeout applies to the body too",
    () =>
      Effect.gen(function*() {
        const url = yield* Faults.serve((_, response) => {
          response.writeHead(200, { "Content-Type": "application/json", "Content-Length": 100 })
          response.flushHeaders()
        })
        const client = yield* clientAt(url, { requestTimeout: "300 millis" })
        assertExecutorError(yield* failureOf(client.run({ cmd: "true" })), ["Transport"], "/run", /no complete reply/)
      })
  )

  itLive("a stream from a server that never answers ends with the Executor timeout", () =>
    Effect.gen(function*() {
      const url = yield* Faults.serve(() => {})
      const executor = yield* Effect.provideServiceEffect(Executor.make, ExecutorClient.ExecutorClient, clientAt(url))
      const error = yield* failureOf(Stream.runDrain(executor.stream("echo hi", { timeout: "300 millis" })))
      assert.strictEqual((error as Timeout)._tag, "Timeout")
      assert.strictEqual((error as Timeout).timeoutMillis, 300)
      const exec = yield* failureOf(executor.exec("echo hi", { timeout: "300 millis" }))
      assert.strictEqual((exec as Timeout)._tag, "Timeout")
    }))

  itLive(
    "a 200 SSE that goes silent then closes: Protocol at the close, or Timeout with idleTimeout",
    () =>
      Effect.gen(function*() {
        const url = yield* Faults.serve((request, response) => {
          Faults.sseHead(response)
          response.write(Faults.output("stdout", "early"))
          const timer = setTimeout(() => response.end(), request.headers["x-routing-key"] === "long" ? 20_000 : 500)
          response.on("close", () => clearTimeout(timer))
        })
        const short = yield* Effect.provideServiceEffect(Executor.make, ExecutorClient.ExecutorClient, clientAt(url))
        const seen: Array<string> = []
        const closed = yield* failureOf(
          short.stream("x").pipe(Stream.runForEach((chunk) => Effect.sync(() => seen.push(chunk.data))))
        )
        assert.deepStrictEqual(seen, ["early"])
        assertExecutorError(closed, ["Protocol"], "/run_streaming", /ended without complete/)

        const long = yield* Effect.provideServiceEffect(
          Executor.make,
          ExecutorClient.ExecutorClient,
          clientAt(url, { routingKey: "long" })
        )
        const idle = yield* failureOf(Stream.runDrain(long.stream("x", { idleTimeout: "300 millis" })))
        assert.strictEqual((idle as Timeout)._tag, "Timeout")
        assert.strictEqual((idle as Timeout).timeoutMillis, 300)
        assert.match((idle as Timeout).operation, /waiting for output/)
      })
  )
})

describe("Executor idleTimeout against a real executor", () => {
  itLive(
    "a silent command fails with Timeout; steady output keeps it alive; the command is stopped",
    () =>
      Effect.gen(function*() {
        const { executor, proc } = yield* realExecutor
        const ticks = yield* executor.run("for i in 1 2 3 4 5; do echo $i; sleep 0.1; done", {
          idleTimeout: "2 seconds"
        })
        assert.strictEqual(ticks.stdout, "1\n2\n3\n4\n5\n")
        const error = yield* failureOf(executor.run("echo start; sleep 601", { idleTimeout: "500 millis" }))
        assert.strictEqual((error as Timeout)._tag, "Timeout")
        yield* Faults.until(() => !Faults.descendants(proc.pid).some((d) => d.command.startsWith("sleep 601")))
      })
  )
})
