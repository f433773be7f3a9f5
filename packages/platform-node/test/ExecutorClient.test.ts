/**
 * Conformance of the executor wire client against a real executor over loopback HTTP: our
 * `ExecutorServer`, or the stock Go executor when `EXECUTOR_URL` / `EXECUTOR_SECRET` are set.
 * Cases that only our server passes (the stock executor is buggy there) are skipped on stock.
 */
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import type { RunStreamEvent } from "@effect-koyeb/core/ExecutorClient"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { assert, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestExecutor from "./utils/TestExecutor.js"

// The same rule as TestExecutor.layerEndpoint, needed synchronously by skipIf.
const stock = Boolean(process.env.EXECUTOR_URL && process.env.EXECUTOR_SECRET)

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

const outputs = (events: ReadonlyArray<RunStreamEvent>) =>
  events.flatMap((event) => event._tag === "Output" ? [[event.stream, event.data] as const] : [])

const exitCode = (events: ReadonlyArray<RunStreamEvent>) => {
  const last = events[events.length - 1]
  return last?._tag === "Complete" ? last.code : undefined
}

// A fresh directory in the sandbox for one test, removed when its scope closes.
const tempDir = Effect.acquireRelease(
  Effect.gen(function*() {
    const client = yield* ExecutorClient.ExecutorClient
    const reply = yield* client.run({ cmd: "mktemp -d" })
    assert.strictEqual(reply.code, 0)
    return reply.stdout.trim()
  }),
  (dir) =>
    Effect.flatMap(ExecutorClient.ExecutorClient, (client) => Effect.ignore(client.run({ cmd: `rm -rf '${dir}'` })))
)

// A client for the same executor with other options (another secret, URL or routing key), over fetch.
const otherClient = (options: Partial<ExecutorClient.ExecutorClientOptions>) =>
  Effect.gen(function*() {
    const endpoint = yield* TestExecutor.TestExecutorEndpoint
    return yield* ExecutorClient.make({ url: endpoint.url, secret: endpoint.secret, ...options })
  }).pipe(Effect.provide(FetchHttpClient.layer))

const waitUntilNotRunning = (id: string) =>
  Effect.gen(function*() {
    const client = yield* ExecutorClient.ExecutorClient
    const list = yield* client.listProcesses
    const info = list.find((process) => process.id === id)
    assert.isDefined(info, `process ${id} is listed`)
    if (info!.isRunning) yield* Effect.sleep("20 millis")
    return info!
  }).pipe(Effect.repeat({ until: (info) => !info.isRunning, times: 500 }))

layer(TestExecutor.layerClient, { excludeTestServices: true })("ExecutorClient conformance", (it) => {
  it.effect("health answers ok", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      assert.strictEqual((yield* client.health).status, "ok")
    }))

  it.scoped("run returns stdout, stderr and the exit code, with cwd and env", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      const dir = yield* tempDir
      const reply = yield* client.run({
        cmd: "pwd; echo \"$GREETING\" >&2; exit 7",
        cwd: dir,
        env: { GREETING: "hé ✓" }
      })
      assert.deepStrictEqual(reply, { stdout: `${dir}\n`, stderr: "hé ✓\n", code: 7 })
    }))

  it.effect("run reports a signal death as -1, keeps unicode and output without a trailing newline", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      assert.strictEqual((yield* client.run({ cmd: "kill -9 $$" })).code, -1)
      assert.strictEqual((yield* client.run({ cmd: "echo 'héllo ✓ 𝄞'" })).stdout, "héllo ✓ 𝄞\n")
      assert.strictEqual((yield* client.run({ cmd: "printf 'no newline'" })).stdout, "no newline")
      assert.strictEqual((yield* client.run({ cmd: "printf '\\377ok'" })).stdout, "\uFFFDok")
    }))

  it.effect("run and runStreaming fail with InvalidArgument cwd for a missing directory", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      const error = yield* Effect.flip(client.run({ cmd: "pwd", cwd: "/definitely/not/here" }))
      assert.strictEqual(error._tag === "InvalidArgument" && error.argument, "cwd")
      const error2 = yield* Effect.flip(
        Stream.runDrain(client.runStreaming({ cmd: "pwd", cwd: "/definitely/not/here" }))
      )
      assert.strictEqual(error2._tag === "InvalidArgument" && error2.argument, "cwd")
    }))

  it.effect("runStreaming emits one Output per line on each stream, then Complete", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      const events = yield* collect(client.runStreaming({ cmd: "echo one; echo two >&2; echo; printf 'tail'" }))
      const lines = outputs(events)
      assert.deepStrictEqual(lines.filter(([stream]) => stream === "stdout"), [["stdout", "one"], ["stdout", ""], [
        "stdout",
        "tail"
      ]])
      assert.deepStrictEqual(lines.filter(([stream]) => stream === "stderr"), [["stderr", "two"]])
      assert.strictEqual(exitCode(events), 0)
    }))

  it.effect("a consumer may stop a stream early", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      const first = yield* collect(Stream.take(client.runStreaming({ cmd: "seq 1 1000000" }), 3))
      assert.deepStrictEqual(outputs(first), [["stdout", "1"], ["stdout", "2"], ["stdout", "3"]])
      assert.strictEqual((yield* client.run({ cmd: "echo still usable" })).stdout, "still usable\n")
    }))

  it.effect("runStreaming reports non-zero and signal exits in Complete", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      assert.strictEqual(exitCode(yield* collect(client.runStreaming({ cmd: "echo x; exit 3" }))), 3)
      assert.strictEqual(exitCode(yield* collect(client.runStreaming({ cmd: "kill -TERM $$" }))), -1)
    }))

  it.effect("runStreaming keeps unicode and delivers a line over 1 MiB as one event", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      const unicode = yield* collect(client.runStreaming({ cmd: "echo 'héllo ✓ 𝄞'" }))
      assert.deepStrictEqual(outputs(unicode), [["stdout", "héllo ✓ 𝄞"]])
      const big = yield* collect(
        client.runStreaming({ cmd: "head -c 1200000 /dev/zero | tr '\\0' x; echo; echo after" })
      )
      const lines = outputs(big)
      assert.strictEqual(lines.length, 2)
      assert.strictEqual(lines[0]![1].length, 1_200_000)
      assert.strictEqual(lines[1]![1], "after")
    }))

  it.effect("runStreaming delivers every line of a long output in order", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      const count = yield* Stream.runFold(
        client.runStreaming({ cmd: "seq 1 20000" }),
        { next: 1, ok: true },
        (state, event) =>
          event._tag === "Output"
            ? { next: state.next + 1, ok: state.ok && event.data === String(state.next) }
            : state
      )
      assert.deepStrictEqual(count, { next: 20001, ok: true })
    }))

  it.effect("a command over 128 KiB fails with InvalidArgument command", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      const cmd = `echo ${"a".repeat(140_000)} >/dev/null`
      const error = yield* Effect.flip(client.run({ cmd }))
      assert.strictEqual(error._tag === "InvalidArgument" && error.argument, "command")
      const error2 = yield* Effect.flip(Stream.runDrain(client.runStreaming({ cmd })))
      assert.strictEqual(error2._tag === "InvalidArgument" && error2.argument, "command")
      const error3 = yield* Effect.flip(client.startProcess({ cmd }))
      assert.strictEqual(error3._tag === "InvalidArgument" && error3.argument, "command")
    }))

  it.scoped("files: write, read, list (sorted, dotfiles), empty file and empty directory", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      const dir = yield* tempDir
      yield* client.writeFile(`${dir}/b.txt`, "héllo ✓\n")
      yield* client.writeFile(`${dir}/.hidden`, "")
      yield* client.makeDir(`${dir}/sub/deeper`)
      yield* client.makeDir(`${dir}/sub/deeper`)
      assert.strictEqual(yield* client.readFile(`${dir}/b.txt`), "héllo ✓\n")
      assert.strictEqual(yield* client.readFile(`${dir}/.hidden`), "")
      assert.deepStrictEqual(yield* client.listDir(dir), [".hidden", "b.txt", "sub"])
      assert.deepStrictEqual(yield* client.listDir(`${dir}/sub/deeper`), [])
      yield* client.deleteFile(`${dir}/b.txt`)
      yield* client.deleteFile(`${dir}/sub/deeper`)
      assert.deepStrictEqual(yield* client.listDir(dir), [".hidden", "sub"])
      yield* client.deleteDir(dir)
      yield* client.deleteDir(dir)
      assert.strictEqual((yield* Effect.flip(client.listDir(dir)))._tag, "FileNotFound")
    }))

  it.scoped("files: every error the stock executor shows is classified", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      const dir = yield* tempDir
      yield* client.writeFile(`${dir}/file`, "x")
      yield* client.makeDir(`${dir}/full`)
      yield* client.writeFile(`${dir}/full/inner`, "x")

      const reason = (effect: Effect.Effect<unknown, ExecutorClient.FileEndpointFailure>) =>
        Effect.map(Effect.flip(effect), (error) => error._tag === "FilesystemError" ? error.reason : error._tag)

      assert.strictEqual(yield* reason(client.readFile(`${dir}/missing`)), "FileNotFound")
      assert.strictEqual(yield* reason(client.listDir(`${dir}/missing`)), "FileNotFound")
      assert.strictEqual(yield* reason(client.writeFile(`${dir}/missing/f`, "x")), "FileNotFound")
      assert.strictEqual(yield* reason(client.deleteFile(`${dir}/missing`)), "FileNotFound")
      assert.strictEqual(yield* reason(client.readFile(dir)), "IsADirectory")
      assert.strictEqual(yield* reason(client.writeFile(`${dir}/full`, "x")), "IsADirectory")
      assert.strictEqual(yield* reason(client.listDir(`${dir}/file`)), "NotADirectory")
      assert.strictEqual(yield* reason(client.makeDir(`${dir}/file/sub`)), "NotADirectory")
      assert.strictEqual(yield* reason(client.deleteFile(`${dir}/full`)), "DirectoryNotEmpty")
      assert.strictEqual(yield* reason(client.deleteDir(`${dir}/full/.`)), "InvalidPath")
      assert.strictEqual(yield* reason(client.readFile("")), "FileNotFound")
      const notFound = yield* Effect.flip(client.readFile(`${dir}/missing`))
      assert.strictEqual(notFound._tag === "FileNotFound" && notFound.path, `${dir}/missing`)
      yield* client.deleteDir(dir)
    }))

  it.effect("ports: bind, 409 on a second bind, unbind, empty port", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      // one binding per executor: clear what an earlier test (or client) left
      yield* client.unbindPort
      yield* Effect.gen(function*() {
        yield* client.bindPort("8080")
        const again = yield* Effect.flip(client.bindPort("8080"))
        assert.deepStrictEqual(
          again._tag === "PortAlreadyBound" && [again.port, again.currentPort],
          ["8080", "8080"]
        )
        const other = yield* Effect.flip(client.bindPort("9090"))
        assert.strictEqual(other._tag === "PortAlreadyBound" && other.currentPort, "8080")
      }).pipe(Effect.ensuring(Effect.orDie(client.unbindPort)))
      yield* client.bindPort("9090")
      yield* client.unbindPort
      yield* client.unbindPort
      const empty = yield* Effect.flip(client.bindPort(""))
      assert.strictEqual(empty._tag === "InvalidArgument" && empty.argument, "port")
    }))

  it.effect("processes: start, list, kill, kill again, final status", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      const started = yield* client.startProcess({ cmd: "sleep 30" })
      assert.strictEqual(started.status, "running")
      assert.isTrue(started.pid > 0)
      const listed = (yield* client.listProcesses).find((process) => process.id === started.id)
      assert.strictEqual(listed?.command, "sleep 30")
      assert.isTrue(listed?.isRunning)
      yield* client.killProcess(started.id)
      const final = yield* waitUntilNotRunning(started.id)
      assert.strictEqual(final.status, "killed")
      const again = yield* Effect.flip(client.killProcess(started.id))
      assert.strictEqual(again._tag === "ProcessNotRunning" && again.status, "killed")
    }))

  it.effect("processes: exit statuses, bad cwd, empty command", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      const ok = yield* client.startProcess({ cmd: "true" })
      const bad = yield* client.startProcess({ cmd: "exit 3" })
      assert.strictEqual((yield* waitUntilNotRunning(ok.id)).status, "completed")
      assert.strictEqual((yield* waitUntilNotRunning(bad.id)).status, "failed")
      const cwd = yield* Effect.flip(client.startProcess({ cmd: "true", cwd: "/definitely/not/here" }))
      assert.strictEqual(cwd._tag === "InvalidArgument" && cwd.argument, "cwd")
      const empty = yield* Effect.flip(client.startProcess({ cmd: "" }))
      assert.strictEqual(empty._tag === "InvalidArgument" && empty.argument, "command")
    }))

  it.effect("processes: an unknown id is ProcessNotFound for kill and logs", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      const kill = yield* Effect.flip(client.killProcess("00000000-0000-4000-8000-000000000000"))
      assert.strictEqual(kill._tag, "ProcessNotFound")
      const logs = yield* Effect.flip(Stream.runDrain(client.processLogs("00000000-0000-4000-8000-000000000000")))
      assert.strictEqual(logs._tag === "ProcessNotFound" && logs.id, "00000000-0000-4000-8000-000000000000")
    }))

  it.effect("processes: the log stream of a finished process ends", () =>
    Effect.gen(function*() {
      const client = yield* ExecutorClient.ExecutorClient
      const started = yield* client.startProcess({ cmd: "echo out; echo err >&2" })
      yield* waitUntilNotRunning(started.id)
      const lines = yield* collect(client.processLogs(started.id))
      for (const line of lines) assert.include(["out", "err"], line.data)
    }))

  // The stock executor sometimes loses the whole output of a short-lived process.
  it.effect.skipIf(stock)(
    "processes: logs replay every line of both streams, then live lines",
    () =>
      Effect.gen(function*() {
        const client = yield* ExecutorClient.ExecutorClient
        const done = yield* client.startProcess({ cmd: "echo out; echo err >&2" })
        yield* waitUntilNotRunning(done.id)
        const replay = yield* collect(client.processLogs(done.id))
        assert.deepStrictEqual(replay.map((line) => [line.stream, line.data]).sort(), [["stderr", "err"], [
          "stdout",
          "out"
        ]])
        assert.isTrue(replay.every((line) => !Number.isNaN(Date.parse(line.timestamp))))
        const live = yield* client.startProcess({ cmd: "echo first; sleep 0.3; echo second" })
        const lines = yield* collect(client.processLogs(live.id))
        assert.deepStrictEqual(lines.map((line) => line.data), ["first", "second"])
      })
  )

  it.effect("a wrong secret is Unauthorized everywhere except /health", () =>
    Effect.gen(function*() {
      const client = yield* otherClient({ secret: Redacted.make("wrong-secret") })
      assert.strictEqual((yield* client.health).status, "ok")
      assert.strictEqual((yield* Effect.flip(client.run({ cmd: "true" })))._tag, "Unauthorized")
      assert.strictEqual(
        (yield* Effect.flip(Stream.runDrain(client.runStreaming({ cmd: "true" }))))._tag,
        "Unauthorized"
      )
      assert.strictEqual((yield* Effect.flip(client.readFile("/etc/hostname")))._tag, "Unauthorized")
      assert.strictEqual((yield* Effect.flip(client.listProcesses))._tag, "Unauthorized")
      assert.strictEqual((yield* Effect.flip(Stream.runDrain(client.processLogs("x"))))._tag, "Unauthorized")
    }))

  it.effect("an unreachable executor is ExecutorError Transport", () =>
    Effect.gen(function*() {
      // port 9 (discard) is closed on loopback
      const client = yield* otherClient({ url: "http://127.0.0.1:9" })
      const error = yield* Effect.flip(client.run({ cmd: "true" }))
      assert.strictEqual(error._tag === "ExecutorError" && error.reason, "Transport")
    }))

  it.effect("a trailing slash in the URL and a routing key header are accepted", () =>
    Effect.gen(function*() {
      const endpoint = yield* TestExecutor.TestExecutorEndpoint
      const client = yield* otherClient({ url: `${endpoint.url}/`, routingKey: "rk-test" })
      assert.strictEqual((yield* client.run({ cmd: "echo hi" })).stdout, "hi\n")
    }))

  // The stock executor serves only `/x`; Koyeb's edge strips `/koyeb-sandbox` before it.
  it.scoped.skipIf(stock)("the /koyeb-sandbox prefix routes to the same endpoints", () =>
    Effect.gen(function*() {
      const endpoint = yield* TestExecutor.TestExecutorEndpoint
      const client = yield* otherClient({ url: `${endpoint.url}/koyeb-sandbox` })
      assert.strictEqual((yield* client.health).status, "ok")
      assert.strictEqual((yield* client.run({ cmd: "echo hi" })).stdout, "hi\n")
      assert.strictEqual(exitCode(yield* collect(client.runStreaming({ cmd: "echo hi" }))), 0)
      const dir = yield* tempDir
      yield* client.writeFile(`${dir}/f`, "via prefix")
      assert.strictEqual(yield* client.readFile(`${dir}/f`), "via prefix")
      yield* client.deleteDir(dir)
    }))
})
