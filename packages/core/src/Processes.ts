/**
 * Background processes in a sandbox: launch (also scoped), list, kill (the whole process tree),
 * stream logs, wait for exit, for a log line or for a listening port.
 *
 * How it works on the stock executor (whose process features are thin and partly broken,
 * `koyeb-wire.md` §2.6, §6.1):
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
 *   so no descendant survives; the executor's own kill (SIGKILL of the shell only) is used only for
 *   processes started by other clients.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Command from "./Command.js"
import { toLine } from "./Command.js"
import { ExecutorClient } from "./ExecutorClient.js"
import type { RunStreamEvent } from "./ExecutorClient.js"
import { withTimeout } from "./internal/bounded.js"
import { launchCommand, listeningCommand, logsCommand, logsMarker, parseLaunched } from "./internal/processes.js"
import { byteLength, checkCommand, checkEnv, killGroup, maxArgBytes, randomToken } from "./internal/shell.js"
import type { ExecutorFailure, Timeout } from "./SandboxError.js"
import { InvalidArgument, ProcessNotFound, ProcessNotRunning } from "./SandboxError.js"
import { ProcessInfo, ProcessLogLine } from "./SandboxSchema.js"

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
    command: Command.Input,
    options?: LaunchOptions
  ) => Effect.Effect<ProcessHandle, InvalidArgument | ExecutorFailure>
  /** Like `launch`, and kills the process and its descendants when the scope closes (if still running). */
  readonly launchScoped: (
    command: Command.Input,
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

const defaultGrace: Duration.DurationInput = "1 second"

/** Repeats `check` until `done` holds for its result: fast at first, backing off to at most `max` apart. */
const pollUntil = <A, E, R>(check: Effect.Effect<A, E, R>, done: (a: A) => boolean, max: Duration.DurationInput) =>
  Effect.repeat(check, {
    schedule: Schedule.zipLeft(
      Schedule.identity<A>(),
      Schedule.exponential("25 millis", 1.5).pipe(Schedule.union(Schedule.spaced(max)))
    ),
    until: done
  })

/** Shows the caller's command for processes started by `launch`. */
const present = (info: ProcessInfo): ProcessInfo => {
  const launched = parseLaunched(info.command)
  return launched === undefined ? info : new ProcessInfo({ ...info, command: launched.line })
}

/**
 * Builds the service from the sandbox's executor client.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<ProcessesShape, never, ExecutorClient> = Effect.gen(function*() {
  const client = yield* ExecutorClient

  const rawGet = Effect.fnUntraced(function*(id: string) {
    const all = yield* client.listProcesses
    const found = all.find((info) => info.id === id)
    return found === undefined ? yield* new ProcessNotFound({ id }) : found
  })

  const list = client.listProcesses.pipe(
    Effect.map((all) => all.map(present)),
    Effect.withSpan("Processes.list")
  )

  const get = Effect.fn("Processes.get")(function*(id: string) {
    return present(yield* rawGet(id))
  })

  const awaitExit = (id: string, pollInterval: Duration.DurationInput) =>
    pollUntil(get(id), (info) => !info.isRunning, pollInterval)

  const wait = Effect.fn("Processes.wait")(function*(id: string, options?: WaitOptions) {
    return yield* withTimeout(awaitExit(id, options?.pollInterval ?? "1 second"), "Processes.wait", options?.timeout)
  })

  const kill = Effect.fn("Processes.kill")(function*(id: string, options?: KillOptions) {
    const info = yield* rawGet(id)
    if (!info.isRunning) return yield* new ProcessNotRunning({ id, status: info.status })
    if (parseLaunched(info.command) === undefined) {
      // Not ours: the executor's kill is all there is (SIGKILL of its shell).
      yield* client.killProcess(id)
    } else {
      yield* client.run({ cmd: killGroup(info.pid, Duration.toMillis(options?.grace ?? defaultGrace)) }).pipe(
        Effect.catchTag("InvalidArgument", Effect.die)
      )
    }
    // The executor records the end asynchronously; if the group somehow survived, fall back to its kill.
    yield* awaitExit(id, "200 millis").pipe(
      Effect.timeout("5 seconds"),
      Effect.catchTag("TimeoutException", () =>
        client.killProcess(id).pipe(
          Effect.catchTag("ProcessNotRunning", () => Effect.void),
          Effect.zipRight(awaitExit(id, "200 millis"))
        ))
    )
  })

  const killAll = Effect.gen(function*() {
    const running = (yield* client.listProcesses).filter((info) => info.isRunning)
    const killed = yield* Effect.forEach(running, (info) =>
      kill(info.id).pipe(
        Effect.as(1),
        Effect.catchTags({ ProcessNotFound: () => Effect.succeed(0), ProcessNotRunning: () => Effect.succeed(0) })
      ), { concurrency: 8 })
    return killed.reduce((a, b) => a + b, 0)
  }).pipe(Effect.withSpan("Processes.killAll"))

  /** Reads the log files of a launched process through `/run_streaming`, stopping the readers if cut short. */
  const readLogs = (nonce: string, followPid: number | undefined): Stream.Stream<ProcessLogLine, ExecutorFailure> =>
    Stream.unwrapScoped(Effect.gen(function*() {
      const readers = yield* Ref.make<Option.Option<number>>(Option.none())
      const completed = yield* Ref.make(false)
      yield* Effect.addFinalizer(() =>
        Effect.all([Ref.get(completed), Ref.get(readers)]).pipe(
          Effect.flatMap(([done, pid]) =>
            done || Option.isNone(pid)
              ? Effect.void
              : client.run({ cmd: killGroup(pid.value, 200) }).pipe(Effect.ignore)
          )
        )
      )
      const toLines = (events: Chunk.Chunk<RunStreamEvent>) =>
        Effect.gen(function*() {
          const timestamp = new Date(yield* Clock.currentTimeMillis).toISOString()
          const lines: Array<ProcessLogLine> = []
          for (const event of events) {
            if (event._tag === "Complete") {
              yield* Ref.set(completed, true)
            } else if (event.stream === "stderr" && Option.isNone(yield* Ref.get(readers))) {
              // The first stderr line is the readers' group marker, not process output.
              const pid = Number(event.data.slice(logsMarker.length))
              yield* Ref.set(readers, Option.some(pid))
            } else {
              lines.push(new ProcessLogLine({ timestamp, stream: event.stream, data: event.data }))
            }
          }
          return Chunk.unsafeFromArray(lines)
        })
      return client.runStreaming({ cmd: logsCommand(nonce, followPid) }).pipe(
        Stream.catchTag("InvalidArgument", (error) => Stream.die(error)),
        Stream.mapChunksEffect(toLines)
      )
    }))

  const logs = (id: string): Stream.Stream<ProcessLogLine, LogsError> =>
    Stream.unwrap(Effect.gen(function*() {
      const info = yield* rawGet(id)
      const launched = parseLaunched(info.command)
      if (launched === undefined) {
        return yield* new InvalidArgument({
          argument: "id",
          detail: `process ${id} was not started by Processes.launch: its logs are only in the executor's ` +
            "replay buffer, whose replay can crash the stock executor"
        })
      }
      return readLogs(launched.nonce, info.isRunning ? info.pid : undefined)
    })).pipe(Stream.withSpan("Processes.logs", { attributes: { id } }))

  const waitForLog = Effect.fn("Processes.waitForLog")(
    function*(id: string, pattern: string | RegExp, options?: WaitForLogOptions) {
      const matches = (line: ProcessLogLine) =>
        typeof pattern === "string" ? line.data.includes(pattern) : line.data.search(pattern) !== -1
      const found = yield* withTimeout(
        logs(id).pipe(Stream.filter(matches), Stream.runHead),
        "Processes.waitForLog",
        options?.timeout
      )
      if (Option.isSome(found)) return found.value
      const final = yield* rawGet(id)
      return yield* new ProcessNotRunning({ id, status: final.status })
    }
  )

  const waitForPort = Effect.fn("Processes.waitForPort")(function*(port: number, options?: WaitForPortOptions) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      return yield* new InvalidArgument({ argument: "port", detail: `${port} is not a TCP port (1-65535)` })
    }
    const probe = client.run({ cmd: listeningCommand(port) }).pipe(Effect.map((reply) => reply.code === 0))
    yield* withTimeout(
      pollUntil(probe, (listening) => listening, options?.pollInterval ?? "500 millis"),
      "Processes.waitForPort",
      options?.timeout
    )
  })

  const handle = (started: { readonly id: string; readonly pid: number }, command: string): ProcessHandle => ({
    id: started.id,
    pid: started.pid,
    command,
    info: get(started.id),
    kill: (options) => kill(started.id, options),
    logs: logs(started.id),
    wait: (options) => wait(started.id, options),
    waitForLog: (pattern, options) => waitForLog(started.id, pattern, options)
  })

  const launch = Effect.fn("Processes.launch")(function*(command: Command.Input, options?: LaunchOptions) {
    const line = toLine(command)
    const invalid = checkCommand(line) ?? checkEnv(options?.env)
    if (invalid !== undefined) return yield* invalid
    const cmd = launchCommand(randomToken(), line)
    if (byteLength(cmd) > maxArgBytes) {
      return yield* new InvalidArgument({
        argument: "command",
        detail: `the command is too long for the sandbox's shell (${byteLength(line)} bytes)`
      })
    }
    const started = yield* client.startProcess({ cmd, cwd: options?.cwd, env: options?.env })
    yield* Effect.annotateCurrentSpan({ id: started.id, pid: started.pid })
    return handle(started, line)
  })

  const launchScoped = (command: Command.Input, options?: LaunchOptions) =>
    Effect.acquireRelease(
      launch(command, options),
      (process) =>
        kill(process.id).pipe(
          Effect.catchTags({ ProcessNotFound: () => Effect.void, ProcessNotRunning: () => Effect.void }),
          Effect.ignoreLogged
        )
    ).pipe(Effect.withSpan("Processes.launchScoped"))

  return { launch, launchScoped, list, get, kill, killAll, logs, wait, waitForLog, waitForPort }
})

/**
 * The `Processes` layer over the sandbox's `ExecutorClient`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Processes, never, ExecutorClient> = Layer.effect(Processes, make)
