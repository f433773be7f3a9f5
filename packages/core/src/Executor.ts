/**
 * Running commands in a sandbox: buffered (`run`, `exec`) or streamed line by line (`stream`,
 * `streamEvents`), built on the `ExecutorClient`.
 *
 * Every command goes through `/run_streaming` (the stock `/run` deadlocks when stderr exceeds
 * 64 KiB). A command runs until it ends, is interrupted, or reaches the `timeout` the caller set:
 * there is no default deadline. Interrupting a call, hitting its timeout, or ending a stream early
 * stops the command in the sandbox with all its descendants, also when it prints nothing: each
 * command runs in its own process group, which a second request signals (SIGTERM, then SIGKILL
 * after `killGracePeriod`).
 *
 * Output is line based, as the executor reports it: `OutputChunk`s carry one line each without
 * its newline. The buffered `stdout` / `stderr` of a `CommandResult` are the lines joined with
 * `\n`, plus a final `\n` when there was at least one line (the executor does not say whether the
 * output ended with a newline, so `printf abc` gives `"abc\n"`).
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Command from "./Command.js"
import { ExecutorClient } from "./ExecutorClient.js"
import type { ExecutorClientShape, RunStreamEvent } from "./ExecutorClient.js"
import { CommandError, InvalidArgument, Timeout } from "./SandboxError.js"
import type { ExecutorFailure } from "./SandboxError.js"
import { CommandExit, CommandResult, OutputChunk } from "./SandboxSchema.js"
import type { ExecEvent } from "./SandboxSchema.js"
import * as Shell from "./internal/shell.js"

/** Options of every `Executor` call. */
export interface RunOptions {
  /** Working directory in the sandbox (it must exist); default: the executor's. */
  readonly cwd?: string | undefined
  /** Variables added to (and overriding) the executor's environment. */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** Stop the command and fail with `Timeout` when it has not ended after this long; default: none. */
  readonly timeout?: Duration.DurationInput | undefined
  /** How long a stopped command gets between SIGTERM and SIGKILL (default 1 second). */
  readonly killGracePeriod?: Duration.DurationInput | undefined
}

/** How a command can fail to run, whatever its exit code. */
export type ExecFailure = Timeout | InvalidArgument | ExecutorFailure

/** How a command can fail when a non-zero exit code counts as a failure. */
export type RunFailure = CommandError | ExecFailure

/** The command-running service of one sandbox. */
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

/** The command-running service of one sandbox. */
export class Executor extends Context.Tag("@effect-koyeb/core/Executor")<Executor, ExecutorShape>() {}

const defaultKillGrace = Duration.seconds(1)
// How long a stopped command's marker is awaited when the stop came before it arrived.
const markerWait = Duration.seconds(3)
// Bound of the kill request, on top of the grace period.
const killRequestTimeout = Duration.seconds(10)
const mailboxCapacity = 256
const tailChars = 64 * 1024

const describe = (line: string): string => (line.length > 80 ? `${line.slice(0, 77)}...` : line)

const invalidCommand = (detail: string) => new InvalidArgument({ argument: "command", detail })
const invalidEnv = (detail: string) => new InvalidArgument({ argument: "env", detail })

// Sizes are checked by the client; names and NULs would make the executor fail to start the command.
const checkEnv = (env: Readonly<Record<string, string>> | undefined): InvalidArgument | undefined => {
  if (env === undefined) return undefined
  for (const [key, value] of Object.entries(env)) {
    if (key === "" || key.includes("=") || key.includes("\0")) {
      return invalidEnv(`invalid variable name ${JSON.stringify(key)}`)
    }
    if (value.includes("\0")) return invalidEnv(`the value of ${key} contains a NUL character`)
  }
  return undefined
}

/** Validates a command and builds the wrapped line sent to the executor. */
const prepare = (
  line: string,
  marker: string,
  options: RunOptions | undefined
): Effect.Effect<string, InvalidArgument> => {
  if (line.trim() === "") return Effect.fail(invalidCommand("the command is empty"))
  if (line.includes("\0")) return Effect.fail(invalidCommand("the command contains a NUL character"))
  const wrapped = Shell.wrapGroup(marker, line)
  const size = Shell.byteLength(wrapped)
  if (size > Shell.maxArgBytes) {
    return Effect.fail(invalidCommand(
      `the command is ${size} bytes once wrapped (${Shell.byteLength(line)} bytes as given); the sandbox ` +
        `accepts at most ${Shell.maxArgBytes} bytes per argument (Linux MAX_ARG_STRLEN). Write large ` +
        `data to a file first and run a short command that reads it.`
    ))
  }
  const envError = checkEnv(options?.env)
  return envError === undefined ? Effect.succeed(wrapped) : Effect.fail(envError)
}

/** The marker line `<marker><pid>`, or undefined. */
const parseMarker = (marker: string, data: string): number | undefined => {
  if (!data.startsWith(marker)) return undefined
  const pid = data.slice(marker.length)
  return /^[1-9][0-9]*$/.test(pid) ? Number(pid) : undefined
}

/** Sends the group kill; failures are logged, never raised (it runs in finalizers). */
const stopGroup = (client: ExecutorClientShape, pid: number, grace: Duration.Duration) =>
  client.run({ cmd: Shell.killGroup(pid, Duration.toMillis(grace)) }).pipe(
    Effect.timeout(Duration.sum(grace, killRequestTimeout)),
    Effect.catchAllCause((cause) => Effect.logWarning("Executor: could not stop command group", pid, cause)),
    Effect.asVoid
  )

/**
 * The event stream of one command, with the group marker removed. When the stream stops before
 * the command reported its exit (interruption, timeout, early end, failure), the command's group is
 * stopped before the stream's scope closes.
 */
const events = (
  client: ExecutorClientShape,
  input: Command.Input,
  options: RunOptions | undefined,
  operation: string
): Stream.Stream<ExecEvent, ExecFailure> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const line = Command.toLine(input)
    const marker = `__effect_koyeb_${Shell.randomToken()}_`
    const cmd = yield* prepare(line, marker, options)
    const grace = Duration.decode(options?.killGracePeriod ?? defaultKillGrace)
    const startedAt = yield* Clock.currentTimeMillis
    const pid = yield* Deferred.make<number | undefined>()
    const mailbox = yield* Mailbox.make<ExecEvent, ExecFailure>(mailboxCapacity)
    let exited = false
    let markerChecked = false

    const toEvents = (chunk: Chunk.Chunk<RunStreamEvent>): Effect.Effect<ReadonlyArray<ExecEvent>> =>
      Effect.gen(function*() {
        const out: Array<ExecEvent> = []
        for (const event of chunk) {
          if (event._tag === "Complete") {
            exited = true
            const now = yield* Clock.currentTimeMillis
            out.push(new CommandExit({ exitCode: event.code, durationMillis: now - startedAt }))
          } else if (!markerChecked && event.stream === "stderr") {
            // The marker is the first stderr line; stdout lines may arrive before it.
            markerChecked = true
            const found = parseMarker(marker, event.data)
            yield* Deferred.succeed(pid, found)
            if (found === undefined) out.push(new OutputChunk({ stream: event.stream, data: event.data }))
          } else {
            out.push(new OutputChunk({ stream: event.stream, data: event.data }))
          }
        }
        return out
      })

    yield* client.runStreaming({ cmd, cwd: options?.cwd, env: options?.env }).pipe(
      Stream.runForEachChunk((chunk) => Effect.flatMap(toEvents(chunk), (out) => mailbox.offerAll(out))),
      Effect.ensuring(Deferred.succeed(pid, undefined)),
      Mailbox.into(mailbox),
      Effect.forkScoped
    )

    // Added after the reader's fork, so it runs before the reader is interrupted: the reader keeps
    // reading (into a shut mailbox) until the marker shows up.
    yield* Effect.addFinalizer(() =>
      exited ? Effect.void : Effect.gen(function*() {
        yield* mailbox.shutdown
        const found = yield* Deferred.await(pid).pipe(Effect.timeout(markerWait), Effect.option)
        if (Option.isSome(found) && found.value !== undefined) {
          yield* stopGroup(client, found.value, grace)
        } else if (!exited) {
          yield* Effect.logDebug("Executor: stopped before the command reported its process group", line)
        }
      })
    )

    const output = Mailbox.toStream(mailbox)
    if (options?.timeout === undefined) return output
    const timeout = Duration.decode(options.timeout)
    const timedOut = new Timeout({
      operation: `${operation}(${describe(line)})`,
      timeoutMillis: Duration.toMillis(timeout)
    })
    return Stream.interruptWhen(output, Effect.zipRight(Effect.sleep(timeout), Effect.fail(timedOut)))
  }))

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

/** Builds the service from an `ExecutorClient`. */
export const make: Effect.Effect<ExecutorShape, never, ExecutorClient> = Effect.gen(function*() {
  const client = yield* ExecutorClient

  const streamEvents = (command: Command.Input, options?: RunOptions): Stream.Stream<ExecEvent, ExecFailure> =>
    events(client, command, options, "Executor.streamEvents").pipe(Stream.withSpan("Executor.streamEvents"))

  const collect = (command: Command.Input, options: RunOptions | undefined, operation: string) =>
    Effect.suspend(() => {
      const stdout: Array<string> = []
      const stderr: Array<string> = []
      let exit: CommandExit | undefined
      return events(client, command, options, operation).pipe(
        Stream.runForEach((event) =>
          Effect.sync(() => {
            if (event._tag === "CommandExit") exit = event
            else (event.stream === "stdout" ? stdout : stderr).push(event.data)
          })
        ),
        Effect.flatMap(() =>
          exit === undefined
            // The client fails a stream that ends without `complete`; this is a broken invariant.
            ? Effect.dieMessage("Executor: the command stream ended without an exit code")
            : Effect.succeed(
              new CommandResult({
                command: Command.toLine(command),
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
      return events(client, command, options, "Executor.stream").pipe(
        Stream.mapChunks(Chunk.filterMap((event) => {
          if (event._tag === "CommandExit") {
            exitCode = event.exitCode
            return Option.none()
          }
          ;(event.stream === "stdout" ? stdout : stderr).push(event.data)
          return Option.some(event)
        })),
        Stream.concat(exitFailure)
      )
    }).pipe(Stream.withSpan("Executor.stream"))

  return { run, exec, stream, streamEvents } satisfies ExecutorShape
})

/** The `Executor` service from an `ExecutorClient`. */
export const layer: Layer.Layer<Executor, never, ExecutorClient> = Layer.effect(Executor, make)
