import { ExecutorClient } from "@effect-koyeb/core/ExecutorClient"
import type { ExecutorClientShape, RunStreamEvent } from "@effect-koyeb/core/ExecutorClient"
import * as Processes from "@effect-koyeb/core/Processes"
import type { ExecutorFailure, InvalidArgument } from "@effect-koyeb/core/SandboxError"
import type { ProcessLogLine } from "@effect-koyeb/core/SandboxSchema"
import * as ShellCommand from "@effect-koyeb/core/ShellCommand"
import { assert, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type * as Take from "effect/Take"
import * as Net from "node:net"
import * as TestExecutor from "./utils/TestExecutor.js"

const ProcessesLive = Processes.layer.pipe(Layer.provideMerge(TestExecutor.layerClient))

/** The argument lists of the processes of the sandbox whose command line starts with `prefix`. */
const processesLike = (prefix: string) =>
  Effect.gen(function*() {
    const client = yield* ExecutorClient
    const reply = yield* client.run({ cmd: "ps -eo args" })
    assert.strictEqual(reply.code, 0, reply.stderr)
    return reply.stdout.split("\n").filter((args) => args.startsWith(prefix))
  })

/** Polls `processesLike(prefix)` until `done` holds for its result. */
const pollProcesses = (prefix: string, done: (found: ReadonlyArray<string>) => boolean) =>
  processesLike(prefix).pipe(
    Effect.repeat({
      schedule: Schedule.zipLeft(Schedule.identity<ReadonlyArray<string>>(), Schedule.spaced("50 millis")),
      until: done
    }),
    Effect.timeout("20 seconds")
  )

/** Waits until `count` processes whose command line starts with `prefix` run in the sandbox. */
const awaitProcesses = (prefix: string, count: number) => pollProcesses(prefix, (found) => found.length >= count)

/**
 * The executor client, except that a `/run_streaming` connection stays open after its consumer
 * stops (drained in the background until the command ends): the server never sees a disconnect,
 * as the stock executor does not while a command is silent, so only the SDK can stop the command.
 */
const KeepConnections = Layer.effect(
  ExecutorClient,
  Effect.map(ExecutorClient, (client): ExecutorClientShape => ({
    ...client,
    runStreaming: (request) =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const queue = yield* Queue.unbounded<Take.Take<RunStreamEvent, InvalidArgument | ExecutorFailure>>()
        yield* Effect.forkDaemon(Stream.runIntoQueue(client.runStreaming(request), queue))
        return Stream.flattenTake(Stream.fromQueue(queue))
      }))
  }))
)

const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

const split = (lines: Chunk.Chunk<ProcessLogLine>) => ({
  stdout: Chunk.toReadonlyArray(lines).filter((line) => line.stream === "stdout").map((line) => line.data),
  stderr: Chunk.toReadonlyArray(lines).filter((line) => line.stream === "stderr").map((line) => line.data)
})

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i))

layer(ProcessesLive, { excludeTestServices: true, timeout: 60_000 })("Processes", (it) => {
  it.effect("launch, get and list show the caller's command; kill ends it", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const proc = yield* processes.launch("sleep 4101")
      assert.strictEqual(proc.command, "sleep 4101")
      assert.isTrue(proc.pid > 0)
      const info = yield* processes.get(proc.id)
      assert.strictEqual(info.status, "running")
      assert.strictEqual(info.command, "sleep 4101")
      assert.strictEqual(info.pid, proc.pid)
      const listed = (yield* processes.list).find((p) => p.id === proc.id)
      assert.strictEqual(listed?.command, "sleep 4101")

      const templated = yield* processes.launch(ShellCommand.sh`sleep ${4102}`)
      assert.strictEqual((yield* templated.info).command, "sleep '4102'")
      const argv = yield* processes.launch(["sleep", "4102.5"])
      assert.strictEqual((yield* argv.info).command, "'sleep' '4102.5'")

      yield* proc.kill()
      yield* templated.kill()
      yield* argv.kill()
      assert.strictEqual((yield* processes.get(proc.id)).status, "killed")
      assert.deepStrictEqual(yield* processesLike("sleep 410"), [])
    }))

  it.effect("launch passes cwd and env and rejects an empty command", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const proc = yield* processes.launch("echo \"$PWD $EK_GREETING\"", { cwd: "/tmp", env: { EK_GREETING: "hi" } })
      const lines = yield* Stream.runCollect(proc.logs)
      assert.deepStrictEqual(split(lines).stdout, ["/tmp hi"])
      const empty = yield* Effect.flip(processes.launch("  "))
      assert.strictEqual(empty._tag, "InvalidArgument")
      const badCwd = yield* Effect.flip(processes.launch("true", { cwd: "/no/such/dir" }))
      assert.strictEqual(badCwd._tag, "InvalidArgument")
    }))

  it.effect("kill stops the whole process tree", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const proc = yield* processes.launch("sleep 4103 & sleep 4104 & (sleep 4105 & wait) ; echo never")
      yield* awaitProcesses("sleep 410", 3)
      yield* proc.kill()
      assert.deepStrictEqual(yield* processesLike("sleep 410"), [])
      assert.strictEqual((yield* proc.info).status, "killed")

      // descendants that ignore SIGTERM get SIGKILL after the grace period
      const stubborn = yield* processes.launch("trap '' TERM; sleep 4106 & sleep 4107; echo never")
      yield* awaitProcesses("sleep 410", 2)
      yield* stubborn.kill({ grace: "300 millis" })
      assert.deepStrictEqual(yield* processesLike("sleep 410"), [])
      assert.strictEqual((yield* stubborn.info).status, "killed")
      const logs = yield* Stream.runCollect(stubborn.logs)
      assert.deepStrictEqual(split(logs).stdout, [])
    }))

  it.effect("kill of an unknown id fails with ProcessNotFound, of a finished one with ProcessNotRunning", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const unknown = yield* Effect.flip(processes.kill("00000000-0000-4000-8000-000000000000"))
      assert.strictEqual(unknown._tag, "ProcessNotFound")
      const missing = yield* Effect.flip(processes.get("no-such-id"))
      assert.strictEqual(missing._tag, "ProcessNotFound")

      const proc = yield* processes.launch("exit 0")
      assert.strictEqual((yield* proc.wait({ timeout: "20 seconds" })).status, "completed")
      const finished = yield* Effect.flip(proc.kill())
      assert.strictEqual(finished._tag, "ProcessNotRunning")
      if (finished._tag === "ProcessNotRunning") assert.strictEqual(finished.status, "completed")
    }))

  it.effect("killAll kills every running process and counts them", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const client = yield* ExecutorClient
      const launched = yield* Effect.forEach(
        ["4108", "4109", "4110 & sleep 4111"],
        (s) => processes.launch(`sleep ${s}`)
      )
      const foreign = yield* client.startProcess({ cmd: "sleep 4112" })
      yield* awaitProcesses("sleep 41", 5)
      const count = yield* processes.killAll
      assert.isTrue(count >= 4, `killed ${count}`)
      for (const proc of launched) assert.strictEqual((yield* proc.info).status, "killed")
      assert.strictEqual((yield* processes.get(foreign.id)).status, "killed")
      assert.deepStrictEqual(yield* processesLike("sleep 41"), [])
      assert.strictEqual(yield* processes.killAll, 0)
    }))

  it.effect("logs of a short process are complete, read live or after the end (10 runs)", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      for (let run = 0; run < 10; run++) {
        const proc = yield* processes.launch("seq 1 300; echo oops >&2; printf 'no newline'")
        const live = split(yield* Stream.runCollect(proc.logs))
        assert.deepStrictEqual(live.stdout, [...range(1, 300), "no newline"])
        assert.deepStrictEqual(live.stderr, ["oops"])
        assert.strictEqual((yield* proc.wait({ timeout: "20 seconds" })).status, "completed")
        const after = split(yield* Stream.runCollect(processes.logs(proc.id)))
        assert.deepStrictEqual(after, live)
      }
    }))

  it.effect("logs follow a live process as it writes", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const client = yield* ExecutorClient
      const gate = `/tmp/ek-processes-gate-${Math.random().toString(36).slice(2)}`
      const proc = yield* processes.launch(`echo first; while [ ! -e ${gate} ]; do sleep 0.05; done; echo second >&2`)
      const lines = yield* proc.logs.pipe(
        Stream.tap((line) =>
          line.data === "first"
            ? Effect.gen(function*() {
              // the first line arrives while the process still waits for the gate
              assert.strictEqual((yield* proc.info).status, "running")
              yield* client.writeFile(gate, "")
            })
            : Effect.void
        ),
        Stream.runCollect
      )
      assert.deepStrictEqual(Chunk.toReadonlyArray(lines).map((l) => [l.stream, l.data]), [
        ["stdout", "first"],
        ["stderr", "second"]
      ])
      assert.isFalse((yield* proc.wait({ timeout: "20 seconds" })).isRunning)
      yield* client.deleteFile(gate)
    }))

  it.effect("logs of a finished process with 30 000 lines per stream are complete and the executor survives", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const client = yield* ExecutorClient
      const proc = yield* processes.launch("seq 1 30000; seq 30001 60000 >&2")
      assert.strictEqual((yield* proc.wait({ timeout: "30 seconds" })).status, "completed")
      const { stderr, stdout } = split(yield* Stream.runCollect(proc.logs))
      assert.deepStrictEqual(stdout, range(1, 30000))
      assert.deepStrictEqual(stderr, range(30001, 60000))
      // the executor is still the same one: it still knows the process
      assert.strictEqual((yield* processes.get(proc.id)).status, "completed")
      assert.strictEqual((yield* client.health).status, "ok")
    }))

  it.effect("stopping a logs stream early stops its readers in the sandbox", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.make.pipe(Effect.provide(KeepConnections))
      const proc = yield* processes.launch("echo one; echo two; sleep 4113")
      const first = yield* proc.logs.pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(Chunk.toReadonlyArray(first).map((line) => line.data), ["one"])
      // only this process's readers: another run's leftovers must not make this test fail
      const readers = yield* pollProcesses(`tail -c +1 -F -s 0.2 --pid=${proc.pid} `, (found) => found.length === 0)
      assert.deepStrictEqual(readers, [])
      assert.strictEqual((yield* proc.info).status, "running")
      yield* proc.kill()
    }))

  it.effect("logs of a process not started by launch fail with InvalidArgument; kill still works", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const client = yield* ExecutorClient
      const started = yield* client.startProcess({ cmd: "sleep 4115" })
      assert.strictEqual((yield* processes.get(started.id)).command, "sleep 4115")
      const error = yield* Effect.flip(Stream.runDrain(processes.logs(started.id)))
      assert.strictEqual(error._tag, "InvalidArgument")
      const unknown = yield* Effect.flip(Stream.runDrain(processes.logs("no-such-id")))
      assert.strictEqual(unknown._tag, "ProcessNotFound")
      yield* processes.kill(started.id)
      assert.strictEqual((yield* processes.get(started.id)).status, "killed")
    }))

  it.effect("wait returns the final info, or fails with Timeout", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const failing = yield* processes.launch("sleep 0.2; exit 3")
      const final = yield* processes.wait(failing.id, { timeout: "20 seconds" })
      assert.strictEqual(final.status, "failed")
      assert.strictEqual(final.command, "sleep 0.2; exit 3")
      const sleeper = yield* processes.launch("sleep 4116")
      const timeout = yield* Effect.flip(sleeper.wait({ timeout: "300 millis" }))
      assert.strictEqual(timeout._tag, "Timeout")
      yield* sleeper.kill()
      assert.strictEqual((yield* sleeper.wait()).status, "killed")
    }))

  it.effect("waitForLog finds the first matching line, or fails if the process ends or time runs out", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const server = yield* processes.launch("echo starting; sleep 0.2; echo 'ready on 4242' >&2; sleep 4117")
      const line = yield* server.waitForLog(/ready on \d+/, { timeout: "20 seconds" })
      assert.strictEqual(line.data, "ready on 4242")
      assert.strictEqual(line.stream, "stderr")
      assert.strictEqual((yield* processes.waitForLog(server.id, "starting")).data, "starting")
      yield* server.kill()

      const quitter = yield* processes.launch("echo nope; exit 1")
      const ended = yield* Effect.flip(quitter.waitForLog("ready", { timeout: "20 seconds" }))
      assert.strictEqual(ended._tag, "ProcessNotRunning")
      if (ended._tag === "ProcessNotRunning") assert.strictEqual(ended.status, "failed")

      const silent = yield* processes.launch("sleep 4118")
      const timeout = yield* Effect.flip(silent.waitForLog("ready", { timeout: "300 millis" }))
      assert.strictEqual(timeout._tag, "Timeout")
      yield* silent.kill()
    }))

  it.effect("waitForPort returns once a server listens on the port", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const client = yield* ExecutorClient
      const port = yield* freePort
      const idle = yield* Effect.flip(processes.waitForPort(port, { timeout: "300 millis" }))
      assert.strictEqual(idle._tag, "Timeout")
      const invalid = yield* Effect.flip(processes.waitForPort(70000))
      assert.strictEqual(invalid._tag, "InvalidArgument")

      yield* Effect.scoped(Effect.gen(function*() {
        yield* processes.launchScoped(
          `sleep 0.3; exec node -e "require('http').createServer((q, s) => s.end('up')).listen(${port}, '127.0.0.1')"`
        )
        yield* processes.waitForPort(port, { timeout: "30 seconds" })
        const reply = yield* client.run({
          cmd: `node -e "fetch('http://127.0.0.1:${port}/').then((r) => r.text()).then(console.log)"`
        })
        assert.strictEqual(reply.stdout.trim(), "up")
      }))
      // the scope killed the server
      const closed = yield* Effect.flip(processes.waitForPort(port, { timeout: "300 millis" }))
      assert.strictEqual(closed._tag, "Timeout")

      const python = yield* processes.launch(["python3", "-m", "http.server", "--bind", "::1", String(port)])
      yield* processes.waitForPort(port, { timeout: "30 seconds" })
      yield* python.kill()
    }))

  it.effect("launchScoped kills the process tree when the scope closes", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const proc = yield* Effect.scoped(Effect.gen(function*() {
        const proc = yield* processes.launchScoped("sleep 4119 & sleep 4120")
        yield* awaitProcesses("sleep 41", 2)
        return proc
      }))
      assert.strictEqual((yield* proc.info).status, "killed")
      assert.deepStrictEqual(yield* processesLike("sleep 41"), [])

      // a process that ended before the scope closed is fine
      const done = yield* Effect.scoped(Effect.gen(function*() {
        const proc = yield* processes.launchScoped("exit 0")
        yield* proc.wait()
        return proc
      }))
      assert.strictEqual((yield* done.info).status, "completed")
    }))

  it.effect("launchScoped kills the process tree when its fiber is interrupted", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const launched = yield* Deferred.make<Processes.ProcessHandle>()
      const fiber = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const proc = yield* processes.launchScoped("sleep 4121 & sleep 4122")
        yield* Deferred.succeed(launched, proc)
        return yield* Effect.never
      })))
      const proc = yield* Deferred.await(launched)
      yield* awaitProcesses("sleep 412", 2)
      const exit = yield* Fiber.interrupt(fiber)
      assert.isTrue(Exit.isInterrupted(exit))
      assert.strictEqual((yield* proc.info).status, "killed")
      assert.deepStrictEqual(yield* processesLike("sleep 412"), [])
    }))
})
