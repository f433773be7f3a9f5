/**
 * Stream a command's output line by line while it runs.
 *
 * `stream` gives `OutputChunk { stream: "stdout" | "stderr", data }` as lines arrive and fails
 * with `CommandError` on a non-zero exit; `streamEvents` ends with a `CommandExit` event instead.
 * Stopping the stream early (here `Stream.take`) stops the command in the sandbox.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Stream } from "effect"

const program = Effect.gen(function*() {
  const executor = yield* Executor.Executor

  yield* Console.log("--- live output")
  yield* executor.stream("for i in 1 2 3 4 5; do echo \"step $i\"; sleep 0.1; done; echo 'done' >&2").pipe(
    Stream.runForEach((chunk) => Console.log(`[${chunk.stream}] ${chunk.data}`))
  )

  yield* Console.log("--- events, whatever the exit code")
  yield* executor.streamEvents("echo building; echo 'warning: deprecated' >&2; exit 2").pipe(
    Stream.runForEach((event) =>
      event._tag === "CommandExit"
        ? Console.log(`exited with ${event.exitCode} after ${event.durationMillis} ms`)
        : Console.log(`[${event.stream}] ${event.data}`)
    )
  )

  yield* Console.log("--- first 3 lines of an endless command (it is stopped afterwards)")
  yield* executor.stream("i=0; while true; do i=$((i+1)); echo \"line $i\"; sleep 0.05; done").pipe(
    Stream.take(3),
    Stream.runForEach((chunk) => Console.log(chunk.data))
  )
})

program.pipe(
  Effect.provide(Sandbox.layer({ name: "example-streaming" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
