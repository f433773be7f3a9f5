/**
 * Finding and removing leftovers against the emulator: `Cleanup.leftovers` / `collect` /
 * `assertNone`, the `effect-koyeb list` and `gc` commands, and `Sandboxes.assertNoLeftovers`.
 */
import * as Cleanup from "@effect-koyeb/core/Cleanup"
import { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import * as Sandboxes from "@effect-koyeb/platform-node/Sandboxes"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { runCli } from "./utils/cliBin.js"

const TOKEN = "cleanup-token"

/** Waits (bounded) until `check` holds of the emulator's state. */
const stateWhen = (
  emu: KoyebEmulator.KoyebEmulatorShape,
  check: (state: KoyebEmulator.EmulatorState) => boolean
) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) {
      const state = yield* emu.state
      if (check(state)) return state
      yield* Effect.sleep("50 millis")
    }
    return assert.fail(`state never reached: ${JSON.stringify(yield* emu.state)}`)
  })

const statusOf = (state: KoyebEmulator.EmulatorState, id: string) =>
  state.services.find((s) => s.id === id)?.status ?? "DELETED"

const fast = { pollInterval: "50 millis", timeout: "60 seconds" } as const

describe("Cleanup against the emulator", () => {
  it.scopedLive(
    "leftovers, collect (dry run, threshold, delete with the SDK's app), assertNone, list and gc",
    () =>
      Effect.flatMap(
        KoyebEmulator.make({ token: Redacted.make(TOKEN), stepDelay: "5 millis", isolation: "none" }),
        (emu) => scenario(emu).pipe(Effect.provide(NodeSandbox.layer({ token: Redacted.make(TOKEN), host: emu.url })))
      ),
    { timeout: 120_000 }
  )
})

const koyebOf = (emu: KoyebEmulator.KoyebEmulatorShape) =>
  ({ backend: "koyeb", koyeb: { host: emu.url, token: Redacted.make(TOKEN) } }) as const

const scenario = (emu: KoyebEmulator.KoyebEmulatorShape) =>
  Effect.gen(function*() {
    const env = { KOYEB_API_TOKEN: TOKEN, KOYEB_API_HOST: emu.url }
    const cp = yield* ControlPlane
    // Held: made by Sandbox.make in a scope still open (its keep-alive keeps it awake).
    const heldScope = yield* Scope.make()
    const held = yield* Sandbox.make({ name: "held", idleTimeout: "1 second", ...fast }).pipe(Scope.extend(heldScope))
    // Abandoned: made by the SDK, then nobody holds it; it falls asleep and stays (no delete after sleep).
    const abandoned = (yield* cp.create({ name: "abandoned", idleTimeout: "1 second" })).info
    yield* cp.waitReady(abandoned.id, fast)
    // In an app the user supplied: never the SDK's to delete.
    const userApp = yield* Effect.promise(() =>
      fetch(`${emu.url}/v1/apps`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "my-own-app" })
      }).then((r) => r.json() as Promise<{ app: { id: string } }>)
    )
    const mine = (yield* cp.create({ name: "mine", appId: userApp.app.id, idleTimeout: "1 second" })).info
    yield* cp.waitReady(mine.id, fast)
    yield* stateWhen(emu, (s) => statusOf(s, abandoned.id) === "SLEEPING" && statusOf(s, mine.id) === "SLEEPING")

    const listed = yield* cp.list
    const byId = new Map(listed.map((i) => [i.id, i]))
    assert.strictEqual(byId.get(held.info.id)?.managed, true)
    assert.strictEqual(byId.get(held.info.id)?.status, "HEALTHY")
    assert.isUndefined(byId.get(held.info.id)?.lastActivity)
    assert.strictEqual(byId.get(abandoned.id)?.managed, true)
    assert.strictEqual(byId.get(abandoned.id)?.status, "SLEEPING")
    const lastActivity = byId.get(abandoned.id)?.lastActivity
    assert.isDefined(lastActivity)
    assert.isAtMost(lastActivity!.getTime(), Date.now() - 1000)
    assert.isAtLeast(lastActivity!.getTime(), abandoned.createdAt.getTime())
    assert.strictEqual(byId.get(mine.id)?.managed, false)

    const ids = (infos: ReadonlyArray<{ readonly id: string }>) => infos.map((i) => i.id).sort()
    assert.deepStrictEqual(ids(yield* Cleanup.leftovers()), [held.info.id, abandoned.id].sort())
    const failure = yield* Effect.flip(Cleanup.assertNone())
    assert.strictEqual(failure._tag, "LeftoverSandboxes")
    assert.include(failure.message, abandoned.id)
    assert.include(failure.message, held.info.id)
    assert.deepStrictEqual(yield* Cleanup.leftovers({ olderThan: "1 hour" }), [])
    const rejected = yield* Effect.promise(() =>
      Sandboxes.assertNoLeftovers(koyebOf(emu)).then(() => undefined, (e) => e)
    )
    assert.isTrue(Sandboxes.isSandboxFailure(rejected))
    assert.strictEqual(rejected._tag, "LeftoverSandboxes")
    assert.include(rejected.message, abandoned.id)

    // The CLI shows them, and gc with the default threshold (1 hour) deletes nothing yet.
    const table = yield* runCli(["list"], env)
    assert.strictEqual(table.code, 0, table.stderr)
    assert.match(table.stdout, /^ID +NAME +REGION +TYPE +CREATED +AGE +STATUS +LAST ACTIVE +SDK\n/)
    assert.match(table.stdout, new RegExp(`\\n${abandoned.id} +abandoned .* SLEEPING +\\d+s ago +yes\\n`))
    assert.match(table.stdout, new RegExp(`\\n${held.info.id} +held .* HEALTHY +now +yes\\n`))
    assert.match(table.stdout, new RegExp(`\\n${mine.id} +mine .* SLEEPING +\\d+s ago +no\\n`))
    const listedJson = yield* runCli(["list", "--json"], env)
    const abandonedJson = JSON.parse(listedJson.stdout).find((i: { id: string }) => i.id === abandoned.id)
    assert.include(abandonedJson, { managed: true, status: "SLEEPING" })
    assert.deepStrictEqual(yield* runCli(["gc"], env), { code: 0, stdout: "", stderr: "" })
    assert.deepStrictEqual(yield* Cleanup.collect(), [])

    // Dry run: reported, not deleted.
    const dry = yield* runCli(["gc", "--older-than", "0", "--dry-run"], env)
    assert.deepStrictEqual(dry, { code: 0, stdout: `would delete ${abandoned.id} abandoned\n`, stderr: "" })
    assert.deepStrictEqual(ids(yield* Cleanup.collect({ olderThan: 0, dryRun: true })), [abandoned.id])
    assert.strictEqual(statusOf(yield* emu.state, abandoned.id), "SLEEPING")

    // gc deletes the unheld SDK sandbox with its app; the held one and the user's app stay.
    const collected = yield* runCli(["gc", "--older-than", "0", "--json"], env)
    assert.strictEqual(collected.code, 0, collected.stderr)
    assert.deepStrictEqual(JSON.parse(collected.stdout).sandboxes.map((i: { id: string }) => i.id), [abandoned.id])
    const after = yield* stateWhen(emu, (s) => statusOf(s, abandoned.id) === "DELETED")
    assert.isFalse(after.apps.some((a) => a.id === abandoned.appId), "the SDK's app is deleted")
    assert.isTrue(after.apps.some((a) => a.id === userApp.app.id), "the user's app stays")
    assert.strictEqual(statusOf(after, held.info.id), "HEALTHY")
    assert.strictEqual(statusOf(after, mine.id), "SLEEPING")
    assert.deepStrictEqual(yield* Cleanup.collect({ olderThan: 0 }), [])

    // Once the held sandbox's scope closes, nothing of the SDK's is left.
    yield* Scope.close(heldScope, Exit.void)
    yield* stateWhen(emu, (s) => statusOf(s, held.info.id) === "DELETED")
    yield* Cleanup.assertNone()
    yield* Effect.promise(() => Sandboxes.assertNoLeftovers(koyebOf(emu)))
  }).pipe(Effect.orDie)
