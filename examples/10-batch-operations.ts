/**
 * Batch operations: `writeFiles` writes many files (text or bytes) in a few commands instead of
 * one request per file.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Duration, Effect, Layer } from "effect"

const program = Effect.gen(function*() {
  const fs = yield* Filesystem.Filesystem
  const executor = yield* Executor.Executor

  yield* fs.mkdir("/tmp/batch", { recursive: true })
  const files = Array.from({ length: 100 }, (_, i) => ({
    path: `/tmp/batch/file-${String(i).padStart(3, "0")}.txt`,
    content: `This is file number ${i}\n`
  }))
  const [elapsed] = yield* Effect.timed(
    fs.writeFiles([...files, { path: "/tmp/batch/logo.bin", content: new Uint8Array([0x89, 0x50, 0x4e, 0x47]) }])
  )
  yield* Console.log(`wrote ${files.length + 1} files in ${Math.round(Duration.toMillis(elapsed))} ms`)

  const count = yield* executor.run("ls /tmp/batch | wc -l")
  yield* Console.log(`the sandbox sees ${count.stdout.trim()} files`)
  yield* Console.log(`file-042.txt: ${(yield* fs.readFileString("/tmp/batch/file-042.txt")).trim()}`)

  // Read many files concurrently (a bounded number of requests in flight).
  const contents = yield* Effect.forEach(files.slice(0, 10), (file) => fs.readFileString(file.path), {
    concurrency: 5
  })
  yield* Console.log(`read back ${contents.length} files concurrently`)
})

program.pipe(
  Effect.provide(Sandbox.layer({ name: "example-batch" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
