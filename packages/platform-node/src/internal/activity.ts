/**
 * Traffic accounting for a local sandbox's executor client: when it was last used and how many
 * calls (streams included) are in flight, so idle timers can tell an idle sandbox from a busy one.
 *
 * @internal
 */
import type { ExecutorClientShape } from "@effect-koyeb/core/ExecutorClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"

/** Traffic counters of one sandbox: when the last call began or ended (epoch millis), and how many are running. */
export type Activity = Ref.Ref<{ readonly lastActivity: number; readonly inFlight: number }>

/** Fresh counters, last used now. */
export const makeActivity: Effect.Effect<Activity> = Effect.flatMap(
  Clock.currentTimeMillis,
  (now) => Ref.make({ lastActivity: now, inFlight: 0 })
)

/** Milliseconds since the last call ended, or 0 while a call is in flight. */
export const idleMillis = (activity: Activity): Effect.Effect<number> =>
  Effect.zipWith(
    Ref.get(activity),
    Clock.currentTimeMillis,
    ({ inFlight, lastActivity }, now) => inFlight > 0 ? 0 : now - lastActivity
  )

const step = (activity: Activity, delta: 1 | -1) =>
  Effect.flatMap(
    Clock.currentTimeMillis,
    (now) => Ref.update(activity, ({ inFlight }) => ({ inFlight: inFlight + delta, lastActivity: now }))
  )

const begin = (activity: Activity) => step(activity, 1)

const end = (activity: Activity) => step(activity, -1)

const trackEffect = <A, E, R>(activity: Activity, effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(begin(activity), () => effect, () => end(activity))

const trackStream = <A, E, R>(activity: Activity, stream: Stream.Stream<A, E, R>) =>
  Stream.acquireRelease(begin(activity), () => end(activity)).pipe(Stream.flatMap(() => stream))

const track = (activity: Activity, value: unknown): unknown => {
  if (Effect.isEffect(value)) return trackEffect(activity, value)
  if (Stream.StreamTypeId in (value as object)) return trackStream(activity, value as Stream.Stream<unknown>)
  return value
}

/** Wraps every endpoint of `client` so each call counts as traffic for the whole of its run. */
export const trackClient = (client: ExecutorClientShape, activity: Activity): ExecutorClientShape =>
  Object.fromEntries(
    Object.entries(client).map(([key, value]) => {
      if (key === "options") return [key, value]
      if (typeof value === "function") {
        return [
          key,
          (...args: Array<unknown>) => track(activity, (value as (...a: Array<unknown>) => unknown)(...args))
        ]
      }
      return [key, track(activity, value)]
    })
  ) as unknown as ExecutorClientShape
