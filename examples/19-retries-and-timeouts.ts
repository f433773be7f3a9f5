/**
 * Retries and timeouts with `Schedule`: commands have no hidden deadline, so you set the ones you
 * want — per command (`timeout` option, which stops the command in the sandbox and fails with the
 * typed `Timeout`), or around any effect (`Effect.timeout`) — and retry exactly the failures that
 * deserve it.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Duration, Effect, Layer, Schedule } from "effect"

const program = Effect.gen(function*() {
  const executor = yield* Executor.Executor

  // 1. A command's own timeout: the command is stopped in the sandbox, descendants included.
  const slow = yield* executor.run("sleep 30", { timeout: "300 millis" }).pipe(
    Effect.as("finished?!"),
    Effect.catchTag(
      "Timeout",
      (error) => Effect.succeed(`Timeout after ${error.timeoutMillis} ms (${error.operation})`)
    )
  )
  yield* Console.log(`1. ${slow}`)

  // 2. Retry a flaky command: fails twice, then succeeds. Only CommandError is retried.
  yield* executor.run("rm -f /tmp/attempts")
  const flaky =
    "echo x >> /tmp/attempts; [ $(wc -l < /tmp/attempts) -ge 3 ] && echo ok || { echo 'not yet' >&2; exit 1; }"
  const policy = Schedule.exponential("50 millis").pipe(
    Schedule.intersect(Schedule.recurs(5)),
    Schedule.tapOutput(([delay, n]) => Console.log(`   retry #${n + 1} in ${Duration.toMillis(delay)} ms`))
  )
  const result = yield* executor.run(flaky).pipe(
    Effect.retry({ schedule: policy, while: (error) => error._tag === "CommandError" })
  )
  yield* Console.log(
    `2. succeeded with "${result.stdout.trim()}" after ${
      (yield* executor.run("wc -l < /tmp/attempts")).stdout.trim()
    } attempts`
  )

  // 3. Poll until a condition holds (a file appears), bounded by an overall timeout.
  yield* executor.run("(sleep 0.3; touch /tmp/ready) > /dev/null 2>&1 &")
  yield* executor.run("test -f /tmp/ready").pipe(
    Effect.retry(Schedule.spaced("100 millis")),
    Effect.timeout("10 seconds")
  )
  yield* Console.log("3. /tmp/ready appeared")

  // 4. A deadline over a whole sequence, with a fallback.
  const fallback = yield* Effect.all([executor.run("sleep 0.1"), executor.run("sleep 5")]).pipe(
    Effect.timeout("1 second"),
    Effect.as("all done"),
    Effect.catchTag("TimeoutException", () => Effect.succeed("gave up after 1 s, used the fallback"))
  )
  yield* Console.log(`4. ${fallback}`)
})

program.pipe(
  Effect.provide(Sandbox.layer({ name: "example-retries" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
