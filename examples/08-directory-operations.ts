/**
 * Directory operations: mkdir (recursive or exclusive), list, listDetailed, isDir, deleteDir.
 */
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"

const program = Effect.gen(function*() {
  const fs = yield* Filesystem.Filesystem

  yield* fs.mkdir("/tmp/my_project/src/utils", { recursive: true })
  yield* fs.mkdir("/tmp/my_project/tests")
  yield* fs.writeFile("/tmp/my_project/README.md", "# My project\n")
  yield* fs.writeFile("/tmp/my_project/src/main.py", "print('main')\n")

  yield* Console.log(`my_project: ${(yield* fs.list("/tmp/my_project")).join(", ")}`)

  // Listing with metadata: type, size, mode, modification time.
  for (const entry of yield* fs.listDetailed("/tmp/my_project")) {
    yield* Console.log(`  ${entry.type.padEnd(9)} ${String(entry.size).padStart(6)}  ${entry.name}`)
  }

  yield* Console.log(`isDir(src): ${yield* fs.isDir("/tmp/my_project/src")}`)

  // mkdir on an existing path: fine by default, FileExists when exclusive.
  const again = yield* fs.mkdir("/tmp/my_project", { exclusive: true }).pipe(
    Effect.as("created?!"),
    Effect.catchTag("FileExists", () => Effect.succeed("FileExists, as asked"))
  )
  yield* Console.log(`exclusive mkdir: ${again}`)

  yield* fs.deleteDir("/tmp/my_project")
  yield* Console.log(`after deleteDir, exists: ${yield* fs.exists("/tmp/my_project")}`)
})

program.pipe(
  Effect.provide(Sandbox.layer({ name: "example-dirs" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
