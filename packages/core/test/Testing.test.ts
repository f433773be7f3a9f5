/**
 * The test kit itself: handlers, the unhandled-command failure, processes, ports, state
 * inspection, and the memory control plane behind `Sandbox.make` / `Sandbox.layer`.
 */
import * as ControlPlane from "@effect-koyeb/core/ControlPlane"
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Processes from "@effect-koyeb/core/Processes"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import { CommandResult } from "@effect-koyeb/core/SandboxSchema"
import * as Testing from "@effect-koyeb/core/Testing"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"

const commands: ReadonlyArray<Testing.CommandHandler> = [
  { match: "whoami", reply: { stdout: "user\n" } },
  { match: /^greet (\w+)$/, reply: ({ command }) => ({ stdout: `hello ${command.split(" ")[1]}\n` }) },
  {
    match: (command) => command.startsWith("cat "),
    reply: ({ command, fs }) => Effect.map(fs.readFileString(command.slice(4)), (text) => ({ stdout: text }))
  },
  { match: "env-of FOO", reply: ({ cwd, env }) => ({ stdout: `${env.FOO ?? ""} ${cwd ?? "-"}` }) },
  { match: "fail", reply: { stdout: "partial\n", stderr: "boom\nbang\n", exitCode: 3 } },
  { match: "serve", reply: { stdout: "listening on 8080\n", keepRunning: true, ports: [8080] } },
  { match: "sleep", reply: { keepRunning: true } }
]

const TestLayer = Testing.layerMemory({ files: { "/app/config.json": "{\"a\":1}" }, commands, env: { FOO: "bar" } })

describe("Testing.layerMemory", () => {
  it.effect("handlers match by string, RegExp and function; output is split into lines", () =>
    Effect.gen(function*() {
      const exec = yield* Executor.Executor
      assert.strictEqual((yield* exec.run("whoami")).stdout, "user\n")
      assert.strictEqual((yield* exec.run("  whoami ")).stdout, "user\n")
      assert.strictEqual((yield* exec.run("greet ada")).stdout, "hello ada\n")
      // argv arrays reach handlers quoted, as the shell would receive them
      assert.strictEqual((yield* exec.exec(["greet", "ada"])).stderr, "no handler for: 'greet' 'ada'\n")
      assert.strictEqual((yield* exec.run("cat /app/config.json")).stdout, "{\"a\":1}\n")
      const missing = yield* exec.exec("cat /app/missing")
      assert.deepStrictEqual([missing.exitCode, missing.stderr], [1, "File not found: /app/missing\n"])
      assert.strictEqual((yield* exec.run("env-of FOO", { cwd: "/app", env: { FOO: "baz" } })).stdout, "baz /app\n")
      assert.strictEqual((yield* exec.run("env-of FOO")).stdout, "bar -\n")
      const lines = yield* Stream.runCollect(exec.stream("fail").pipe(Stream.either))
      assert.deepStrictEqual(
        Chunk.toArray(lines).flatMap((e) => (e._tag === "Right" ? [`${e.right.stream}:${e.right.data}`] : [])),
        ["stdout:partial", "stderr:boom", "stderr:bang"]
      )
    }).pipe(Effect.provide(TestLayer)))

  it.effect("an unhandled command fails like `command not found`, naming it", () =>
    Effect.gen(function*() {
      const exec = yield* Executor.Executor
      const error = yield* Effect.flip(exec.run("rm -rf /"))
      assert.strictEqual(error._tag, "CommandError")
      if (error._tag !== "CommandError") return
      assert.strictEqual(error.exitCode, 127)
      assert.strictEqual(error.stderr, "no handler for: rm -rf /\n")
      assert.include(error.message, "no handler for: rm -rf /")
      const result = yield* exec.exec("nope")
      assert.deepStrictEqual([result.exitCode, result.status, result.success], [127, "failed", false])
    }).pipe(Effect.provide(TestLayer)))

  it.effect("non-zero exit codes, CommandExit events, timeouts and argument errors match the real Executor", () =>
    Effect.gen(function*() {
      const exec = yield* Executor.Executor
      const error = yield* Effect.flip(exec.run("fail"))
      assert.deepStrictEqual(
        error._tag === "CommandError" && [error.exitCode, error.stdout, error.stderr],
        [3, "partial\n", "boom\nbang\n"]
      )
      const events = Chunk.toArray(yield* Stream.runCollect(exec.streamEvents("fail")))
      const last = events[events.length - 1]!
      assert.deepStrictEqual(last._tag === "CommandExit" && last.exitCode, 3)
      const fiber = yield* Effect.fork(Effect.flip(exec.run("sleep", { timeout: "5 seconds" })))
      yield* TestClock.adjust("5 seconds")
      const timeout = yield* Fiber.join(fiber)
      assert.strictEqual(timeout._tag, "Timeout")
      assert.strictEqual((yield* Effect.flip(exec.run("  ")))._tag, "InvalidArgument")
      const cwd = yield* Effect.flip(exec.run("whoami", { cwd: "/missing" }))
      assert.deepStrictEqual(cwd._tag === "InvalidArgument" && cwd.argument, "cwd")
    }).pipe(Effect.provide(TestLayer)))

  it.effect("processes: launch, logs, wait, kill, list, ports", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const done = yield* processes.launch("whoami")
      assert.strictEqual((yield* done.wait()).status, "completed")
      assert.deepStrictEqual(Chunk.toArray(yield* Stream.runCollect(done.logs)).map((l) => l.data), ["user"])
      const failed = yield* processes.launch("fail")
      assert.strictEqual((yield* failed.wait()).status, "failed")
      const unhandled = yield* processes.launch("missing-binary")
      assert.strictEqual((yield* unhandled.wait()).status, "failed")
      assert.strictEqual((yield* unhandled.waitForLog("no handler")).data, "no handler for: missing-binary")

      const server = yield* processes.launch("serve")
      assert.strictEqual((yield* server.waitForLog(/listening on \d+/)).data, "listening on 8080")
      yield* processes.waitForPort(8080)
      assert.isTrue((yield* server.info).isRunning)
      yield* server.kill()
      assert.strictEqual((yield* server.info).status, "killed")
      const again = yield* Effect.flip(server.kill())
      assert.deepStrictEqual(again._tag === "ProcessNotRunning" && again.status, "killed")
      assert.strictEqual((yield* Effect.flip(processes.get("nope")))._tag, "ProcessNotFound")
      assert.strictEqual((yield* Effect.flip(processes.waitForPort(0)))._tag, "InvalidArgument")

      yield* processes.launch("sleep")
      yield* processes.launch("sleep")
      assert.strictEqual(yield* processes.killAll, 2)
      const statuses = (yield* processes.list).map((p) => p.status).sort()
      assert.deepStrictEqual(statuses, ["completed", "failed", "failed", "killed", "killed", "killed"])
    }).pipe(Effect.provide(TestLayer)))

  it.scoped("launchScoped kills on scope close; wait honours its timeout", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const id = yield* Effect.scoped(Effect.map(processes.launchScoped("sleep"), (p) => p.id))
      assert.strictEqual((yield* processes.get(id)).status, "killed")
      const sleeper = yield* processes.launch("sleep")
      const fiber = yield* Effect.fork(Effect.flip(sleeper.wait({ timeout: "1 second" })))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "Timeout")
    }).pipe(Effect.provide(TestLayer)))

  it.effect("exposePort validates the port and returns a deterministic URL", () =>
    Effect.gen(function*() {
      const sandbox = yield* Sandbox.Sandbox
      const memory = yield* Testing.MemorySandbox
      for (const port of [0, 65536, 1.5]) {
        assert.strictEqual((yield* Effect.flip(sandbox.exposePort(port)))._tag, "InvalidArgument")
      }
      const exposed = yield* sandbox.exposePort(3000)
      assert.deepStrictEqual([exposed.port, exposed.url], [3000, "https://memory-sandbox.sandbox.test/"])
      assert.deepStrictEqual(Option.map(yield* memory.exposedPort, (p) => p.port), Option.some(3000))
      yield* sandbox.unexposePort
      assert.isTrue(Option.isNone(yield* memory.exposedPort))
      assert.deepStrictEqual(yield* sandbox.domain, Option.some("memory-sandbox.sandbox.test"))
      assert.isTrue(yield* sandbox.isHealthy)
      yield* sandbox.delete
      assert.isFalse(yield* sandbox.isHealthy)
      assert.isTrue(yield* memory.deleted)
    }).pipe(Effect.provide(TestLayer)))

  it.effect("state inspection: files, directories, commands, processes", () =>
    Effect.gen(function*() {
      const fs = yield* Filesystem.Filesystem
      const exec = yield* Executor.Executor
      const memory = yield* Testing.MemorySandbox
      yield* fs.mkdir("/work/out", { recursive: true })
      yield* fs.writeFile("/work/out/a.bin", new Uint8Array([0, 255]))
      yield* exec.run("whoami", { cwd: "/work" })
      yield* Effect.ignore(exec.run("unknown"))
      assert.deepStrictEqual(Array.from((yield* memory.files).keys()), ["/app/config.json", "/work/out/a.bin"])
      assert.deepStrictEqual(Array.from((yield* memory.files).get("/work/out/a.bin")!), [0, 255])
      assert.deepStrictEqual(yield* memory.fileText("/app/config.json"), Option.some("{\"a\":1}"))
      assert.isTrue(Option.isNone(yield* memory.fileText("/app")))
      assert.deepStrictEqual(yield* memory.directories, ["/", "/app", "/tmp", "/work", "/work/out"])
      assert.deepStrictEqual((yield* memory.commands).map((c) => [c.command, c.cwd, c.via]), [
        ["whoami", "/work", "run"],
        ["unknown", undefined, "run"]
      ])
      assert.deepStrictEqual((yield* memory.commands)[0]!.env, { FOO: "bar" })
    }).pipe(Effect.provide(TestLayer)))

  it.effect("filesystem edge cases follow the real service", () =>
    Effect.gen(function*() {
      const fs = yield* Filesystem.Filesystem
      yield* fs.writeFile("/d/x", "1").pipe(Effect.flip, Effect.map((e) => assert.strictEqual(e._tag, "FileNotFound")))
      yield* fs.writeFile("/tmp/f", "f")
      const parentIsFile = yield* Effect.flip(fs.writeFile("/tmp/f/x", "1"))
      assert.deepStrictEqual(parentIsFile._tag === "FilesystemError" && parentIsFile.reason, "NotADirectory")
      yield* fs.appendFile("/tmp/f", new Uint8Array([0xff]))
      assert.strictEqual(yield* fs.readFileString("/tmp/f"), "f\uFFFD")
      yield* fs.writeStream("/tmp/s", Stream.make(new Uint8Array([1]), new Uint8Array([2, 3])))
      assert.deepStrictEqual(Array.from(yield* fs.readFile("/tmp/s")), [1, 2, 3])
      const entries = yield* fs.listDetailed("/tmp")
      assert.deepStrictEqual(entries.map((e) => [e.name, e.type, e.size, e.path]), [
        ["f", "file", 2, "/tmp/f"],
        ["s", "file", 3, "/tmp/s"]
      ])
      assert.strictEqual((yield* fs.stat("/tmp")).type, "directory")
      yield* fs.mkdir("/tmp/full/sub", { recursive: true })
      yield* fs.mkdir("/tmp/empty")
      const notEmpty = yield* Effect.flip(fs.move("/tmp/empty", "/tmp/full", { overwrite: true }))
      assert.deepStrictEqual(notEmpty._tag === "FilesystemError" && notEmpty.reason, "DirectoryNotEmpty")
      const intoSelf = yield* Effect.flip(fs.move("/tmp/full", "/tmp/full/sub/x"))
      assert.deepStrictEqual(intoSelf._tag === "FilesystemError" && intoSelf.reason, "InvalidPath")
      yield* fs.move("/tmp/full", "/tmp/moved")
      assert.deepStrictEqual(yield* fs.list("/tmp/moved"), ["sub"])
      assert.deepStrictEqual(yield* fs.list("/tmp"), ["empty", "f", "moved", "s"])
      yield* fs.writeFiles([{ path: "/tmp/w1", content: "a" }, { path: "/tmp/w2", content: new Uint8Array([9]) }])
      assert.strictEqual(yield* fs.readFileString("/tmp/w1"), "a")
      const handle = yield* fs.open("/tmp/h")
      yield* handle.write("x")
      yield* handle.append("y")
      assert.strictEqual(yield* handle.readString, "xy")
      assert.deepStrictEqual(yield* fs.list("/tmp/../tmp/./moved/"), ["sub"])
    }).pipe(Effect.provide(TestLayer)))

  it.effect("Layer.mock gives a partial Executor whose other methods die", () =>
    Effect.gen(function*() {
      const exec = yield* Executor.Executor
      const result = yield* exec.exec("anything")
      assert.strictEqual(result.stdout, "mocked\n")
      const exit = yield* Effect.exit(exec.run("anything"))
      assert.isTrue(exit._tag === "Failure" && exit.cause._tag === "Die")
    }).pipe(
      Effect.provide(Layer.mock(Executor.Executor, {
        exec: (command) =>
          Effect.succeed(
            new CommandResult({
              command: String(command),
              stdout: "mocked\n",
              stderr: "",
              exitCode: 0,
              status: "finished",
              durationMillis: 0
            })
          )
      }))
    ))
})

describe("Testing.layerControlPlaneMemory", () => {
  it.effect("Sandbox.make creates a memory sandbox per call and deletes it with its scope", () =>
    Effect.gen(function*() {
      const memory = yield* Testing.MemoryControlPlane
      const ids = yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* Sandbox.make({ env: { WHO: "a" }, configFiles: { "/etc/app.conf": "conf" } })
        const b = yield* Sandbox.make({ name: "b", enableTcpProxy: true })
        assert.notStrictEqual(a.info.id, b.info.id)
        assert.strictEqual((yield* a.executor.run("who")).stdout, "a\n")
        assert.strictEqual((yield* b.executor.run("who")).stdout, "\n")
        assert.strictEqual(yield* a.filesystem.readFileString("/etc/app.conf"), "conf")
        assert.isFalse(yield* b.filesystem.exists("/etc/app.conf"))
        yield* a.filesystem.writeFile("/tmp/only-a", "x")
        assert.isFalse(yield* b.filesystem.exists("/tmp/only-a"))
        const exposed = yield* a.exposePort(8080)
        assert.strictEqual(exposed.url, `https://${a.info.id}.sandbox.test/`)
        assert.deepStrictEqual(
          Option.map(yield* (yield* memory.sandbox(a.info.id)).exposedPort, (p) => p.port),
          Option.some(8080)
        )
        assert.isTrue(Option.isNone(yield* a.tcpProxy))
        assert.isTrue(Option.isSome(yield* b.tcpProxy))
        assert.isTrue(yield* a.isHealthy)
        assert.deepStrictEqual(yield* memory.live, [a.info.id, b.info.id])
        return [a.info.id, b.info.id]
      }))
      assert.deepStrictEqual(yield* memory.created, ids)
      assert.deepStrictEqual((yield* memory.deleted).slice().sort(), ids.slice().sort())
      assert.deepStrictEqual(yield* memory.live, [])
      assert.isTrue(yield* (yield* memory.sandbox(ids[0]!)).deleted)
      const controlPlane = yield* ControlPlane.ControlPlane
      assert.strictEqual((yield* Effect.flip(controlPlane.get(ids[0]!)))._tag, "SandboxNotFound")
    }).pipe(
      Effect.provide(Testing.layerControlPlaneMemory({
        commands: [{ match: "who", reply: ({ env }) => ({ stdout: `${env.WHO ?? ""}\n` }) }]
      }))
    ))

  it.effect("Sandbox.layer provides the four services over a memory sandbox, deleted when the layer closes", () =>
    Effect.gen(function*() {
      const memory = yield* Testing.MemoryControlPlane
      const id = yield* Effect.gen(function*() {
        const sandbox = yield* Sandbox.Sandbox
        const fs = yield* Filesystem.Filesystem
        const exec = yield* Executor.Executor
        yield* fs.writeFile("/tmp/x", "1")
        assert.strictEqual((yield* Effect.flip(exec.run("who")))._tag, "CommandError")
        const fromId = yield* Sandbox.fromId(sandbox.info.id)
        assert.strictEqual(yield* fromId.filesystem.readFileString("/tmp/x"), "1")
        assert.isFalse(fromId.info.ownsApp)
        return sandbox.info.id
      }).pipe(Effect.provide(Sandbox.layer({ name: "in-layer" })))
      assert.deepStrictEqual(yield* memory.deleted, [id])
    }).pipe(Effect.provide(Testing.layerControlPlaneMemory())))

  it.effect("the ControlPlane it provides is the plain provider interface, also when wrapped", () =>
    Effect.gen(function*() {
      const controlPlane = yield* ControlPlane.ControlPlane
      assert.isFalse("services" in controlPlane)
      // Re-provided (here as a copy), it still hands out the memory sandboxes' own services: file
      // operations run no command (services built over the executor client would run some).
      yield* Effect.scoped(Effect.gen(function*() {
        const sandbox = yield* Sandbox.make().pipe(
          Effect.provideService(ControlPlane.ControlPlane, { ...controlPlane })
        )
        assert.deepStrictEqual(
          (yield* sandbox.filesystem.listDetailed("/")).map((entry) => entry.name).sort(),
          ["tmp"]
        )
        assert.deepStrictEqual(
          yield* (yield* (yield* Testing.MemoryControlPlane).sandbox(sandbox.info.id)).commands,
          []
        )
      }))
    }).pipe(Effect.provide(Testing.layerControlPlaneMemory())))
})
