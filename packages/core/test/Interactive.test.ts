/**
 * Commands with a stdin in the memory twin, and the line splitting of raw output.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Testing from "@effect-koyeb/core/Testing"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const TestLayer = Testing.layerMemory({
  commands: [
    {
      match: "upper",
      reply: ({ stdin }) => Effect.map(stdin ?? Effect.succeed(""), (text) => ({ stdout: text.toUpperCase() }))
    },
    { match: "sleep", reply: { keepRunning: true } }
  ]
})

describe("Executor.spawn on Testing.layerMemory", () => {
  it.scoped("a handler reads the stdin written to a spawned command", () =>
    Effect.gen(function*() {
      const executor = yield* Executor.Executor
      const upper = yield* executor.spawn("upper")
      yield* upper.stdin.write("abc ")
      yield* upper.stdin.write(encoder.encode("déf\n"))
      yield* upper.stdin.end
      const output = yield* Stream.runFold(upper.output, "", (text, chunk) => text + decoder.decode(chunk.data))
      assert.strictEqual(output, "ABC DÉF\n")
      assert.strictEqual((yield* upper.exit).exitCode, 0)
    }).pipe(Effect.provide(TestLayer)))

  it.effect("run, exec and stream take a stdin", () =>
    Effect.gen(function*() {
      const executor = yield* Executor.Executor
      assert.strictEqual((yield* executor.run("upper", { stdin: "x\n" })).stdout, "X\n")
      assert.strictEqual((yield* executor.exec("upper", { stdin: Stream.make("a", "b\n") })).stdout, "AB\n")
      const lines = yield* Stream.runCollect(executor.stream("upper", { stdin: "p\nq\n" }))
      assert.deepStrictEqual(Chunk.toReadonlyArray(lines).map((c) => c.data), ["P", "Q"])
    }).pipe(Effect.provide(TestLayer)))

  it.scoped("a signal ends a running command with 128 + its number", () =>
    Effect.gen(function*() {
      const executor = yield* Executor.Executor
      const sleeping = yield* executor.spawn("sleep")
      yield* sleeping.signal("SIGINT")
      assert.strictEqual((yield* sleeping.exit).exitCode, 130)
    }).pipe(Effect.provide(TestLayer)))

  it.scoped("a pty: resize succeeds; without one, or with a bad size, InvalidArgument", () =>
    Effect.gen(function*() {
      const executor = yield* Executor.Executor
      const terminal = yield* executor.spawn("sleep", { pty: { cols: 80, rows: 24 } })
      yield* terminal.resize(120, 40)
      assert.strictEqual((yield* Effect.flip(terminal.resize(0, 40)))._tag, "InvalidArgument")
      const plain = yield* executor.spawn("sleep")
      assert.strictEqual((yield* Effect.flip(plain.resize(120, 40)))._tag, "InvalidArgument")
    }).pipe(Effect.provide(TestLayer)))
})

describe("Executor.outputLines", () => {
  it.effect("splits per stream, across chunks and UTF-8 sequences", () =>
    Effect.gen(function*() {
      const e = encoder.encode("é")
      const chunks: Array<Executor.OutputBytes> = [
        { stream: "stdout", data: encoder.encode("one\r\ntw") },
        { stream: "stderr", data: encoder.encode("err") },
        { stream: "stdout", data: Uint8Array.of(...encoder.encode("o "), e[0]!) },
        { stream: "stdout", data: Uint8Array.of(e[1]!, 10) },
        { stream: "stdout", data: encoder.encode("last") }
      ]
      const lines = yield* Stream.runCollect(Executor.outputLines(Stream.fromIterable(chunks)))
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(lines).map((c) => `${c.stream}:${c.data}`),
        ["stdout:one", "stdout:two é", "stdout:last", "stderr:err"]
      )
    }))
})
