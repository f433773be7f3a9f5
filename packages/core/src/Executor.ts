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
 * `killGracePeriod`. The client asks `/health` once (`ExecutorClient.capabilities`) and each
 * `Executor` chooses its way once, when its first command runs; a failed probe means the stock
 * behaviour.
 *
 * Output is line based, as the executor reports it: `OutputChunk`s carry one line each without
 * its newline. The buffered `stdout` / `stderr` of a `CommandResult` are the lines joined with
 * `\n`, plus a final `\n` when there was at least one line (the executor does not say whether the
 * output ended with a newline, so `printf abc` gives `"abc\n"`).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as Sink from "effect/Sink"
import type * as Stream from "effect/Stream"
import type { ExecutorClient } from "./ExecutorClient.js"
import * as internal from "./internal/executor.js"
import * as lines from "./internal/outputLines.js"
import type { CommandError, ExecutorFailure, InvalidArgument, Timeout, Unsupported } from "./SandboxError.js"
import type { CommandExit, CommandResult, ExecEvent, OutputChunk, StreamName } from "./SandboxSchema.js"
import type * as ShellCommand from "./ShellCommand.js"

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
  /**
   * What the command reads on its stdin (text is sent as UTF-8), then end of input; default: no
   * stdin (end of input at once). Runs the command as `spawn` does.
   *
   * @since 0.2.0
   */
  readonly stdin?: StdinInput | undefined
}

/**
 * Options of `spawn`: those of every call, plus a terminal.
 *
 * @since 0.2.0
 * @category models
 */
export interface SpawnOptions extends RunOptions {
  /**
   * Run the command on a pseudo-terminal of this many columns and rows (1 to 65535 each): it sees
   * a terminal on stdin, stdout and stderr (`isatty` is true, line editing and job control work,
   * Ctrl-C written to stdin interrupts it), all its output arrives as `stdout` with the terminal's
   * `\r\n` line ends and echo, and `resize` changes the size. `TERM` defaults to
   * `xterm-256color` (set it in `env` to change it), and `stdin.end` types Ctrl-D (end of input at
   * the start of a line; the terminal stays open). The terminal comes from the sandbox's
   * `script` (util-linux); without it the spawn fails with `Unsupported`.
   */
  readonly pty?: PtySize | undefined
}

/**
 * The size of a terminal, in characters.
 *
 * @since 0.2.0
 * @category models
 */
export interface PtySize {
  readonly cols: number
  readonly rows: number
}

/**
 * What can be fed to a command's stdin: text (sent as UTF-8), bytes, or a stream of either.
 *
 * @since 0.2.0
 * @category models
 */
export type StdinInput = string | Uint8Array | Stream.Stream<string | Uint8Array>

/**
 * Bytes a running command wrote on one of its pipes, as read: not split into lines, and a UTF-8
 * character may straddle two chunks (`outputLines` decodes and splits them).
 *
 * @since 0.2.0
 * @category models
 */
export interface OutputBytes {
  readonly stream: StreamName
  readonly data: Uint8Array
}

/**
 * The stdin of a running command. Writes are sent in order, one at a time; each completes once
 * the sandbox took the bytes, so a command that does not read its stdin holds writers back.
 * Bytes written after the command closed its stdin (as `head -c 5` does) are discarded.
 *
 * @since 0.2.0
 * @category models
 */
export interface CommandStdin {
  /** Writes text (as UTF-8) or bytes. */
  readonly write: (data: string | Uint8Array) => Effect.Effect<void, ExecFailure>
  /** Closes the stdin: the command reads end of input once it has read what was written. */
  readonly end: Effect.Effect<void, ExecFailure>
  /** Writes every element, then closes the stdin. */
  readonly sink: Sink.Sink<void, string | Uint8Array, never, ExecFailure>
}

/**
 * A command started by `spawn`, running until it exits or its scope closes (which stops it and
 * its process group, as ending a `stream` does).
 *
 * @since 0.2.0
 * @category models
 */
export interface RunningCommand {
  /** The command's stdin. */
  readonly stdin: CommandStdin
  /**
   * Its output as read, stdout and stderr interleaved, ending when the command has exited. Read it
   * once; unread output is held back (a few chunks), and the command then blocks on its writes as
   * it would on a full pipe.
   */
  readonly output: Stream.Stream<OutputBytes, ExecFailure>
  /** Its exit (a command with much unread output is held back before it, as described for `output`). */
  readonly exit: Effect.Effect<CommandExit, ExecFailure>
  /**
   * Sends a signal (such as `SIGINT` or `SIGTERM`) to the command's process group; on a terminal,
   * to the terminal's foreground process group.
   */
  readonly signal: (signal: string) => Effect.Effect<void, ExecFailure>
  /**
   * Sets the size of the command's terminal; its foreground process group gets `SIGWINCH`. A
   * command spawned without `pty`, or a bad size, fails with `InvalidArgument`; Koyeb's stock
   * executor cannot resize a terminal (`Unsupported`).
   *
   * @since 0.2.0
   */
  readonly resize: (cols: number, rows: number) => Effect.Effect<void, ExecFailure | Unsupported>
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
 * import * as ShellCommand from "@effect-koyeb/core/ShellCommand"
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
 *   yield* executor.stream(ShellCommand.sh`npm test -- ${"my test"}`, { cwd: "/app", env: { CI: "1" } }).pipe(
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
  readonly run: (command: ShellCommand.Input, options?: RunOptions) => Effect.Effect<CommandResult, RunFailure>
  /** Runs a command and buffers its output; succeeds whatever the exit code. */
  readonly exec: (command: ShellCommand.Input, options?: RunOptions) => Effect.Effect<CommandResult, ExecFailure>
  /**
   * Streams the output lines of a command; fails with `CommandError` on a non-zero exit code
   * (its `stdout` / `stderr` are the last 64 KiB of each, not the whole output).
   */
  readonly stream: (command: ShellCommand.Input, options?: RunOptions) => Stream.Stream<OutputChunk, RunFailure>
  /** Streams the output lines of a command, then exactly one `CommandExit`, whatever the exit code. */
  readonly streamEvents: (command: ShellCommand.Input, options?: RunOptions) => Stream.Stream<ExecEvent, ExecFailure>
  /**
   * Starts a command to talk to: write its stdin, read its raw output, signal it, await its exit.
   * Closing the scope stops it. On an executor with the `interactive` extension (effect-koyeb's)
   * every part is direct; on Koyeb's stock executor stdin goes through chunk files in the sandbox
   * that a loop copies to the command (each write costs a `/run` round trip plus up to 50 ms), a
   * write completes once on the sandbox's disk rather than once read, and output arrives line by
   * line, each with a `\n` added. With `pty` the command runs on a terminal (see `SpawnOptions`);
   * on the stock executor too, through `script`, but without `resize`.
   *
   * @since 0.2.0
   */
  readonly spawn: (
    command: ShellCommand.Input,
    options?: SpawnOptions
  ) => Effect.Effect<RunningCommand, ExecFailure | Unsupported, Scope.Scope>
}

/**
 * The command-running service of one sandbox.
 *
 * @since 0.1.0
 * @category tags
 */
export class Executor extends Context.Tag("@effect-koyeb/core/Executor")<Executor, ExecutorShape>() {}

/**
 * Builds the service from an `ExecutorClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<ExecutorShape, never, ExecutorClient> = internal.make

/**
 * The `Executor` service from an `ExecutorClient`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Executor, never, ExecutorClient> = Layer.effect(Executor, make)

/**
 * Decodes the output of a running command as UTF-8 and splits it into lines, per stream, as
 * `stream` reports them (no newline; trailing carriage returns removed; a final unterminated line
 * kept).
 *
 * @since 0.2.0
 * @category combinators
 */
export const outputLines: <E, R>(output: Stream.Stream<OutputBytes, E, R>) => Stream.Stream<OutputChunk, E, R> =
  lines.outputLines
