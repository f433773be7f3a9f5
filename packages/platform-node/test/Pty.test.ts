import * as Executor from "@effect-koyeb/core/Executor"
import { ExecutorClient } from "@effect-koyeb/core/ExecutorClient"
import * as ExecutorClientModule from "@effect-koyeb/core/ExecutorClient"
import * as ExecutorServer from "@effect-koyeb/platform-node/ExecutorServer"
import * as Sandboxes from "@effect-koyeb/platform-node/Sandboxes"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { spawnExecutor } from "../src/internal/localRuntime.js"
import { lookPath } from "../src/internal/lookPath.js"
import * as Faults from "./utils/faultServers.js"
import { processesOf } from "./utils/hostProcesses.js"
import * as TestExecutor from "./utils/TestExecutor.js"

const decoder = new TextDecoder()

const Direct = Executor.layer.pipe(Layer.provideMerge(TestExecutor.layerClient))
const Stock = Executor.layer.pipe(
  Layer.provide(TestExecutor.hideCapabilities),
  Layer.provideMerge(TestExecutor.layerClient)
)

/** A reader of a terminal's screen: everything it printed so far, and a wait for some text. */
const screen = (running: Executor.RunningCommand) =>
  Effect.gen(function*() {
    let text = ""
    const pull = yield* Stream.toPull(running.output)
    const until = (done: (text: string) => boolean) =>
      Effect.gen(function*() {
        while (!done(text)) {
          const chunk = yield* Effect.catchAll(
            pull,
            Option.match({
              onNone: () => Effect.dieMessage(`output ended before expected text: ${text}`),
              onSome: Effect.fail
            })
          )
          for (const event of chunk) {
            assert.strictEqual(event.stream, "stdout", "a terminal's output is all stdout")
            text += decoder.decode(event.data, { stream: true })
          }
        }
        return text
      }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`waiting; screen: ${text}`) }))
    return { until, text: () => text }
  })

const ptySuite = (name: string, live: typeof Direct, resizable: boolean) =>
  layer(live, { timeout: "60 seconds", excludeTestServices: true })(name, (it) => {
    it.scoped("a terminal inside: isatty, its size, TERM, echo and the exit code", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const running = yield* executor.spawn(
          `for fd in 0 1 2; do [ -t $fd ] && printf 'tty%s ' $fd; done; stty size; echo "term=$TERM"; ` +
            `read line; echo "got [$line]"; exit 3`,
          { pty: { cols: 100, rows: 30 } }
        )
        const terminal = yield* screen(running)
        yield* terminal.until((text) => text.includes("term="))
        yield* running.stdin.write("typed\n")
        // the stock executor reports lines, without their `\r`
        const text = (yield* terminal.until((text) => text.includes("got ["))).replace(/\r?\n/g, "\r\n")
        assert.include(text, "tty0 tty1 tty2 30 100\r\n")
        assert.include(text, "term=xterm-256color\r\n")
        // the terminal echoes what was typed, with its own line end
        assert.include(text, "typed\r\n")
        assert.include(text, "got [typed]")
        assert.strictEqual((yield* running.exit).exitCode, 3)
      }))

    it.scoped("Ctrl-C written to the terminal interrupts the foreground command", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const running = yield* executor.spawn(
          `trap 'echo interrupted; exit 9' INT; echo ready; while :; do sleep 0.05; done`,
          { pty: { cols: 80, rows: 24 } }
        )
        const terminal = yield* screen(running)
        yield* terminal.until((text) => text.includes("ready"))
        yield* running.stdin.write("\x03")
        yield* terminal.until((text) => text.includes("interrupted"))
        assert.strictEqual((yield* running.exit).exitCode, 9)
      }))

    it.scoped("signal goes to the terminal's foreground job", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const running = yield* executor.spawn(`echo ready; while :; do sleep 0.05; done`, {
          pty: { cols: 80, rows: 24 }
        })
        yield* (yield* screen(running)).until((text) => text.includes("ready"))
        yield* running.signal("SIGINT")
        // the job died of SIGINT: `script` reports 128 + 2
        assert.strictEqual((yield* running.exit).exitCode, 130)
      }))

    if (resizable) {
      it.scoped("resize sets the size and delivers SIGWINCH", () =>
        Effect.gen(function*() {
          // an extension of ours: not on another executor (EXECUTOR_URL)
          if (!(yield* (yield* ExecutorClient).capabilities).has("pty")) return
          const executor = yield* Executor.Executor
          const running = yield* executor.spawn(
            `trap 'echo "winch $(stty size)"' WINCH; echo ready; while :; do sleep 0.05; done`,
            { pty: { cols: 80, rows: 24 } }
          )
          const terminal = yield* screen(running)
          yield* terminal.until((text) => text.includes("ready"))
          yield* running.resize(132, 43)
          yield* terminal.until((text) => text.includes("winch 43 132"))
          yield* running.signal("SIGINT")
          assert.strictEqual((yield* running.exit).exitCode, 130)
        }))
    } else {
      it.scoped("resize is Unsupported", () =>
        Effect.gen(function*() {
          const executor = yield* Executor.Executor
          const running = yield* executor.spawn("cat", { pty: { cols: 80, rows: 24 } })
          const error = yield* Effect.flip(running.resize(100, 30))
          assert.strictEqual(error._tag, "Unsupported")
        }))
    }

    it.scoped("bad sizes and a resize without a terminal are InvalidArgument", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const bad = yield* Effect.flip(executor.spawn("true", { pty: { cols: 0, rows: 24 } }))
        assert.strictEqual(bad._tag, "InvalidArgument")
        const plain = yield* executor.spawn("cat")
        assert.strictEqual((yield* Effect.flip(plain.resize(80, 24)))._tag, "InvalidArgument")
        const running = yield* executor.spawn("cat", { pty: { cols: 80, rows: 24 } })
        assert.strictEqual((yield* Effect.flip(running.resize(80, 70000)))._tag, "InvalidArgument")
      }))
  })

ptySuite("spawn with a pty on the interactive executor", Direct, true)
ptySuite("spawn with a pty on the stock fallback (script)", Stock, false)

layer(Direct, { timeout: "60 seconds", excludeTestServices: true })("pty wire (our executor)", (it) => {
  it.scoped("/health lists pty; /resize refuses a bad size, an unknown id and a command without a terminal", () =>
    Effect.gen(function*() {
      const endpoint = yield* TestExecutor.TestExecutorEndpoint
      const client = yield* ExecutorClient
      if (!(yield* client.capabilities).has("pty")) return
      const resize = (body: unknown) =>
        Effect.promise(() =>
          fetch(`${endpoint.url}/resize`, {
            method: "POST",
            headers: { authorization: `Bearer ${Redacted.value(endpoint.secret)}` },
            body: JSON.stringify(body)
          }).then(async (r) => [r.status, (await r.text()).trim()] as const)
        )
      assert.deepStrictEqual(yield* resize({ id: "nope", cols: 80, rows: 0 }), [400, "Invalid request"])
      assert.strictEqual((yield* resize({ id: "nope", cols: 80, rows: 24 }))[0], 404)
      // the stream held open (by the scope): the command runs
      const pull = yield* Stream.toPull(client.spawn!({ cmd: "cat" }))
      const started = Chunk.unsafeHead(yield* pull)
      assert.strictEqual(started._tag, "Started")
      if (started._tag !== "Started") return
      assert.deepStrictEqual(yield* resize({ id: started.id, cols: 80, rows: 24 }), [
        400,
        "The command has no terminal"
      ])
    }))
})

layer(Direct, { timeout: "60 seconds", excludeTestServices: true })("pty faults", (it) => {
  it.effect("a huge paste into a pty arrives whole", () =>
    Effect.gen(function*() {
      const executor = yield* Executor.Executor
      // 1 MiB in 64-byte lines (a terminal's line discipline holds at most 4095 bytes per line)
      const line = `${"x".repeat(63)}\n`
      const paste = line.repeat(16 * 1024)
      const counted = yield* Effect.scoped(Effect.gen(function*() {
        const running = yield* executor.spawn("stty -echo; echo ready; wc -c", { pty: { cols: 80, rows: 24 } })
        // read while writing, as a terminal does: unread output holds the command back
        const output = yield* Effect.fork(
          Stream.runFold(running.output, "", (text, chunk) => text + decoder.decode(chunk.data))
        )
        yield* running.stdin.write(paste)
        yield* running.stdin.end
        return { text: yield* output.await.pipe(Effect.flatten), exit: yield* running.exit }
      }))
      assert.strictEqual(counted.text.replace(/^[\s\S]*ready\r\n/, "").trim(), String(paste.length))
      assert.strictEqual(counted.exit.exitCode, 0)
    }))

  it.effect("a client gone mid-session hangs the terminal up: the command stops", () =>
    Effect.gen(function*() {
      // host processes are the sandbox's only for the in-process executor
      if ((yield* TestExecutor.TestExecutorEndpoint).stock) return
      const executor = yield* Executor.Executor
      const token = `pty-gone-${Date.now()}`
      yield* Effect.scoped(Effect.gen(function*() {
        // ignores SIGTERM, as an interactive shell does: the hang-up still ends it
        const running = yield* executor.spawn(`trap '' TERM; echo up; sleep 30 # ${token}`, {
          pty: { cols: 80, rows: 24 }
        })
        yield* (yield* screen(running)).until((text) => text.includes("up"))
        assert.isAbove(processesOf(token).length, 0)
      }))
      yield* Effect.repeat(Effect.sync(() => processesOf(token).length), {
        until: (n) => n === 0,
        schedule: Schedule.spaced("50 millis").pipe(Schedule.upTo("5 seconds"))
      })
      assert.deepStrictEqual(processesOf(token), [])
    }))
})

/** A directory of links to the programs the stdin fallback runs, `script` not among them. */
const binWithoutScript = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "no-script-"))
    for (const name of ["sh", "mkdir", "rm"]) Fs.symlinkSync(lookPath(name)!, Path.join(dir, name))
    return dir
  }),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

describe("an executor whose PATH has no `script`", () => {
  it.scopedLive(
    "does not advertise pty; a spawn with a terminal is Unsupported (a raw one 501), one without runs",
    () =>
      Effect.gen(function*() {
        const secret = Redacted.make(Crypto.randomBytes(24).toString("base64url"))
        const address = yield* ExecutorServer.make({ secret, env: { PATH: yield* binWithoutScript } })
        const client = yield* ExecutorClientModule.make({ url: address.url, secret })
        const capabilities = yield* client.capabilities
        assert.isTrue(capabilities.has("interactive"))
        assert.isFalse(capabilities.has("pty"))
        const executor = yield* Effect.provideService(Executor.make, ExecutorClient, client)
        const error = yield* Effect.flip(Effect.scoped(executor.spawn("true", { pty: { cols: 80, rows: 24 } })))
        assert.strictEqual(error._tag, "Unsupported")
        const plain = yield* executor.spawn("exit 4")
        assert.strictEqual((yield* plain.exit).exitCode, 4)
        // asked anyway, by a raw client: refused, nothing started
        const raw = yield* Effect.promise(() =>
          fetch(`${address.url}/spawn`, {
            method: "POST",
            headers: { authorization: `Bearer ${Redacted.value(secret)}` },
            body: JSON.stringify({ cmd: "true", pty: { cols: 80, rows: 24 } })
          }).then(async (r) => [r.status, await r.text()] as const)
        )
        assert.deepStrictEqual(raw, [501, "pty unsupported: no script (util-linux) in the commands' PATH\n"])
      }).pipe(Effect.provide(NodeHttpClient.layerUndici)),
    20_000
  )
})

describe("a real executor killed mid-session", () => {
  it.scopedLive(
    "the terminal's output, exit, stdin and resize fail with ExecutorError; a new spawn too; no hang",
    () =>
      Effect.gen(function*() {
        const secret = Redacted.make(Crypto.randomBytes(24).toString("base64url"))
        const proc = yield* spawnExecutor({ id: `pty-${Crypto.randomUUID()}`, secret, isolation: "none" })
        const client = yield* ExecutorClientModule.make({ url: proc.url, secret })
        const executor = yield* Effect.provideService(Executor.make, ExecutorClient, client)
        const running = yield* executor.spawn("cat", { pty: { cols: 80, rows: 24 } })
        const terminal = yield* screen(running)
        yield* running.stdin.write("before\n")
        yield* terminal.until((text) => text.includes("before\r\nbefore\r\n"))
        yield* Faults.crash(proc.pid)
        const failed = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.flip(effect).pipe(
            Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("hang") }),
            Effect.map((error) => (error as { readonly _tag: string })._tag)
          )
        assert.strictEqual(yield* failed(terminal.until(() => false)), "ExecutorError")
        assert.strictEqual(yield* failed(running.exit), "ExecutorError")
        assert.strictEqual(yield* failed(running.stdin.write("after")), "ExecutorError")
        assert.strictEqual(yield* failed(running.resize(100, 30)), "ExecutorError")
        assert.strictEqual(
          yield* failed(Effect.scoped(executor.spawn("cat", { pty: { cols: 80, rows: 24 } }))),
          "ExecutorError"
        )
      }).pipe(Effect.provide(NodeHttpClient.layerUndici)),
    40_000
  )
})

describe("Promise facade (local sandbox, its default isolation)", { timeout: 60_000 }, () => {
  it("spawn with pty: a terminal that resize resizes", async () => {
    await using sandbox = await Sandboxes.create({ backend: "local", name: "facade-pty" })
    const shell = await sandbox.spawn(
      `trap 'echo "size $(stty size)"' WINCH; echo "size $(stty size)"; while :; do sleep 0.05; done`,
      { pty: { cols: 90, rows: 20 } }
    )
    const output = shell.output[Symbol.asyncIterator]()
    let text = ""
    const until = async (expected: string) => {
      while (!text.includes(expected)) {
        const next = await output.next()
        if (next.done === true) throw new Error(`ended before ${expected}: ${text}`)
        text += decoder.decode(next.value.data)
      }
    }
    await until("size 20 90")
    await shell.resize(100, 30)
    await until("size 30 100")
    await shell.stdin.write("\x03")
    assert.strictEqual((await shell.wait()).exitCode, 130)
    await shell.close()
  })
})
