/**
 * Finding and removing the sandboxes effect-koyeb left behind, for the `effect-koyeb gc` command,
 * CI teardown hooks and test suites' global teardown. The SDK's sandboxes are those whose app it
 * created (`SandboxInfo.managed`); a sandbox made in an app the caller supplied (`appId`) is never
 * touched.
 *
 * A sandbox made by a scoped constructor (`Sandbox.make`, `Sandbox.layer`, the Promise facade) is
 * kept awake by its program while its scope is open; once the program is gone it sleeps after its
 * idle timeout, and Koyeb deletes it after `deleteAfterInactivityDelay`. `collect` deletes, sooner,
 * the SDK's sandboxes that no program holds: asleep (or stopped for good) and idle for at least
 * `olderThan`. A sandbox that never sleeps (`idleTimeout: 0`) cannot be told from a held one:
 * `leftovers` and `assertNone` list every SDK sandbox, whatever its state.
 *
 * @since 0.2.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { ControlPlane } from "./ControlPlane.js"
import * as internal from "./internal/cleanup.js"
import type { ControlPlaneFailure } from "./SandboxError.js"
import { SandboxInfo } from "./SandboxSchema.js"

/**
 * Options of `collect`.
 *
 * @since 0.2.0
 * @category models
 */
export interface CollectOptions {
  /** Only sandboxes idle at least this long (since their last traffic, else their creation); default 1 hour. */
  readonly olderThan?: Duration.DurationInput | undefined
  /** Return what would be deleted, deleting nothing. */
  readonly dryRun?: boolean | undefined
}

/**
 * Options of `leftovers` and `assertNone`.
 *
 * @since 0.2.0
 * @category models
 */
export interface AssertNoneOptions {
  /** Only sandboxes created at least this long ago; default 0 (all). */
  readonly olderThan?: Duration.DurationInput | undefined
}

/**
 * The SDK's sandboxes still exist (from `assertNone`), named in the message.
 *
 * @since 0.2.0
 * @category errors
 */
export class LeftoverSandboxes extends Schema.TaggedError<LeftoverSandboxes>("@effect-koyeb/core/LeftoverSandboxes")(
  "LeftoverSandboxes",
  { sandboxes: Schema.Array(SandboxInfo) }
) {
  get message(): string {
    const names = this.sandboxes.map((s) => `${s.id} (${s.name}, created ${s.createdAt.toISOString()})`)
    return `${this.sandboxes.length} sandbox(es) left behind: ${names.join(", ")}`
  }
}

/**
 * The SDK's sandboxes (optionally only those older than `olderThan`), whatever their state.
 *
 * @since 0.2.0
 * @category getters
 */
export const leftovers: (
  options?: AssertNoneOptions
) => Effect.Effect<ReadonlyArray<SandboxInfo>, ControlPlaneFailure, ControlPlane> = internal.leftovers

/**
 * Deletes the SDK's sandboxes that no live program holds (asleep or stopped, idle at least
 * `olderThan`, default 1 hour), with the app the SDK created for each; returns them (with
 * `dryRun`, deletes nothing).
 *
 * @example
 * ```ts
 * import * as Cleanup from "@effect-koyeb/core/Cleanup"
 * import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
 * import { Effect } from "effect"
 *
 * const gc = Cleanup.collect({ olderThan: "30 minutes" }).pipe(Effect.provide(NodeSandbox.layerFromEnv))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const collect: (
  options?: CollectOptions
) => Effect.Effect<ReadonlyArray<SandboxInfo>, ControlPlaneFailure, ControlPlane> = internal.collect

/**
 * Fails with `LeftoverSandboxes` when any of the SDK's sandboxes (older than `olderThan`) exists:
 * the check of a test suite's global teardown.
 *
 * @since 0.2.0
 * @category constructors
 */
export const assertNone: (
  options?: AssertNoneOptions
) => Effect.Effect<void, LeftoverSandboxes | ControlPlaneFailure, ControlPlane> = internal.assertNone
