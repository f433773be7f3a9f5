/**
 * Composing layers: the program only names the services it needs (`Executor`, `Filesystem`);
 * which sandbox, which backend and which HTTP client provide them is decided once, at the edge,
 * by composing layers. Swap `NodeSandbox.layerFromEnv` for `NodeSandbox.layer({ token })`,
 * `NodeSandbox.layerLocal()` or `Testing.layerControlPlaneMemory()` without touching the program.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Context, Effect, Layer } from "effect"

/** An application service built on top of the sandbox services. */
class CodeRunner extends Context.Tag("example/CodeRunner")<CodeRunner, {
  readonly runPython: (source: string) => Effect.Effect<string, unknown>
}>() {
  /** Needs `Executor` and `Filesystem`; knows nothing about Koyeb or local backends. */
  static readonly layer = Layer.effect(
    CodeRunner,
    Effect.gen(function*() {
      const executor = yield* Executor.Executor
      const fs = yield* Filesystem.Filesystem
      let counter = 0
      return {
        runPython: (source: string) =>
          Effect.gen(function*() {
            const path = `/tmp/snippet-${++counter}.py`
            yield* fs.writeFile(path, source)
            return (yield* executor.run(["python3", path])).stdout.trim()
          })
      }
    })
  )
}

const program = Effect.gen(function*() {
  const runner = yield* CodeRunner
  yield* Console.log(
    `fib(20) = ${yield* runner.runPython("a, b = 0, 1\nfor _ in range(20): a, b = b, a + b\nprint(a)\n")}`
  )
  yield* Console.log(`platform: ${yield* runner.runPython("import sys; print(sys.platform)")}`)
})

// Bottom-up: control plane -> sandbox (+ its services) -> application service.
const ControlPlaneLive = NodeSandbox.layerFromEnv
const SandboxLive = Sandbox.layer({ name: "example-layers", env: { PYTHONDONTWRITEBYTECODE: "1" } }).pipe(
  Layer.provide(ControlPlaneLive)
)
const AppLive = CodeRunner.layer.pipe(Layer.provide(SandboxLive))

program.pipe(Effect.provide(AppLive), NodeRuntime.runMain)
