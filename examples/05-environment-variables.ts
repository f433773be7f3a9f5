/**
 * Environment variables: for the whole sandbox (`Sandbox.layer({ env })`) and per command
 * (`run(cmd, { env })`, which adds to and overrides the sandbox's).
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"

const program = Effect.gen(function*() {
  const executor = yield* Executor.Executor

  const fromSandbox = yield* executor.run("echo \"APP_ENV=$APP_ENV GREETING=$GREETING\"")
  yield* Console.log(`sandbox env:  ${fromSandbox.stdout.trim()}`)

  const perCommand = yield* executor.run("echo \"APP_ENV=$APP_ENV GREETING=$GREETING\"", {
    env: { GREETING: "bonjour" }
  })
  yield* Console.log(`command env:  ${perCommand.stdout.trim()}`)

  const python = yield* executor.run("python3 -c \"import os; print(os.environ['API_URL'])\"", {
    env: { API_URL: "https://api.example.com" }
  })
  yield* Console.log(`python3 sees: API_URL=${python.stdout.trim()}`)
})

const SandboxLive = Sandbox.layer({
  name: "example-env",
  env: { APP_ENV: "production", GREETING: "hello" }
}).pipe(Layer.provide(NodeSandbox.layerFromEnv))

program.pipe(Effect.provide(SandboxLive), NodeRuntime.runMain)
