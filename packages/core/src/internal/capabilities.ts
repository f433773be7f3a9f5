/**
 * What an `ExecutorClient` learns from `/health`: whether the executor is healthy, and which
 * extensions it advertises. Extensions are optional: the services use them when advertised and
 * fall back to the stock protocol otherwise, never requiring them.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import type { HealthStatus } from "../ExecutorClient.js"
import type { ExecutorFailure } from "../SandboxError.js"

/** Executors that stop a command's whole process group when its stream closes. */
export const processGroupKill = "process-group-kill"
/** Executors with `/spawn`, `/stdin`, `/stdin_end` and `/signal`: commands with a stdin, raw output and signals. */
export const interactive = "interactive"
/** Executors whose `/spawn` takes `pty` and with `/resize`: commands on a pseudo-terminal. */
export const pty = "pty"
/** Executors with `/write_file_bytes` and `/read_file_bytes`: file bytes as raw HTTP bodies. */
export const binaryFiles = "binary-files"
/** Executors with `/watch`: directory changes as an SSE stream (from inotify). */
export const watch = "watch"

// An executor slow to answer the probe gets the stock behaviour.
const probeTimeout = Duration.seconds(2)
const healthTimeout = Duration.seconds(5)
const healthyReplies: ReadonlySet<string> = new Set(["ok", "healthy", "ready"])
const none: ReadonlySet<string> = new Set()

/** Whether `health` answers within 5 seconds with a healthy status; any failure is `false`. */
export const isHealthy = (health: Effect.Effect<HealthStatus, ExecutorFailure>): Effect.Effect<boolean> =>
  health.pipe(
    Effect.timeout(healthTimeout),
    Effect.map((reply) => healthyReplies.has(reply.status.toLowerCase())),
    Effect.orElseSucceed(() => false)
  )

/**
 * The capabilities `health` advertises, probed once: by the first caller, on a fiber of its own
 * (run by the runtime of the caller of `makeProbe`), so that interrupting that caller leaves no
 * poisoned result for the others. Awaited, not joined: joining would hand the probe's fiber refs
 * (its context, hence its scope) to the caller. A failed or slow probe means no extension.
 */
export const makeProbe = (
  health: Effect.Effect<HealthStatus, ExecutorFailure>
): Effect.Effect<Effect.Effect<ReadonlySet<string>>> =>
  Effect.map(Effect.runtime<never>(), (runtime) => {
    let probe: Fiber.RuntimeFiber<ReadonlySet<string>> | undefined
    return Effect.suspend(() => {
      probe ??= Runtime.runFork(runtime)(health.pipe(
        Effect.map((reply): ReadonlySet<string> => new Set(reply.capabilities ?? [])),
        Effect.timeout(probeTimeout),
        Effect.orElseSucceed(() => none)
      ))
      return Effect.map(Fiber.await(probe), (exit) => Exit.isSuccess(exit) ? exit.value : none)
    })
  })

/**
 * The strategy `pick` chooses from the client's capabilities, chosen once, when first needed:
 * later calls get the same strategy without asking again. Interrupting the first caller leaves
 * nothing chosen, so the next caller chooses.
 */
export const choose = <S>(
  capabilities: Effect.Effect<ReadonlySet<string>>,
  pick: (capabilities: ReadonlySet<string>) => S
): Effect.Effect<S> => {
  let chosen: { readonly strategy: S } | undefined
  return Effect.suspend(() =>
    chosen !== undefined
      ? Effect.succeed(chosen.strategy)
      : Effect.map(capabilities, (advertised) => (chosen ??= { strategy: pick(advertised) }).strategy)
  )
}
