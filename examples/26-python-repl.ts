/**
 * An agent-style REPL loop: `python3 -i` driven through stdin. Each step sends one line and reads
 * the output back until the prompt `>>> ` comes again. Without a terminal, Python writes its
 * prompts (and tracebacks) to stderr and results to stdout, so both streams are read together.
 *
 * On Koyeb's stock executor output arrives line by line, so a prompt without a newline shows up
 * only with the next line: there, give Python prompts that end with one (`sys.ps1 = ">>> \n"`).
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Chunk, Console, Effect, Layer, Option, Stream } from "effect"

const prompt = ">>> "

const program = Effect.gen(function*() {
  const executor = yield* Executor.Executor
  // -q: no banner, -u: unbuffered output, so each result comes before the next prompt
  const repl = yield* executor.spawn("python3 -q -u -i")
  const output = yield* Stream.toPull(repl.output)
  const decoder = new TextDecoder()
  let received = ""

  /** The text up to the next prompt (continuation prompts `... ` removed). */
  const untilPrompt = Effect.gen(function*() {
    while (!received.endsWith(prompt)) {
      const chunk = yield* output.pipe(
        Effect.catchAll(Option.match({
          onNone: () => Effect.fail(new Error(`python exited; last output: ${received}`)),
          onSome: Effect.fail
        }))
      )
      for (const piece of Chunk.toReadonlyArray(chunk)) received += decoder.decode(piece.data, { stream: true })
    }
    const text = received.slice(0, -prompt.length).replaceAll("... ", "")
    received = ""
    return text.trimEnd()
  })

  const ask = (code: string) => Effect.zipRight(repl.stdin.write(`${code}\n`), untilPrompt)

  yield* untilPrompt
  for (
    const code of [
      "x = 6 * 7",
      "x",
      "def square(n):\n    return n * n\n",
      "[square(i) for i in range(5)]",
      "import platform; platform.system()",
      "1 / 0"
    ]
  ) {
    const answer = yield* ask(code)
    yield* Console.log(`>>> ${code.trimEnd().replaceAll("\n", "\n... ")}`)
    // a traceback's last line is enough for the log
    if (answer !== "") yield* Console.log(answer.includes("Traceback") ? answer.split("\n").at(-1) : answer)
  }
  yield* repl.stdin.end
  yield* Console.log(`python exited with ${(yield* repl.exit).exitCode}`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(Sandbox.layer({ name: "example-repl" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
