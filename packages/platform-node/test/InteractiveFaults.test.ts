/**
 * Faults of interactive sessions (stdin) and watches: a real executor process crashed mid-session,
 * a client that vanishes mid-session, a huge paste, and a command that closes its stdin early.
 * Each must end in a typed error or the documented outcome, within a bounded time.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import { spawnExecutor } from "../src/internal/localRuntime.js"
import * as Faults from "./utils/faultServers.js"
import { processesOf } from "./utils/hostProcesses.js"
import * as TestExecutor from "./utils/TestExecutor.js"

const decoder = new TextDecoder()

/** `self`'s typed failure, within 20 seconds: no success, no defect, no hang. */
const failureOf = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const exit = yield* self.pipe(
      Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => "hang" as const }),
      Effect.exit
    )
    if (Exit.isSuccess(exit)) return assert.fail("expected a failure")
    const error = Cause.failureOption(exit.cause)
    if (Option.isNone(error)) return assert.fail(`no typed failure: ${Cause.pretty(exit.cause)}`)
    assert.notStrictEqual(error.value, "hang")
    return error.value as { readonly _tag: string }
  })

const stdoutOf = (running: Executor.RunningCommand) =>
  Stream.runFold(
    running.output,
    "",
    (text, chunk) => chunk.stream === "stdout" ? text + decoder.decode(chunk.data) : text
  )

describe("a real executor killed mid-session", () => {
  it.scopedLive("output, exit, stdin, signal and a watch fail with a typed error", () =>
    Effect.gen(function*() {
      const secret = Redacted.make(Crypto.randomBytes(24).toString("base64url"))
      const proc = yield* spawnExecutor({ id: `ifaults-${Crypto.randomUUID()}`, secret, isolation: "none" })
      const client = yield* ExecutorClient.make({ url: proc.url, secret })
      const executor = yield* Effect.provideService(Executor.make, ExecutorClient.ExecutorClient, client)
      const fs = yield* Effect.provideService(Filesystem.make, ExecutorClient.ExecutorClient, client)
      const cat = yield* executor.spawn("cat")
      const events = yield* fs.watchScoped(proc.dir)
      yield* cat.stdin.write("before\n")
      const pull = yield* Stream.toPull(cat.output)
      assert.strictEqual(decoder.decode((yield* pull).pipe((chunk) => Array.from(chunk)[0]!.data)), "before\n")
      yield* Faults.crash(proc.pid)
      assert.strictEqual(
        (yield* failureOf(Stream.runDrain(Stream.repeatEffectChunkOption(pull))))._tag,
        "ExecutorError"
      )
      assert.strictEqual((yield* failureOf(cat.exit))._tag, "ExecutorError")
      assert.strictEqual((yield* failureOf(cat.stdin.write("after\n")))._tag, "ExecutorError")
      assert.strictEqual((yield* failureOf(cat.signal("SIGINT")))._tag, "ExecutorError")
      assert.strictEqual((yield* failureOf(Stream.runDrain(events)))._tag, "ExecutorError")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)), 30_000)
})

const Direct = Executor.layer.pipe(Layer.provideMerge(TestExecutor.layerClient))
const Stock = Executor.layer.pipe(
  Layer.provide(TestExecutor.hideCapabilities),
  Layer.provideMerge(TestExecutor.layerClient)
)

const stdinFaults = (name: string, live: typeof Direct, pasteBytes: number) =>
  layer(live, { timeout: "60 seconds", excludeTestServices: true })(name, (it) => {
    it.effect(`a paste of ${pasteBytes / 1024 / 1024} MB arrives intact`, () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        // an executor without the extension (EXECUTOR_URL's stock one) takes the slow fallback
        const direct = (yield* (yield* ExecutorClient.ExecutorClient).capabilities).has("interactive")
        const paste = Crypto.randomBytes(direct ? pasteBytes : Math.min(pasteBytes, 1024 * 1024))
        const result = yield* executor.run("sha256sum", { stdin: new Uint8Array(paste) })
        assert.strictEqual(result.stdout.split(" ")[0], Crypto.createHash("sha256").update(paste).digest("hex"))
      }))

    it.scoped("a command that closes stdin early: later writes are dropped, nothing hangs", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const head = yield* executor.spawn("head -c 10")
        yield* head.stdin.write("0123456789abcdef")
        // the stock fallback reports output as lines, a final one with a `\n` added
        assert.strictEqual((yield* stdoutOf(head)).replace(/\n$/, ""), "0123456789")
        assert.strictEqual((yield* head.exit).exitCode, 0)
        // the command is gone: writes and the end complete at once, their bytes dropped (on the
        // stock fallback too, also while its feeding loop removes the chunk directory)
        for (const attempt of [head.stdin.write(new Uint8Array(256 * 1024)), head.stdin.end]) {
          yield* attempt.pipe(Effect.timeout("10 seconds"))
        }
      }))
  })

stdinFaults("stdin faults on the interactive executor", Direct, 50 * 1024 * 1024)
stdinFaults("stdin faults on the stock fallback", Stock, 1024 * 1024)

layer(TestExecutor.layerClient, { timeout: "30 seconds", excludeTestServices: true })(
  "a client gone mid-session",
  (it) => {
    it.effect("the executor stops the command when the /spawn connection drops", () =>
      Effect.gen(function*() {
        const endpoint = yield* TestExecutor.TestExecutorEndpoint
        const capabilities = yield* (yield* ExecutorClient.ExecutorClient).capabilities
        if (endpoint.stock || !capabilities.has("interactive")) return
        const token = `client-gone-${Crypto.randomUUID()}`
        // a raw client that starts a command then vanishes: no `/stdin_end`, no `/signal`, no close of its own
        yield* Effect.async<void, Error>((resume) => {
          const request = Http.request(`${endpoint.url}/spawn`, {
            method: "POST",
            headers: { authorization: `Bearer ${Redacted.value(endpoint.secret)}`, "content-type": "application/json" }
          }, (response) => {
            response.on("data", (chunk: Buffer) => {
              if (chunk.toString().includes("started")) {
                request.destroy()
                resume(Effect.void)
              }
            })
          })
          request.on("error", () => {})
          request.end(JSON.stringify({ cmd: `cat; sleep 30 # ${token}` }))
        })
        yield* Effect.repeat(Effect.sync(() => processesOf(token).length), {
          until: (n) => n === 0,
          schedule: Schedule.spaced("50 millis")
        }).pipe(Effect.timeout("5 seconds"), Effect.ignore)
        assert.deepStrictEqual(processesOf(token), [])
      }))
  }
)
