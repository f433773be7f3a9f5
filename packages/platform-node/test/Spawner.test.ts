/**
 * The executor's commands through `effect-koyeb-spawner` (posix_spawn) and through Node's spawn:
 * the same replies, the spawner really used, and what happens when it cannot run or is killed.
 */
import * as ExecutorServer from "@effect-koyeb/platform-node/ExecutorServer"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { spawnerBinary } from "../src/internal/executorCommand.js"
import * as ProcessGroups from "../src/internal/processGroups.js"
import * as Spawner from "../src/internal/spawner.js"
import { processesOf } from "./utils/hostProcesses.js"

const secret = "spawner-secret-0123456789"

interface RunReply {
  readonly stdout: string
  readonly stderr: string
  readonly code: number
  readonly error?: string
}

const run = (url: string, cmd: string, signal?: AbortSignal): Promise<RunReply> =>
  fetch(`${url}/run`, {
    method: "POST",
    headers: { authorization: `Bearer ${secret}` },
    body: JSON.stringify({ cmd }),
    ...(signal !== undefined ? { signal } : {})
  }).then((r) => r.json() as Promise<RunReply>)

const server = (spawner?: string | false) =>
  ExecutorServer.make({
    secret: Redacted.make(secret),
    killGracePeriod: "200 millis",
    ...(spawner !== undefined ? { spawner } : {})
  })

/** The program of the parent of the shell that runs a command. */
const parentProgram = (url: string) =>
  Effect.promise(() => run(url, "readlink /proc/$PPID/exe")).pipe(Effect.map((r) => r.stdout.trim()))

const node = Fs.realpathSync(process.execPath)

const commands = [
  "echo out; echo err >&2",
  "printf 'no newline'",
  "exit 7",
  "kill -TERM $$",
  "cat </dev/stdin; echo stdin-is-null",
  "trap '' INT; kill -INT $$; echo ignored",
  "ps -o pgid= -p $$ | tr -d ' ' | grep -qx \"$$\" && echo own-group",
  "ls /nonexistent-dir-for-spawner-test",
  "echo \"$0\"",
  "env | grep -c SANDBOX_SECRET || true",
  "head -c 300000 /dev/zero | tr '\\0' x | wc -c"
]

describe("spawner", () => {
  it.scopedLive(
    "replies match Node's spawn, command by command, and the spawner starts them",
    () =>
      Effect.gen(function*() {
        const binary = yield* spawnerBinary
        assert.isDefined(binary, "the spawner is built on Linux with a C compiler")
        const viaSpawner = yield* server()
        const viaNode = yield* server(false)
        assert.strictEqual(yield* parentProgram(viaSpawner.url), Fs.realpathSync(binary!))
        assert.strictEqual(yield* parentProgram(viaNode.url), node)
        for (const cmd of commands) {
          const [a, b] = yield* Effect.promise(() => Promise.all([run(viaSpawner.url, cmd), run(viaNode.url, cmd)]))
          assert.deepStrictEqual(a, b, cmd)
        }
      }),
    30_000
  )

  it.scopedLive("a spawner that cannot run leaves the commands to Node's spawn", () =>
    Effect.gen(function*() {
      const notBinary = Path.join(Os.tmpdir(), `not-a-spawner-${Crypto.randomUUID()}`)
      Fs.writeFileSync(notBinary, "not an executable\n", { mode: 0o755 })
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(notBinary, { force: true })))
      for (const spawner of ["/nonexistent/effect-koyeb-spawner", notBinary]) {
        const { url } = yield* server(spawner)
        assert.deepStrictEqual(yield* Effect.promise(() => run(url, "echo fine")), {
          stdout: "fine\n",
          stderr: "",
          code: 0
        })
        assert.strictEqual(yield* parentProgram(url), node)
      }
    }), 30_000)

  it.scopedLive(
    "a spawner killed under a running command: its output still arrives, later commands use Node",
    () =>
      Effect.gen(function*() {
        const { url } = yield* server()
        const spawnerPid = Number(
          (yield* Effect.promise(() => run(url, "cut -d' ' -f4 /proc/$$/stat"))).stdout.trim()
        )
        assert.strictEqual(Fs.readlinkSync(`/proc/${spawnerPid}/exe`), Fs.realpathSync((yield* spawnerBinary)!))
        const pending = run(url, "sleep 0.4; echo still-here")
        yield* Effect.sleep("100 millis")
        process.kill(spawnerPid, "SIGKILL")
        const reply = yield* Effect.promise(() => pending)
        assert.strictEqual(reply.stdout, "still-here\n")
        // its exit status went with the spawner: reported as killed
        assert.strictEqual(reply.code, -1)
        assert.deepStrictEqual(yield* Effect.promise(() => run(url, "echo next")), {
          stdout: "next\n",
          stderr: "",
          code: 0
        })
        assert.strictEqual(yield* parentProgram(url), node)
      }),
    30_000
  )

  it.scopedLive(
    "a spawn interrupted before the spawner answered leaves no command behind",
    () =>
      Effect.gen(function*() {
        const spawner = yield* Effect.acquireRelease(
          Effect.promise(async () => Spawner.start((await Effect.runPromise(spawnerBinary))!)),
          (s) => Effect.sync(() => s.close())
        )
        const groups = ProcessGroups.make(Duration.millis(200), Effect.succeed(spawner))
        const marker = `spawner-interrupted-${Crypto.randomUUID()}`
        for (let i = 0; i < 5; i++) {
          // runFork runs up to the wait for the answer (the request is written), which needs a turn
          // of the event loop: the interruption comes first
          const fiber = Effect.runFork(
            groups.spawn({ cmd: `sleep 30 # ${marker}`, cwd: "/", env: { PATH: "/usr/bin:/bin" } })
          )
          yield* Fiber.interrupt(fiber)
        }
        let left = processesOf(marker)
        for (let i = 0; i < 40 && left.length > 0; i++) {
          yield* Effect.sleep("25 millis")
          left = processesOf(marker)
        }
        assert.deepStrictEqual(left, [])
      }),
    30_000
  )

  it.scopedLive(
    "an exit that came before anyone listened still reaches a later listener",
    () =>
      Effect.gen(function*() {
        const spawner = yield* Effect.acquireRelease(
          Effect.promise(async () => Spawner.start((await Effect.runPromise(spawnerBinary))!)),
          (s) => Effect.sync(() => s.close())
        )
        const child = yield* Effect.promise(() =>
          spawner.spawn({ path: "/bin/sh", args: ["sh", "-c", "exit 3"], cwd: "/", env: {}, stdin: false })
        )
        child.stdout.resume()
        child.stderr.resume()
        yield* Effect.sleep("200 millis")
        const [exit, close] = yield* Effect.promise(() =>
          Promise.all(
            ["exit", "close"].map((event) => new Promise((resolve) => child.once(event, (code) => resolve(code))))
          )
        )
        assert.deepStrictEqual([exit, close], [3, 3])
      }),
    30_000
  )

  it.scopedLive("requests dropped at any moment of a spawn leave no command behind", () =>
    Effect.gen(function*() {
      const { url } = yield* server()
      const marker = `spawner-drop-${Crypto.randomUUID()}`
      yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 40 }, async (_, i) => {
          const abort = new AbortController()
          setTimeout(() => abort.abort(), i % 20)
          await run(url, `sleep 30 # ${marker}`, abort.signal).catch(() => undefined)
        }))
      )
      // the executor notices each drop, then TERM and (after the grace period) KILL
      let left = processesOf(marker)
      for (let i = 0; i < 60 && left.length > 0; i++) {
        yield* Effect.sleep("50 millis")
        left = processesOf(marker)
      }
      assert.deepStrictEqual(left, [])
    }), 30_000)
})
