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
import type * as Stream from "effect/Stream"
import type { ExecutorClient } from "./ExecutorClient.js"
import * as internal from "./internal/executor.js"
import type { CommandError, ExecutorFailure, InvalidArgument, Timeout } from "./SandboxError.js"
import type { CommandResult, ExecEvent, OutputChunk } from "./SandboxSchema.js"
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
