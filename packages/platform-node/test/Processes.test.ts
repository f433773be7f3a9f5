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
import * as Crypto from "node:crypto"
import * as Net from "node:net"
import * as TestExecutor from "./utils/TestExecutor.js"

const ProcessesLive = Processes.layer.pipe(Layer.provideMerge(TestExecutor.layerClient))

/**
 * A fresh 9-digit number for `sleep <n>`: a test finds its own sleeps by their exact argument,
 * never another test's (or an earlier run's, left on a shared executor).
 */
const tokens = (count: number): Array<string> =>
  Array.from({ length: count }, () => String(100_000_000 + Crypto.randomInt(800_000_000)))

/** The argument lists of the processes of the sandbox that are `sleep <token>` for one of `tokens`. */
const sleepsOf = (tokens: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const client = yield* ExecutorClient
    const reply = yield* client.run({ cmd: "ps -eo args" })
    assert.strictEqual(reply.code, 0, reply.stderr)
    const wanted = new Set(tokens.map((t) => `sleep ${t}`))
    return reply.stdout.split("\n").filter((args) => wanted.has(args.trim()))
  })

/** Polls `sleepsOf(tokens)` until `done` holds for its result. */
const pollSleeps = (tokens: ReadonlyArray<string>, done: (found: ReadonlyArray<string>) => boolean) =>
  sleepsOf(tokens).pipe(
    Effect.repeat({
      schedule: Schedule.zipLeft(Schedule.identity<ReadonlyArray<string>>(), Schedule.spaced("50 millis")),
      until: done
    }),
    Effect.timeout("20 seconds")
  )

/** Waits until a `sleep <token>` runs for each of `tokens`. */
const awaitSleeps = (tokens: ReadonlyArray<string>) => pollSleeps(tokens, (found) => found.length >= tokens.length)

/** Processes with `ps -eo args` lines starting with `prefix` (for readers, whose lines hold a pid). */
const pollProcesses = (prefix: string, done: (found: ReadonlyArray<string>) => boolean) =>
  Effect.gen(function*() {
    const client = yield* ExecutorClient
    const reply = yield* client.run({ cmd: "ps -eo args" })
    assert.strictEqual(reply.code, 0, reply.stderr)
    return reply.stdout.split("\n").filter((args) => args.startsWith(prefix))
  }).pipe(
    Effect.repeat({
      schedule: Schedule.zipLeft(Schedule.identity<ReadonlyArray<string>>(), Schedule.spaced("50 millis")),
      until: done
    }),
    Effect.timeout("20 seconds")
  )

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
      const [a, b, c] = tokens(3)
      const proc = yield* processes.launch(`sleep ${a}`)
      assert.strictEqual(proc.command, `sleep ${a}`)
      assert.isTrue(proc.pid > 0)
      const info = yield* processes.get(proc.id)
      assert.strictEqual(info.status, "running")
      assert.strictEqual(info.command, `sleep ${a}`)
      assert.strictEqual(info.pid, proc.pid)
      const listed = (yield* processes.list).find((p) => p.id === proc.id)
      assert.strictEqual(listed?.command, `sleep ${a}`)

      const templated = yield* processes.launch(ShellCommand.sh`sleep ${b}`)
      assert.strictEqual((yield* templated.info).command, `sleep '${b}'`)
      const argv = yield* processes.launch(["sleep", c!])
      assert.strictEqual((yield* argv.info).command, `'sleep' '${c}'`)

      yield* proc.kill()
      yield* templated.kill()
      yield* argv.kill()
      assert.strictEqual((yield* processes.get(proc.id)).status, "killed")
      assert.deepStrictEqual(yield* sleepsOf([a!, b!, c!]), [])
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
      const [a, b, c, d, e] = tokens(5)
      const proc = yield* processes.launch(`sleep ${a} & sleep ${b} & (sleep ${c} & wait) ; echo never`)
      yield* awaitSleeps([a!, b!, c!])
      yield* proc.kill()
      assert.deepStrictEqual(yield* sleepsOf([a!, b!, c!]), [])
      assert.strictEqual((yield* proc.info).status, "killed")

      // descendants that ignore SIGTERM get SIGKILL after the grace period
      const stubborn = yield* processes.launch(`trap '' TERM; sleep ${d} & sleep ${e}; echo never`)
      yield* awaitSleeps([d!, e!])
      yield* stubborn.kill({ grace: "300 millis" })
      assert.deepStrictEqual(yield* sleepsOf([d!, e!]), [])
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
      const client = yield* ExecutorClient
      // killAll over a view of the executor that lists this test's processes only: the same code
      // path, without stopping what other tests (or other files, on a shared executor) run
      const mine = new Set<string>()
      const processes = yield* Processes.make.pipe(
        Effect.provideService(ExecutorClient, {
          ...client,
          listProcesses: Effect.map(client.listProcesses, (all) => all.filter((info) => mine.has(info.id)))
        })
      )
      const [a, b, c, d, e] = tokens(5)
      const launched = yield* Effect.forEach([a, b, `${c} & sleep ${d}`], (s) => processes.launch(`sleep ${s}`))
      const foreign = yield* client.startProcess({ cmd: `sleep ${e}` })
      const finished = yield* processes.launch("exit 0")
      for (const id of [...launched.map((p) => p.id), foreign.id, finished.id]) mine.add(id)
      yield* finished.wait()
      yield* awaitSleeps([a!, b!, c!, d!, e!])
      assert.strictEqual(yield* processes.killAll, 4)
      for (const proc of launched) assert.strictEqual((yield* proc.info).status, "killed")
      assert.strictEqual((yield* processes.get(foreign.id)).status, "killed")
      assert.deepStrictEqual(yield* sleepsOf([a!, b!, c!, d!, e!]), [])
      assert.strictEqual(yield* processes.killAll, 0)
    }))

  it.effect("kill of a process not started by launch stops its descendants, on the stock path and ours", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient
      const direct = yield* Processes.Processes
      // as on Koyeb's executor: no process-group-kill, so the SDK stops the tree through the pid
      const stockPath = yield* Processes.make.pipe(
        Effect.provideService(ExecutorClient, TestExecutor.withoutCapabilities(client))
      )
      for (const processes of [stockPath, direct]) {
        const [a, b, c] = tokens(3)
        // a child, a child that left the group, and a grandchild that ignores SIGTERM
        const started = yield* client.startProcess({
          cmd: `sleep ${a} & setsid sleep ${b} & sh -c "trap '' TERM; sleep ${c}" & wait`
        })
        yield* awaitSleeps([a!, b!, c!])
        yield* processes.kill(started.id, { grace: "300 millis" })
        assert.strictEqual((yield* processes.get(started.id)).status, "killed")
        assert.deepStrictEqual(yield* pollSleeps([a!, b!, c!], (found) => found.length === 0), [])
      }
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
      const [a] = tokens(1)
      const proc = yield* processes.launch(`echo one; echo two; sleep ${a}`)
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
      const [a] = tokens(1)
      const started = yield* client.startProcess({ cmd: `sleep ${a}` })
      assert.strictEqual((yield* processes.get(started.id)).command, `sleep ${a}`)
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
      const sleeper = yield* processes.launch(`sleep ${tokens(1)[0]}`)
      const timeout = yield* Effect.flip(sleeper.wait({ timeout: "300 millis" }))
      assert.strictEqual(timeout._tag, "Timeout")
      yield* sleeper.kill()
      assert.strictEqual((yield* sleeper.wait()).status, "killed")
    }))

  it.effect("waitForLog finds the first matching line, or fails if the process ends or time runs out", () =>
    Effect.gen(function*() {
      const processes = yield* Processes.Processes
      const server = yield* processes.launch(
        `echo starting; sleep 0.2; echo 'ready on 4242' >&2; sleep ${tokens(1)[0]}`
      )
      const line = yield* server.waitForLog(/ready on \d+/, { timeout: "20 seconds" })
      assert.strictEqual(line.data, "ready on 4242")
      assert.strictEqual(line.stream, "stderr")
      assert.strictEqual((yield* processes.waitForLog(server.id, "starting")).data, "starting")
      yield* server.kill()

      const quitter = yield* processes.launch("echo nope; exit 1")
      const ended = yield* Effect.flip(quitter.waitForLog("ready", { timeout: "20 seconds" }))
      assert.strictEqual(ended._tag, "ProcessNotRunning")
      if (ended._tag === "ProcessNotRunning") assert.strictEqual(ended.status, "failed")

      const silent = yield* processes.launch(`sleep ${tokens(1)[0]}`)
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
      const [a, b] = tokens(2)
      const proc = yield* Effect.scoped(Effect.gen(function*() {
        const proc = yield* processes.launchScoped(`sleep ${a} & sleep ${b}`)
        yield* awaitSleeps([a!, b!])
        return proc
      }))
      assert.strictEqual((yield* proc.info).status, "killed")
      assert.deepStrictEqual(yield* sleepsOf([a!, b!]), [])

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
      const [a, b] = tokens(2)
      const launched = yield* Deferred.make<Processes.ProcessHandle>()
      const fiber = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const proc = yield* processes.launchScoped(`sleep ${a} & sleep ${b}`)
        yield* Deferred.succeed(launched, proc)
        return yield* Effect.never
      })))
      const proc = yield* Deferred.await(launched)
      yield* awaitSleeps([a!, b!])
      const exit = yield* Fiber.interrupt(fiber)
      assert.isTrue(Exit.isInterrupted(exit))
      assert.strictEqual((yield* proc.info).status, "killed")
      assert.deepStrictEqual(yield* sleepsOf([a!, b!]), [])
    }))
})
