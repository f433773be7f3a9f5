/**
 * The release of scoped sandboxes: deleted once whichever closes first (the sandbox's scope or
 * its control plane), concurrent releases sharing the one delete, a bounded delete, and a failed
 * delete surfacing as a `SandboxLeaked` defect rather than a log line.
 */
import { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import { ApiError, isSandboxError, SandboxLeaked } from "@effect-koyeb/core/SandboxError"
import { SandboxInfo } from "@effect-koyeb/core/SandboxSchema"
import * as Testing from "@effect-koyeb/core/Testing"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { releaseOnce, withAdoption } from "../src/internal/sandboxRelease.js"

const info = new SandboxInfo({
  id: "sandbox-1",
  appId: "app-1",
  name: "release",
  region: "na",
  instanceType: "micro",
  image: "koyeb/sandbox",
  createdAt: new Date(0),
  ownsApp: true
})

const leakOf = (exit: Exit.Exit<unknown, unknown>): Option.Option<SandboxLeaked> =>
  Exit.isSuccess(exit)
    ? Option.none()
    : Cause.find(
      exit.cause,
      (c) => Cause.isDieType(c) && c.defect instanceof SandboxLeaked ? Option.some(c.defect) : Option.none()
    )

/** A control plane whose `delete` counts its calls and runs `outcome`. */
const counting = (outcome: Effect.Effect<void, ApiError> = Effect.void) =>
  Effect.map(Ref.make(0), (calls) => ({
    calls,
    controlPlane: {
      delete: () => Effect.zipRight(Ref.update(calls, (n) => n + 1), outcome)
    } as unknown as ControlPlane["Type"]
  }))

const failure = new ApiError({
  status: 503,
  code: "UNAVAILABLE",
  detail: "down",
  method: "DELETE",
  url: "/v1/apps/app-1"
})

describe("Sandbox release", () => {
  it.effect("the memory control plane deletes a sandbox when it closes before the sandbox's scope", () =>
    Effect.gen(function*() {
      const { id, inspect } = yield* Effect.gen(function*() {
        const inspect = yield* Testing.MemoryControlPlane
        const sandbox = yield* Sandbox.make()
        return { id: sandbox.info.id, inspect }
      }).pipe(
        Effect.provide(Testing.layerControlPlaneMemory()),
        Effect.tap(({ id, inspect }) =>
          Effect.map(
            inspect.deleted,
            (deleted) => assert.deepStrictEqual(deleted, [id], "deleted by the control plane")
          )
        ),
        Effect.scoped
      )
      assert.deepStrictEqual(yield* inspect.deleted, [id], "not deleted again by the scope")
    }))

  it.effect("adopted: released once, whether by concurrent releases or the control plane's close", () =>
    Effect.gen(function*() {
      const { calls, controlPlane } = yield* counting(Effect.sleep("10 millis"))
      const scope = yield* Scope.make()
      const adopting = yield* Scope.extend(withAdoption(controlPlane), scope)
      const remove = yield* adopting.adopt!(info)
      const fibers = yield* Effect.all([remove, remove, Scope.close(scope, Exit.void), remove].map(Effect.fork))
      yield* TestClock.adjust("10 millis")
      for (const fiber of fibers) assert.isTrue(Exit.isSuccess(yield* Fiber.await(fiber)))
      assert.strictEqual(yield* Ref.get(calls), 1)
    }))

  it.effect("adopted and released: the control plane's close does not delete it again", () =>
    Effect.gen(function*() {
      const { calls, controlPlane } = yield* counting()
      const scope = yield* Scope.make()
      const adopting = yield* Scope.extend(withAdoption(controlPlane), scope)
      yield* Effect.flatten(adopting.adopt!(info))
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* Ref.get(calls), 1)
    }))

  it.effect("a failed delete dies with SandboxLeaked, at the control plane's close and again at the release", () =>
    Effect.gen(function*() {
      const { calls, controlPlane } = yield* counting(Effect.fail(failure))
      const scope = yield* Scope.make()
      const adopting = yield* Scope.extend(withAdoption(controlPlane), scope)
      const remove = yield* adopting.adopt!(info)
      const closed = yield* Effect.exit(Scope.close(scope, Exit.void))
      const leak = Option.getOrThrow(leakOf(closed))
      assert.isTrue(isSandboxError(leak))
      assert.deepStrictEqual([leak.id, leak.name], [info.id, info.name])
      assert.include(leak.detail, "down")
      assert.strictEqual(Option.getOrThrow(leakOf(yield* Effect.exit(remove))), leak)
      assert.strictEqual(yield* Ref.get(calls), 1)
    }))

  it.effect("the delete is bounded in time", () =>
    Effect.gen(function*() {
      const { controlPlane } = yield* counting(Effect.sleep("1 hour"))
      const remove = yield* releaseOnce(controlPlane, info, "1 minute")
      const fiber = yield* Effect.fork(remove)
      yield* TestClock.adjust("1 minute")
      const leak = Option.getOrThrow(leakOf(yield* Fiber.await(fiber)))
      assert.include(leak.detail, "60000")
    }))

  it.effect("an interrupted release is not abandoned: the interruption waits for the delete", () =>
    Effect.gen(function*() {
      const done = yield* Ref.make(false)
      const { controlPlane } = yield* counting(Effect.zipRight(Effect.sleep("1 second"), Ref.set(done, true)))
      const remove = yield* releaseOnce(controlPlane, info)
      const fiber = yield* Effect.fork(remove)
      yield* TestClock.adjust("10 millis")
      const interrupting = yield* Effect.fork(Fiber.interrupt(fiber))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(interrupting)
      assert.isTrue(yield* Ref.get(done), "the delete ran to its end before the interruption returned")
    }))

  it.effect("Sandbox.make over a control plane without adopt: a failed delete fails the scope with SandboxLeaked", () =>
    Effect.gen(function*() {
      const failingDelete = Layer.effect(
        ControlPlane,
        Effect.map(ControlPlane, (cp) => ({ ...cp, adopt: undefined, delete: () => Effect.fail(failure) }))
      ).pipe(Layer.provide(Testing.layerControlPlaneMemory()))
      const exit = yield* Sandbox.make({ name: "leaky" }).pipe(
        Effect.scoped,
        Effect.provide(failingDelete),
        Effect.exit
      )
      const leak = Option.getOrThrow(leakOf(exit))
      assert.strictEqual(leak.name, "leaky")
      assert.include(leak.message, leak.id)
    }))
})
