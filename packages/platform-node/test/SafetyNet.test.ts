/**
 * The safety net on Koyeb for programs that die without closing their scope: the emulator puts a
 * service to sleep after `deep_sleep_value` seconds without gateway traffic and deletes it
 * `delete_after_sleep` seconds later; `Sandbox.make` sets both and keeps its sandbox awake while
 * its scope is open.
 */
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as ChildProcess from "node:child_process"
import * as Url from "node:url"
import * as EmulatorServer from "../src/internal/emulator/server.js"
import { firstLine } from "./utils/childOutput.js"
import * as FakeExecutors from "./utils/fakeExecutor.js"
import { settled } from "./utils/settled.js"

const TOKEN = "safety-net-token"
const SECRET = "sandbox-secret-0123456789"

const api = (emu: KoyebEmulator.KoyebEmulatorShape, method: string, path: string, body?: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(`${emu.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const text = await response.text()
    return { status: response.status, body: text === "" ? undefined : JSON.parse(text) }
  })

const definition = (sleepAfter: number) => ({
  name: "sleepy",
  type: "SANDBOX",
  routes: [{ port: 3030, path: "/koyeb-sandbox/" }, { port: 3031, path: "/" }],
  ports: [{ port: 3030, protocol: "http" }, { port: 3031, protocol: "http" }],
  env: [{ key: "SANDBOX_SECRET", value: SECRET }],
  regions: ["na"],
  scalings: [{ min: 0, max: 1, targets: [{ sleep_idle_delay: { deep_sleep_value: sleepAfter } }] }],
  instance_types: [{ type: "micro" }],
  docker: { image: "koyeb/sandbox", privileged: false }
})

describe("KoyebEmulator sleep and delete_after_sleep under a TestClock", () => {
  it.scoped("sleeps after deep_sleep_value seconds without traffic, then deletes after delete_after_sleep", () =>
    Effect.gen(function*() {
      const executors = yield* FakeExecutors.make()
      const emu = yield* EmulatorServer.make({ token: Redacted.make(TOKEN), stepDelay: "1 second" }, executors.spawn)
      const app = yield* api(emu, "POST", "/v1/apps", { name: "sleepy-app", life_cycle: { delete_when_empty: true } })
      const created = yield* api(emu, "POST", "/v1/services", {
        app_id: app.body.app.id,
        definition: definition(120),
        life_cycle: { delete_after_create: 0, delete_after_sleep: 60 }
      })
      assert.strictEqual(created.status, 200)
      const serviceId = created.body.service.id as string
      const deploymentId = created.body.service.latest_deployment_id as string
      const service = Effect.map(api(emu, "GET", `/v1/services/${serviceId}`), (r) => r.body?.service)
      const deployment = Effect.map(api(emu, "GET", `/v1/deployments/${deploymentId}`), (r) => r.body.deployment)

      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* settled(service, (s) => s.status === "HEALTHY")).status, "HEALTHY")
      // Traffic through the gateway (even one the executor cannot answer) restarts the idle timer.
      yield* TestClock.adjust("100 seconds")
      const routingKey = (yield* deployment).metadata.sandbox.routing_key as string
      yield* Effect.promise(() =>
        fetch(`${emu.url}/koyeb-sandbox/health`, { headers: { "x-routing-key": routingKey } })
      )
      yield* TestClock.adjust("119 seconds")
      assert.strictEqual((yield* settled(service, () => false)).status, "HEALTHY")
      assert.deepStrictEqual(yield* executors.alive, [deploymentId])

      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* settled(service, (s) => s.status === "SLEEPING")).status, "SLEEPING")
      assert.strictEqual((yield* deployment).status, "SLEEPING")
      assert.deepStrictEqual(yield* settled(executors.alive, (alive) => alive.length === 0), [])

      yield* TestClock.adjust("59 seconds")
      assert.strictEqual((yield* settled(service, () => false)).status, "SLEEPING")
      yield* TestClock.adjust("1 second")
      const state = yield* settled(emu.state, (s) => s.services.length === 0 && s.deployments.length === 0)
      assert.deepStrictEqual(state, { apps: [], services: [], deployments: [], executors: [] })
    }))

  it.scoped("never sleeps without a scale-to-zero scaling, and never deletes after sleep when the delay is 0", () =>
    Effect.gen(function*() {
      const executors = yield* FakeExecutors.make()
      const emu = yield* EmulatorServer.make({ token: Redacted.make(TOKEN), stepDelay: "1 second" }, executors.spawn)
      const app = yield* api(emu, "POST", "/v1/apps", { name: "awake-app" })
      const awake = yield* api(emu, "POST", "/v1/services", {
        app_id: app.body.app.id,
        definition: { ...definition(0), name: "awake", scalings: [{ min: 1, max: 1 }] },
        life_cycle: { delete_after_sleep: 60 }
      })
      const kept = yield* api(emu, "POST", "/v1/services", {
        app_id: app.body.app.id,
        definition: { ...definition(30), name: "kept" },
        life_cycle: { delete_after_sleep: 0 }
      })
      const statusOf = (id: string) => Effect.map(api(emu, "GET", `/v1/services/${id}`), (r) => r.body.service.status)
      yield* TestClock.adjust("2 seconds")
      yield* settled(statusOf(kept.body.service.id), (s) => s === "HEALTHY")
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(yield* settled(statusOf(kept.body.service.id), (s) => s === "SLEEPING"), "SLEEPING")
      assert.strictEqual(yield* settled(statusOf(awake.body.service.id), () => false), "HEALTHY")
    }))
})

const fixture = Url.fileURLToPath(new URL("./fixtures/scopedHolder.ts", import.meta.url))

/** Starts the fixture program holding a sandbox; returns the child and the sandbox id once it is ready. */
const holder = (emu: KoyebEmulator.KoyebEmulatorShape, name: string, idle: number, afterSleep: number) =>
  Effect.gen(function*() {
    const child = ChildProcess.spawn(
      process.execPath,
      ["--import", "tsx", fixture, name, String(idle), String(afterSleep)],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KOYEB_API_HOST: emu.url, KOYEB_API_TOKEN: TOKEN } }
    )
    yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
    const line = yield* firstLine(child, "holder")
    return { child, id: (JSON.parse(line) as { id: string }).id }
  })

describe("Sandbox.make's safety net against the emulator", () => {
  it.scopedLive(
    "a SIGKILLed program's sandbox is deleted within idle + delete-after-sleep; a live quiet one is kept",
    () =>
      Effect.gen(function*() {
        const emu = yield* KoyebEmulator.make({ token: Redacted.make(TOKEN), stepDelay: "5 millis", isolation: "none" })
        const idle = 2
        const afterSleep = 1
        const [killed, live] = yield* Effect.all([
          holder(emu, "killed", idle, afterSleep),
          holder(emu, "live", idle, afterSleep)
        ], { concurrency: 2 })
        const statusOf = (id: string) =>
          Effect.map(emu.state, (s) => s.services.find((service) => service.id === id)?.status ?? "DELETED")
        assert.strictEqual(yield* statusOf(killed.id), "HEALTHY")
        killed.child.kill("SIGKILL")
        const killedAt = Date.now()

        // Deleted once idle + delete-after-sleep have passed (plus slack for the emulator's timers).
        let status = yield* statusOf(killed.id)
        while (status !== "DELETED" && Date.now() - killedAt < (idle + afterSleep + 5) * 1000) {
          yield* Effect.sleep("100 millis")
          status = yield* statusOf(killed.id)
        }
        assert.strictEqual(status, "DELETED", "the killed program's sandbox is deleted")
        assert.isAtLeast(Date.now() - killedAt, (idle - 1) * 1000, "not before it was idle")
        const state = yield* emu.state
        assert.isFalse(state.apps.some((a) => a.name.includes("-killed-")), "its app is deleted with it")

        // The live program's sandbox stays awake across more than the same delay.
        yield* Effect.sleep(`${Math.max(0, (idle + afterSleep + 1) * 1000 - (Date.now() - killedAt))} millis`)
        assert.strictEqual(yield* statusOf(live.id), "HEALTHY", "the live program's sandbox is kept awake")
        assert.isNull(live.child.exitCode)
      }),
    { timeout: 60_000 }
  )
})
