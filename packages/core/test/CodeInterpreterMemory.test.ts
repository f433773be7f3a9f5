/**
 * The scripted `CodeInterpreter` of `Testing.layerMemory`: cells answered by handlers, with the
 * contract of the real one (exceptions as data, the main result's text, streamed events).
 */
import * as CodeInterpreter from "@effect-koyeb/core/CodeInterpreter"
import * as SandboxError from "@effect-koyeb/core/SandboxError"
import * as Testing from "@effect-koyeb/core/Testing"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

const Memory = Testing.layerMemory({
  cells: [
    { match: "x = 1", reply: {} },
    { match: /^print/, reply: { stdout: "hello\n", stderr: ["warning"] } },
    { match: "x", reply: ({ count }) => Effect.succeed({ value: String(count) }) },
    { match: "1/0", reply: { error: { name: "ZeroDivisionError", value: "division by zero" } } },
    { match: "chart", reply: { results: [{ png: "iVBORw==", text: "<Figure>" }], value: "'done'" } },
    { match: "[1, 2].length", language: "javascript", reply: { value: "2" } }
  ]
})

describe("KernelDied", () => {
  it("is a SandboxError: in the union the services' failures belong to, branded", () => {
    const toSandboxError = (
      error: CodeInterpreter.RunFailure | CodeInterpreter.CreateFailure
    ): SandboxError.SandboxError => error
    const died = toSandboxError(new SandboxError.KernelDied({ contextId: "c1", language: "python", reason: "code 3" }))
    assert.isTrue(SandboxError.isSandboxError(died))
    assert.strictEqual(died._tag, "KernelDied")
    assert.strictEqual(died.message, "The python kernel of context c1 died: code 3")
  })
})

describe("CodeInterpreter on Testing.layerMemory", () => {
  it.scoped("scripted cells: output, main result, errors, rich results", () =>
    Effect.gen(function*() {
      const interpreter = yield* CodeInterpreter.CodeInterpreter
      const context = yield* interpreter.createContext()
      yield* context.run("x = 1")
      assert.strictEqual((yield* context.run("x")).text, "2")
      const printed = yield* interpreter.run("print('hello')")
      assert.deepStrictEqual(printed.stdout, ["hello"])
      assert.deepStrictEqual(printed.stderr, ["warning"])
      const failed = yield* interpreter.run("1/0")
      assert.strictEqual(failed.error?.name, "ZeroDivisionError")
      const chart = yield* interpreter.run("chart")
      assert.deepStrictEqual(chart.results.map((r) => [r.isMain, r.formats]), [
        [false, ["text/plain", "image/png"]],
        [true, ["text/plain"]]
      ])
      assert.strictEqual(chart.text, "'done'")
      const js = yield* interpreter.run("[1, 2].length", { language: "javascript" })
      assert.strictEqual(js.text, "2")
      const unscripted = yield* interpreter.run("[1, 2].length")
      assert.strictEqual(unscripted.error?.name, "Unscripted")
    }).pipe(Effect.provide(Memory)))

  it.effect("runStream emits lines, results and the error", () =>
    Effect.gen(function*() {
      const interpreter = yield* CodeInterpreter.CodeInterpreter
      const events = yield* Stream.runCollect(interpreter.runStream("print('hello')"))
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(events).map((e) => e._tag === "OutputChunk" ? `${e.stream}:${e.data}` : e._tag),
        ["stdout:hello", "stderr:warning"]
      )
    }).pipe(Effect.provide(Memory)))
})
