/**
 * File operations: write, read, append, check, stat, open, delete.
 *
 * Missing files are a typed `FileNotFound`, recoverable with `Effect.catchTag`; an exclusive write
 * on an existing file is `FileExists`.
 */
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"

const program = Effect.gen(function*() {
  const fs = yield* Filesystem.Filesystem

  yield* fs.writeFile("/tmp/hello.txt", "Hello, Koyeb Sandbox!\nThis is a test file.\n")
  yield* fs.appendFile("/tmp/hello.txt", "Appended line.\n")
  const text = yield* fs.readFileString("/tmp/hello.txt")
  yield* Console.log(`content:\n${text}`)

  const info = yield* fs.stat("/tmp/hello.txt")
  yield* Console.log(`stat: ${info.type}, ${info.size} bytes, mode ${info.mode.toString(8)}`)
  yield* Console.log(`exists: ${yield* fs.exists("/tmp/hello.txt")}, isFile: ${yield* fs.isFile("/tmp/hello.txt")}`)

  // A handle, like Python's `sandbox.filesystem.open`.
  const config = yield* fs.open("/tmp/config.json")
  yield* config.write(JSON.stringify({ debug: true, retries: 3 }))
  const parsed = JSON.parse(yield* config.readString)
  yield* Console.log(`config.json retries = ${parsed.retries}`)

  // Create-only write: the second one fails with FileExists.
  const second = yield* fs.writeFile("/tmp/config.json", "{}", { exclusive: true }).pipe(
    Effect.as("overwritten?!"),
    Effect.catchTag("FileExists", (error) => Effect.succeed(`FileExists: ${error.path}`))
  )
  yield* Console.log(`exclusive write: ${second}`)

  yield* fs.deleteFile("/tmp/hello.txt")
  const missing = yield* fs.readFileString("/tmp/hello.txt").pipe(
    Effect.catchTag("FileNotFound", (error) => Effect.succeed(`FileNotFound: ${error.path}`))
  )
  yield* Console.log(`after delete: ${missing}`)
})

program.pipe(
  Effect.provide(Sandbox.layer({ name: "example-files" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
