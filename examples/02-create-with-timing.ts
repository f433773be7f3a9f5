/**
 * Create a sandbox and measure each phase: provisioning, readiness, first command, deletion.
 *
 * `Sandbox.make` with `waitReady: false` returns as soon as the sandbox exists, so the wait for
 * readiness can be timed (or overlapped with other work) separately.
 */
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Duration, Effect } from "effect"

/** Runs `effect` and prints how long it took. */
const timed = <A, E, R>(label: string, effect: Effect.Effect<A, E, R>) =>
  Effect.timed(effect).pipe(
    Effect.flatMap(([elapsed, a]) =>
      Console.log(`${label.padEnd(18)} ${Math.round(Duration.toMillis(elapsed))} ms`).pipe(Effect.as(a))
    )
  )

const program = Effect.gen(function*() {
  yield* timed(
    "total",
    Effect.scoped(Effect.gen(function*() {
      const sandbox = yield* timed("create", Sandbox.make({ name: "example-timing", waitReady: false }))
      yield* timed("wait ready", sandbox.waitReady({ timeout: "5 minutes" }))
      yield* timed("first command", sandbox.executor.run("true"))
      yield* timed("second command", sandbox.executor.run("true"))
      // Deleting explicitly is optional (the scope would do it); here it is timed.
      yield* timed("delete", sandbox.delete)
    }))
  )
})

program.pipe(Effect.provide(NodeSandbox.layerFromEnv), NodeRuntime.runMain)
