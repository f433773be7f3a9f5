/**
 * The safety net of sandboxes made by the scoped constructors (`Sandbox.make`, `Sandbox.layer`,
 * the Promise facade's `create`). A process that dies without closing its scope (SIGKILL, a dead
 * machine) cannot delete anything, so such a sandbox carries a lifecycle that deletes it once its
 * program is gone: it sleeps after `idleTimeout` without inbound traffic and is deleted
 * `deleteAfterInactivityDelay` after falling asleep. While the scope is open, a keep-alive (a
 * `/health` request through the gateway every third of the idle timeout) keeps a live but quiet
 * program's sandbox awake.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { CreateOptions } from "../ControlPlane.js"

/**
 * Idle timeout of a scoped sandbox: short, so that a crashed program's sandbox stops soon, yet
 * three keep-alive periods long, so that a live program survives two lost or late keep-alives.
 */
export const SCOPED_IDLE_TIMEOUT = Duration.minutes(2)

/**
 * Deletion delay after sleep of a scoped sandbox: a deep-slept sandbox wakes without its processes
 * and bound port (Koyeb's docs even describe a fresh container), so there is little to keep; the
 * delay leaves a moment to notice before the service goes.
 */
export const SCOPED_DELETE_AFTER_SLEEP = Duration.minutes(1)

/** The options a scoped constructor creates with: the safety-net delays unless the caller set them (0 included). */
export const scopedOptions = (options: CreateOptions): CreateOptions => ({
  ...options,
  idleTimeout: options.idleTimeout ?? SCOPED_IDLE_TIMEOUT,
  deleteAfterInactivityDelay: options.deleteAfterInactivityDelay ?? SCOPED_DELETE_AFTER_SLEEP
})

/**
 * Keeps the sandbox awake while the scope is open: `touch` (a request that reaches the sandbox and
 * never fails) every third of the idle timeout, on a fiber of the scope. Nothing when the sandbox
 * never sleeps.
 */
export const keepAlive = (
  options: CreateOptions,
  touch: Effect.Effect<boolean>
): Effect.Effect<void, never, Scope.Scope> =>
  Option.match(
    Option.filter(
      Duration.decodeUnknown(options.idleTimeout ?? SCOPED_IDLE_TIMEOUT),
      (idle) => Duration.isFinite(idle) && Duration.toMillis(idle) > 0
    ),
    {
      onNone: () => Effect.void,
      onSome: (idle) =>
        // the first after one period: the sandbox was just created, and its first calls are traffic
        Effect.delay(touch, Duration.unsafeDivide(idle, 3)).pipe(
          Effect.forever,
          Effect.interruptible,
          Effect.forkScoped,
          Effect.asVoid
        )
    }
  )
