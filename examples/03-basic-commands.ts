/**
 * Run commands: buffered output, exit codes, and the typed `CommandError`.
 *
 * - `run` fails with `CommandError` on a non-zero exit code;
 * - `exec` returns the `CommandResult` whatever the exit code;
 * - the `sh` template quotes every interpolated value, so user input is never interpreted by the shell.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import { sh } from "@effect-koyeb/core/ShellCommand"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"

const program = Effect.gen(function*() {
  const executor = yield* Executor.Executor

  const hello = yield* executor.run("echo 'Hello World'")
  yield* Console.log(`stdout: ${hello.stdout.trim()} (exit ${hello.exitCode}, ${hello.durationMillis} ms)`)

  const python = yield* executor.run("python3 -c \"print(2 + 2)\"")
  yield* Console.log(`python3 says 2 + 2 = ${python.stdout.trim()}`)

  // An argv array: every element is quoted.
  const listing = yield* executor.run(["ls", "-la", "/"])
  yield* Console.log(`ls / printed ${listing.stdout.split("\n").length - 1} lines`)

  // The sh template: `name` stays one word, quotes and all.
  const name = "O'Brien; rm -rf /"
  const greeting = yield* executor.run(sh`printf 'Hi, %s\n' ${name}`)
  yield* Console.log(greeting.stdout.trim())

  // exec: a non-zero exit is a result, not a failure.
  const failed = yield* executor.exec("echo oops >&2; exit 3")
  yield* Console.log(`exec: exit ${failed.exitCode}, stderr ${JSON.stringify(failed.stderr)}`)

  // run: a non-zero exit is a typed failure you can catch by tag.
  const recovered = yield* executor.run("ls /does-not-exist").pipe(
    Effect.catchTag("CommandError", (error) => Effect.succeed(`CommandError: exit ${error.exitCode}`))
  )
  yield* Console.log(`run: ${recovered}`)
})

program.pipe(
  Effect.provide(Sandbox.layer({ name: "example-commands" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
