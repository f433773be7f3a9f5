/**
 * Traffic accounting for a local sandbox's executor client: when it was last used and how many
 * calls (streams included) are in flight, so idle timers can tell an idle sandbox from a busy one;
 * each call can run a step first (waking a sleeping sandbox). Timers wait on events (a deadline, the
 * next call) instead of polling: an idle sandbox costs its host no CPU.
 *
 * @internal
 */
import type { ExecutorClientShape } from "@effect-koyeb/core/ExecutorClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as Fs from "node:fs"

/**
 * Traffic counters of one sandbox: when the last call began or ended (epoch millis), and how many
 * are running; every change is published, so a timer can wait for the next call.
 */
export type Activity = SubscriptionRef.SubscriptionRef<{ readonly lastActivity: number; readonly inFlight: number }>

/** Fresh counters, last used now. */
export const makeActivity: Effect.Effect<Activity> = Effect.flatMap(
  Clock.currentTimeMillis,
  (now) => SubscriptionRef.make({ lastActivity: now, inFlight: 0 })
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

/** Records traffic now (without a call in flight). */
export const touch = (activity: Activity): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.update(activity, (a) => ({ ...a, lastActivity: now })))

/**
 * Completes once no call has begun or ended for `millis` and `busy()` is false at that moment (a
 * `busy()` that holds counts as traffic then). Sleeps until the deadline instead of polling: one
 * wake-up per `millis` at most, so `busy` may be costly (`connected` reads `/proc/net/tcp`).
 */
export const untilIdleFor = (
  activity: Activity,
  millis: number,
  busy: () => boolean = () => false
): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (;;) {
      // 0 while a call is in flight: sleep a whole period, then look again
      const idleFor = yield* idleMillis(activity)
      if (idleFor < millis) {
        yield* Effect.sleep(millis - idleFor)
      } else if (busy()) {
        yield* touch(activity)
      } else {
        return
      }
    }
  })

/** Completes at the next call (or `touch`) after now. */
export const untilActive = (activity: Activity): Effect.Effect<void> =>
  Stream.runDrain(Stream.take(Stream.drop(activity.changes, 1), 1))

/**
 * Whether a TCP connection to `port` on this host is established (Linux `/proc/net/tcp{,6}`; false
 * elsewhere): a connection held open to a sandbox's exposed port is traffic, as on Koyeb.
 */
export const connected = (port: number): boolean => {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, "0")}`
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let table: string
    try {
      table = Fs.readFileSync(file, "latin1")
    } catch {
      continue
    }
    for (const line of table.split("\n").slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/)
      // 01: ESTABLISHED
      if (state === "01" && local?.endsWith(hexPort)) return true
    }
  }
  return false
}

const begin = (activity: Activity) => step(activity, 1)

const end = (activity: Activity) => step(activity, -1)

// `before` runs once the call counts as traffic, so an idle timer cannot stop what it started.
const trackEffect = <A, E, R, E2>(
  activity: Activity,
  effect: Effect.Effect<A, E, R>,
  before: Effect.Effect<void, E2>
) => Effect.acquireUseRelease(begin(activity), () => Effect.zipRight(before, effect), () => end(activity))

const trackStream = <A, E, R, E2>(
  activity: Activity,
  stream: Stream.Stream<A, E, R>,
  before: Effect.Effect<void, E2>
) =>
  Stream.acquireRelease(begin(activity), () => end(activity)).pipe(
    Stream.flatMap(() => Stream.unwrap(Effect.as(before, stream)))
  )

const track = (activity: Activity, value: unknown, before: Effect.Effect<void, unknown>): unknown => {
  if (Effect.isEffect(value)) return trackEffect(activity, value, before)
  if (Stream.StreamTypeId in (value as object)) return trackStream(activity, value as Stream.Stream<unknown>, before)
  return value
}

/**
 * Wraps every endpoint of `client` so each call counts as traffic for the whole of its run, and
 * runs `before` first (its failure is the call's).
 */
export const trackClient = (
  client: ExecutorClientShape,
  activity: Activity,
  before: Effect.Effect<void, unknown> = Effect.void
): ExecutorClientShape =>
  Object.fromEntries(
    Object.entries(client).map(([key, value]) => {
      if (key === "options") return [key, value]
      if (typeof value === "function") {
        return [
          key,
          (...args: Array<unknown>) => track(activity, (value as (...a: Array<unknown>) => unknown)(...args), before)
        ]
      }
      return [key, track(activity, value, before)]
    })
  ) as unknown as ExecutorClientShape
