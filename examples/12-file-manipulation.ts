/**
 * File manipulation: rename, move, rm. Moves never silently replace: an existing destination is
 * `FileExists` unless `overwrite: true`, and the destination is always the exact new path.
 */
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"

const program = Effect.gen(function*() {
  const fs = yield* Filesystem.Filesystem

  yield* fs.mkdir("/tmp/work/archive", { recursive: true })
  yield* fs.writeFiles([
    { path: "/tmp/work/draft.txt", content: "draft\n" },
    { path: "/tmp/work/report.txt", content: "report\n" },
    { path: "/tmp/work/notes.txt", content: "notes\n" }
  ])

  yield* fs.rename("/tmp/work/draft.txt", "/tmp/work/final.txt")
  yield* Console.log(`after rename:  ${(yield* fs.list("/tmp/work")).join(", ")}`)

  yield* fs.move("/tmp/work/report.txt", "/tmp/work/archive/report-2025.txt")
  yield* Console.log(`archive:       ${(yield* fs.list("/tmp/work/archive")).join(", ")}`)

  // Moving onto an existing file: refused unless asked.
  const refused = yield* fs.move("/tmp/work/notes.txt", "/tmp/work/final.txt").pipe(
    Effect.as("moved?!"),
    Effect.catchTag("FileExists", (error) => Effect.succeed(`FileExists: ${error.path}`))
  )
  yield* Console.log(`move onto existing: ${refused}`)
  yield* fs.move("/tmp/work/notes.txt", "/tmp/work/final.txt", { overwrite: true })
  yield* Console.log(`with overwrite: final.txt = ${(yield* fs.readFileString("/tmp/work/final.txt")).trim()}`)

  // rm: `recursive` for directories, `force` to accept a missing path.
  yield* fs.rm("/tmp/work/archive", { recursive: true })
  yield* fs.rm("/tmp/work/never-existed", { force: true })
  yield* Console.log(`after rm:      ${(yield* fs.list("/tmp/work")).join(", ")}`)
})

program.pipe(
  Effect.provide(Sandbox.layer({ name: "example-manipulation" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
