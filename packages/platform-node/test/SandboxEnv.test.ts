/**
 * A sandbox's environment (`CreateOptions.env`) is checked the same way by every control plane,
 * before anything is created: the local one (its sandboxes' directory stays empty), Koyeb's
 * (against the emulator over loopback: no app is made) and `Testing`'s in-memory one.
 */
import * as ControlPlane from "@effect-koyeb/core/ControlPlane"
import * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import * as Testing from "@effect-koyeb/core/Testing"
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Fs from "node:fs"
import { withPlane } from "./utils/localPlane.js"

const TOKEN = Redacted.make("sandbox-env-token")

/** Environments no sandbox can have, and the start of the `InvalidArgument`'s detail. */
const bad: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
  [{ SANDBOX_SECRET: "x" }, "SANDBOX_SECRET is reserved"],
  [{ "": "x" }, "invalid variable name"],
  [{ "A=B": "x" }, "invalid variable name"],
  [{ "A\u0000": "x" }, "invalid variable name"],
  [{ A: "x\u0000y" }, "the value of A contains a NUL"],
  [{ A: 1 }, "the value of A is not a string"],
  [{ A: null }, "the value of A is not a string"]
]

/** Each bad environment fails `create` with an `InvalidArgument` naming `env`. */
const refusesAll = (cp: ControlPlane.ControlPlaneShape) =>
  Effect.forEach(bad, ([env, detail]) =>
    Effect.gen(function*() {
      const label = JSON.stringify(env)
      const error = yield* Effect.flip(cp.create({ env: env as Record<string, string> }))
      assert.strictEqual(error._tag, "InvalidArgument", label)
      if (error._tag !== "InvalidArgument") return
      assert.strictEqual(error.argument, "env", label)
      assert.isTrue(error.detail.startsWith(detail), `${label}: ${error.detail}`)
    }))

describe("the environment of a new sandbox", () => {
  it.effect("ControlPlane.checkEnv: good and bad environments", () =>
    Effect.gen(function*() {
      yield* ControlPlane.checkEnv(undefined)
      yield* ControlPlane.checkEnv({ A: "", PATH: "/bin", "a.b-c": "{{ secret.X }}" })
      for (const [env, detail] of bad) {
        const error = yield* Effect.flip(ControlPlane.checkEnv(env as Record<string, string>))
        assert.isTrue(error.detail.startsWith(detail), error.detail)
      }
    }))

  it.scopedLive("the local control plane refuses it before making anything", () =>
    withPlane("none", (cp, baseDir) =>
      Effect.gen(function*() {
        yield* refusesAll(cp)
        assert.deepStrictEqual(Fs.readdirSync(baseDir), [])
      })))

  it.scoped("the in-memory control plane refuses it too", () =>
    Effect.gen(function*() {
      yield* refusesAll(yield* ControlPlane.ControlPlane)
      const memory = yield* Testing.MemoryControlPlane
      assert.deepStrictEqual(yield* memory.created, [])
    }).pipe(Effect.provide(Testing.layerControlPlaneMemory())))

  it.scopedLive("Koyeb's control plane refuses it before any request", () =>
    Effect.gen(function*() {
      const emulator = yield* KoyebEmulator.KoyebEmulator
      const cp = yield* KoyebControlPlane.make({ token: TOKEN, host: emulator.url })
      yield* refusesAll(cp)
      assert.deepStrictEqual(yield* cp.list, [])
    }).pipe(
      Effect.provide(
        Layer.merge(KoyebEmulator.layer({ token: TOKEN, isolation: "none" }), NodeHttpClient.layerUndici)
      )
    ))
})
