/**
 * `files.watch` of the Promise facade: a watch's events as an async iterable that stops the watch
 * in the sandbox on `break`, `close()`, dispose or an abort.
 *
 * @internal
 */
import type { FileEvent } from "@effect-koyeb/core/SandboxSchema"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { PromiseWatch } from "../../Sandboxes.js"
import { iterate, runDetached, type Runtime } from "../promiseRuntime.js"
import type { Services } from "./runtime.js"

/** The watch whose `events` live in `scope`: closing it closes the scope. */
export const watching = (
  runtime: Runtime<Services>,
  scope: Scope.CloseableScope,
  events: Stream.Stream<FileEvent, unknown>,
  signal: AbortSignal | undefined
): PromiseWatch => {
  const stopped = Effect.runSync(Deferred.make<void>())
  let closed: Promise<void> | undefined
  const close = (): Promise<void> =>
    closed ??= runDetached(Effect.zipRight(Deferred.succeed(stopped, undefined), Scope.close(scope, Exit.void)))
      .finally(() => signal?.removeEventListener("abort", close))
  if (signal?.aborted) void close()
  else signal?.addEventListener("abort", close, { once: true })
  // a pending `next()` ends when the watch is closed, not only when the scope's resources go
  const iterable = iterate(runtime, Stream.interruptWhen(events, Deferred.await(stopped)), signal)
  return {
    [Symbol.asyncIterator]() {
      const iterator = iterable[Symbol.asyncIterator]()
      return {
        next: () =>
          iterator.next().then(
            (result) => result.done === true ? close().then(() => result) : result,
            (error: unknown) => close().then(() => Promise.reject(error))
          ),
        return: () => iterator.return!().finally(close)
      }
    },
    close,
    [Symbol.asyncDispose]: close
  }
}
