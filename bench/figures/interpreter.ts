/** The code interpreter: warm cells against new interpreters (issue 15). */
import * as CodeInterpreter from "@effect-koyeb/core/CodeInterpreter"
import * as Executor from "@effect-koyeb/core/Executor"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as H from "../harness.js"
import { size } from "../options.js"
import { row } from "../rows.js"
import { type Figure, run, sdk, type World } from "../world.js"

/** Round trips of `cell` in a warm context against `run(command)` (a new interpreter each time). */
const warmCell = async (
  world: World,
  context: CodeInterpreter.CodeContext,
  cell: string,
  command: string,
  iterations: number
) => {
  const cellOnce = () =>
    sdk(world, context.run(cell)).then((execution) => {
      if (execution.text !== "2") throw new Error(`${cell} gave ${execution.text ?? execution.error?.value}`)
    })
  const commandOnce = () => sdk(world, run(command))
  for (let i = 0; i < 3; i++) {
    await cellOnce()
    await commandOnce()
  }
  const { a, b } = await H.interleave(iterations, () => H.timed(cellOnce), () => H.timed(commandOnce))
  return { cell: H.median(a.map((r) => r.millis)), command: H.median(b.map((r) => r.millis)) }
}

export const codeInterpreter: Figure = {
  key: "interpreter",
  title: "code interpreter: warm cells and output throughput",
  run: async (world) => {
    const scope = await sdk(world, Scope.make())
    try {
      const interpreter = await sdk(world, Scope.extend(CodeInterpreter.make, scope))
      const python = await sdk(world, Scope.extend(interpreter.createContext({ language: "python" }), scope))
      const javascript = await sdk(world, Scope.extend(interpreter.createContext({ language: "javascript" }), scope))
      const py = await warmCell(world, python, "1+1", `python3 -c 'print(1+1)'`, size(60, 10))
      const js = await warmCell(world, javascript, "1+1", `node -e 'console.log(1+1)'`, size(30, 6))
      const lines = size(1_000_000, 100_000)
      const cellLines = () =>
        sdk(
          world,
          Stream.runCount(
            Stream.filter(python.runStream(`for i in range(${lines}): print(i)`), (e) => e._tag === "OutputChunk")
          )
        )
      const streamLines = () =>
        sdk(
          world,
          Effect.flatMap(Executor.Executor, (executor) =>
            Stream.runCount(executor.stream(`python3 -c 'for i in range(${lines}): print(i)'`)))
        )
      const rounds = size(3, 1)
      const { a, b } = await H.interleave(rounds, () => H.timed(cellLines), () => H.timed(streamLines))
      for (const r of [...a, ...b]) if (r.value !== lines) throw new Error(`expected ${lines} lines, got ${r.value}`)
      const rate = (rs: ReadonlyArray<{ readonly millis: number }>) =>
        H.median(rs.map((r) => (lines / r.millis) * 1000))
      return [
        row("interpreter.python", "python cell 1+1 in a warm context", "ms", py.cell, py.command, {
          kind: "ratioAtMost",
          value: 0.25
        }, { detail: `median round trip; baseline: run("python3 -c 'print(1+1)'"), a new interpreter each time` }),
        row("interpreter.javascript", "javascript cell 1+1 in a warm context", "ms", js.cell, js.command, {
          kind: "ratioAtMost",
          value: 0.25
        }, { detail: `median round trip; baseline: run("node -e 'console.log(1+1)'")` }),
        row("interpreter.output", `python cell printing ${lines} lines`, "lines/s", rate(a), rate(b), {
          kind: "ratioAtLeast",
          value: 0.8
        }, {
          detail: `runStream of the cell; baseline: stream() of python3 -c with the same loop; median of ${rounds}`
        })
      ]
    } finally {
      await sdk(world, Scope.close(scope, Exit.void))
    }
  }
}
