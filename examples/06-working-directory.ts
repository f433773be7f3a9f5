/**
 * Working directory: `cwd` runs a command (or a background process) in a given directory, which
 * must exist in the sandbox.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"

const program = Effect.gen(function*() {
  const executor = yield* Executor.Executor
  const fs = yield* Filesystem.Filesystem

  const home = yield* executor.run("pwd")
  yield* Console.log(`default directory: ${home.stdout.trim()}`)

  yield* fs.mkdir("/tmp/project/src", { recursive: true })
  yield* fs.writeFile("/tmp/project/src/app.py", "print('running app.py')\n")

  const pwd = yield* executor.run("pwd", { cwd: "/tmp/project" })
  yield* Console.log(`with cwd:          ${pwd.stdout.trim()}`)

  // Relative paths resolve against cwd.
  const app = yield* executor.run("python3 src/app.py", { cwd: "/tmp/project" })
  yield* Console.log(`relative path:     ${app.stdout.trim()}`)

  const files = yield* executor.run("ls", { cwd: "/tmp/project/src" })
  yield* Console.log(`ls in src:         ${files.stdout.trim()}`)
})

program.pipe(
  Effect.provide(Sandbox.layer({ name: "example-cwd" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
