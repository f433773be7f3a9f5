/**
 * Running commands in a sandbox: buffered (`run`, `exec`) or streamed line by line (`stream`,
 * `streamEvents`), built on the `ExecutorClient`.
 *
 * Every command goes through `/run_streaming` (the stock `/run` deadlocks when stderr exceeds
 * 64 KiB). A command runs until it ends, is interrupted, or reaches the `timeout` the caller set:
 * there is no default deadline. Interrupting a call, hitting its timeout, or ending a stream early
 * stops the command in the sandbox with all its descendants, also when it prints nothing: each
 * command runs in its own process group, which a second request signals (SIGTERM, then SIGKILL
 * after `killGracePeriod`). An executor whose `/health` advertises `process-group-kill` (the
 * `ExecutorServer` of `@effect-koyeb/platform-node`) starts each command as a group and stops it
 * when its stream is closed, silent or not: there the command is sent as is and closing the
 * stream is the stop (with the executor's own grace period), unless the call sets
 * `killGracePeriod`. The probe runs once per `Executor`; a failed one means the stock behaviour.
 *
 * Output is line based, as the executor reports it: `OutputChunk`s carry one line each without
 * its newline. The buffered `stdout` / `stderr` of a `CommandResult` are the lines joined with
 * `\n`, plus a final `\n` when there was at least one line (the executor does not say whether the
 * output ended with a newline, so `printf abc` gives `"abc\n"`).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Command from "./Command.js"
import { ExecutorClient } from "./ExecutorClient.js"
import type { ExecutorClientShape, RunStreamEvent } from "./ExecutorClient.js"
import { timeoutDetached } from "./internal/bounded.js"
import * as Capabilities from "./internal/capabilities.js"
import * as Shell from "./internal/shell.js"
import { CommandError, InvalidArgument, Timeout } from "./SandboxError.js"
import type { ExecutorFailure } from "./SandboxError.js"
import { CommandExit, CommandResult, OutputChunk } from "./SandboxSchema.js"
import type { ExecEvent, StreamName } from "./SandboxSchema.js"

/**
 * Options of every `Executor` call.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  /** Working directory in the sandbox (it must exist); default: the executor's. */
  readonly cwd?: string | undefined
  /** Variables added to (and overriding) the executor's environment. */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** Stop the command and fail with `Timeout` when it has not ended after this long; default: none. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * Stop the command and fail with `Timeout` when no output line (or exit) arrives for this long:
   * the only way to notice a stream that went silent without closing; default: none.
   */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /**
   * How long a stopped command gets between SIGTERM and SIGKILL (default 1 second, or the
   * executor's own when it stops commands itself on disconnect).
   */
  readonly killGracePeriod?: Duration.DurationInput | undefined
}

/**
 * How a command can fail to run, whatever its exit code.
 *
 * @since 0.1.0
 * @category errors
 */
export type ExecFailure = Timeout | InvalidArgument | ExecutorFailure

/**
 * How a command can fail when a non-zero exit code counts as a failure.
 *
 * @since 0.1.0
 * @category errors
 */
export type RunFailure = CommandError | ExecFailure

/**
 * The command-running service of one sandbox.
 *
 * @example
 * ```ts
 * import * as Command from "@effect-koyeb/core/Command"
 * import * as Executor from "@effect-koyeb/core/Executor"
 * import { Effect, Stream } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const executor = yield* Executor.Executor
 *   // Buffered; a non-zero exit code fails with `CommandError`.
 *   const { stdout } = yield* executor.run("uname -a", { timeout: "10 seconds" })
 *   // Buffered, whatever the exit code; the elements of an argv array are quoted.
 *   const { exitCode } = yield* executor.exec(["test", "-d", "/app"])
 *   // Line by line while it runs; interrupting the stream stops the command and its children.
 *   yield* executor.stream(Command.sh`npm test -- ${"my test"}`, { cwd: "/app", env: { CI: "1" } }).pipe(
 *     Stream.runForEach((chunk) => Effect.log(`${chunk.stream}: ${chunk.data}`)),
 *     Effect.catchTag("CommandError", (error) => Effect.logError(`tests failed with exit code ${error.exitCode}`))
 *   )
 *   return { stdout, appExists: exitCode === 0 }
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecutorShape {
  /** Runs a command and buffers its output; fails with `CommandError` on a non-zero exit code. */
  readonly run: (command: Command.Input, options?: RunOptions) => Effect.Effect<CommandResult, RunFailure>
  /** Runs a command and buffers its output; succeeds whatever the exit code. */
  readonly exec: (command: Command.Input, options?: RunOptions) => Effect.Effect<CommandResult, ExecFailure>
  /**
   * Streams the output lines of a command; fails with `CommandError` on a non-zero exit code
   * (its `stdout` / `stderr` are the last 64 KiB of each, not the whole output).
   */
  readonly stream: (command: Command.Input, options?: RunOptions) => Stream.Stream<OutputChunk, RunFailure>
  /** Streams the output lines of a command, then exactly one `CommandExit`, whatever the exit code. */
  readonly streamEvents: (command: Command.Input, options?: RunOptions) => Stream.Stream<ExecEvent, ExecFailure>
}

/**
 * The command-running service of one sandbox.
 *
 * @since 0.1.0
 * @category tags
 */
export class Executor extends Context.Tag("@effect-koyeb/core/Executor")<Executor, ExecutorShape>() {}

const defaultKillGrace = Duration.seconds(1)
// How long a stopped command's marker is awaited when the stop came before it arrived.
const markerWait = Duration.seconds(3)
// Bound of the kill request, on top of the grace period.
const killRequestTimeout = Duration.seconds(10)
const tailChars = 64 * 1024

const describe = (line: string): string => (line.length > 80 ? `${line.slice(0, 77)}...` : line)

const invalidCommand = (detail: string) => new InvalidArgument({ argument: "command", detail })

/** Validates a command and builds the line sent to the executor: wrapped unless `marker` is undefined. */
const prepare = (
  line: string,
  marker: string | undefined,
  options: RunOptions | undefined
): Effect.Effect<string, InvalidArgument> => {
  const commandError = Shell.checkCommand(line)
  if (commandError !== undefined) return Effect.fail(commandError)
  const cmd = marker === undefined ? line : Shell.wrapGroup(marker, line)
  const size = Shell.byteLength(cmd)
  if (size > Shell.maxArgBytes) {
    return Effect.fail(invalidCommand(
      `the command is ${size} bytes${
        marker === undefined ? "" : ` once wrapped (${Shell.byteLength(line)} bytes as given)`
      }; ` +
        `the sandbox accepts at most ${Shell.maxArgBytes} bytes per argument (Linux MAX_ARG_STRLEN). Write large ` +
        `data to a file first and run a short command that reads it.`
    ))
  }
  const envError = Shell.checkEnv(options?.env)
  return envError === undefined ? Effect.succeed(cmd) : Effect.fail(envError)
}

/**
 * An `OutputChunk` equal to `new OutputChunk({ stream, data })` (same prototype, fields and field
 * order) built by the base `Data.Class` constructor: the Schema class constructor copies and merges
 * its argument and costs ~1.5 µs even without validation, ~30× this, on every output line.
 */
const outputChunk = (stream: StreamName, data: string): OutputChunk =>
  Reflect.construct(Data.Class, [{ stream, data, _tag: "OutputChunk" as const }], OutputChunk)

/** The marker line `<marker><pid>`, or undefined. */
const parseMarker = (marker: string, data: string): number | undefined => {
  if (!data.startsWith(marker)) return undefined
  const pid = data.slice(marker.length)
  return /^[1-9][0-9]*$/.test(pid) ? Number(pid) : undefined
}

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
 * The event stream of one command, with the group marker removed. When the stream stops before
 * the command reported its exit (interruption, timeout, early end, failure), the command's group is
 * stopped before the stream's scope closes, by a kill request or, when `serverStopsGroups`, by
 * the executor on disconnect.
 */
const events = (
  client: ExecutorClientShape,
  serverStopsGroups: Effect.Effect<boolean>,
  input: Command.Input,
  options: RunOptions | undefined,
  operation: string
): Stream.Stream<ExecEvent, ExecFailure> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const line = Command.toLine(input)
    // an explicit grace period can only be honoured by our own kill request
    const direct = options?.killGracePeriod === undefined && (yield* serverStopsGroups)
    const marker = direct ? undefined : `__effect_koyeb_${Shell.randomToken()}_`
    const cmd = yield* prepare(line, marker, options)
    const request = { cmd, cwd: options?.cwd, env: options?.env }
    const clock = yield* Effect.clock
    const startedAt = clock.unsafeCurrentTimeMillis()
    let exited = false
    let markerChecked = direct
    let markerPid: number | undefined

    // Synchronous, one pass per chunk: this is the hot path of every output line.
    const toEvents = (chunk: Chunk.Chunk<RunStreamEvent>): Chunk.Chunk<ExecEvent> => {
      const events = Chunk.toReadonlyArray(chunk)
      const out: Array<ExecEvent> = []
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!
        if (event._tag === "Complete") {
          exited = true
          out.push(
            new CommandExit({ exitCode: event.code, durationMillis: clock.unsafeCurrentTimeMillis() - startedAt })
          )
        } else if (!markerChecked && event.stream === "stderr") {
          // The marker is the first stderr line; stdout lines may arrive before it.
          markerChecked = true
          markerPid = parseMarker(marker!, event.data)
          if (markerPid === undefined) out.push(outputChunk(event.stream, event.data))
        } else {
          out.push(outputChunk(event.stream, event.data))
        }
      }
      return Chunk.unsafeFromArray(out)
    }

    let all: Stream.Stream<ExecEvent, ExecFailure>
    if (direct) {
      // closing the stream closes the connection, on which the executor stops the command's group
      all = Stream.mapChunks(client.runStreaming(request), toEvents)
    } else {
      const grace = Duration.decode(options?.killGracePeriod ?? defaultKillGrace)
      const pull = yield* Stream.toPull(client.runStreaming(request))
      const pid = yield* Deferred.make<number | undefined>()

      // Until the marker shows up a fiber of its own reads, so that a consumer stopping early does not
      // stop the reading and the finalizer still learns which group to stop. Then the consumer pulls
      // directly: a hand-over per chunk between fibers costs throughput and keeps garbage alive.
      const head = yield* Effect.gen(function*() {
        const out: Array<ExecEvent> = []
        while (!markerChecked && !exited) {
          const exit = yield* Effect.exit(pull)
          if (exit._tag === "Failure") return { out, failure: Option.some(exit.cause) }
          for (const event of toEvents(exit.value)) out.push(event)
        }
        return { out, failure: Option.none() }
      }).pipe(
        Effect.ensuring(Effect.suspend(() => Deferred.succeed(pid, markerPid))),
        Effect.forkScoped
      )

      // Added after the reader's fork and the pull's scope, so it runs before either is stopped.
      yield* Effect.addFinalizer(() =>
        exited ? Effect.void : Effect.gen(function*() {
          const found = yield* timeoutDetached(Deferred.await(pid), {
            duration: markerWait,
            onTimeout: () => new Cause.TimeoutException()
          }).pipe(Effect.option)
          if (Option.isSome(found) && found.value !== undefined) {
            yield* stopGroup(client, found.value, grace)
          } else if (!exited) {
            yield* Effect.logDebug("Executor: stopped before the command reported its process group", line)
          }
        })
      )

      all = Stream.unwrap(Effect.map(Fiber.join(head), ({ failure, out }) =>
        Stream.concat(
          Stream.fromChunk(Chunk.unsafeFromArray(out)),
          Option.isSome(failure)
            ? Stream.fromEffectOption(Effect.failCause(failure.value))
            : Stream.repeatEffectChunkOption(Effect.map(pull, toEvents))
        )))
    }

    const idle = options?.idleTimeout === undefined ? undefined : Duration.decode(options.idleTimeout)
    const output = idle === undefined ? all : Stream.timeoutFail(
      all,
      () =>
        new Timeout({
          operation: `${operation}(${describe(line)}) waiting for output`,
          timeoutMillis: Duration.toMillis(idle)
        }),
      idle
    )
    if (options?.timeout === undefined) return output
    const timeout = Duration.decode(options.timeout)
    return Stream.interruptWhen(
      output,
      Effect.zipRight(Effect.sleep(timeout), Effect.fail(timedOut(line, timeout, operation)))
    )
  }))

const timedOut = (line: string, timeout: Duration.Duration, operation: string) =>
  new Timeout({ operation: `${operation}(${describe(line)})`, timeoutMillis: Duration.toMillis(timeout) })

/** Fails with `Timeout` (the command stopped by the interruption) when `options.timeout` passes. */
const withDeadline = <A, E>(
  effect: Effect.Effect<A, E>,
  line: string,
  options: RunOptions | undefined,
  operation: string
) => {
  if (options?.timeout === undefined) return effect
  const timeout = Duration.decode(options.timeout)
  return Effect.timeoutFail(effect, { duration: timeout, onTimeout: () => timedOut(line, timeout, operation) })
}

/** Keeps the last `tailChars` characters of a stream's lines for a `CommandError`. */
class Tail {
  private lines: Array<string> = []
  private start = 0
  private size = 0
  push(line: string): void {
    this.lines.push(line)
    this.size += line.length + 1
    while (this.size > tailChars && this.lines.length - this.start > 1) {
      this.size -= this.lines[this.start++]!.length + 1
    }
    // Drop the consumed head now and then, keeping pushes amortised O(1).
    if (this.start > 1024 && this.start * 2 > this.lines.length) {
      this.lines = this.lines.slice(this.start)
      this.start = 0
    }
  }
  toString(): string {
    const text = joinLines(this.lines.slice(this.start))
    return text.length > tailChars ? text.slice(-tailChars) : text
  }
}

const joinLines = (lines: ReadonlyArray<string>): string => (lines.length === 0 ? "" : `${lines.join("\n")}\n`)

const commandError = (line: string, result: { exitCode: number; stdout: string; stderr: string }) =>
  new CommandError({ command: line, exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr })

/**
 * Builds the service from an `ExecutorClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<ExecutorShape, never, ExecutorClient> = Effect.gen(function*() {
  const client = yield* ExecutorClient
  const supports = yield* Capabilities.makeProbe(client)
  const serverStopsGroups = supports(Capabilities.processGroupKill)

  const streamEvents = (command: Command.Input, options?: RunOptions): Stream.Stream<ExecEvent, ExecFailure> =>
    events(client, serverStopsGroups, command, options, "Executor.streamEvents").pipe(
      Stream.withSpan("Executor.streamEvents")
    )

  const collect = (command: Command.Input, options: RunOptions | undefined, operation: string) =>
    Effect.suspend(() => {
      const line = Command.toLine(command)
      const stdout: Array<string> = []
      const stderr: Array<string> = []
      let exit: CommandExit | undefined
      const streamed = events(client, serverStopsGroups, command, options, operation).pipe(
        Stream.runForEachChunk((chunk) =>
          Effect.sync(() => {
            for (const event of chunk) {
              if (event._tag === "CommandExit") exit = event
              else (event.stream === "stdout" ? stdout : stderr).push(event.data)
            }
          })
        )
      )
      // Without the wrapper and an idle deadline nothing needs the events one chunk at a time: the
      // body is read whole, which costs less per command than a stream.
      const whole = Effect.gen(function*() {
        const cmd = yield* prepare(line, undefined, options)
        const clock = yield* Effect.clock
        const startedAt = clock.unsafeCurrentTimeMillis()
        const replies = yield* client.runStreamingCollect({ cmd, cwd: options?.cwd, env: options?.env })
        for (const event of replies) {
          if (event._tag === "Complete") {
            exit = new CommandExit({
              exitCode: event.code,
              durationMillis: clock.unsafeCurrentTimeMillis() - startedAt
            })
          } else {
            ;(event.stream === "stdout" ? stdout : stderr).push(event.data)
          }
        }
      })
      const collected = options?.idleTimeout !== undefined || options?.killGracePeriod !== undefined
        ? streamed
        : Effect.flatMap(
          serverStopsGroups,
          (direct) => direct ? withDeadline(whole, line, options, operation) : streamed
        )
      return collected.pipe(
        Effect.flatMap(() =>
          exit === undefined
            // The client fails a stream that ends without `complete`; this is a broken invariant.
            ? Effect.dieMessage("Executor: the command stream ended without an exit code")
            : Effect.succeed(
              new CommandResult({
                command: line,
                stdout: joinLines(stdout),
                stderr: joinLines(stderr),
                exitCode: exit.exitCode,
                status: exit.exitCode === 0 ? "finished" : "failed",
                durationMillis: exit.durationMillis
              })
            )
        )
      )
    })

  const exec = Effect.fn("Executor.exec")(function*(command: Command.Input, options?: RunOptions) {
    return yield* collect(command, options, "Executor.exec")
  })

  const run = Effect.fn("Executor.run")(function*(command: Command.Input, options?: RunOptions) {
    const result = yield* collect(command, options, "Executor.run")
    if (result.exitCode !== 0) return yield* commandError(result.command, result)
    return result
  })

  const stream = (command: Command.Input, options?: RunOptions): Stream.Stream<OutputChunk, RunFailure> =>
    Stream.suspend(() => {
      const stdout = new Tail()
      const stderr = new Tail()
      let exitCode = 0
      const exitFailure = Stream.suspend(() =>
        exitCode === 0 ? Stream.empty : Stream.fail(commandError(Command.toLine(command), {
          exitCode,
          stdout: stdout.toString(),
          stderr: stderr.toString()
        }))
      )
      return events(client, serverStopsGroups, command, options, "Executor.stream").pipe(
        Stream.mapChunks((chunk) => {
          const events = Chunk.toReadonlyArray(chunk)
          const out: Array<OutputChunk> = []
          for (let i = 0; i < events.length; i++) {
            const event = events[i]!
            if (event._tag === "CommandExit") {
              exitCode = event.exitCode
            } else {
              ;(event.stream === "stdout" ? stdout : stderr).push(event.data)
              out.push(event)
            }
          }
          return Chunk.unsafeFromArray(out)
        }),
        Stream.concat(exitFailure)
      )
    }).pipe(Stream.withSpan("Executor.stream"))

  return { run, exec, stream, streamEvents } satisfies ExecutorShape
})

/**
 * The `Executor` service from an `ExecutorClient`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Executor, never, ExecutorClient> = Layer.effect(Executor, make)
