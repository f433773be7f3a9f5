/**
 * The `Processes` service: background processes launched through `/start_process` with their
 * output in log files of the sandbox, stopped as process groups (other processes with their
 * descendants), their logs read with commands, and waits that poll with backoff.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { ExecutorClient } from "../ExecutorClient.js"
import type { RunStreamEvent } from "../ExecutorClient.js"
import type {
  KillOptions,
  LaunchOptions,
  LogsError,
  ProcessesShape,
  ProcessHandle,
  WaitForLogOptions,
  WaitForPortOptions,
  WaitOptions
} from "../Processes.js"
import type { ExecutorFailure, Timeout } from "../SandboxError.js"
import { InvalidArgument, ProcessNotFound, ProcessNotRunning } from "../SandboxError.js"
import { ProcessInfo, ProcessLogLine } from "../SandboxSchema.js"
import * as ShellCommand from "../ShellCommand.js"
import { withTimeout } from "./bounded.js"
import * as Capabilities from "./capabilities.js"
import { isTcpPort } from "./ports.js"
import { launchCommand, listeningCommand, logsCommand, logsMarker, parseLaunched, stopTree } from "./processCommands.js"
import { checkCommand, checkEnv, killGroup, maxArgBytes, randomToken, utf8Length } from "./shell.js"

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
 * The first line of `logs` that contains `pattern` (a string) or matches it (a RegExp); when the
 * logs end first, `ProcessNotRunning` with the status `final` reports.
 */
export const firstMatch = <E1, E2>(
  id: string,
  logs: Stream.Stream<ProcessLogLine, E1>,
  final: Effect.Effect<ProcessInfo, E2>,
  pattern: string | RegExp,
  options: WaitForLogOptions | undefined
): Effect.Effect<ProcessLogLine, E1 | E2 | Timeout | ProcessNotRunning> =>
  Effect.gen(function*() {
    const matches = (line: ProcessLogLine) =>
      typeof pattern === "string" ? line.data.includes(pattern) : line.data.search(pattern) !== -1
    const found = yield* withTimeout(
      logs.pipe(Stream.filter(matches), Stream.runHead),
      "Processes.waitForLog",
      options?.timeout
    )
    if (Option.isSome(found)) return found.value
    return yield* new ProcessNotRunning({ id, status: (yield* final).status })
  })

/** The handle of a launched process: the service's operations bound to its id. */
export const processHandle = (
  processes: Pick<ProcessesShape, "get" | "kill" | "logs" | "wait" | "waitForLog">,
  started: { readonly id: string; readonly pid: number },
  command: string
): ProcessHandle => ({
  id: started.id,
  pid: started.pid,
  command,
  info: processes.get(started.id),
  kill: (options) => processes.kill(started.id, options),
  logs: processes.logs(started.id),
  wait: (options) => processes.wait(started.id, options),
  waitForLog: (pattern, options) => processes.waitForLog(started.id, pattern, options)
})

/** Builds the service from the sandbox's executor client. */
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
    const grace = Duration.toMillis(options?.grace ?? defaultGrace)
    if (parseLaunched(info.command) === undefined) {
      // Not ours: the stock executor's kill stops only the shell, whose group is the executor's, so
      // the descendants are stopped through the shell's pid first (ours stops the whole group).
      // Uninterruptible: the shell is left stopped for that kill.
      const groupKill = (yield* client.capabilities).has(Capabilities.processGroupKill)
      yield* Effect.uninterruptible(Effect.zipRight(
        groupKill
          ? Effect.void
          : client.run({ cmd: stopTree(info.pid, grace) }).pipe(Effect.catchTag("InvalidArgument", Effect.die)),
        client.killProcess(id)
      ))
    } else {
      yield* client.run({ cmd: killGroup(info.pid, grace) }).pipe(
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
      return yield* firstMatch(id, logs(id), rawGet(id), pattern, options)
    }
  )

  const waitForPort = Effect.fn("Processes.waitForPort")(function*(port: number, options?: WaitForPortOptions) {
    if (!isTcpPort(port)) {
      return yield* new InvalidArgument({ argument: "port", detail: `${port} is not a TCP port (1-65535)` })
    }
    const probe = client.run({ cmd: listeningCommand(port) }).pipe(Effect.map((reply) => reply.code === 0))
    yield* withTimeout(
      pollUntil(probe, (listening) => listening, options?.pollInterval ?? "500 millis"),
      "Processes.waitForPort",
      options?.timeout
    )
  })

  const launch = Effect.fn("Processes.launch")(function*(command: ShellCommand.Input, options?: LaunchOptions) {
    const line = ShellCommand.toLine(command)
    const invalid = checkCommand(line) ?? checkEnv(options?.env)
    if (invalid !== undefined) return yield* invalid
    const cmd = launchCommand(randomToken(), line)
    if (utf8Length(cmd) > maxArgBytes) {
      return yield* new InvalidArgument({
        argument: "command",
        detail: `the command is too long for the sandbox's shell (${utf8Length(line)} bytes)`
      })
    }
    const started = yield* client.startProcess({ cmd, cwd: options?.cwd, env: options?.env })
    yield* Effect.annotateCurrentSpan({ id: started.id, pid: started.pid })
    return processHandle({ get, kill, logs, wait, waitForLog }, started, line)
  })

  const launchScoped = (command: ShellCommand.Input, options?: LaunchOptions) =>
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
