/**
 * Finding and removing the sandboxes effect-koyeb left behind: the SDK's sandboxes (`managed`),
 * which of them no live program holds, and their deletion with the app the SDK created for them.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { AssertNoneOptions, CollectOptions } from "../Cleanup.js"
import { LeftoverSandboxes } from "../Cleanup.js"
import { ControlPlane } from "../ControlPlane.js"
import { TERMINAL_STATUSES } from "../KoyebWire.js"
import { SandboxInfo } from "../SandboxSchema.js"

/**
 * Deployment statuses in which nothing keeps the sandbox: asleep (a held sandbox is kept awake by
 * its owner's keep-alive) or stopped for good.
 */
const UNHELD: ReadonlySet<string> = new Set(["SLEEPING", ...TERMINAL_STATUSES])

/** Created by the SDK: Koyeb marks it; control planes that hold nothing else do not say. */
const isManaged = (info: SandboxInfo) => info.managed !== false

/** Milliseconds since `info` was last active (its creation when its last traffic is unknown). */
const idleMillis = (info: SandboxInfo, now: number) => now - (info.lastActivity ?? info.createdAt).getTime()

const millisOf = (input: Duration.DurationInput | undefined, fallback: Duration.DurationInput) =>
  Duration.toMillis(Duration.decode(input ?? fallback))

/** The SDK's sandboxes at least `olderThan` old (default 0: all), whatever their state. */
export const leftovers = (options: AssertNoneOptions = {}) =>
  Effect.gen(function*() {
    const olderThan = millisOf(options.olderThan, 0)
    const now = yield* Clock.currentTimeMillis
    const all = yield* (yield* ControlPlane).list
    return all.filter((info) => isManaged(info) && now - info.createdAt.getTime() >= olderThan)
  }).pipe(Effect.withSpan("Cleanup.leftovers"))

/** `Cleanup.collect`. */
export const collect = (options: CollectOptions = {}) =>
  Effect.gen(function*() {
    const controlPlane = yield* ControlPlane
    const olderThan = millisOf(options.olderThan, "1 hour")
    const now = yield* Clock.currentTimeMillis
    const unheld = (yield* controlPlane.list).filter((info) =>
      isManaged(info) && info.status !== undefined && UNHELD.has(info.status) && idleMillis(info, now) >= olderThan
    )
    if (options.dryRun === true) return unheld
    // The app goes too when the SDK created it; an app the caller supplied is never `managed`.
    yield* Effect.forEach(
      unheld,
      (info) => controlPlane.delete(new SandboxInfo({ ...info, ownsApp: info.ownsApp || info.managed === true })),
      { concurrency: 4, discard: true }
    )
    return unheld
  }).pipe(Effect.withSpan("Cleanup.collect", { attributes: { "cleanup.dry_run": options.dryRun === true } }))

/** `Cleanup.assertNone`. */
export const assertNone = (options: AssertNoneOptions = {}) =>
  Effect.flatMap(
    leftovers(options),
    (sandboxes) => sandboxes.length === 0 ? Effect.void : Effect.fail(new LeftoverSandboxes({ sandboxes }))
  ).pipe(Effect.withSpan("Cleanup.assertNone"))
