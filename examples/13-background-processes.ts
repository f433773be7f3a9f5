/**
 * Background processes: launch, follow logs as a `Stream`, wait for a log line, list, wait for
 * exit, kill (the whole process tree), and `launchScoped` which kills when its scope closes.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Processes from "@effect-koyeb/core/Processes"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Stream } from "effect"

const program = Effect.gen(function*() {
  const processes = yield* Processes.Processes
  const executor = yield* Executor.Executor

  // A short job: its logs stream live and the stream ends when it exits.
  const job = yield* processes.launch("for i in 1 2 3; do echo \"processing batch $i\"; sleep 0.1; done; echo finished")
  yield* Console.log(`launched job ${job.id} (pid ${job.pid})`)
  yield* job.logs.pipe(Stream.runForEach((line) => Console.log(`  [job ${line.stream}] ${line.data}`)))
  const final = yield* job.wait({ timeout: "30 seconds" })
  yield* Console.log(`job ended: ${final.status}`)

  // A long-running worker: wait until it says it is ready, then stop it with its children.
  const worker = yield* processes.launch(
    "echo 'worker starting'; sleep 0.2; echo 'worker ready'; (sleep 600 &); while true; do sleep 1; done"
  )
  const ready = yield* worker.waitForLog(/ready/, { timeout: "30 seconds" })
  yield* Console.log(`worker said: ${ready.data}`)
  const running = (yield* processes.list).filter((info) => info.isRunning)
  yield* Console.log(`running processes: ${running.map((info) => info.command.slice(0, 40)).join(" | ")}`)
  yield* worker.kill()
  yield* Console.log(`worker after kill: ${(yield* worker.info).status}`)
  // The kill reached the whole process group: the `sleep 600` grandchild is gone too.
  const leftover = yield* executor.exec("pgrep -f '^sleep 600$'")
  // pgrep exits 1 when nothing matches (0: found, other codes: it could not tell).
  const children = { 0: leftover.stdout.trim(), 1: "none" }[leftover.exitCode] ??
    `unknown (pgrep exit ${leftover.exitCode})`
  yield* Console.log(`leftover children: ${children}`)

  // Scoped: the process cannot outlive the block that uses it.
  yield* Effect.scoped(Effect.gen(function*() {
    const ticker = yield* processes.launchScoped("while true; do echo tick; sleep 0.1; done")
    yield* ticker.waitForLog("tick")
    yield* Console.log("ticker is running inside the scope")
  }))
  yield* Console.log(`still running after the scope: ${(yield* processes.list).filter((p) => p.isRunning).length}`)
})

program.pipe(
  Effect.provide(Sandbox.layer({ name: "example-processes" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
