/**
 * The idle timers of local sandboxes wait on events, not on a polling tick: `untilIdleFor` wakes at
 * its deadline only (so an idle sandbox costs no CPU), and `untilActive` at the next call.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import { makeActivity, touch, trackClient, untilActive, untilIdleFor } from "../src/internal/activity.js"

describe("Activity", () => {
  it.effect("untilIdleFor completes once no call began or ended for the period; a call postpones it", () =>
    Effect.gen(function*() {
      const activity = yield* makeActivity
      const fiber = yield* Effect.fork(untilIdleFor(activity, 1000))
      yield* TestClock.adjust("600 millis")
      yield* touch(activity)
      yield* TestClock.adjust("600 millis")
      assert.isNull(fiber.unsafePoll())
      yield* TestClock.adjust("400 millis")
      yield* Fiber.join(fiber)
    }))

  it.effect("a call in flight keeps it from completing, however long it runs", () =>
    Effect.gen(function*() {
      const activity = yield* makeActivity
      const client = trackClient({ run: () => Effect.sleep("5 seconds") } as never, activity) as unknown as {
        readonly run: () => Effect.Effect<void>
      }
      const call = yield* Effect.fork(client.run())
      const fiber = yield* Effect.fork(untilIdleFor(activity, 1000))
      yield* TestClock.adjust("4 seconds")
      assert.isNull(fiber.unsafePoll())
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(call)
      yield* TestClock.adjust("999 millis")
      assert.isNull(fiber.unsafePoll())
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(fiber)
    }))

  it.effect("busy() is asked at the deadline only, and counts as traffic while it holds", () =>
    Effect.gen(function*() {
      const activity = yield* makeActivity
      let asked = 0
      let connected = true
      const fiber = yield* Effect.fork(untilIdleFor(activity, 1000, () => {
        asked++
        return connected
      }))
      yield* TestClock.adjust("3500 millis")
      assert.strictEqual(asked, 3)
      connected = false
      yield* TestClock.adjust("500 millis")
      yield* Fiber.join(fiber)
      assert.strictEqual(asked, 4)
    }))

  it.effect("untilActive completes at the next call, not before", () =>
    Effect.gen(function*() {
      const activity = yield* makeActivity
      const fiber = yield* Effect.fork(untilActive(activity))
      yield* TestClock.adjust("1 hour")
      assert.isNull(fiber.unsafePoll())
      yield* touch(activity)
      yield* Fiber.join(fiber)
    }))
})
