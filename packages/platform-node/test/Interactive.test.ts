import * as Executor from "@effect-koyeb/core/Executor"
import { ExecutorClient } from "@effect-koyeb/core/ExecutorClient"
import * as ExecutorClientModule from "@effect-koyeb/core/ExecutorClient"
import * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Faults from "./utils/faultServers.js"
import { processesOf } from "./utils/hostProcesses.js"
import * as TestExecutor from "./utils/TestExecutor.js"

const decoder = new TextDecoder()

const Direct = Executor.layer.pipe(Layer.provideMerge(TestExecutor.layerClient))
const Stock = Executor.layer.pipe(
  Layer.provide(TestExecutor.hideCapabilities),
  Layer.provideMerge(TestExecutor.layerClient)
)

/** Reads `output` until its stdout text satisfies `done`; the text so far. */
const readUntil = (running: Executor.RunningCommand, done: (text: string) => boolean) =>
  running.output.pipe(
    Stream.filter((chunk) => chunk.stream === "stdout"),
    Stream.mapAccum("", (text, chunk) => {
      const next = text + decoder.decode(chunk.data)
      return [next, next]
    }),
    Stream.takeUntil(done),
    Stream.runLast,
    Effect.map(Option.getOrElse(() => ""))
  )

const allStdout = (running: Executor.RunningCommand) =>
  Stream.runFold(
    running.output,
    "",
    (text, chunk) => chunk.stream === "stdout" ? text + decoder.decode(chunk.data) : text
  )

const stdinSuite = (name: string, live: typeof Direct) =>
  layer(live, { timeout: "60 seconds", excludeTestServices: true })(name, (it) => {
    it.scoped("stdin round trip through cat", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const cat = yield* executor.spawn("cat")
        yield* cat.stdin.write("hello\n")
        yield* cat.stdin.write(new TextEncoder().encode("world\n"))
        yield* cat.stdin.end
        assert.strictEqual(yield* allStdout(cat), "hello\nworld\n")
        assert.strictEqual((yield* cat.exit).exitCode, 0)
      }))

    it.scoped("prompt and answer, one line at a time", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const repl = yield* executor.spawn(`while read line; do echo "got $line"; done; echo bye`)
        yield* repl.stdin.write("one\n")
        const lines = yield* Stream.toPull(Executor.outputLines(repl.output))
        const first = yield* lines
        assert.deepStrictEqual(Chunk.toReadonlyArray(first).map((c) => c.data), ["got one"])
        yield* repl.stdin.write("two\n")
        const second = yield* lines
        assert.deepStrictEqual(Chunk.toReadonlyArray(second).map((c) => c.data), ["got two"])
        yield* repl.stdin.end
        assert.strictEqual((yield* repl.exit).exitCode, 0)
      }))

    it.scoped("a command that closes stdin early", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const head = yield* executor.spawn("head -c 5")
        yield* head.stdin.write("abcdefghij".repeat(1000))
        const text = yield* allStdout(head)
        assert.strictEqual(text.replace(/\n$/, ""), "abcde")
        assert.strictEqual((yield* head.exit).exitCode, 0)
        // writes after the command closed its stdin are discarded
        yield* head.stdin.write("more")
      }))

    it.effect("run, exec and stream take a stdin", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const result = yield* executor.run("tr a-z A-Z", { stdin: "shout\n" })
        assert.strictEqual(result.stdout, "SHOUT\n")
        const counted = yield* executor.exec("wc -c", { stdin: Stream.make("ab", new Uint8Array([99, 10])) })
        assert.strictEqual(counted.stdout.trim(), "4")
        const lines = yield* executor.stream("sort", { stdin: "b\na\n" }).pipe(Stream.runCollect)
        assert.deepStrictEqual(Chunk.toReadonlyArray(lines).map((c) => c.data), ["a", "b"])
      }))

    it.scoped("a signal reaches the command's trap", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const trapped = yield* executor.spawn(
          `trap 'echo interrupted; exit 7' INT; echo ready; while :; do sleep 0.1; done`
        )
        const lines = yield* Stream.toPull(Executor.outputLines(trapped.output))
        assert.deepStrictEqual(Chunk.toReadonlyArray(yield* lines).map((c) => c.data), ["ready"])
        yield* trapped.signal("SIGINT")
        const rest = yield* Stream.runCollect(Stream.repeatEffectChunkOption(lines))
        assert.include(Chunk.toReadonlyArray(rest).map((c) => c.data), "interrupted")
        assert.strictEqual((yield* trapped.exit).exitCode, 7)
      }))
  })

stdinSuite("spawn on the interactive executor", Direct)
stdinSuite("spawn on the stock fallback", Stock)

layer(Direct, { timeout: "60 seconds", excludeTestServices: true })("interactive extension", (it) => {
  it.effect("a large paste goes through, the executor holding back a command that does not read", () =>
    Effect.gen(function*() {
      const executor = yield* Executor.Executor
      const size = 4 * 1024 * 1024
      const result = yield* executor.run("wc -c", { stdin: new Uint8Array(size).fill(120) })
      assert.strictEqual(result.stdout.trim(), String(size))
      // a command that never reads: the write does not complete (the pipe is full, the request held)
      const stuck = yield* Effect.scoped(Effect.gen(function*() {
        const sleeper = yield* executor.spawn("sleep 30")
        return yield* Effect.timeout(sleeper.stdin.write(new Uint8Array(size)), "1 second").pipe(Effect.option)
      }))
      assert.isTrue(Option.isNone(stuck))
    }))

  it.effect("closing the scope stops the command", () =>
    Effect.gen(function*() {
      const executor = yield* Executor.Executor
      const token = `interactive-${Date.now()}`
      yield* Effect.scoped(Effect.gen(function*() {
        const running = yield* executor.spawn(`echo up; sleep 30 # ${token}`)
        yield* readUntil(running, (text) => text.includes("up"))
        assert.isAbove(processesOf(token).length, 0)
      }))
      yield* Effect.repeat(Effect.sync(() => processesOf(token).length), {
        until: (n) => n === 0,
        schedule: Schedule.spaced("50 millis")
      }).pipe(Effect.timeout("5 seconds"), Effect.ignore)
      assert.deepStrictEqual(processesOf(token), [])
    }))
})

describe("executor killed mid-session", () => {
  // An executor that starts the command, sends some output, then goes away as a dead machine does:
  // every connection reset, the session's included.
  const dying: Faults.Handler = (request, response) => {
    if (request.url === "/health") {
      response.end(JSON.stringify({ status: "ok", capabilities: ["interactive"] }))
    } else if (request.url === "/spawn") {
      Faults.sseHead(response)
      response.write(Faults.frame("started", `{"id":"s1","pid":4242}`))
      response.write(
        Faults.frame("output", `{"stream":"stdout","data":"${Buffer.from("before\n").toString("base64")}"}`)
      )
      setTimeout(() => response.socket?.destroy(), 100)
    } else {
      response.socket?.destroy()
    }
  }

  it.live("gives a typed error on output, exit, stdin and signal", () =>
    Effect.gen(function*() {
      const url = yield* Faults.serve(dying)
      const client = yield* ExecutorClientModule.make({ url, secret: Redacted.make("s") })
      const executor = yield* Effect.provideService(Executor.make, ExecutorClient, client)
      const cat = yield* executor.spawn("cat")
      const output = yield* Effect.flip(allStdout(cat))
      assert.strictEqual(output._tag, "ExecutorError")
      assert.strictEqual((yield* Effect.flip(cat.exit))._tag, "ExecutorError")
      assert.strictEqual((yield* Effect.flip(cat.stdin.write("after")))._tag, "ExecutorError")
      assert.strictEqual((yield* Effect.flip(cat.signal("SIGINT")))._tag, "ExecutorError")
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))
})

describe("through the emulator's gateway", () => {
  const token = Redacted.make("interactive-token")
  const emulated = (baseDir: string) =>
    Layer.unwrapEffect(
      Effect.map(KoyebEmulator.KoyebEmulator, (e) => KoyebControlPlane.layer({ token, host: e.url }))
    ).pipe(
      Layer.provide(KoyebEmulator.layer({ token, isolation: "none", baseDir })),
      Layer.provide(NodeHttpClient.layerUndici)
    )

  it.live(
    "stdin, raw output, signals and a paste pass the gateway (routing key, bearer secret)",
    () =>
      Effect.suspend(() => {
        const baseDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "interactive-"))
        return Effect.gen(function*() {
          const sandbox = yield* Sandbox.make({ pollInterval: "50 millis", timeout: "60 seconds" })
          const cat = yield* sandbox.executor.spawn("cat")
          yield* cat.stdin.write("through the gateway\n")
          assert.strictEqual(yield* readUntil(cat, (text) => text.endsWith("\n")), "through the gateway\n")
          yield* cat.stdin.end
          assert.strictEqual((yield* cat.exit).exitCode, 0)
          const size = 2 * 1024 * 1024
          const counted = yield* sandbox.executor.run("wc -c", { stdin: new Uint8Array(size).fill(65) })
          assert.strictEqual(counted.stdout.trim(), String(size))
          const trapped = yield* sandbox.executor.spawn(
            `trap 'echo caught; exit 5' TERM; echo ready; while :; do sleep 0.1; done`
          )
          yield* readUntil(trapped, (text) => text.includes("ready"))
          yield* trapped.signal("SIGTERM")
          assert.strictEqual((yield* trapped.exit).exitCode, 5)
        }).pipe(
          Effect.scoped,
          Effect.timeout("50 seconds"),
          Effect.provide(emulated(baseDir)),
          Effect.ensuring(Effect.sync(() => Fs.rmSync(baseDir, { recursive: true, force: true })))
        )
      }),
    60_000
  )
})
