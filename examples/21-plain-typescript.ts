/**
 * Plain TypeScript: use the SDK from ordinary `async` code with `Effect.runPromise`.
 *
 * - one-shot: build an Effect, run it with `Effect.runPromise`, await the result;
 * - long-lived: a `ManagedRuntime` holds the backend, a `Scope` holds the sandbox, and plain
 *   async functions run one operation at a time;
 * - errors: `Effect.either` turns the typed failure into a value you can `switch` on.
 *
 * (`@effect-koyeb/platform-node/Sandboxes` offers a ready-made Promise facade with `await using`.)
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { Effect, Either, Exit, Layer, ManagedRuntime, Scope } from "effect"

async function oneShot(): Promise<string> {
  const program = Effect.gen(function*() {
    const executor = yield* Executor.Executor
    const result = yield* executor.run("uname -s")
    return result.stdout.trim()
  })
  // The sandbox exists only while this promise is pending.
  return Effect.runPromise(
    program.pipe(Effect.provide(Sandbox.layer({ name: "example-plain" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))))
  )
}

async function longLived(): Promise<void> {
  // The backend lives as long as the runtime; dispose it at the end.
  const runtime = ManagedRuntime.make(NodeSandbox.layerFromEnv)
  const scope = Effect.runSync(Scope.make())
  try {
    const sandbox = await runtime.runPromise(Scope.extend(Sandbox.make({ name: "example-plain-2" }), scope))
    console.log(`created ${sandbox.info.id}`)

    // From here on, ordinary async code: one awaited call per operation.
    await runtime.runPromise(sandbox.filesystem.writeFile("/tmp/notes.txt", "written from async code\n"))
    const text = await runtime.runPromise(sandbox.filesystem.readFileString("/tmp/notes.txt"))
    console.log(`read back: ${text.trim()}`)

    const result = await runtime.runPromise(sandbox.executor.run("python3 -c 'print(6 * 7)'"))
    console.log(`python3 says ${result.stdout.trim()}`)

    // Typed errors as values: no `instanceof` guessing, no string matching.
    const outcome = await runtime.runPromise(Effect.either(sandbox.filesystem.readFileString("/tmp/missing.txt")))
    if (Either.isLeft(outcome)) {
      switch (outcome.left._tag) {
        case "FileNotFound":
          console.log(`expected failure: FileNotFound ${outcome.left.path}`)
          break
        default:
          console.log(`other failure: ${outcome.left.message}`)
      }
    }
  } finally {
    // Closing the scope deletes the sandbox; disposing the runtime releases the backend.
    await runtime.runPromise(Scope.close(scope, Exit.void))
    await runtime.dispose()
    console.log("sandbox deleted, runtime disposed")
  }
}

async function main() {
  console.log(`one-shot: the sandbox runs ${await oneShot()}`)
  await longLived()
}

main().catch((error) => {
  console.error("failed:", error)
  process.exitCode = 1
})
