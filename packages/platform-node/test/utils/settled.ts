/**
 * Waiting without time passing: for tests driven by a `TestClock`.
 */
import * as Effect from "effect/Effect"

/** Runs `effect` until `done` holds of its value (at most 100 times), letting other fibers run in between; no time passes. */
export const settled = <A>(effect: Effect.Effect<A>, done: (a: A) => boolean) =>
  Effect.gen(function*() {
    let value = yield* effect
    for (let i = 0; i < 100 && !done(value); i++) {
      yield* Effect.yieldNow()
      value = yield* effect
    }
    return value
  })
