/**
 * Running Effects and Streams of the Promise facade: typed failures become `SandboxFailure`s, an
 * aborted `AbortSignal` interrupts the fiber (which stops the command in the sandbox) and rejects
 * with the signal's reason.
 *
 * @internal
 */
import { isSandboxError, type SandboxError, type TypeId } from "@effect-koyeb/core/SandboxError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/** The tag of every effect-koyeb error. */
export type SandboxErrorTag = SandboxError["_tag"]

/** The fields of an effect-koyeb error (its schema fields, without `_tag` and the `TypeId` brand). */
export type SandboxErrorFields<E> = Omit<E, keyof Cause.YieldableError | "_tag" | TypeId>

/**
 * An effect-koyeb error as a plain `Error`: `name` and `_tag` are the tag, the error's fields are
 * own properties, `cause` is the original Effect error.
 */
export class SandboxFailure extends Error {
  readonly _tag: SandboxErrorTag
  declare readonly cause: SandboxError
  constructor(error: SandboxError) {
    super(error.message, { cause: error })
    this.name = error._tag
    this._tag = error._tag
    for (const [key, value] of Object.entries(error)) {
      if (!(key in this)) Object.defineProperty(this, key, { value, enumerable: true })
    }
  }
}

const isTaggedError = (u: unknown): u is SandboxError =>
  u instanceof Error && typeof (u as { readonly _tag?: unknown })._tag === "string"

/**
 * What a failed or interrupted run rejects with: a typed failure, else an effect-koyeb error that
 * died (a finalizer's `SandboxLeaked`), else the squashed cause.
 */
const toThrown = <E>(cause: Cause.Cause<E>, signal: AbortSignal | undefined): unknown => {
  if (signal?.aborted && Cause.isInterrupted(cause)) return signal.reason
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return isTaggedError(failure.value) ? new SandboxFailure(failure.value) : failure.value
  const died = Cause.find(
    cause,
    (c) => Cause.isDieType(c) && isSandboxError(c.defect) ? Option.some(c.defect) : Option.none()
  )
  if (Option.isSome(died)) return new SandboxFailure(died.value)
  return Cause.squash(cause)
}

/** Runs an effect that needs no service (a scope's close, a runtime's dispose), whether or not the runtime is still open. */
export const runDetached = (effect: Effect.Effect<void>): Promise<void> =>
  Effect.runPromiseExit(effect).then((exit) => {
    if (Exit.isFailure(exit)) throw toThrown(exit.cause, undefined)
  })

/** Disposes the runtime: rejects with the `SandboxLeaked` failure of a sandbox its close could not delete. */
export const dispose = <R>(runtime: Runtime<R>): Promise<void> => runDetached(runtime.disposeEffect)

/** A handle on the facade's `ManagedRuntime`. */
export type Runtime<R> = ManagedRuntime.ManagedRuntime<R, SandboxError>

/** Runs `effect`, interrupting it when `signal` aborts. */
export const run = <R, A, E>(
  runtime: Runtime<R>,
  effect: Effect.Effect<A, E, R>,
  signal?: AbortSignal | undefined
): Promise<A> => {
  if (signal?.aborted) return Promise.reject(signal.reason)
  return runtime.runPromiseExit(effect, signal === undefined ? undefined : { signal }).then((exit) => {
    if (Exit.isSuccess(exit)) return exit.value
    throw toThrown(exit.cause, signal)
  })
}

/**
 * A lazy async iterable over `stream`: nothing runs until the first `next()`; `break` (or `return()`)
 * and an aborted `signal` stop the stream, so its command is stopped in the sandbox.
 */
export const iterate = <R, A, E>(
  runtime: Runtime<R>,
  stream: Stream.Stream<A, E, R>,
  signal?: AbortSignal | undefined
): AsyncIterable<A> => ({
  [Symbol.asyncIterator]() {
    let inner: Promise<AsyncIterator<A>> | undefined
    const open = () =>
      inner ??= run(runtime, runtime.runtimeEffect, signal).then((rt) => {
        const aborted = signal === undefined ? Effect.never : Effect.async<never, unknown>((resume) => {
          const onAbort = () => resume(Effect.fail(signal.reason))
          if (signal.aborted) return onAbort()
          signal.addEventListener("abort", onAbort, { once: true })
          return Effect.sync(() => signal.removeEventListener("abort", onAbort))
        })
        return Stream.toAsyncIterableRuntime(
          stream.pipe(
            Stream.mapError((error): unknown => isTaggedError(error) ? new SandboxFailure(error) : error),
            Stream.interruptWhen(aborted)
          ),
          rt
        )[Symbol.asyncIterator]()
      })
    return {
      next: () => open().then((it) => it.next()),
      return: async () => {
        if (inner !== undefined) await (await inner).return?.()
        return { done: true, value: undefined }
      }
    }
  }
})
