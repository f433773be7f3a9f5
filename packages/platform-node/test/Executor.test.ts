import * as Executor from "@effect-koyeb/core/Executor"
import { ExecutorClient } from "@effect-koyeb/core/ExecutorClient"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import type { ExecEvent, OutputChunk } from "@effect-koyeb/core/SandboxSchema"
import * as ShellCommand from "@effect-koyeb/core/ShellCommand"
import { assert, describe, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as fc from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Mailbox from "effect/Mailbox"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as TestExecutor from "./utils/TestExecutor.js"

/**
 * Keeps every `/run_streaming` connection open after its consumer stops (drained in the background
 * until the command ends), so the server never sees a disconnect and only the SDK's own group kill
 * can stop an interrupted command. Stricter than the stock executor, which notices a disconnect at
 * the command's next write and then kills only the shell.
 */
const keepConnection = <A, E>(stream: Stream.Stream<A, E>): Stream.Stream<A, E> =>
  Stream.unwrap(Effect.gen(function*() {
    const mailbox = yield* Mailbox.make<A, E>()
    yield* stream.pipe(
      Stream.runForEachChunk((chunk) => mailbox.offerAll(chunk)),
      Mailbox.into(mailbox),
      Effect.forkDaemon
    )
    return Mailbox.toStream(mailbox)
  }))

/** Requests seen by a `Recording` client. */
interface Recorded {
  readonly cmds: Array<string>
  probes: number
}

/** Records the `cmd` of every `/run_streaming` request (`TestExecutor.layerClientCountingProbes` counts the probes). */
const Recording = (recorded: Recorded) =>
  Layer.effect(
    ExecutorClient,
    Effect.map(ExecutorClient, (client) => ({
      ...client,
      runStreaming: (request: Parameters<typeof client.runStreaming>[0]) => {
        recorded.cmds.push(request.cmd)
        return client.runStreaming(request)
      },
      runStreamingCollect: (request: Parameters<typeof client.runStreamingCollect>[0]) => {
        recorded.cmds.push(request.cmd)
        return client.runStreamingCollect(request)
      }
    }))
  )

// Hides the executor's capabilities too: a connection kept open must never be the way to stop a command.
const KeepConnections = Layer.effect(
  ExecutorClient,
  Effect.map(ExecutorClient, (client) => ({
    ...TestExecutor.withoutCapabilities(client),
    runStreaming: (request: Parameters<typeof client.runStreaming>[0]) => keepConnection(client.runStreaming(request))
  }))
)

const ExecutorLive = Executor.layer.pipe(Layer.provideMerge(TestExecutor.layerClient))
const ExecutorWrapped = Executor.layer.pipe(
  Layer.provide(TestExecutor.hideCapabilities),
  Layer.provideMerge(TestExecutor.layerClient)
)
const keptRecorded: Recorded = { cmds: [], probes: 0 }
const ExecutorKeepingConnections = Executor.layer.pipe(
  Layer.provide(Recording(keptRecorded).pipe(Layer.provide(KeepConnections))),
  Layer.provideMerge(TestExecutor.layerClient)
)
const directRecorded: Recorded = { cmds: [], probes: 0 }
const ExecutorRecording = Executor.layer.pipe(
  Layer.provide(Recording(directRecorded)),
  Layer.provideMerge(TestExecutor.layerClientCountingProbes(directRecorded))
)

const marker = "__effect_koyeb_"

/** A unique `sleep` duration (about 20 minutes) to find a command in `ps`; fixed width, so never a prefix of another. */
const unique = () => `1234.${String(Crypto.randomInt(1e9)).padStart(9, "0")}`

/** The `ps` lines of the sandbox that mention `tag`. */
const processes = (tag: string) =>
  Effect.flatMap(Executor.Executor, (executor) => executor.run("ps -eo pid,pgid,args")).pipe(
    Effect.map((result) => result.stdout.split("\n").filter((line) => line.includes(tag)))
  )

/** Polls `processes(tag)` every 100 ms until `done` holds or `attempts` ran out; returns the last lines. */
const pollProcesses = (tag: string, done: (lines: ReadonlyArray<string>) => boolean, attempts = 30) =>
  Effect.gen(function*() {
    let lines = yield* processes(tag)
    for (let i = 0; i < attempts && !done(lines); i++) {
      yield* Effect.sleep("100 millis")
      lines = yield* processes(tag)
    }
    return lines
  })

const awaitRunning = (tag: string) =>
  Effect.gen(function*() {
    const lines = yield* pollProcesses(tag, (lines) => lines.length > 0, 50)
    assert.isAbove(lines.length, 0, `no process with ${tag} started`)
  })

const awaitGone = (tag: string) =>
  Effect.gen(function*() {
    const lines = yield* pollProcesses(tag, (lines) => lines.length === 0)
    assert.deepStrictEqual(lines, [], `processes with ${tag} survived: ${JSON.stringify(lines)}`)
  })

const stdoutOf = (events: ReadonlyArray<ExecEvent>) =>
  events.flatMap((event) => event._tag === "OutputChunk" && event.stream === "stdout" ? [event.data] : [])

const stderrOf = (events: ReadonlyArray<ExecEvent>) =>
  events.flatMap((event) => event._tag === "OutputChunk" && event.stream === "stderr" ? [event.data] : [])

/** Strings a shell would love to interpret. */
const hostileStrings = [
  "",
  " ",
  "'",
  "\"",
  "''",
  "'\\''",
  "$HOME",
  "${HOME}",
  "$(id)",
  "`id`",
  "$((1+1))",
  "a\nb",
  "\n",
  "trailing\n",
  "\r\n",
  "-n",
  "-e",
  "--",
  "--help",
  "-",
  "  spaced  out  ",
  "*",
  "?",
  "[a-z]",
  "~",
  "!",
  ";",
  "&&",
  "|",
  "<>",
  "#",
  "\\",
  "\\n",
  "%s%d%%",
  "tab\there",
  "héllo 🌍 日本語",
  ...fc.sample(fc.string({ unit: "binary" }), { numRuns: 40, seed: 42 }),
  ...fc.sample(fc.string({ unit: "grapheme", maxLength: 50 }), { numRuns: 20, seed: 7 })
  // lone surrogates have no UTF-8 form and NUL cannot travel in argv
].filter((s) => !s.includes("\0") && Buffer.from(s, "utf8").toString("utf8") === s)

const base64OfArgs = (strings: ReadonlyArray<string>) =>
  Buffer.from(strings.map((s) => `${s}\0`).join(""), "utf8").toString("base64")

describe("Executor", () => {
  // Every case runs with each way of stopping commands: by the executor on disconnect (ours
  // advertises process-group-kill), and by the SDK's own kill request (capabilities hidden).
  for (
    const [name, live] of [
      ["against a real executor", ExecutorLive],
      ["against a real executor, commands wrapped (capabilities hidden)", ExecutorWrapped]
    ] as const
  ) {
    layer(live, { excludeTestServices: true })(name, (it) => {
      it.effect("run buffers stdout and stderr of a successful command", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const result = yield* executor.run("echo hello; echo world; echo oops >&2")
          assert.strictEqual(result.stdout, "hello\nworld\n")
          assert.strictEqual(result.stderr, "oops\n")
          assert.strictEqual(result.exitCode, 0)
          assert.strictEqual(result.status, "finished")
          assert.isTrue(result.success)
          assert.strictEqual(result.command, "echo hello; echo world; echo oops >&2")
          assert.isAtLeast(result.durationMillis, 0)
        }))

      it.effect("accepts argv arrays and sh templates", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const fromArgv = yield* executor.run(["printf", "%s|%s\n", "a b", "$HOME"])
          assert.strictEqual(fromArgv.stdout, "a b|$HOME\n")
          const name = "it's `me`"
          const fromTemplate = yield* executor.run(ShellCommand.sh`printf '%s\n' ${name} ${["x y", "z"]}`)
          assert.strictEqual(fromTemplate.stdout, "it's `me`\nx y\nz\n")
        }))

      it.effect("exec returns the result of a failing command", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const result = yield* executor.exec("echo out; echo err >&2; exit 3")
          assert.strictEqual(result.exitCode, 3)
          assert.strictEqual(result.status, "failed")
          assert.isFalse(result.success)
          assert.strictEqual(result.stdout, "out\n")
          assert.strictEqual(result.stderr, "err\n")
        }))

      it.effect("run fails with CommandError on a non-zero exit", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const error = yield* Effect.flip(executor.run("echo out; echo err >&2; exit 3"))
          assert.strictEqual(error._tag, "CommandError")
          if (error._tag !== "CommandError") return
          assert.strictEqual(error.exitCode, 3)
          assert.strictEqual(error.stdout, "out\n")
          assert.strictEqual(error.stderr, "err\n")
          assert.strictEqual(error.command, "echo out; echo err >&2; exit 3")
        }))

      it.effect("a command killed by a signal exits with -1", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const result = yield* executor.exec("echo before; kill -9 $$")
          assert.strictEqual(result.exitCode, -1)
          assert.strictEqual(result.stdout, "before\n")
          const error = yield* Effect.flip(executor.run("kill -TERM $$"))
          assert.strictEqual(error._tag, "CommandError")
          if (error._tag === "CommandError") assert.strictEqual(error.exitCode, -1)
        }))

      it.effect("stream emits tagged lines and fails with CommandError after them", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const ok = Chunk.toReadonlyArray(yield* Stream.runCollect(executor.stream("printf 'a\\nb\\n'; echo e >&2")))
          assert.deepStrictEqual(stdoutOf(ok), ["a", "b"])
          assert.deepStrictEqual(stderrOf(ok), ["e"])
          assert.isTrue(ok.every((chunk) => chunk._tag === "OutputChunk"))

          const seen: Array<OutputChunk> = []
          const error = yield* executor.stream("echo x; echo y >&2; exit 4").pipe(
            Stream.runForEach((chunk) => Effect.sync(() => seen.push(chunk))),
            Effect.flip
          )
          assert.deepStrictEqual(stdoutOf(seen), ["x"])
          assert.deepStrictEqual(stderrOf(seen), ["y"])
          assert.strictEqual(error._tag, "CommandError")
          if (error._tag !== "CommandError") return
          assert.strictEqual(error.exitCode, 4)
          assert.strictEqual(error.stdout, "x\n")
          assert.strictEqual(error.stderr, "y\n")
        }))

      it.effect("stream keeps only a bounded tail of the output for its CommandError", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const error = yield* Effect.flip(Stream.runDrain(executor.stream("seq 1 100000 >&2; seq 1 50000; exit 1")))
          assert.strictEqual(error._tag, "CommandError")
          if (error._tag !== "CommandError") return
          assert.isAtMost(error.stderr.length, 64 * 1024)
          assert.isAbove(error.stderr.length, 60 * 1024)
          assert.isTrue(error.stderr.endsWith("\n99999\n100000\n"))
          assert.isTrue(error.stdout.endsWith("\n49999\n50000\n"))
        }))

      it.effect("streamEvents ends with exactly one CommandExit and does not fail", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const events = Chunk.toReadonlyArray(
            yield* Stream.runCollect(executor.streamEvents("echo a; echo b >&2; echo c; exit 5"))
          )
          assert.deepStrictEqual(stdoutOf(events), ["a", "c"])
          assert.deepStrictEqual(stderrOf(events), ["b"])
          const exits = events.filter((event) => event._tag === "CommandExit")
          assert.strictEqual(exits.length, 1)
          const last = events[events.length - 1]!
          assert.strictEqual(last._tag, "CommandExit")
          if (last._tag === "CommandExit") {
            assert.strictEqual(last.exitCode, 5)
            assert.isAtLeast(last.durationMillis, 0)
          }
        }))

      it.effect("cwd and env apply to the command", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const dir = (yield* executor.run("mktemp -d")).stdout.trim()
          const inDir = yield* executor.run("pwd", { cwd: dir })
          assert.strictEqual(inDir.stdout, `${dir}\n`)
          const withEnv = yield* executor.run(`printf '%s|%s|%s' "$FOO" "$QUOTED" "$UNI"`, {
            env: { FOO: "bar baz", QUOTED: "it's \"$HOME\"", UNI: "日本 🌍" }
          })
          assert.strictEqual(withEnv.stdout, "bar baz|it's \"$HOME\"|日本 🌍\n")
          yield* executor.run(ShellCommand.sh`rmdir ${dir}`)
        }))

      it.effect("a bad cwd fails with InvalidArgument", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const error = yield* Effect.flip(executor.run("pwd", { cwd: "/definitely/not/a/dir" }))
          assert.strictEqual(error._tag, "InvalidArgument")
          const fromStream = yield* Effect.flip(
            Stream.runDrain(executor.streamEvents("pwd", { cwd: "/definitely/not/a/dir" }))
          )
          assert.strictEqual(fromStream._tag, "InvalidArgument")
        }))

      it.effect("an empty command fails with InvalidArgument", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          for (const command of ["", "  \n", [], ShellCommand.sh``]) {
            const error = yield* Effect.flip(executor.run(command))
            assert.strictEqual(error._tag, "InvalidArgument")
            if (error._tag === "InvalidArgument") assert.strictEqual(error.argument, "command")
          }
          const fromStream = yield* Effect.flip(Stream.runDrain(executor.stream("")))
          assert.strictEqual(fromStream._tag, "InvalidArgument")
        }))

      it.effect("bad env variables fail with InvalidArgument", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          for (const env of [{ "A=B": "x" }, { "": "x" }, { A: "nul\0" }, { BIG: "x".repeat(140_000) }]) {
            const error = yield* Effect.flip(executor.run("true", { env }))
            assert.strictEqual(error._tag, "InvalidArgument")
            if (error._tag === "InvalidArgument") assert.strictEqual(error.argument, "env")
          }
        }))

      it.effect("a command over the argument limit fails with InvalidArgument before sending; one just under runs", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const error = yield* Effect.flip(executor.run(`echo ${"x".repeat(131_100)}`))
          assert.strictEqual(error._tag, "InvalidArgument")
          if (error._tag === "InvalidArgument") {
            assert.strictEqual(error.argument, "command")
            assert.include(error.detail, "131071")
          }
          const multiByte = yield* Effect.flip(executor.run(`echo ${"é".repeat(66_000)}`))
          assert.strictEqual(multiByte._tag, "InvalidArgument")
          const nearLimit = yield* executor.run(`: ${"x".repeat(130_000)}; echo ok`)
          assert.strictEqual(nearLimit.stdout, "ok\n")
        }))

      it.effect("unicode output round-trips", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const text = "héllo 🌍 日本語 ∑ \u{1F468}\u200D\u{1F469}\u200D\u{1F467}"
          const result = yield* executor.run(ShellCommand.sh`printf '%s\n' ${text}; printf '%s\n' ${text} >&2`)
          assert.strictEqual(result.stdout, `${text}\n`)
          assert.strictEqual(result.stderr, `${text}\n`)
        }))

      it.effect("a line over 1 MiB arrives whole", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const command = "head -c 1500000 /dev/zero | tr '\\0' a"
          const result = yield* executor.run(command)
          assert.strictEqual(result.stdout.length, 1_500_001)
          assert.isTrue(result.stdout.startsWith("aaaa") && result.stdout.endsWith("a\n"))
          const chunks = Chunk.toReadonlyArray(yield* Stream.runCollect(executor.stream(command)))
          assert.deepStrictEqual(chunks.map((chunk) => chunk.data.length), [1_500_000])
        }))

      it.effect("output without a trailing newline gets one; no output stays empty", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          assert.strictEqual((yield* executor.run("printf abc")).stdout, "abc\n")
          assert.strictEqual((yield* executor.run("printf 'a\\n\\nb'")).stdout, "a\n\nb\n")
          assert.strictEqual((yield* executor.run("echo")).stdout, "\n")
          const silent = yield* executor.run("true")
          assert.strictEqual(silent.stdout, "")
          assert.strictEqual(silent.stderr, "")
        }))

      it.effect("more than 64 KiB on stderr does not hang", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const result = yield* executor.exec("head -c 200000 /dev/zero | tr '\\0' e >&2; echo done")
          assert.strictEqual(result.stdout, "done\n")
          assert.strictEqual(result.stderr.length, 200_001)
          assert.notInclude(result.stderr, marker)
        }))

      it.effect("the group marker never appears in the output", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const first = yield* executor.run("echo first-err >&2; echo out")
          assert.strictEqual(first.stderr, "first-err\n")
          assert.strictEqual(first.stdout, "out\n")
          const events = Chunk.toReadonlyArray(
            yield* Stream.runCollect(executor.streamEvents("echo e1 >&2; seq 1 200; echo e2 >&2"))
          )
          assert.deepStrictEqual(stderrOf(events), ["e1", "e2"])
          assert.strictEqual(stdoutOf(events).length, 200)
          for (const event of events) {
            if (event._tag === "OutputChunk") assert.notInclude(event.data, marker)
          }
          const quiet = yield* executor.run("echo only-stdout")
          assert.strictEqual(quiet.stderr, "")
        }))

      it.effect("hostile strings in an sh template echo back byte-identical", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const expected = `${base64OfArgs(hostileStrings)}\n`
          const viaTemplate = yield* executor.run(
            ShellCommand.sh`printf '%s\\0' ${hostileStrings} | base64 | tr -d '\\n'`
          )
          assert.strictEqual(viaTemplate.stdout, expected)
          const viaArgv = yield* executor.run(
            ShellCommand.sh`${ShellCommand.argv(["printf", "%s\\0", ...hostileStrings])} | base64 | tr -d '\\n'`
          )
          assert.strictEqual(viaArgv.stdout, expected)
          for (const s of ["-n", "--", "-e x", "'; echo pwned; '", "$(echo pwned)"]) {
            const one = yield* executor.run(ShellCommand.sh`printf '%s' ${s}`)
            assert.strictEqual(one.stdout, `${s}\n`)
          }
        }))

      it.effect("a command that ended normally is not killed: its detached background process survives", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const tag = unique()
          yield* executor.run(`sleep ${tag} >/dev/null 2>&1 &`)
          yield* Effect.sleep("300 millis")
          const lines = yield* processes(tag)
          assert.strictEqual(lines.length, 1)
          const pid = lines[0]!.trim().split(/\s+/)[0]!
          yield* executor.run(`kill ${pid}`)
          yield* awaitGone(tag)
        }))
    })
  }

  for (
    const [name, live] of [
      ["interruption against a real executor", ExecutorLive],
      ["interruption when the server never sees a disconnect", ExecutorKeepingConnections]
    ] as const
  ) {
    layer(live, { excludeTestServices: true })(name, (it) => {
      it.effect("ending a stream early stops a chatty command", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const tag = unique()
          const chunks = yield* Stream.runCollect(
            executor.stream(`while :; do echo tick; sleep 0.05; done; : ${tag}`).pipe(Stream.take(3))
          )
          assert.strictEqual(Chunk.size(chunks), 3)
          yield* awaitGone(tag)
        }))

      it.effect("interrupting a streaming command stops it", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const tag = unique()
          const first = yield* Deferred.make<void>()
          const fiber = yield* executor.stream(`while :; do echo tick; sleep 0.05; done; : ${tag}`).pipe(
            Stream.runForEach(() => Deferred.succeed(first, undefined)),
            Effect.fork
          )
          yield* Deferred.await(first)
          yield* awaitRunning(tag)
          yield* Fiber.interrupt(fiber)
          yield* awaitGone(tag)
        }))

      it.effect("interrupting a silent command stops it", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const tag = unique()
          const fiber = yield* Effect.fork(executor.run(`sleep ${tag}`))
          yield* awaitRunning(tag)
          yield* Fiber.interrupt(fiber)
          yield* awaitGone(tag)
        }))

      it.effect("interrupting a command stops its background descendants", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const first = unique()
          const second = unique()
          const fiber = yield* Effect.fork(executor.exec(`sleep ${first} & sleep ${second} & wait`))
          yield* awaitRunning(first)
          yield* awaitRunning(second)
          yield* Fiber.interrupt(fiber)
          yield* awaitGone(first)
          yield* awaitGone(second)
        }))

      it.effect("a command that ignores SIGTERM is killed after the grace period", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const tag = unique()
          const fiber = yield* Effect.fork(
            executor.run(`trap '' TERM; sleep ${tag}`, { killGracePeriod: "200 millis" })
          )
          yield* awaitRunning(tag)
          yield* Fiber.interrupt(fiber)
          yield* awaitGone(tag)
        }))

      it.effect("a timeout fails with Timeout and stops the command", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const tag = unique()
          const fiber = yield* Effect.fork(executor.run(`sleep ${tag}`, { timeout: "2 seconds" }))
          yield* awaitRunning(tag)
          const error = yield* Effect.flip(Fiber.join(fiber))
          assert.strictEqual(error._tag, "Timeout")
          if (error._tag === "Timeout") {
            assert.strictEqual(error.timeoutMillis, 2000)
            assert.include(error.operation, "Executor.run")
          }
          yield* awaitGone(tag)
        }))

      it.effect("a stream timeout fails with Timeout and stops the command", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const tag = unique()
          const error = yield* Effect.flip(
            Stream.runDrain(executor.streamEvents(`echo started; sleep ${tag}`, { timeout: "1 second" }))
          )
          assert.strictEqual(error._tag, "Timeout")
          yield* awaitGone(tag)
        }))
    })
  }

  layer(ExecutorRecording, { excludeTestServices: true })("with the process-group-kill capability", (it) => {
    it.effect("commands go unwrapped, the probe runs once, interruption still stops silent commands", () =>
      Effect.gen(function*() {
        const groupKill = (yield* (yield* ExecutorClient).capabilities).has("process-group-kill")
        const executor = yield* Executor.Executor
        // this test's commands only: the layer's other tests record theirs in the same list
        const before = directRecorded.cmds.length
        const results = yield* Effect.all([executor.run("echo a"), executor.run("echo b")], { concurrency: 2 })
        assert.deepStrictEqual(results.map((r) => r.stdout), ["a\n", "b\n"])
        const tag = unique()
        const fiber = yield* Effect.fork(executor.run(`sleep ${tag} & sleep ${tag}; wait`))
        yield* awaitRunning(tag)
        yield* Fiber.interrupt(fiber)
        yield* awaitGone(tag)
        assert.strictEqual(directRecorded.probes, 1)
        const sent = directRecorded.cmds.slice(before).filter((cmd) => !cmd.startsWith("ps "))
        if (!groupKill) {
          // the stock executor advertises nothing: every command is wrapped
          assert.isTrue(sent.every((cmd) => cmd.includes(marker)))
        } else {
          assert.deepStrictEqual([...sent].sort(), ["echo a", "echo b", `sleep ${tag} & sleep ${tag}; wait`])
        }
      }))

    it.scoped("the services built on one client ask /health once", () =>
      Effect.gen(function*() {
        const recorded: Recorded = { cmds: [], probes: 0 }
        const context = yield* Layer.build(
          Layer.mergeAll(Executor.layer, Filesystem.layer).pipe(
            Layer.provide(Recording(recorded)),
            Layer.provide(TestExecutor.layerClientCountingProbes(recorded))
          )
        )
        const executor = Context.get(context, Executor.Executor)
        const fs = Context.get(context, Filesystem.Filesystem)
        const path = `/tmp/probe-once-${Crypto.randomUUID()}.bin`
        yield* Effect.all([executor.run("true"), fs.writeFile(path, new Uint8Array([1, 2]))], { concurrency: 2 })
        yield* fs.readFile(path)
        yield* fs.rm(path)
        assert.strictEqual(recorded.probes, 1)
      }))

    it.effect("an explicit killGracePeriod takes the wrapped path, honoured", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const tag = unique()
        const fiber = yield* Effect.fork(executor.run(`trap '' TERM; sleep ${tag}`, { killGracePeriod: "200 millis" }))
        yield* awaitRunning(tag)
        yield* Fiber.interrupt(fiber)
        yield* awaitGone(tag)
        const sent = directRecorded.cmds.filter((cmd) => cmd.includes(tag))
        assert.strictEqual(sent.length, 1)
        assert.include(sent[0], marker)
      }))
  })

  layer(ExecutorKeepingConnections, { excludeTestServices: true })("without the capability", (it) => {
    it.effect("every command is wrapped", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const result = yield* executor.run("echo wrapped")
        assert.strictEqual(result.stdout, "wrapped\n")
        assert.isAbove(keptRecorded.cmds.length, 0)
        assert.isTrue(keptRecorded.cmds.every((cmd) => cmd.includes(marker)))
      }))
  })
})
