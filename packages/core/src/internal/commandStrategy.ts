/**
 * What the two ways of running a command share (`markerStrategy` and `groupStopStrategy`): the
 * strategy's interface, the validation of a command, and the deadlines of `RunOptions`.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import type * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { ExecFailure, RunOptions } from "../Executor.js"
import type { RunStreamEvent } from "../ExecutorClient.js"
import { InvalidArgument, Timeout } from "../SandboxError.js"
import { CommandExit, OutputChunk } from "../SandboxSchema.js"
import type { ExecEvent, StreamName } from "../SandboxSchema.js"
import * as Shell from "./shell.js"

/** A command's output lines and its exit, read to the end. */
export interface Collected {
  readonly stdout: ReadonlyArray<string>
  readonly stderr: ReadonlyArray<string>
  readonly exit: CommandExit
}

/**
 * How the commands of one `Executor` run and are stopped, chosen once from the executor's
 * capabilities. `line` is the command as given; `operation` names the call in a `Timeout`.
 */
export interface CommandStrategy {
  /**
   * The output lines of the command, then exactly one `CommandExit`. When the stream stops before
   * the exit (interruption, timeout, early end, failure), the command and its process group are
   * stopped before the stream's scope closes.
   */
  readonly events: (line: string, options: RunOptions | undefined, operation: string) => Stream.Stream<
    ExecEvent,
    ExecFailure
  >
  /** The whole output and the exit of the command, stopped the same way when interrupted. */
  readonly collect: (line: string, options: RunOptions | undefined, operation: string) => Effect.Effect<
    Collected,
    ExecFailure
  >
}

/** `line` cut to 80 characters, as operations name it in a `Timeout`. */
export const describe = (line: string): string => (line.length > 80 ? `${line.slice(0, 77)}...` : line)

/** Output lines joined as the text of a stream: each line ended by `\n`. */
export const joinLines = (lines: ReadonlyArray<string>): string => (lines.length === 0 ? "" : `${lines.join("\n")}\n`)

/** Validates a command and builds the line sent to the executor: wrapped unless `marker` is undefined. */
export const prepare = (
  line: string,
  marker: string | undefined,
  options: RunOptions | undefined
): Effect.Effect<string, InvalidArgument> => {
  const commandError = Shell.checkCommand(line)
  if (commandError !== undefined) return Effect.fail(commandError)
  const cmd = marker === undefined ? line : Shell.wrapGroup(marker, line)
  const size = Shell.utf8Length(cmd)
  if (size > Shell.maxArgBytes) {
    return Effect.fail(
      new InvalidArgument({
        argument: "command",
        detail:
          `the command is ${size} bytes${
            marker === undefined ? "" : ` once wrapped (${Shell.utf8Length(line)} bytes as given)`
          }; ` +
          `the sandbox accepts at most ${Shell.maxArgBytes} bytes per argument (Linux MAX_ARG_STRLEN). Write large ` +
          `data to a file first and run a short command that reads it.`
      })
    )
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

const timedOut = (line: string, timeout: Duration.Duration, operation: string) =>
  new Timeout({ operation: `${operation}(${describe(line)})`, timeoutMillis: Duration.toMillis(timeout) })

/** Fails with `Timeout` (the command stopped by the interruption) when `options.timeout` passes. */
export const withDeadline = <A, E>(
  effect: Effect.Effect<A, E>,
  line: string,
  options: RunOptions | undefined,
  operation: string
): Effect.Effect<A, E | Timeout> => {
  if (options?.timeout === undefined) return effect
  const timeout = Duration.decode(options.timeout)
  return Effect.timeoutFail(effect, { duration: timeout, onTimeout: () => timedOut(line, timeout, operation) })
}

/** `events` failing with `Timeout` when `options.idleTimeout` passes without an event, or `options.timeout` at all. */
export const withStreamDeadlines = <A, E>(
  events: Stream.Stream<A, E>,
  line: string,
  options: RunOptions | undefined,
  operation: string
): Stream.Stream<A, E | Timeout> => {
  const idle = options?.idleTimeout === undefined ? undefined : Duration.decode(options.idleTimeout)
  const output = idle === undefined ? events : Stream.timeoutFail(
    events,
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
}

/** The marker line `<marker><pid>`, or undefined. */
const parseMarker = (marker: string, data: string): number | undefined => {
  if (!data.startsWith(marker)) return undefined
  const pid = data.slice(marker.length)
  return /^[1-9][0-9]*$/.test(pid) ? Number(pid) : undefined
}

/** What a command's events told so far: whether it exited, and the process group its marker named. */
export interface EventState {
  exited: boolean
  markerChecked: boolean
  markerPid: number | undefined
}

/**
 * Turns the client's events of one command into `ExecEvent`s, timing the exit from now. With a
 * `marker`, the first stderr line is checked for it and removed when it is the marker.
 */
export const makeConverter = (clock: Clock.Clock, marker: string | undefined) => {
  const startedAt = clock.unsafeCurrentTimeMillis()
  const state: EventState = { exited: false, markerChecked: marker === undefined, markerPid: undefined }
  // Synchronous, one pass per chunk: this is the hot path of every output line.
  const convert = (chunk: Chunk.Chunk<RunStreamEvent>): Chunk.Chunk<ExecEvent> => {
    const events = Chunk.toReadonlyArray(chunk)
    const out: Array<ExecEvent> = []
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!
      if (event._tag === "Complete") {
        state.exited = true
        out.push(new CommandExit({ exitCode: event.code, durationMillis: clock.unsafeCurrentTimeMillis() - startedAt }))
      } else if (!state.markerChecked && event.stream === "stderr") {
        // The marker is the first stderr line; stdout lines may arrive before it.
        state.markerChecked = true
        state.markerPid = parseMarker(marker!, event.data)
        if (state.markerPid === undefined) out.push(outputChunk(event.stream, event.data))
      } else {
        out.push(outputChunk(event.stream, event.data))
      }
    }
    return Chunk.unsafeFromArray(out)
  }
  return { state, convert }
}

/** Reads `events` to the end: the lines of each stream and the exit. */
export const collectEvents = <E>(events: Stream.Stream<ExecEvent, E>): Effect.Effect<Collected, E> =>
  Effect.suspend(() => {
    const stdout: Array<string> = []
    const stderr: Array<string> = []
    let exit: CommandExit | undefined
    return events.pipe(
      Stream.runForEachChunk((chunk) =>
        Effect.sync(() => {
          for (const event of chunk) {
            if (event._tag === "CommandExit") exit = event
            else (event.stream === "stdout" ? stdout : stderr).push(event.data)
          }
        })
      ),
      Effect.flatMap(() => collected(stdout, stderr, exit))
    )
  })

/** The output and exit of a command whose events were all read. */
export const collected = (
  stdout: ReadonlyArray<string>,
  stderr: ReadonlyArray<string>,
  exit: CommandExit | undefined
): Effect.Effect<Collected> =>
  exit === undefined
    // The client fails a stream that ends without `complete`; this is a broken invariant.
    ? Effect.dieMessage("Executor: the command stream ended without an exit code")
    : Effect.succeed({ stdout, stderr, exit })
