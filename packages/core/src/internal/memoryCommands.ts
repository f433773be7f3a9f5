/**
 * Commands and background processes of `Testing.layerMemory`: every command is answered by the
 * first matching user handler (an unhandled one exits with 127, like a shell's "command not
 * found"); the `Executor` and `Processes` services are built on top, with the real services'
 * errors, line splitting and statuses.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { ExecFailure, ExecutorShape, RunFailure, RunOptions, SpawnOptions, StdinInput } from "../Executor.js"
import type { FilesystemShape } from "../Filesystem.js"
import type {
  KillOptions,
  LaunchOptions,
  ProcessesShape,
  ProcessHandle,
  WaitForLogOptions,
  WaitForPortOptions,
  WaitOptions
} from "../Processes.js"
import { CommandError, InvalidArgument, ProcessNotFound, ProcessNotRunning, Timeout } from "../SandboxError.js"
import type { FileExists, FileNotFound, FilesystemError } from "../SandboxError.js"
import { CommandExit, CommandResult, OutputChunk, ProcessInfo, ProcessLogLine } from "../SandboxSchema.js"
import type { ExecEvent, StreamName } from "../SandboxSchema.js"
import * as ShellCommand from "../ShellCommand.js"
import type { CommandContext, CommandHandler, CommandReply, RecordedCommand } from "../Testing.js"
import { withTimeout } from "./bounded.js"
import { concatBytes, toBytes } from "./bytes.js"
import { describe, joinLines } from "./commandStrategy.js"
import { isTcpPort } from "./ports.js"
import { firstMatch, processHandle } from "./processes.js"
import { checkCommand } from "./shell.js"
import { eventsWithStdin, makeRunning, noTerminal, type TransportEvent, withTerminal } from "./spawn.js"

/** The output lines of a text, as the executor reports them (no trailing empty line). */
export const splitLines = (text: string | undefined): Array<string> => {
  if (text === undefined || text === "") return []
  const lines = text.split("\n")
  if (lines[lines.length - 1] === "") lines.pop()
  return lines
}

const matches = (handler: CommandHandler, command: string): boolean =>
  typeof handler.match === "string"
    ? handler.match === command.trim()
    : handler.match instanceof RegExp
    ? handler.match.test(command)
    : handler.match(command)

/** The reply to a command no handler matched. */
export const unhandled = (command: string): CommandReply => ({ exitCode: 127, stderr: `no handler for: ${command}` })

/** What the sandbox needs to answer commands. */
export interface CommandRunner {
  /** Rejects an empty command, a NUL character, or a `cwd` that is not a directory. */
  readonly check: (
    line: string,
    options: { readonly cwd?: string | undefined }
  ) => Effect.Effect<void, InvalidArgument>
  /** Validates, records and answers one command. */
  readonly respond: (
    line: string,
    options: { readonly cwd?: string | undefined; readonly env?: Readonly<Record<string, string>> | undefined },
    via: RecordedCommand["via"],
    stdin?: Effect.Effect<string>
  ) => Effect.Effect<CommandReply, ExecFailure>
  readonly recorded: () => ReadonlyArray<RecordedCommand>
}

export const makeRunner = (options: {
  readonly handlers: ReadonlyArray<CommandHandler>
  readonly env: Readonly<Record<string, string>>
  readonly filesystem: FilesystemShape
}): CommandRunner => {
  const recorded: Array<RecordedCommand> = []
  const check: CommandRunner["check"] = (line, request) =>
    Effect.gen(function*() {
      const invalid = checkCommand(line)
      if (invalid !== undefined) return yield* invalid
      if (
        request.cwd !== undefined &&
        !(yield* options.filesystem.isDir(request.cwd).pipe(Effect.orElseSucceed(() => false)))
      ) {
        return yield* new InvalidArgument({ argument: "cwd", detail: `Invalid working directory: ${request.cwd}` })
      }
    })
  const respond: CommandRunner["respond"] = (line, request, via, stdin = Effect.succeed("")) =>
    Effect.gen(function*() {
      yield* check(line, request)
      const env = { ...options.env, ...request.env }
      recorded.push({ command: line, cwd: request.cwd, env, via })
      const handler = options.handlers.find((candidate) => matches(candidate, line))
      if (handler === undefined) return unhandled(line)
      if (typeof handler.reply !== "function") return handler.reply
      const context: CommandContext = { command: line, cwd: request.cwd, env, fs: options.filesystem, stdin }
      const reply = handler.reply(context)
      if (!Effect.isEffect(reply)) return reply
      // a file error inside a handler is the command failing, as a shell tool would
      return yield* Effect.catchIf(
        reply,
        (e): e is FileNotFound | FileExists | FilesystemError =>
          e._tag === "FileNotFound" || e._tag === "FileExists" || e._tag === "FilesystemError",
        (e): Effect.Effect<CommandReply> => Effect.succeed({ exitCode: 1, stderr: e.message })
      )
    })
  return { check, respond, recorded: () => recorded.slice() }
}

// The exit code of a spawned command signaled before it ended is 128 + the signal's number.
const signalNumbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 }

/** The output of a reply as events: stdout lines, then stderr lines. */
const outputOf = (reply: CommandReply): Array<OutputChunk> => [
  ...splitLines(reply.stdout).map((data) => new OutputChunk({ stream: "stdout", data })),
  ...splitLines(reply.stderr).map((data) => new OutputChunk({ stream: "stderr", data }))
]

/** The `Executor` service answering commands with `runner`. */
export const makeExecutor = (runner: CommandRunner): ExecutorShape => {
  const spawn = (input: ShellCommand.Input, options?: SpawnOptions) =>
    Effect.gen(function*() {
      const line = ShellCommand.toLine(input)
      yield* runner.check(line, options ?? {})
      yield* withTerminal(options)
      const written: Array<Uint8Array> = []
      const ended = yield* Deferred.make<string>()
      const text = Effect.suspend(() =>
        Deferred.succeed(ended, new TextDecoder().decode(concatBytes(Chunk.unsafeFromArray(written))))
      )
      const events: Stream.Stream<TransportEvent, ExecFailure> = Stream.unwrap(Effect.map(
        runner.respond(line, options ?? {}, "run", Deferred.await(ended)),
        (reply) =>
          Stream.fromIterable<TransportEvent>([
            { stream: "stdout", data: toBytes(reply.stdout ?? "") },
            { stream: "stderr", data: toBytes(reply.stderr ?? "") }
          ]).pipe(
            Stream.filter((event) => "_tag" in event || event.data.length > 0),
            Stream.concat(
              reply.keepRunning === true
                ? Stream.never
                : Stream.make<[TransportEvent]>({ _tag: "Complete", code: reply.exitCode ?? 0 })
            )
          )
      ))
      const signaled = yield* Deferred.make<number>()
      return yield* makeRunning({
        events: Stream.merge(
          events,
          Stream.fromEffect(
            Effect.map(Deferred.await(signaled), (code): TransportEvent => ({ _tag: "Complete", code }))
          ),
          { haltStrategy: "either" }
        ),
        write: (data) => Effect.sync(() => void written.push(data.slice())),
        end: Effect.asVoid(text),
        signal: (name) => Effect.asVoid(Deferred.succeed(signaled, 128 + (signalNumbers[name] ?? 15))),
        // a terminal here has no size to keep
        resize: () => options?.pty === undefined ? noTerminal() : Effect.void,
        maxWrite: Number.MAX_SAFE_INTEGER
      })
    })

  const events = (input: ShellCommand.Input, options: RunOptions | undefined, operation: string) =>
    options?.stdin !== undefined
      ? eventsWithStdin((o) => spawn(input, o), options as RunOptions & { readonly stdin: StdinInput })
      : Stream.suspend(() => {
        const line = ShellCommand.toLine(input)
        const output: Stream.Stream<ExecEvent, ExecFailure> = Stream.unwrap(Effect.gen(function*() {
          const startedAt = yield* Clock.currentTimeMillis
          const reply = yield* runner.respond(line, options ?? {}, "run")
          const exit = Effect.map(
            Clock.currentTimeMillis,
            (now) => new CommandExit({ exitCode: reply.exitCode ?? 0, durationMillis: now - startedAt })
          )
          return Stream.fromIterable<ExecEvent>(outputOf(reply)).pipe(
            Stream.concat(reply.keepRunning === true ? Stream.never : Stream.fromEffect(exit))
          )
        }))
        if (options?.timeout === undefined) return output
        const timedOut = new Timeout({
          operation: `${operation}(${describe(line)})`,
          timeoutMillis: Duration.toMillis(options.timeout)
        })
        return Stream.interruptWhen(output, Effect.zipRight(Effect.sleep(options.timeout), Effect.fail(timedOut)))
      })

  const collect = (input: ShellCommand.Input, options: RunOptions | undefined, operation: string) =>
    Effect.gen(function*() {
      const lines: Record<StreamName, Array<string>> = { stdout: [], stderr: [] }
      let exit = new CommandExit({ exitCode: 0, durationMillis: 0 })
      yield* Stream.runForEach(events(input, options, operation), (event) =>
        Effect.sync(() => {
          if (event._tag === "CommandExit") exit = event
          else lines[event.stream].push(event.data)
        }))
      return new CommandResult({
        command: ShellCommand.toLine(input),
        stdout: joinLines(lines.stdout),
        stderr: joinLines(lines.stderr),
        exitCode: exit.exitCode,
        status: exit.exitCode === 0 ? "finished" : "failed",
        durationMillis: exit.durationMillis
      })
    })

  const commandError = (result: CommandResult) =>
    new CommandError({
      command: result.command,
      exitCode: result.exitCode,
      stdout: result.stdout,
      stderr: result.stderr
    })

  const exec = Effect.fn("Executor.exec")(function*(command: ShellCommand.Input, options?: RunOptions) {
    return yield* collect(command, options, "Executor.exec")
  })

  const run = Effect.fn("Executor.run")(function*(command: ShellCommand.Input, options?: RunOptions) {
    const result = yield* collect(command, options, "Executor.run")
    return result.exitCode === 0 ? result : yield* commandError(result)
  })

  const stream = (command: ShellCommand.Input, options?: RunOptions): Stream.Stream<OutputChunk, RunFailure> =>
    Stream.suspend(() => {
      const lines: Record<StreamName, Array<string>> = { stdout: [], stderr: [] }
      return events(command, options, "Executor.stream").pipe(
        Stream.mapEffect((event): Effect.Effect<Option.Option<OutputChunk>, CommandError> => {
          if (event._tag === "OutputChunk") {
            lines[event.stream].push(event.data)
            return Effect.succeed(Option.some(event))
          }
          if (event.exitCode === 0) return Effect.succeed(Option.none())
          return Effect.fail(
            new CommandError({
              command: ShellCommand.toLine(command),
              exitCode: event.exitCode,
              stdout: joinLines(lines.stdout),
              stderr: joinLines(lines.stderr)
            })
          )
        }),
        Stream.filterMap((chunk) => chunk)
      )
    }).pipe(Stream.withSpan("Executor.stream"))

  const streamEvents = (command: ShellCommand.Input, options?: RunOptions): Stream.Stream<ExecEvent, ExecFailure> =>
    events(command, options, "Executor.streamEvents").pipe(Stream.withSpan("Executor.streamEvents"))

  return {
    run,
    exec,
    stream,
    streamEvents,
    spawn: Effect.fn("Executor.spawn")(function*(command: ShellCommand.Input, options?: SpawnOptions) {
      return yield* spawn(command, options)
    })
  } satisfies ExecutorShape
}

/** One background process of the memory sandbox. */
interface MemoryProcess {
  info: ProcessInfo
  readonly output: Deferred.Deferred<ReadonlyArray<ProcessLogLine>>
  readonly done: Deferred.Deferred<ProcessInfo>
  fiber: Fiber.RuntimeFiber<void> | undefined
  ports: ReadonlyArray<number>
}

/** The process table, with the raw operations the executor client needs too. */
export interface ProcessTable {
  readonly start: (
    line: string,
    options: LaunchOptions | undefined
  ) => Effect.Effect<ProcessInfo, InvalidArgument>
  readonly list: Effect.Effect<ReadonlyArray<ProcessInfo>>
  readonly get: (id: string) => Effect.Effect<ProcessInfo, ProcessNotFound>
  readonly kill: (id: string) => Effect.Effect<void, ProcessNotFound | ProcessNotRunning>
  readonly logs: (id: string) => Stream.Stream<ProcessLogLine, ProcessNotFound>
  readonly wait: (id: string) => Effect.Effect<ProcessInfo, ProcessNotFound>
  readonly listening: SubscriptionRef.SubscriptionRef<ReadonlySet<number>>
}

export const makeProcessTable = (runner: CommandRunner, scope: Scope.Scope): Effect.Effect<ProcessTable> =>
  Effect.gen(function*() {
    const table = new Map<string, MemoryProcess>()
    const listening = yield* SubscriptionRef.make<ReadonlySet<number>>(new Set())
    let counter = 0

    const lookup = (id: string) =>
      Effect.suspend(() => {
        const found = table.get(id)
        return found === undefined ? Effect.fail(new ProcessNotFound({ id })) : Effect.succeed(found)
      })

    const updatePorts = Effect.suspend(() =>
      SubscriptionRef.set(
        listening,
        new Set(Array.from(table.values()).flatMap((p) => (p.info.isRunning ? p.ports : [])))
      )
    )

    /** Records the end of a process once; later calls are ignored. */
    const finish = (process: MemoryProcess, status: string) =>
      Effect.suspend(() => {
        if (!process.info.isRunning) return Effect.void
        process.info = new ProcessInfo({ ...process.info, status })
        return Deferred.succeed(process.output, []).pipe(
          Effect.zipRight(Deferred.succeed(process.done, process.info)),
          Effect.zipRight(updatePorts)
        )
      })

    const toLines = (reply: CommandReply) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const timestamp = new Date(now).toISOString()
        return outputOf(reply).map((chunk) => new ProcessLogLine({ timestamp, stream: chunk.stream, data: chunk.data }))
      })

    const start = (line: string, options: LaunchOptions | undefined) =>
      Effect.gen(function*() {
        yield* runner.check(line, options ?? {})
        counter += 1
        const process: MemoryProcess = {
          info: new ProcessInfo({
            id: `memory-process-${counter}`,
            pid: 1000 + counter,
            status: "running",
            command: line
          }),
          output: yield* Deferred.make<ReadonlyArray<ProcessLogLine>>(),
          done: yield* Deferred.make<ProcessInfo>(),
          fiber: undefined,
          ports: []
        }
        table.set(process.info.id, process)
        const body = runner.respond(line, options ?? {}, "launch").pipe(
          Effect.catchAll((error) => Effect.succeed<CommandReply>({ exitCode: 1, stderr: error.message })),
          Effect.flatMap((reply) =>
            Effect.gen(function*() {
              yield* Deferred.succeed(process.output, yield* toLines(reply))
              if (reply.keepRunning === true) {
                process.ports = reply.ports ?? []
                yield* updatePorts
                return yield* Effect.never
              }
              yield* finish(process, (reply.exitCode ?? 0) === 0 ? "completed" : "failed")
            })
          )
        )
        // interruptible even when launched inside an uninterruptible region (acquireRelease)
        process.fiber = yield* Effect.forkIn(Effect.interruptible(body), scope)
        return process.info
      })

    const kill = (id: string) =>
      Effect.gen(function*() {
        const process = yield* lookup(id)
        if (!process.info.isRunning) return yield* new ProcessNotRunning({ id, status: process.info.status })
        yield* finish(process, "killed")
        if (process.fiber !== undefined) yield* Fiber.interrupt(process.fiber)
      })

    return {
      start,
      list: Effect.sync(() => Array.from(table.values(), (p) => p.info)),
      get: (id) => Effect.map(lookup(id), (p) => p.info),
      kill,
      logs: (id) =>
        Stream.unwrap(
          Effect.map(lookup(id), (process) =>
            Stream.fromIterableEffect(Deferred.await(process.output)).pipe(
              // the stream ends when the process has exited, as the real one does
              Stream.concat(Stream.execute(Deferred.await(process.done)))
            ))
        ),
      wait: (id) => Effect.flatMap(lookup(id), (process) => Deferred.await(process.done)),
      listening
    } satisfies ProcessTable
  })

/** The `Processes` service over the memory process table. */
export const makeProcesses = (table: ProcessTable): ProcessesShape => {
  const get = Effect.fn("Processes.get")(function*(id: string) {
    return yield* table.get(id)
  })

  const wait = Effect.fn("Processes.wait")(function*(id: string, options?: WaitOptions) {
    return yield* withTimeout(table.wait(id), "Processes.wait", options?.timeout)
  })

  const kill = Effect.fn("Processes.kill")(function*(id: string, _options?: KillOptions) {
    yield* table.kill(id)
  })

  const killAll = Effect.gen(function*() {
    const running = (yield* table.list).filter((info) => info.isRunning)
    for (const info of running) yield* Effect.ignore(table.kill(info.id))
    return running.length
  }).pipe(Effect.withSpan("Processes.killAll"))

  const logs = (id: string) => table.logs(id).pipe(Stream.withSpan("Processes.logs", { attributes: { id } }))

  const waitForLog = Effect.fn("Processes.waitForLog")(
    function*(id: string, pattern: string | RegExp, options?: WaitForLogOptions) {
      return yield* firstMatch(id, logs(id), table.get(id), pattern, options)
    }
  )

  const waitForPort = Effect.fn("Processes.waitForPort")(function*(port: number, options?: WaitForPortOptions) {
    if (!isTcpPort(port)) {
      return yield* new InvalidArgument({ argument: "port", detail: `${port} is not a TCP port (1-65535)` })
    }
    yield* withTimeout(
      table.listening.changes.pipe(Stream.filter((ports) => ports.has(port)), Stream.runHead),
      "Processes.waitForPort",
      options?.timeout
    )
  })

  const handle = (info: ProcessInfo): ProcessHandle =>
    processHandle({ get, kill, logs, wait, waitForLog }, info, info.command)

  const launch = Effect.fn("Processes.launch")(function*(command: ShellCommand.Input, options?: LaunchOptions) {
    return handle(yield* table.start(ShellCommand.toLine(command), options))
  })

  const launchScoped = (command: ShellCommand.Input, options?: LaunchOptions) =>
    Effect.acquireRelease(
      launch(command, options),
      (process) => Effect.ignore(table.kill(process.id))
    ).pipe(Effect.withSpan("Processes.launchScoped"))

  return {
    launch,
    launchScoped,
    list: table.list.pipe(Effect.withSpan("Processes.list")),
    get,
    kill,
    killAll,
    logs,
    wait,
    waitForLog,
    waitForPort
  } satisfies ProcessesShape
}
