/**
 * Sleep and wake as Koyeb does them, in the emulator: a service that scales to zero sleeps after
 * `deep_sleep_value` seconds without gateway traffic (deployment and instance SLEEPING, executor
 * stopped), the next gateway request wakes it (files kept, processes gone) and is served, and
 * `delete_after_sleep` deletes it, sandbox directory included.
 */
import { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import * as LocalControlPlane from "@effect-koyeb/platform-node/LocalControlPlane"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import { firstLine } from "./utils/childOutput.js"
import { processesOf, readProc } from "./utils/hostProcesses.js"

const TOKEN = "sleep-wake-token"
const fast = { pollInterval: "50 millis", timeout: "60 seconds" } as const

const api = (emu: KoyebEmulator.KoyebEmulatorShape, path: string) =>
  Effect.promise(() =>
    fetch(`${emu.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.json())
  )

/** Waits (bounded) until `check` holds of the emulator's state. */
const stateWhen = (emu: KoyebEmulator.KoyebEmulatorShape, check: (state: KoyebEmulator.EmulatorState) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) {
      const state = yield* emu.state
      if (check(state)) return state
      yield* Effect.sleep("25 millis")
    }
    return assert.fail(`state never reached: ${JSON.stringify(yield* emu.state)}`)
  })

/** A temporary base directory for the sandboxes, removed with the scope. */
const tempBase = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-sleep-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const withEmulator = <A, E>(
  body: (emu: KoyebEmulator.KoyebEmulatorShape, baseDir: string) => Effect.Effect<A, E, ControlPlane | Scope.Scope>
) =>
  Effect.gen(function*() {
    const baseDir = yield* tempBase
    const emu = yield* KoyebEmulator.make({ token: Redacted.make(TOKEN), stepDelay: "5 millis", baseDir })
    return yield* body(emu, baseDir).pipe(
      Effect.provide(NodeSandbox.layer({ token: Redacted.make(TOKEN), host: emu.url }))
    )
  })

describe("Emulator sleep and wake", () => {
  it.scopedLive(
    "sleeps (status, instance, executor stopped), wakes on the next request with files kept and processes gone",
    () =>
      withEmulator((emu, baseDir) =>
        Effect.gen(function*() {
          const cp = yield* ControlPlane
          const { info } = yield* cp.create({ name: "sleepy", idleTimeout: "1 second" })
          const endpoint = yield* cp.waitReady(info.id, fast)
          const client = yield* cp.connect(endpoint)
          yield* client.run({ cmd: "echo kept > \"$HOME/note.txt\"" })
          // A unique command line, found on the host whatever the sandbox's PID namespace.
          const sleeper = `sleep 6${String(Math.random()).slice(2, 8)}`
          yield* client.startProcess({ cmd: sleeper })
          // at once: with a 1 s idle timeout, a loaded machine may put it to sleep soon after
          assert.isNotEmpty(processesOf(sleeper))
          const deploymentId = (yield* emu.state).services.find((s) => s.id === info.id)!.activeDeploymentId
          const executorBefore = (yield* emu.state).executors.find((e) => e.deploymentId === deploymentId)!

          const asleep = yield* stateWhen(emu, (s) => s.services.find((x) => x.id === info.id)?.status === "SLEEPING")
          assert.strictEqual(asleep.deployments.find((d) => d.id === deploymentId)?.status, "SLEEPING")
          assert.deepStrictEqual(asleep.executors, [])
          assert.deepStrictEqual(yield* processesLeft(sleeper), [], "the sandbox's processes stop with it")
          assert.isTrue(Fs.existsSync(Path.join(baseDir, deploymentId)), "its files stay")
          const instances = yield* api(emu, `/v1/instances?service_id=${info.id}`)
          assert.deepStrictEqual(instances.instances.map((i: { status: string }) => i.status), ["SLEEPING"])
          const instance = yield* api(emu, `/v1/instances/${instances.instances[0].id}`)
          assert.strictEqual(instance.instance.deployment_id, deploymentId)
          assert.strictEqual((yield* cp.list).find((i) => i.id === info.id)?.status, "SLEEPING")

          // Two requests at once: one wake, both served.
          const [note, processes] = yield* Effect.all([
            client.run({ cmd: "cat \"$HOME/note.txt\"" }),
            client.listProcesses
          ], { concurrency: 2 })
          assert.strictEqual(note.stdout, "kept\n")
          assert.deepStrictEqual(processes, [])
          const awake = yield* emu.state
          assert.strictEqual(awake.services.find((s) => s.id === info.id)?.status, "HEALTHY")
          assert.strictEqual(awake.deployments.find((d) => d.id === deploymentId)?.status, "HEALTHY")
          assert.strictEqual(awake.executors.length, 1)
          assert.strictEqual(awake.executors[0]!.url, executorBefore.url, "a woken executor keeps its ports")
          assert.strictEqual(awake.executors[0]!.proxyPort, executorBefore.proxyPort)
          const woken = yield* api(emu, `/v1/instances?deployment_id=${deploymentId}`)
          assert.deepStrictEqual(woken.instances.map((i: { status: string }) => i.status), ["HEALTHY"])

          // It sleeps again after the same idle delay, and wakes again: waitReady wakes it too.
          yield* stateWhen(emu, (s) => s.services.find((x) => x.id === info.id)?.status === "SLEEPING")
          assert.strictEqual((yield* cp.waitReady(info.id, fast)).routingKey, endpoint.routingKey)
          assert.strictEqual((yield* emu.state).services.find((s) => s.id === info.id)?.status, "HEALTHY")
          yield* stateWhen(emu, (s) => s.services.find((x) => x.id === info.id)?.status === "SLEEPING")
          assert.isTrue(yield* client.isHealthy)
          yield* cp.delete(info)
          yield* stateWhen(emu, (s) => s.services.length === 0 && s.executors.length === 0)
          assert.isFalse(Fs.existsSync(Path.join(baseDir, deploymentId)), "deleting the sandbox removes its files")
        })
      ),
    { timeout: 60_000 }
  )

  it.scopedLive(
    "an exchange held open through the gateway keeps the sandbox awake",
    () =>
      withEmulator((emu) =>
        Effect.gen(function*() {
          const cp = yield* ControlPlane
          const { info } = yield* cp.create({ name: "busy", idleTimeout: "1 second" })
          const client = yield* cp.connect(yield* cp.waitReady(info.id, fast))
          // Longer than the idle timeout, in one request.
          assert.strictEqual((yield* client.run({ cmd: "sleep 2.2; echo done" })).stdout, "done\n")
          assert.strictEqual((yield* emu.state).services.find((s) => s.id === info.id)?.status, "HEALTHY")
        })
      ),
    { timeout: 60_000 }
  )

  it.scopedLive(
    "a handle still reaches its sandbox after updateLifecycle replaced the deployment",
    () =>
      withEmulator((emu) =>
        Effect.gen(function*() {
          const sandbox = yield* Sandbox.make({ name: "relocated", ...fast })
          const before = (yield* emu.state).services.find((s) => s.id === sandbox.info.id)!.activeDeploymentId
          yield* sandbox.updateLifecycle({ deleteAfterDelay: "1 hour" })
          const after = (yield* emu.state).services.find((s) => s.id === sandbox.info.id)!
          assert.notStrictEqual(after.activeDeploymentId, before, "the emulator redeploys on a lifecycle-only PUT")
          assert.strictEqual(after.status, "HEALTHY")
          assert.strictEqual((yield* sandbox.executor.run("echo still-here")).stdout, "still-here\n")
          assert.isTrue(yield* sandbox.isHealthy)
        })
      ),
    { timeout: 60_000 }
  )

  it.scopedLive(
    "delete_after_sleep deletes a sleeping sandbox and its files",
    () =>
      withEmulator((emu, baseDir) =>
        Effect.gen(function*() {
          const cp = yield* ControlPlane
          const { info } = yield* cp.create({
            name: "doomed",
            idleTimeout: "1 second",
            deleteAfterInactivityDelay: "1 second"
          })
          yield* cp.waitReady(info.id, fast)
          const deploymentId = (yield* emu.state).services.find((s) => s.id === info.id)!.activeDeploymentId
          yield* stateWhen(emu, (s) => s.services.find((x) => x.id === info.id)?.status === "SLEEPING")
          assert.isTrue(Fs.existsSync(Path.join(baseDir, deploymentId)))
          const gone = yield* stateWhen(emu, (s) => s.services.length === 0 && s.deployments.length === 0)
          assert.deepStrictEqual(gone, { apps: [], services: [], deployments: [], executors: [] })
          assert.isFalse(Fs.existsSync(Path.join(baseDir, deploymentId)))
        })
      ),
    { timeout: 60_000 }
  )
})

/** Waits (bounded) until `path` no longer exists. */
/** The command lines of the host processes matching `text`, once they are gone or 2 s have passed (SIGKILL is asynchronous). */
const processesLeft = (text: string) =>
  Effect.gen(function*() {
    let left = processesOf(text)
    for (let i = 0; i < 80 && left.length > 0; i++) {
      yield* Effect.sleep("25 millis")
      left = processesOf(text)
    }
    return left.map((pid) => readProc(String(pid), "cmdline"))
  })

const gone = (path: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200 && Fs.existsSync(path); i++) yield* Effect.sleep("25 millis")
    assert.isFalse(Fs.existsSync(path), `${path} is still there`)
  })

/** Waits (bounded) until the local sandbox `id` is listed with `status`, or is gone for "DELETED". */
const listedAs = (id: string, status: string) =>
  Effect.gen(function*() {
    const cp = yield* ControlPlane
    for (let i = 0; i < 200; i++) {
      const found = (yield* cp.list).find((info) => info.id === id)
      if ((found?.status ?? "DELETED") === status) return
      yield* Effect.sleep("25 millis")
    }
    return assert.fail(`sandbox ${id} never became ${status}`)
  })

describe("Local backend sleep and wake", () => {
  const local = <A, E>(body: (baseDir: string) => Effect.Effect<A, E, ControlPlane | Scope.Scope>) =>
    Effect.flatMap(tempBase, (baseDir) => body(baseDir).pipe(Effect.provide(LocalControlPlane.layer({ baseDir }))))

  it.scopedLive(
    "sleeps after idleTimeout (executor stopped, files kept); a call wakes it at the same address",
    () =>
      local((baseDir) =>
        Effect.gen(function*() {
          const cp = yield* ControlPlane
          const { endpoint, info } = yield* cp.create({ idleTimeout: "400 millis" })
          const client = yield* cp.connect(endpoint)
          const exposed = yield* cp.exposedUrl(info.id)
          yield* client.run({ cmd: "echo kept > \"$HOME/note.txt\"" })
          const sleeper = `sleep 7${String(Math.random()).slice(2, 8)}`
          yield* client.startProcess({ cmd: sleeper })
          assert.isNotEmpty(processesOf(sleeper))

          yield* listedAs(info.id, "SLEEPING")
          assert.deepStrictEqual(yield* processesLeft(sleeper), [], "the sandbox's processes stop with it")
          assert.deepStrictEqual(yield* processesLeft(Path.join(baseDir, info.id)), [], "no executor runs")
          assert.isTrue(Fs.existsSync(Path.join(baseDir, info.id, "home", "note.txt")), "its files stay")

          // The next call through the same client wakes it.
          assert.strictEqual((yield* client.run({ cmd: "cat \"$HOME/note.txt\"" })).stdout, "kept\n")
          assert.deepStrictEqual(yield* client.listProcesses, [])
          assert.strictEqual((yield* cp.list).find((i) => i.id === info.id)?.status, "HEALTHY")
          assert.strictEqual(yield* cp.exposedUrl(info.id), exposed)

          // waitReady wakes it too.
          yield* listedAs(info.id, "SLEEPING")
          const again = yield* cp.waitReady(info.id, fast)
          assert.strictEqual(again.url, endpoint.url)
          assert.strictEqual((yield* cp.list).find((i) => i.id === info.id)?.status, "HEALTHY")
        })
      ),
    { timeout: 60_000 }
  )

  it.scopedLive("a program that exits while its sandbox sleeps leaves no directory", () =>
    Effect.gen(function*() {
      const baseDir = yield* tempBase
      const fixture = Url.fileURLToPath(new URL("./fixtures/sleepingParent.ts", import.meta.url))
      const child = ChildProcess.spawn(process.execPath, ["--import", "tsx", fixture, baseDir], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      const { id } = JSON.parse(yield* firstLine(child, "sleepingParent")) as { id: string }
      yield* gone(Path.join(baseDir, id))
    }), { timeout: 60_000 })

  it.scopedLive("a connection held open to the exposed port keeps it awake", () =>
    local(() =>
      Effect.gen(function*() {
        const cp = yield* ControlPlane
        const { endpoint, info } = yield* cp.create({ idleTimeout: "400 millis" })
        const client = yield* cp.connect(endpoint)
        const server = "require('net').createServer((s) => s.resume()).listen(8123, '127.0.0.1')"
        yield* client.startProcess({ cmd: `node -e "${server}"` })
        const probe =
          "require('net').connect(8123, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))"
        for (let i = 0; i < 100 && (yield* client.run({ cmd: `node -e "${probe}"` })).code !== 0; i++) {
          yield* Effect.sleep("25 millis")
        }
        yield* client.bindPort("8123")
        const url = new URL(yield* cp.exposedUrl(info.id))
        const socket = yield* Effect.acquireRelease(
          Effect.async<Net.Socket>((resume) => {
            const socket = Net.connect(Number(url.port), url.hostname, () => resume(Effect.succeed(socket)))
          }),
          (socket) => Effect.sync(() => socket.destroy())
        )
        yield* Effect.sleep("1500 millis")
        assert.strictEqual((yield* cp.list).find((i) => i.id === info.id)?.status, "HEALTHY")
        socket.destroy()
        yield* listedAs(info.id, "SLEEPING")
      })
    ), { timeout: 60_000 })

  it.scopedLive(
    "deleteAfterInactivityDelay deletes a sleeping sandbox and its files",
    () =>
      local((baseDir) =>
        Effect.gen(function*() {
          const cp = yield* ControlPlane
          const { info } = yield* cp.create({ idleTimeout: "300 millis", deleteAfterInactivityDelay: "300 millis" })
          yield* listedAs(info.id, "SLEEPING")
          assert.isTrue(Fs.existsSync(Path.join(baseDir, info.id)))
          yield* listedAs(info.id, "DELETED")
          yield* gone(Path.join(baseDir, info.id))
        })
      ),
    { timeout: 60_000 }
  )
})
