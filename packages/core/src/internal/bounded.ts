/**
 * Time bounds that also hold in finalizers.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { Timeout } from "../SandboxError.js"

/** `effect`, failing with `Timeout` naming `operation` after `timeout`; unbounded when `timeout` is undefined. */
export const withTimeout = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  operation: string,
  timeout: Duration.DurationInput | undefined
): Effect.Effect<A, E | Timeout, R> =>
  timeout === undefined ? effect : Effect.timeoutFail(effect, {
    duration: timeout,
    onTimeout: () => new Timeout({ operation, timeoutMillis: Duration.toMillis(timeout) })
  })

/**
 * `self`, failing with `onTimeout()` when it has not ended after `duration`, wherever it runs.
 * `Effect.timeout` cannot end a wait inside an uninterruptible region (a finalizer, a cleanup),
 * and making the wait interruptible there lets the caller's own pending interruption cut it short
 * at once (a kill request never sent). So the bounded effect runs on a fiber of its own; the
 * caller joins it, and interrupts it only when the caller itself is interrupted while interruptible.
 */
export const timeoutDetached = <A, E, R, E2>(
  self: Effect.Effect<A, E, R>,
  options: { readonly duration: Duration.DurationInput; readonly onTimeout: () => E2 }
): Effect.Effect<A, E | E2, R> =>
  Effect.flatMap(
    Effect.forkDaemon(Effect.timeoutFail(Effect.interruptible(self), options)),
    (fiber) => Effect.onInterrupt(Fiber.join(fiber), () => Fiber.interrupt(fiber))
  )
