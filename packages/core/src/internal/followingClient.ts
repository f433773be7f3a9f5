/**
 * An executor client that follows its sandbox: every call goes to the client `current` returns when
 * the call runs, so services built once over it keep reaching the sandbox after its address
 * changed (a replacement deployment has a new routing key).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { ExecutorClientShape } from "../ExecutorClient.js"

type Member = (...args: Array<unknown>) => unknown

const isStream = (value: unknown): value is Stream.Stream<unknown, unknown> =>
  typeof value === "object" && value !== null && Stream.StreamTypeId in value

/** Runs `make` when the result is run, not when it is built; `sample` tells whether it is an effect or a stream. */
const deferred = (sample: unknown, make: () => unknown): unknown => {
  if (Effect.isEffect(sample)) return Effect.suspend(() => make() as Effect.Effect<unknown, unknown>)
  if (isStream(sample)) return Stream.suspend(() => make() as Stream.Stream<unknown, unknown>)
  return sample
}

/** A client with the members of `initial`, each resolved against `current()` when it runs. */
export const following = (initial: ExecutorClientShape, current: () => ExecutorClientShape): ExecutorClientShape => {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(initial)) {
    if (key === "options") {
      Object.defineProperty(out, key, { enumerable: true, get: () => current().options })
    } else if (typeof value === "function") {
      out[key] = (...args: Array<unknown>) =>
        deferred((value as Member)(...args), () => ((current() as unknown as Record<string, Member>)[key]!)(...args))
    } else {
      out[key] = deferred(value, () => (current() as unknown as Record<string, unknown>)[key])
    }
  }
  return out as unknown as ExecutorClientShape
}
