/**
 * Create a sandbox, use it, and have it deleted automatically.
 *
 * `Sandbox.layer(options)` creates the sandbox when the layer is built and deletes it when the
 * program ends — also when it fails or is interrupted (Ctrl-C). No `try/finally`, no leaks.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"

const program = Effect.gen(function*() {
  // The current sandbox and its services come from the context.
  const sandbox = yield* Sandbox.Sandbox
  const executor = yield* Executor.Executor
  yield* Console.log(`Created sandbox ${sandbox.info.id} (${sandbox.info.name}) in ${sandbox.info.region}`)
  yield* Console.log(`Healthy: ${yield* sandbox.isHealthy}`)
  const result = yield* executor.run("echo 'Hello from the sandbox'")
  yield* Console.log(result.stdout.trim())
})

// `NodeSandbox.layerFromEnv`: Koyeb when KOYEB_API_TOKEN is set, else sandboxes on this machine.
const SandboxLive = Sandbox.layer({ name: "example-create" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))

program.pipe(Effect.provide(SandboxLive), NodeRuntime.runMain)
