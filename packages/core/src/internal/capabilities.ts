/**
 * The executor extensions a service may use when `/health` advertises them (`DESIGN.md` §6: they
 * are optional and never required), probed once per service.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import type { ExecutorClientShape } from "../ExecutorClient.js"

/** Executors that stop a command's whole process group when its stream closes. */
export const processGroupKill = "process-group-kill"
/** Executors with `/write_file_bytes` and `/read_file_bytes`: file bytes as raw HTTP bodies. */
export const binaryFiles = "binary-files"

// An executor slow to answer the probe gets the stock behaviour.
const probeTimeout = Duration.seconds(2)

// One probe per client, shared by the services built on it (`Executor` and `Filesystem` of one
// sandbox ask `/health` once, which on Koyeb is a round trip through the gateway).
const probes = new WeakMap<ExecutorClientShape, Fiber.RuntimeFiber<ReadonlyArray<string>>>()

/**
 * Whether the executor advertises `capability`: `/health` is asked once per client, by the first
 * caller, on a fiber of its own, so that interrupting that caller leaves no poisoned result for
 * the others. Awaited, not joined: joining would hand the probe's fiber refs (its context, hence
 * its scope) to the caller. A failed or slow probe means no extension.
 */
export const makeProbe = (
  client: ExecutorClientShape
): Effect.Effect<(capability: string) => Effect.Effect<boolean>> =>
  Effect.map(Effect.runtime<never>(), (runtime) => (capability) =>
    Effect.suspend(() => {
      let probe = probes.get(client)
      if (probe === undefined) {
        probe = Runtime.runFork(runtime)(client.health.pipe(
          Effect.map((health) => health.capabilities ?? []),
          Effect.timeout(probeTimeout),
          Effect.orElseSucceed((): ReadonlyArray<string> => [])
        ))
        probes.set(client, probe)
      }
      return Effect.map(Fiber.await(probe), (exit) => Exit.isSuccess(exit) && exit.value.includes(capability))
    }))
