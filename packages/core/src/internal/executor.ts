/**
 * The `Executor` service: buffered and streamed commands over the strategy chosen once from the
 * executor's capabilities (`groupStopStrategy` when it advertises `process-group-kill`, else
 * `markerStrategy`), and commands to talk to (`spawn`, and calls given a `stdin`) over `/spawn`
 * when it advertises `interactive`, else over the stdin fallback of `stdinFallback`.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type {
  ExecFailure,
  ExecutorShape,
  RunFailure,
  RunningCommand,
  RunOptions,
  SpawnOptions,
  StdinInput
} from "../Executor.js"
import { ExecutorClient } from "../ExecutorClient.js"
import { CommandError, type Unsupported } from "../SandboxError.js"
import { CommandResult } from "../SandboxSchema.js"
import type { ExecEvent, OutputChunk } from "../SandboxSchema.js"
import * as ShellCommand from "../ShellCommand.js"
import * as Capabilities from "./capabilities.js"
import type { CommandStrategy } from "./commandStrategy.js"
import { collectEvents, joinLines } from "./commandStrategy.js"
import { groupStopStrategy } from "./groupStopStrategy.js"
import { interactiveSpawn } from "./interactiveSpawn.js"
import { markerStrategy } from "./markerStrategy.js"
import { eventsWithStdin } from "./spawn.js"
import { fallbackSpawn } from "./stdinFallback.js"

const tailChars = 64 * 1024

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

const commandError = (line: string, result: { exitCode: number; stdout: string; stderr: string }) =>
  new CommandError({ command: line, exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr })

/** Builds the service from an `ExecutorClient`. */
export const make: Effect.Effect<ExecutorShape, never, ExecutorClient> = Effect.gen(function*() {
  const client = yield* ExecutorClient
  const marker = markerStrategy(client)
  const strategy: Effect.Effect<CommandStrategy> = Capabilities.choose(
    client.capabilities,
    (capabilities) => capabilities.has(Capabilities.processGroupKill) ? groupStopStrategy(client, marker) : marker
  )

  // A terminal needs `pty` as well (an executor with `interactive` only gets the fallback's `script`).
  const spawners = Capabilities.choose(client.capabilities, (capabilities) => {
    const interactive = capabilities.has(Capabilities.interactive) && client.spawn !== undefined
    return {
      plain: interactive ? interactiveSpawn : fallbackSpawn,
      terminal: interactive && capabilities.has(Capabilities.pty) && client.resize !== undefined
        ? interactiveSpawn
        : fallbackSpawn
    }
  })
  const spawnLine = (
    line: string,
    options: SpawnOptions | undefined,
    operation: string
  ): Effect.Effect<RunningCommand, ExecFailure | Unsupported, Scope.Scope> =>
    Effect.flatMap(
      spawners,
      (chosen) => (options?.pty === undefined ? chosen.plain : chosen.terminal)(client, line, options, operation)
    )

  const withStdin = (options: RunOptions | undefined): (RunOptions & { readonly stdin: StdinInput }) | undefined =>
    options?.stdin === undefined ? undefined : options as RunOptions & { readonly stdin: StdinInput }

  const events = (command: ShellCommand.Input, options: RunOptions | undefined, operation: string) => {
    const fed = withStdin(options)
    return fed !== undefined
      ? eventsWithStdin(
        // no terminal, hence never `Unsupported`
        (o) => Effect.catchTag(spawnLine(ShellCommand.toLine(command), o, operation), "Unsupported", Effect.die),
        fed
      )
      : Stream.unwrap(Effect.map(strategy, (chosen) => chosen.events(ShellCommand.toLine(command), options, operation)))
  }

  const streamEvents = (command: ShellCommand.Input, options?: RunOptions): Stream.Stream<ExecEvent, ExecFailure> =>
    events(command, options, "Executor.streamEvents").pipe(Stream.withSpan("Executor.streamEvents"))

  const collect = (command: ShellCommand.Input, options: RunOptions | undefined, operation: string) => {
    const line = ShellCommand.toLine(command)
    const collected = withStdin(options) !== undefined
      ? collectEvents(events(command, options, operation))
      : Effect.flatMap(strategy, (chosen) => chosen.collect(line, options, operation))
    return Effect.map(collected, ({ exit, stderr, stdout }) =>
      new CommandResult({
        command: line,
        stdout: joinLines(stdout),
        stderr: joinLines(stderr),
        exitCode: exit.exitCode,
        status: exit.exitCode === 0 ? "finished" : "failed",
        durationMillis: exit.durationMillis
      }))
  }

  const exec = Effect.fn("Executor.exec")(function*(command: ShellCommand.Input, options?: RunOptions) {
    return yield* collect(command, options, "Executor.exec")
  })

  const run = Effect.fn("Executor.run")(function*(command: ShellCommand.Input, options?: RunOptions) {
    const result = yield* collect(command, options, "Executor.run")
    if (result.exitCode !== 0) return yield* commandError(result.command, result)
    return result
  })

  const stream = (command: ShellCommand.Input, options?: RunOptions): Stream.Stream<OutputChunk, RunFailure> =>
    Stream.suspend(() => {
      const stdout = new Tail()
      const stderr = new Tail()
      let exitCode = 0
      const exitFailure = Stream.suspend(() =>
        exitCode === 0 ? Stream.empty : Stream.fail(commandError(ShellCommand.toLine(command), {
          exitCode,
          stdout: stdout.toString(),
          stderr: stderr.toString()
        }))
      )
      return events(command, options, "Executor.stream").pipe(
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

  const spawn = Effect.fn("Executor.spawn")(function*(command: ShellCommand.Input, options?: SpawnOptions) {
    return yield* spawnLine(ShellCommand.toLine(command), options, "Executor.spawn")
  })

  return { run, exec, stream, streamEvents, spawn } satisfies ExecutorShape
})
