/**
 * A long computation interrupted without losing state. The cell updates variables as it goes;
 * a `timeout` (or an `AbortSignal`, or interrupting the fiber) sends SIGINT to the kernel, which
 * raises `KeyboardInterrupt` in the cell: the run stops, the context lives on, and what the cell
 * computed so far is still there, so the next cell can resume from it.
 */
import * as CodeInterpreter from "@effect-koyeb/core/CodeInterpreter"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"

// Counts primes up to a bound far too large to finish, remembering where it got to.
const search = `
checked = globals().get("checked", 1)
primes = globals().get("primes", [])
while True:
    checked += 1
    if all(checked % p for p in primes if p * p <= checked):
        primes.append(checked)`

const program = Effect.gen(function*() {
  const interpreter = yield* CodeInterpreter.CodeInterpreter
  const context = yield* interpreter.createContext()

  // 1. A timeout: the run fails with `Timeout` once the cell has been interrupted.
  const timedOut = yield* context.run(search, { timeout: "1 second" }).pipe(Effect.flip)
  yield* Console.log(`first run: ${timedOut._tag}`)
  const afterFirst = yield* context.run("(checked, len(primes))")
  yield* Console.log(`state kept: checked, primes = ${afterFirst.text}`)

  // 2. An AbortSignal: the run returns, its error the KeyboardInterrupt, with its traceback.
  const resumed = yield* context.run(search, { signal: AbortSignal.timeout(1000) })
  yield* Console.log(
    `second run: ${resumed.error?.name}, stopped at: ${resumed.error?.traceback.trim().split("\n").at(-3)?.trim()}`
  )
  const afterSecond = yield* context.run("(checked, len(primes))")
  yield* Console.log(`resumed from where it stopped: ${afterSecond.text}`)

  const largest = yield* context.run("primes[-1]")
  yield* Console.log(`largest prime found: ${largest.text}`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(
    CodeInterpreter.layer.pipe(
      Layer.provideMerge(Sandbox.layer({ name: "example-interrupt" })),
      Layer.provide(NodeSandbox.layerFromEnv)
    )
  ),
  NodeRuntime.runMain
)
