/**
 * Testing code that uses sandboxes, without sandboxes:
 *
 * - `Testing.layerMemory`: an in-memory sandbox (files, scripted command replies, processes) that
 *   keeps the real error contract, plus `MemorySandbox` to inspect what happened;
 * - `Layer.mock`: a partial stub of one service (unimplemented methods die if called);
 * - `Testing.layerControlPlaneMemory`: `Sandbox.make` / `Sandbox.layer` with no backend, and a
 *   record of what was created and deleted.
 *
 * In a test suite these would be `it.effect(...)` cases from `@effect/vitest`; here they run as a
 * program with `node:assert`, and the same code finally runs against a real sandbox.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import { CommandResult } from "@effect-koyeb/core/SandboxSchema"
import * as Testing from "@effect-koyeb/core/Testing"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Option } from "effect"
import * as assert from "node:assert/strict"

// ---------------------------------------------------------------------------------------------
// The code under test: runs a Python script and stores its report.

const runReport = Effect.fn("runReport")(function*(script: string) {
  const fs = yield* Filesystem.Filesystem
  const executor = yield* Executor.Executor
  yield* fs.mkdir("/tmp/job", { recursive: true })
  yield* fs.writeFile("/tmp/job/report.py", script)
  const result = yield* executor.run("python3 report.py", { cwd: "/tmp/job" })
  yield* fs.writeFile("/tmp/job/report.txt", result.stdout)
  return result.stdout.trim()
})

const script = "print('rows: 3')\n"

// ---------------------------------------------------------------------------------------------
// 1. The in-memory sandbox: scripted replies, real filesystem semantics, inspectable state.

const memoryTest = Effect.gen(function*() {
  const report = yield* runReport(script)
  assert.equal(report, "rows: 3")

  const memory = yield* Testing.MemorySandbox
  assert.deepEqual(yield* memory.fileText("/tmp/job/report.txt"), Option.some("rows: 3\n"))
  const commands = yield* memory.commands
  assert.deepEqual(commands.map((c) => [c.command, c.cwd]), [["python3 report.py", "/tmp/job"]])
  yield* Console.log("✔ layerMemory: report written, one command run in /tmp/job")
}).pipe(
  Effect.provide(Testing.layerMemory({
    commands: [{
      match: "python3 report.py",
      // A handler can look at the files the command would see (and fail like python3 would).
      reply: ({ fs }) =>
        fs.readFileString("/tmp/job/report.py").pipe(
          Effect.map((source) => ({ stdout: source.includes("rows") ? "rows: 3\n" : "" })),
          Effect.catchAll(() => Effect.succeed({ stderr: "python3: can't open file 'report.py'\n", exitCode: 2 }))
        )
    }]
  }))
)

// Failures keep their real types: a non-zero exit is a CommandError.
const failureTest = Effect.gen(function*() {
  const error = yield* Effect.flip(runReport(script))
  assert.equal(error._tag, "CommandError")
  yield* Console.log(`✔ layerMemory: a failing script surfaces as ${error._tag}`)
}).pipe(
  Effect.provide(Testing.layerMemory({
    commands: [{ match: /^python3 /, reply: { stderr: "SyntaxError\n", exitCode: 1 } }]
  }))
)

// ---------------------------------------------------------------------------------------------
// 2. Layer.mock: stub only what the code uses.

const mockTest = Effect.gen(function*() {
  const written = new Map<string, string | Uint8Array>()
  const FilesystemMock = Layer.mock(Filesystem.Filesystem, {
    mkdir: () => Effect.void,
    writeFile: (path, content) => Effect.sync(() => void written.set(path, content))
  })
  const ExecutorMock = Layer.mock(Executor.Executor, {
    run: (command) =>
      Effect.succeed(
        new CommandResult({
          command: String(command),
          stdout: "rows: 42\n",
          stderr: "",
          exitCode: 0,
          status: "finished",
          durationMillis: 1
        })
      )
  })
  const report = yield* runReport(script).pipe(Effect.provide(Layer.merge(FilesystemMock, ExecutorMock)))
  assert.equal(report, "rows: 42")
  assert.equal(written.get("/tmp/job/report.txt"), "rows: 42\n")
  yield* Console.log("✔ Layer.mock: stubbed Executor.run and Filesystem.writeFile")
})

// ---------------------------------------------------------------------------------------------
// 3. The in-memory control plane: sandboxes are created and, above all, deleted.

const controlPlaneTest = Effect.gen(function*() {
  yield* Effect.scoped(Effect.gen(function*() {
    const sandboxes = yield* Effect.all([Sandbox.make({ name: "a" }), Sandbox.make({ name: "b" })])
    yield* Effect.forEach(sandboxes, (sandbox) => sandbox.filesystem.writeFile("/tmp/x", sandbox.info.name))
  }))
  const controlPlane = yield* Testing.MemoryControlPlane
  assert.equal((yield* controlPlane.created).length, 2)
  assert.deepEqual(yield* controlPlane.live, [])
  yield* Console.log("✔ layerControlPlaneMemory: 2 sandboxes created, none left behind")
}).pipe(Effect.provide(Testing.layerControlPlaneMemory()))

// ---------------------------------------------------------------------------------------------
// Finally the same code on a real sandbox.

const realRun = Effect.gen(function*() {
  const report = yield* runReport(script)
  assert.equal(report, "rows: 3")
  yield* Console.log(`✔ real sandbox: ${report}`)
}).pipe(Effect.provide(Sandbox.layer({ name: "example-testing" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))))

Effect.all([memoryTest, failureTest, mockTest, controlPlaneTest, realRun]).pipe(NodeRuntime.runMain)
