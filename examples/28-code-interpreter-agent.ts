/**
 * An agent-style loop on the code interpreter: each step sends a cell to a Python context that
 * keeps its variables, reads back the output, the value and any error, and decides the next step
 * from them, as an LLM agent would (here the "model" is a fixed plan with one buggy step that gets
 * fixed after reading its traceback). The chart comes back as a rich result and is saved locally:
 * a PNG when matplotlib is importable in the sandbox, else an SVG drawn by hand (stdlib only),
 * shown through `_repr_svg_`.
 */
import * as CodeInterpreter from "@effect-koyeb/core/CodeInterpreter"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Encoding, Layer } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const define = `
sales = {"Jan": 120, "Feb": 135, "Mar": 160, "Apr": 150, "May": 190, "Jun": 230}
print(f"{len(sales)} months loaded")`

// The buggy step: the "model" forgot that `sales` is a dict.
const buggy = "growth = [b - a for a, b in zip(sales, sales[1:])]"
const fixed = `values = list(sales.values())
growth = [b - a for a, b in zip(values, values[1:])]
{"total": sum(values), "best month": max(sales, key=sales.get), "growth": growth}`

const plot = `
try:
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(list(sales), list(sales.values()), color="#4c72b0")
    ax.set_title("Sales")
    print("plotted with matplotlib")
except ImportError:
    class Bars:
        """A bar chart as SVG, for sandboxes without matplotlib."""
        def __init__(self, data):
            self.data = data
        def _repr_svg_(self):
            top = max(self.data.values())
            bars = "".join(
                f'<rect x="{20 + i * 50}" y="{170 - v * 150 / top:.0f}" width="40" height="{v * 150 / top:.0f}" fill="#4c72b0"/>'
                f'<text x="{40 + i * 50}" y="190" font-size="12" text-anchor="middle">{k}</text>'
                for i, (k, v) in enumerate(self.data.items()))
            return f'<svg xmlns="http://www.w3.org/2000/svg" width="340" height="200">{bars}</svg>'
        def __repr__(self):
            return f"<Bars of {len(self.data)} months>"
    display(Bars(sales))
    print("plotted as SVG (no matplotlib)")`

const program = Effect.gen(function*() {
  const interpreter = yield* CodeInterpreter.CodeInterpreter
  const context = yield* interpreter.createContext({ language: "python" })
  const outDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-agent-"))

  const step = Effect.fn("agent.step")(function*(title: string, code: string) {
    const execution = yield* context.run(code, { timeout: "30 seconds" })
    yield* Console.log(`— ${title}`)
    for (const line of execution.stdout) yield* Console.log(`  stdout: ${line}`)
    if (execution.text !== undefined) yield* Console.log(`  value:  ${execution.text}`)
    if (execution.error !== undefined) yield* Console.log(`  error:  ${execution.error.name}: ${execution.error.value}`)
    return execution
  })

  yield* step("load the data", define)
  const attempt = yield* step("compute month-over-month growth", buggy)
  // The agent reads the error and tries again with a fix.
  if (attempt.error?.name === "TypeError") yield* step("fix: index the values, not the dict", fixed)
  const chart = yield* step("plot it", plot)

  for (const result of chart.results) {
    const [file, bytes] = result.png !== undefined
      ? ["chart.png", yield* Encoding.decodeBase64(result.png)]
      : result.svg !== undefined
      ? ["chart.svg", new TextEncoder().encode(result.svg)]
      : [undefined, undefined]
    if (file === undefined) continue
    Fs.writeFileSync(Path.join(outDir, file), bytes)
    yield* Console.log(`saved ${file} (${bytes.length} bytes) in ${outDir}`)
  }
  // The variables are still there for the next question.
  yield* step("how many months grew?", "sum(1 for g in growth if g > 0)")
})

program.pipe(
  Effect.scoped,
  Effect.provide(
    CodeInterpreter.layer.pipe(
      Layer.provideMerge(Sandbox.layer({ name: "example-agent" })),
      Layer.provide(NodeSandbox.layerFromEnv)
    )
  ),
  NodeRuntime.runMain
)
