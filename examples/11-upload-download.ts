/**
 * Upload and download: copy files between this machine and the sandbox, streaming (a large file
 * is never held in memory twice). Local files go through `@effect/platform`'s `FileSystem`, here
 * provided by `NodeContext.layer`.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { FileSystem, Path } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"

const program = Effect.gen(function*() {
  const localFs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const fs = yield* Filesystem.Filesystem
  const executor = yield* Executor.Executor

  // A local scratch directory, removed when the program ends.
  const dir = yield* localFs.makeTempDirectoryScoped({ prefix: "effect-koyeb-example-" })
  const local = path.join(dir, "data.csv")
  const rows = Array.from({ length: 1000 }, (_, i) => `${i},item-${i},${(i * 1.5).toFixed(2)}`)
  yield* localFs.writeFileString(local, `id,name,price\n${rows.join("\n")}\n`)

  yield* fs.upload(local, "/tmp/data.csv")
  yield* Console.log(`uploaded ${local} -> /tmp/data.csv`)

  // Process it in the sandbox, then download the result.
  yield* executor.run(
    "awk -F, 'NR > 1 { sum += $3 } END { printf \"total,%.2f\\n\", sum }' /tmp/data.csv > /tmp/summary.csv"
  )
  const downloaded = path.join(dir, "summary.csv")
  yield* fs.download("/tmp/summary.csv", downloaded)
  yield* Console.log(`downloaded summary: ${(yield* localFs.readFileString(downloaded)).trim()}`)

  // A missing local file is a typed FileNotFound naming the local path.
  const missing = yield* fs.upload(path.join(dir, "nope.txt"), "/tmp/nope.txt").pipe(
    Effect.as("uploaded?!"),
    Effect.catchTag("FileNotFound", (error) => Effect.succeed(`FileNotFound: ${error.path}`))
  )
  yield* Console.log(`upload of a missing file: ${missing}`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(Sandbox.layer({ name: "example-transfer" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain
)
