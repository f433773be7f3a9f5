// Type-checked by tsc under `module: nodenext` and under `moduleResolution: bundler`.
import * as Command from "@effect-koyeb/core/Command"
import * as Executor from "@effect-koyeb/core/Executor"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import type * as SandboxError from "@effect-koyeb/core/SandboxError"
import * as Testing from "@effect-koyeb/core/Testing"
import { Sandboxes } from "@effect-koyeb/platform-node"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { Effect, Layer, Stream } from "effect"

const program: Effect.Effect<string, SandboxError.SandboxError, Executor.Executor> = Effect.gen(function*() {
  const executor = yield* Executor.Executor
  const result = yield* executor.run(Command.sh`echo ${"it's typed"}`)
  const lines = yield* executor.stream("seq 3").pipe(Stream.map((line) => line.data), Stream.runCollect)
  return `${result.stdout} ${lines.length}`
})

export const local: Effect.Effect<string, unknown> = program.pipe(
  Effect.provide(Sandbox.layer({ name: "typed" }).pipe(Layer.provide(NodeSandbox.layerLocal())))
)
export const inMemory = program.pipe(Effect.provide(Testing.layerMemory()))

export const facade = async (): Promise<number> => {
  await using sandbox = await Sandboxes.create({ backend: "local" })
  const { exitCode } = await sandbox.run("true", { signal: AbortSignal.timeout(1_000) })
  return exitCode
}
