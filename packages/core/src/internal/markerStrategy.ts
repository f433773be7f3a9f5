/**
 * Commands on an executor that does not stop them when their stream closes (the stock one): each
 * command is wrapped so that it runs in a process group of its own and first prints a marker with
 * that group's id on stderr; when the stream stops before the command exited, a second request
 * stops the group (SIGTERM, then SIGKILL after the grace period), also when the command prints
 * nothing.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { ExecFailure, RunOptions } from "../Executor.js"
import type { ExecutorClientShape } from "../ExecutorClient.js"
import type { ExecEvent } from "../SandboxSchema.js"
import { timeoutDetached } from "./bounded.js"
import { collectEvents, type CommandStrategy, makeConverter, prepare, withStreamDeadlines } from "./commandStrategy.js"
import * as Shell from "./shell.js"

const defaultKillGrace = Duration.seconds(1)
// How long a stopped command's marker is awaited when the stop came before it arrived.
const markerWait = Duration.seconds(3)
// Bound of the kill request, on top of the grace period.
const killRequestTimeout = Duration.seconds(10)

/** Sends the group kill; failures are logged, never raised (it runs in finalizers). */
const stopGroup = (client: ExecutorClientShape, pid: number, grace: Duration.Duration) =>
  timeoutDetached(client.run({ cmd: Shell.killGroup(pid, Duration.toMillis(grace)) }), {
    duration: Duration.sum(grace, killRequestTimeout),
    onTimeout: () => new Cause.TimeoutException()
  }).pipe(
    Effect.catchAllCause((cause) => Effect.logWarning("Executor: could not stop command group", pid, cause)),
    Effect.asVoid
  )

/**
 * The events of a command wrapped with a group marker and stopped by a kill request of the SDK's
 * own; `group` (when given) learns the command's process group once the marker arrived
 * (undefined when the command ended or stopped without it).
 */
export const markerEvents = (client: ExecutorClientShape) =>
(
  line: string,
  options: RunOptions | undefined,
  operation: string,
  group?: Deferred.Deferred<number | undefined>
): Stream.Stream<ExecEvent, ExecFailure> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const marker = `__effect_koyeb_${Shell.randomToken()}_`
    const cmd = yield* prepare(line, marker, options)
    const { convert, state } = makeConverter(yield* Effect.clock, marker)
    const grace = Duration.decode(options?.killGracePeriod ?? defaultKillGrace)
    const pull = yield* Stream.toPull(client.runStreaming({ cmd, cwd: options?.cwd, env: options?.env }))
    const pid = yield* Deferred.make<number | undefined>()

    // Until the marker shows up a fiber of its own reads, so that a consumer stopping early does not
    // stop the reading and the finalizer still learns which group to stop. Then the consumer pulls
    // directly: a hand-over per chunk between fibers costs throughput and keeps garbage alive.
    const head = yield* Effect.gen(function*() {
      const out: Array<ExecEvent> = []
      while (!state.markerChecked && !state.exited) {
        const exit = yield* Effect.exit(pull)
        if (exit._tag === "Failure") return { out, failure: Option.some(exit.cause) }
        for (const event of convert(exit.value)) out.push(event)
      }
      return { out, failure: Option.none() }
    }).pipe(
      Effect.ensuring(Effect.suspend(() =>
        Effect.zipRight(
          Deferred.succeed(pid, state.markerPid),
          group === undefined ? Effect.void : Deferred.succeed(group, state.markerPid)
        )
      )),
      Effect.forkScoped
    )

    // Added after the reader's fork and the pull's scope, so it runs before either is stopped.
    yield* Effect.addFinalizer(() =>
      state.exited ? Effect.void : Effect.gen(function*() {
        const found = yield* timeoutDetached(Deferred.await(pid), {
          duration: markerWait,
          onTimeout: () => new Cause.TimeoutException()
        }).pipe(Effect.option)
        if (Option.isSome(found) && found.value !== undefined) {
          yield* stopGroup(client, found.value, grace)
        } else if (!state.exited) {
          yield* Effect.logDebug("Executor: stopped before the command reported its process group", line)
        }
      })
    )

    const all = Stream.unwrap(Effect.map(Fiber.join(head), ({ failure, out }) =>
      Stream.concat(
        Stream.fromChunk(Chunk.unsafeFromArray(out)),
        Option.isSome(failure)
          ? Stream.fromEffectOption(Effect.failCause(failure.value))
          : Stream.repeatEffectChunkOption(Effect.map(pull, convert))
      )))
    return withStreamDeadlines(all, line, options, operation)
  }))

/** Commands wrapped with a group marker and stopped by a kill request of the SDK's own. */
export const markerStrategy = (client: ExecutorClientShape): CommandStrategy => {
  const events = markerEvents(client)
  return {
    events,
    collect: (line, options, operation) => collectEvents(events(line, options, operation))
  }
}
