/**
 * `Stream` pipelines over command output: the output of a command is an ordinary Effect `Stream`,
 * so filtering, parsing, grouping, folding and early termination are plain stream operators,
 * applied while the command runs.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Option, Stream } from "effect"

// A fake service writing access-log lines: "<status> <path> <millis>".
const accessLog = `python3 -u -c "
import random, time
random.seed(7)
paths = ['/', '/api/users', '/api/orders', '/health']
for i in range(200):
    print(random.choice([200, 200, 200, 404, 500]), random.choice(paths), random.randint(1, 300))
    if i % 50 == 0: time.sleep(0.05)
"`

const program = Effect.gen(function*() {
  const executor = yield* Executor.Executor

  const lines = executor.stream(accessLog).pipe(
    Stream.filter((chunk) => chunk.stream === "stdout"),
    Stream.map((chunk) => {
      const [status, path, millis] = chunk.data.split(" ")
      return { status: Number(status), path: path!, millis: Number(millis) }
    })
  )

  // Fold into per-status counts and the slowest request.
  const stats = yield* lines.pipe(
    Stream.runFold({ byStatus: {} as Record<number, number>, slowest: 0 }, (acc, r) => ({
      byStatus: { ...acc.byStatus, [r.status]: (acc.byStatus[r.status] ?? 0) + 1 },
      slowest: Math.max(acc.slowest, r.millis)
    }))
  )
  yield* Console.log(`requests by status: ${JSON.stringify(stats.byStatus)}, slowest ${stats.slowest} ms`)

  // Batches of 50 lines, as they arrive.
  yield* lines.pipe(
    Stream.grouped(50),
    Stream.zipWithIndex,
    Stream.runForEach(([batch, i]) => Console.log(`batch ${i + 1}: ${batch.length} lines`))
  )

  // Stop at the first server error: the command is stopped in the sandbox right away.
  const firstError = yield* lines.pipe(Stream.find((r) => r.status === 500), Stream.runHead)
  yield* Console.log(
    Option.match(firstError, {
      onNone: () => "no server error",
      onSome: (r) => `first 500: ${r.path} (${r.millis} ms)`
    })
  )

  // Merge two commands' outputs, tagged by source.
  const merged = yield* Stream.merge(
    executor.stream("for i in 1 2 3; do echo a$i; sleep 0.02; done").pipe(Stream.map((c) => `left:${c.data}`)),
    executor.stream("for i in 1 2 3; do echo b$i; sleep 0.02; done").pipe(Stream.map((c) => `right:${c.data}`))
  ).pipe(Stream.runCollect)
  yield* Console.log(`merged ${merged.length} lines from two commands`)
})

program.pipe(
  Effect.provide(Sandbox.layer({ name: "example-pipelines" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
