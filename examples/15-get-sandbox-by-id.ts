/**
 * Attach to an existing sandbox by id: `Sandbox.fromId(id)` gives the same handle as
 * `Sandbox.make`, but never deletes the sandbox implicitly (call `delete` when you mean it).
 * Typically the id comes from another process or a database; here one program plays both roles.
 */
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"

const program = Effect.gen(function*() {
  yield* Effect.scoped(Effect.gen(function*() {
    const original = yield* Sandbox.make({ name: "example-by-id" })
    yield* original.filesystem.writeFile("/tmp/marker.txt", "written by the creator\n")
    const id = original.info.id
    yield* Console.log(`created ${id}`)

    // Somewhere else, with only the id:
    const attached = yield* Sandbox.fromId(id)
    yield* Console.log(`attached to ${attached.info.id} (${attached.info.name}), healthy: ${yield* attached.isHealthy}`)
    const marker = yield* attached.filesystem.readFileString("/tmp/marker.txt")
    yield* Console.log(`marker: ${marker.trim()}`)
    // Leaving this block deletes the sandbox: `original` owns it, `attached` does not.
  }))

  // An unknown id is a typed SandboxNotFound.
  const missing = yield* Sandbox.fromId("00000000-0000-0000-0000-000000000000").pipe(
    Effect.as("found?!"),
    Effect.catchTag("SandboxNotFound", (error) => Effect.succeed(`SandboxNotFound: ${error.id}`))
  )
  yield* Console.log(missing)
})

program.pipe(Effect.provide(NodeSandbox.layerFromEnv), NodeRuntime.runMain)
