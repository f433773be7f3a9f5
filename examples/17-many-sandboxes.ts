/**
 * Many sandboxes in one program: `Sandbox.make` returns a handle with its own `executor`,
 * `filesystem` and `processes`, so several sandboxes can be used side by side. Created
 * concurrently, they are all deleted when the scope closes — even if one of them fails.
 */
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Duration, Effect } from "effect"

const tasks = [
  { name: "squares", code: "print(sum(i * i for i in range(1000)))" },
  {
    name: "primes",
    code: "print(len([n for n in range(2, 5000) if all(n % d for d in range(2, int(n ** 0.5) + 1))]))"
  },
  { name: "words", code: "print(len('the quick brown fox jumps over the lazy dog'.split()))" }
]

const program = Effect.scoped(Effect.gen(function*() {
  const [elapsed, sandboxes] = yield* Effect.timed(
    Effect.forEach(tasks, (task) => Sandbox.make({ name: `example-many-${task.name}` }), { concurrency: "unbounded" })
  )
  yield* Console.log(`${sandboxes.length} sandboxes ready in ${Math.round(Duration.toMillis(elapsed))} ms`)

  // One task per sandbox, in parallel.
  const results = yield* Effect.forEach(
    tasks,
    (task, i) => sandboxes[i]!.executor.run(["python3", "-c", task.code]),
    { concurrency: "unbounded" }
  )
  for (const [i, result] of results.entries()) {
    yield* Console.log(`${tasks[i]!.name.padEnd(8)} in ${sandboxes[i]!.info.id.slice(0, 8)}: ${result.stdout.trim()}`)
  }

  // Sandboxes are isolated from each other: a file written in one is absent from the others.
  yield* sandboxes[0]!.filesystem.writeFile("/tmp/only-here.txt", "1")
  const seen = yield* Effect.forEach(sandboxes, (sandbox) => sandbox.filesystem.exists("/tmp/only-here.txt"))
  yield* Console.log(`/tmp/only-here.txt exists in: ${seen.map((found) => (found ? "yes" : "no")).join(", ")}`)
}))

program.pipe(Effect.provide(NodeSandbox.layerFromEnv), NodeRuntime.runMain)
