/**
 * Deleting the sandboxes of scoped constructors exactly once, whichever closes first: the scope
 * that holds a sandbox, or the control plane that created it. A control plane built in a scope
 * (`withAdoption`) registers each sandbox `Sandbox.make` hands it; its own finalizer, which runs
 * while its HTTP client is still open, deletes those still registered, and the sandbox's finalizer
 * then finds the deletion done. A delete that fails (after the control plane's own retries) or
 * does not finish in time dies with `SandboxLeaked`: finalizers cannot fail with a typed error.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as SynchronizedRef from "effect/SynchronizedRef"
import type { ControlPlaneShape } from "../ControlPlane.js"
import { SandboxLeaked, Timeout } from "../SandboxError.js"
import type { SandboxInfo } from "../SandboxSchema.js"
import { timeoutDetached } from "./bounded.js"

/** Bound on one sandbox's deletion at release, retries included. */
export const RELEASE_TIMEOUT = Duration.minutes(2)

/** Deletions run at once when a control plane closes. */
const CLOSE_CONCURRENCY = 8

/** `SandboxLeaked` for `info`, from the cause of its failed delete. */
const leaked = (info: SandboxInfo, cause: Cause.Cause<unknown>): SandboxLeaked => {
  const error = Cause.squash(cause)
  return new SandboxLeaked({
    id: info.id,
    name: info.name,
    detail: error instanceof Error ? error.message : Cause.pretty(cause),
    cause: error
  })
}

/**
 * The deletion of `info` at release: bounded by `timeout`, dying with `SandboxLeaked` when it
 * fails; memoized, so that it runs once however many callers (concurrent ones wait for it).
 */
export const releaseOnce = (
  controlPlane: Pick<ControlPlaneShape, "delete">,
  info: SandboxInfo,
  timeout: Duration.DurationInput = RELEASE_TIMEOUT
): Effect.Effect<Effect.Effect<void>> =>
  Effect.cached(
    // In a fiber of its own: the bound can cut the delete short, an interruption of the caller
    // cannot (the release runs uninterruptibly: an interrupted release is not abandoned half-way).
    timeoutDetached(controlPlane.delete(info), {
      duration: timeout,
      onTimeout: () =>
        new Timeout({ operation: `delete(${info.id})`, timeoutMillis: Duration.toMillis(Duration.decode(timeout)) })
    }).pipe(
      Effect.catchAllCause((cause) => Effect.die(leaked(info, cause))),
      Effect.withSpan("Sandbox.release", { attributes: { "sandbox.id": info.id } })
    )
  ).pipe(Effect.map(Effect.uninterruptible))

/** How `Sandbox.make` releases a sandbox of `controlPlane`: through `adopt` when it has it. */
export const release = (
  controlPlane: ControlPlaneShape,
  info: SandboxInfo
): Effect.Effect<Effect.Effect<void>> =>
  controlPlane.adopt === undefined ? releaseOnce(controlPlane, info) : controlPlane.adopt(info)

/**
 * `controlPlane` with `adopt`: the sandboxes adopted and not yet released are deleted (in
 * parallel) when the scope closes; the close dies with every `SandboxLeaked` of those that fail.
 * A sandbox adopted after the close is only deleted by its own release.
 */
export const withAdoption = (
  controlPlane: ControlPlaneShape,
  timeout: Duration.DurationInput = RELEASE_TIMEOUT
): Effect.Effect<ControlPlaneShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    // None once the control plane has closed.
    const adopted = yield* SynchronizedRef.make(Option.some(new Map<string, Effect.Effect<void>>()))
    const forget = (id: string) =>
      SynchronizedRef.update(
        adopted,
        Option.map((all) => {
          const rest = new Map(all)
          rest.delete(id)
          return rest
        })
      )

    yield* Effect.addFinalizer(() =>
      SynchronizedRef.getAndSet(adopted, Option.none()).pipe(
        Effect.flatMap((all) =>
          Effect.forEach(Option.match(all, { onNone: () => [], onSome: (m) => m.values() }), Effect.exit, {
            concurrency: CLOSE_CONCURRENCY
          })
        ),
        Effect.flatMap((exits) => Option.getOrElse(Exit.all(exits, { parallel: true }), () => Exit.void)),
        Effect.asVoid
      )
    )

    const adopt = (info: SandboxInfo): Effect.Effect<Effect.Effect<void>> =>
      Effect.gen(function*() {
        const remove = yield* releaseOnce(controlPlane, info, timeout)
        yield* SynchronizedRef.update(adopted, Option.map((all) => new Map(all).set(info.id, remove)))
        return Effect.ensuring(remove, forget(info.id))
      })

    return { ...controlPlane, adopt }
  })
