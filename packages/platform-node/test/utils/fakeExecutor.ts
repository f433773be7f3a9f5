/**
 * A stand-in for `spawnExecutor` that starts no process, so that a `TestClock` can drive the
 * lifecycle of the emulator and of the local backend without real time passing.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import type { LocalExecutorProcess, SpawnExecutor } from "../../src/internal/localRuntime.js"

/** The executors started so far, and a gate each start waits for. */
export interface FakeExecutors {
  readonly spawn: SpawnExecutor
  /** Lets the pending and later starts complete. */
  readonly open: Effect.Effect<void>
  /** Ids of the executors started and not killed yet. */
  readonly alive: Effect.Effect<ReadonlyArray<string>>
}

/** Fake executors; with `gated`, each start waits for `open`. */
export const make = (options: { readonly gated?: boolean } = {}): Effect.Effect<FakeExecutors> =>
  Effect.gen(function*() {
    const gate = yield* Deferred.make<void>()
    if (options.gated !== true) yield* Deferred.succeed(gate, undefined)
    const alive = yield* Ref.make<ReadonlyArray<string>>([])
    const spawn: SpawnExecutor = (spawnOptions) =>
      Effect.gen(function*() {
        yield* Deferred.await(gate)
        const exited = yield* Deferred.make<void>()
        const kill = Effect.zipRight(
          Ref.update(alive, (ids) => ids.filter((id) => id !== spawnOptions.id)),
          Deferred.succeed(exited, undefined)
        )
        yield* Effect.addFinalizer(() => kill)
        yield* Ref.update(alive, (ids) => [...ids, spawnOptions.id])
        return {
          id: spawnOptions.id,
          dir: `/nonexistent/${spawnOptions.id}`,
          url: "http://127.0.0.1:9",
          port: 9,
          proxyPort: 9,
          pid: -1,
          secret: spawnOptions.secret,
          isolation: "none",
          network: "shared",
          home: "/nonexistent",
          kill,
          exited: Deferred.await(exited)
        } satisfies LocalExecutorProcess
      })
    return { spawn, open: Effect.asVoid(Deferred.succeed(gate, undefined)), alive: Ref.get(alive) }
  })
