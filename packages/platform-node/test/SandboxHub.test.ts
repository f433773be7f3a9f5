/**
 * Local sandboxes served by this process (`sandboxHub`): the sandbox's only process is its
 * spawner until an endpoint that keeps state is used; file paths resolve inside the sandbox, never
 * on the host (a symlink to a host path reaches nothing of the host); deleting a sandbox whose
 * inner executor runs leaves nothing.
 */
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { spawnExecutor } from "../src/internal/localRuntime.js"
import { withPlane } from "./utils/localPlane.js"

/** The names (`comm`) of every process the sandbox's /proc shows, but the listing's own. */
const processNames = "for p in /proc/[0-9]*; do [ \"${p#/proc/}\" = \"$$\" ] || cat \"$p/comm\" 2>/dev/null; done"

const secret = Redacted.make("hub-secret")

/** A host directory the sandbox must never reach, removed with the scope. */
const hostOnlyDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ek-host-only-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

describe("a local sandbox served by this process", () => {
  it.scopedLive(
    "runs only its spawner until a background process starts the executor inside",
    () =>
      withPlane("bubblewrap", (cp) =>
        Effect.gen(function*() {
          const { endpoint } = yield* cp.create({})
          const client = yield* cp.connect(endpoint)
          yield* client.writeFile("note.txt", "hello")
          assert.strictEqual(yield* client.readFile("note.txt"), "hello")
          const before = (yield* client.run({ cmd: processNames })).stdout.split("\n").filter((n) => n !== "")
          // the spawner's name: effect-koyeb-spawner, or its content-named copy in the dev cache
          assert.strictEqual(before.length, 1, `pid 1 is the spawner, and nothing else runs: ${before.join(", ")}`)
          assert.match(before[0]!, /spawner/)

          const started = yield* client.startProcess({ cmd: "sleep 30" })
          const after = (yield* client.run({ cmd: processNames })).stdout
          assert.include(after, "node", "the executor inside serves the background processes")
          assert.include(after, "sleep")
          assert.deepStrictEqual((yield* client.listProcesses).map((p) => p.id), [started.id])
          // the pid it reports is the sandbox's own
          assert.include((yield* client.run({ cmd: `tr "\\0" " " < /proc/${started.pid}/cmdline` })).stdout, "sleep 30")
        })),
    { timeout: 30_000 }
  )

  it.scopedLive(
    "resolves file paths inside the sandbox: a symlink to a host path reaches nothing of the host",
    () =>
      withPlane("bubblewrap", (cp) =>
        Effect.gen(function*() {
          const host = yield* hostOnlyDir
          const hostFile = Path.join(host, "secret.txt")
          Fs.writeFileSync(hostFile, "host only")
          const { endpoint } = yield* cp.create({})
          const client = yield* cp.connect(endpoint)
          // the same path exists in the sandbox (its own /tmp), empty
          const made = yield* client.run({
            cmd: `mkdir -p ${host} && ln -s ${hostFile} file-link && ln -s ${host} dir-link && ln -s / root`
          })
          assert.strictEqual(made.code, 0, made.stderr)

          assert.isTrue(Exit.isFailure(yield* Effect.exit(client.readFile("file-link"))))
          assert.isTrue(Exit.isFailure(yield* Effect.exit(client.readFile(`root${hostFile}`))))
          assert.deepStrictEqual(yield* client.listDir("dir-link"), [])
          // a write through the link lands in the sandbox's /tmp; removals remove nothing of the host
          yield* client.writeFile("file-link", "from the sandbox")
          assert.strictEqual((yield* client.run({ cmd: `cat ${hostFile}` })).stdout, "from the sandbox")
          yield* client.deleteDir("dir-link/")
          yield* client.deleteDir(`root${host}`)
          assert.strictEqual(Fs.readFileSync(hostFile, "utf8"), "host only")
          assert.isFalse((yield* client.run({ cmd: `ls ${host}` })).code === 0, "removed inside")
        })),
    { timeout: 30_000 }
  )

  it.scopedLive(
    "commands see none of the executor's own variables, with or without isolation",
    () =>
      Effect.forEach(
        ["none", "bubblewrap"] as const,
        (isolation) =>
          withPlane(isolation, (cp) =>
            Effect.gen(function*() {
              const { endpoint } = yield* cp.create({})
              const client = yield* cp.connect(endpoint)
              const env = (yield* client.run({ cmd: "env" })).stdout
              assert.notInclude(env, "EFFECT_KOYEB_PARENT_PID", isolation)
              assert.notInclude(env, "SANDBOX_SECRET", isolation)
            }))
      ),
    { timeout: 30_000 }
  )

  it.scopedLive(
    "a sandbox killed under a running command: the call fails, as with a dead executor",
    () =>
      Effect.gen(function*() {
        const proc = yield* spawnExecutor({ id: `hub-${Crypto.randomUUID()}`, secret, isolation: "bubblewrap" })
        const client = yield* ExecutorClient.make({ url: proc.url, secret })
        const call = yield* Effect.fork(Effect.exit(client.run({ cmd: "echo started; sleep 600" })))
        yield* Effect.sleep("300 millis")
        process.kill(-proc.pid, "SIGKILL")
        const exit = yield* Fiber.join(call)
        assert.isTrue(Exit.isFailure(exit), "no reply for a command of a sandbox that is gone")
        yield* proc.exited
      }).pipe(Effect.provide(NodeHttpClient.layerUndici)),
    { timeout: 30_000 }
  )
})
