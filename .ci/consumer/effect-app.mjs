// An Effect program composing NodeSandbox.layerLocal with Sandbox.layer.
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { Chunk, Effect, Layer, Stream } from "effect"

const program = Effect.gen(function*() {
  const executor = yield* Executor.Executor
  const fs = yield* Filesystem.Filesystem
  const lines = yield* executor.stream("for i in 1 2 3; do echo line $i; done").pipe(Stream.runCollect)
  yield* fs.writeFile("/tmp/hello.txt", "from effect")
  const text = yield* fs.readFileString("/tmp/hello.txt")
  const sandbox = yield* Sandbox.Sandbox
  return `effect: ${Chunk.size(lines)} lines, "${text}", sandbox ${sandbox.info.id}`
})

const SandboxLive = Sandbox.layer({ name: "consumer-effect" }).pipe(Layer.provide(NodeSandbox.layerLocal()))
console.log(await Effect.runPromise(program.pipe(Effect.provide(SandboxLive))))
