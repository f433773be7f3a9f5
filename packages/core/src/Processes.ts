/**
 * Background processes in a sandbox: launch (also scoped), list, kill (the whole process tree),
 * stream logs, wait for exit, for a log line or for a listening port.
 *
 * How it works on the stock executor (whose process features are thin and partly broken: its log
 * replay can crash it or lose a short process's output, and its kill stops only the shell):
 *
 * - `launch` wraps the command: the process appends its stdout and stderr to
 *   `/tmp/.effect-koyeb/proc/<nonce>.out|.err` in the sandbox and runs as its own process group
 *   (its PID is the group id). `list` and `get` show the command as the caller gave it (the
 *   wrapper is recognised and removed); processes started by other clients show the executor's
 *   command unchanged.
 * - `logs` reads those files with a command in the sandbox (following them while the process
 *   runs), never through the executor's `/process_logs_streaming` replay, which can crash the
 *   stock executor, keeps only the last 10 000 lines per stream and can lose a short process's
 *   output. Every line is kept, however many. stdout and stderr lines keep their own order, but
 *   their interleaving is only approximate, as on the executor; `timestamp` is when the SDK read
 *   the line (files hold no capture time). Following a running process needs GNU `tail` (`--pid`),
 *   as in Koyeb's images. The log files stay until the sandbox is deleted, like the executor's
 *   process table. Processes started by other clients have no such files: their `logs` fail with
 *   `InvalidArgument` rather than risk the executor's replay.
 * - `kill` sends SIGTERM to the process group, then SIGKILL to what is left after a grace period,
 *   so no descendant survives. A process started by another client (or a raw `startProcess`) is in
 *   the stock executor's own group, whose kill stops only its shell: `kill` first freezes the
 *   shell's process tree (found through `/proc` from its pid), sends SIGTERM then SIGKILL to the
 *   descendants, and lets the executor kill the shell. An executor advertising
 *   `process-group-kill` (ours) stops the whole group itself.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { ExecutorClient } from "./ExecutorClient.js"
import * as internal from "./internal/processes.js"
import type { ExecutorFailure, InvalidArgument, ProcessNotFound, ProcessNotRunning, Timeout } from "./SandboxError.js"
import type { ProcessInfo, ProcessLogLine } from "./SandboxSchema.js"
import type * as ShellCommand from "./ShellCommand.js"

/**
 * Options of `launch` and `launchScoped`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LaunchOptions {
  /** Working directory of the process (must exist in the sandbox). */
  readonly cwd?: string | undefined
  /** Variables added to (or overriding) the executor's environment. */
  readonly env?: Readonly<Record<string, string>> | undefined
}

/**
 * Options of `kill`.
 *
 * @since 0.1.0
 * @category models
 */
export interface KillOptions {
  /** How long the process group has between SIGTERM and SIGKILL (default 1 second). */
  readonly grace?: Duration.DurationInput | undefined
}

/**
 * Options of `wait`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WaitOptions {
  /** Fail with `Timeout` if the process is still running after this long (default: wait forever). */
  readonly timeout?: Duration.DurationInput | undefined
  /** The longest pause between two status checks (default 1 second); checks start fast and back off. */
  readonly pollInterval?: Duration.DurationInput | undefined
}

/**
 * Options of `waitForLog`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WaitForLogOptions {
  /** Fail with `Timeout` if no line matched after this long (default: wait forever). */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * Options of `waitForPort`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WaitForPortOptions {
  /** Fail with `Timeout` if nothing listens on the port after this long (default: wait forever). */
  readonly timeout?: Duration.DurationInput | undefined
  /** The longest pause between two probes (default 500 milliseconds); probes start fast and back off. */
  readonly pollInterval?: Duration.DurationInput | undefined
}

/**
 * Failures of `logs`: `InvalidArgument` for a process not started by `launch` (its logs cannot be read safely).
 *
 * @since 0.1.0
 * @category errors
 */
export type LogsError = ProcessNotFound | InvalidArgument | ExecutorFailure

/**
 * Failures of `waitForLog`: `ProcessNotRunning` when the process ended without printing a matching line.
 *
 * @since 0.1.0
 * @category errors
 */
export type WaitForLogError = LogsError | ProcessNotRunning | Timeout

/**
 * A launched process, with its operations bound to its id.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProcessHandle {
  /** The executor's id of the process. */
  readonly id: string
  /** The PID of the process in the sandbox (also its process-group id). */
  readonly pid: number
  /** The command line as given to `launch`. */
  readonly command: string
  /** The current status of the process. */
  readonly info: Effect.Effect<ProcessInfo, ProcessNotFound | ExecutorFailure>
  /** Stops the process and its descendants (see `Processes.kill`). */
  readonly kill: (options?: KillOptions) => Effect.Effect<void, ProcessNotFound | ProcessNotRunning | ExecutorFailure>
  /** The output of the process from its start, ending when it has exited (see `Processes.logs`). */
  readonly logs: Stream.Stream<ProcessLogLine, LogsError>
  /** Waits until the process has exited and returns its final info. */
  readonly wait: (options?: WaitOptions) => Effect.Effect<ProcessInfo, ProcessNotFound | Timeout | ExecutorFailure>
  /** Waits for the first output line matching `pattern`. */
  readonly waitForLog: (
    pattern: string | RegExp,
    options?: WaitForLogOptions
  ) => Effect.Effect<ProcessLogLine, WaitForLogError>
}

/**
 * The background-process service of one sandbox.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProcessesShape {
  /** Starts `command` in the background (`sh -c`, output captured to log files in the sandbox). */
  readonly launch: (
    command: ShellCommand.Input,
    options?: LaunchOptions
  ) => Effect.Effect<ProcessHandle, InvalidArgument | ExecutorFailure>
  /** Like `launch`, and kills the process and its descendants when the scope closes (if still running). */
  readonly launchScoped: (
    command: ShellCommand.Input,
    options?: LaunchOptions
  ) => Effect.Effect<ProcessHandle, InvalidArgument | ExecutorFailure, Scope.Scope>
  /** Every process the executor knows (it never forgets finished ones), in no particular order. */
  readonly list: Effect.Effect<ReadonlyArray<ProcessInfo>, ExecutorFailure>
  /** The current info of one process. */
  readonly get: (id: string) => Effect.Effect<ProcessInfo, ProcessNotFound | ExecutorFailure>
  /**
   * Stops a running process and all its descendants: SIGTERM to its process group, SIGKILL after the
   * grace period; returns once the executor reports it ended (status `killed`, or `completed`/`failed`
   * if it exited on its own after SIGTERM).
   */
  readonly kill: (
    id: string,
    options?: KillOptions
  ) => Effect.Effect<void, ProcessNotFound | ProcessNotRunning | ExecutorFailure>
  /** Kills every running process and returns how many it killed (processes that ended meanwhile are skipped). */
  readonly killAll: Effect.Effect<number, ExecutorFailure>
  /**
   * The output of a process launched with `launch`, from its first line, live while it runs; the
   * stream ends when the process has exited and every line was delivered.
   */
  readonly logs: (id: string) => Stream.Stream<ProcessLogLine, LogsError>
  /** Waits until the process has exited and returns its final info (polling with backoff). */
  readonly wait: (
    id: string,
    options?: WaitOptions
  ) => Effect.Effect<ProcessInfo, ProcessNotFound | Timeout | ExecutorFailure>
  /** The first output line of the process that contains `pattern` (a string) or matches it (a RegExp). */
  readonly waitForLog: (
    id: string,
    pattern: string | RegExp,
    options?: WaitForLogOptions
  ) => Effect.Effect<ProcessLogLine, WaitForLogError>
  /** Waits until a TCP socket listens on `port` inside the sandbox (IPv4 or IPv6, any address). */
  readonly waitForPort: (
    port: number,
    options?: WaitForPortOptions
  ) => Effect.Effect<void, InvalidArgument | Timeout | ExecutorFailure>
}

/**
 * The background-process service of one sandbox.
 *
 * @since 0.1.0
 * @category tags
 */
export class Processes extends Context.Tag("@effect-koyeb/core/Processes")<Processes, ProcessesShape>() {}

/**
 * Builds the service from the sandbox's executor client.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<ProcessesShape, never, ExecutorClient> = internal.make

/**
 * The `Processes` layer over the sandbox's `ExecutorClient`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Processes, never, ExecutorClient> = Layer.effect(Processes, make)
