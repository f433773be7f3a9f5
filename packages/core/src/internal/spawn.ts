/**
 * What every way of spawning a command shares: a running command built from its transport (an
 * event stream plus stdin, end and signal requests), the feeding of a `StdinInput`, and the
 * `ExecEvent`s of `run` / `exec` / `stream` calls given a `stdin`.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import * as Take from "effect/Take"
import type {
  CommandStdin,
  ExecFailure,
  OutputBytes,
  PtySize,
  RunningCommand,
  RunOptions,
  SpawnOptions,
  StdinInput
} from "../Executor.js"
import type { ExecutorClientShape } from "../ExecutorClient.js"
import { InvalidArgument, type Unsupported } from "../SandboxError.js"
import { CommandExit } from "../SandboxSchema.js"
import type { ExecEvent } from "../SandboxSchema.js"
import { toBytes } from "./bytes.js"
import { outputLines } from "./outputLines.js"

/** What a transport reports of a running command: output, then exactly one exit code. */
export type TransportEvent = OutputBytes | { readonly _tag: "Complete"; readonly code: number }

/** How one running command is reached. */
export interface Transport {
  /** Its events; closing the stream stops the command. */
  readonly events: Stream.Stream<TransportEvent, ExecFailure>
  /** Writes bytes (at most `maxWrite` at a time), once the previous write completed. */
  readonly write: (data: Uint8Array) => Effect.Effect<void, ExecFailure>
  readonly end: Effect.Effect<void, ExecFailure>
  readonly signal: (signal: string) => Effect.Effect<void, ExecFailure>
  /** Sets the terminal's size (already checked by `checkSize`). */
  readonly resize: (size: PtySize) => Effect.Effect<void, ExecFailure | Unsupported>
  /** The largest piece `write` is given. */
  readonly maxWrite: number
}

/** A way of starting a command to talk to, for the lifetime of the scope; `operation` names the call in a `Timeout`. */
export type Spawner = (
  client: ExecutorClientShape,
  line: string,
  options: SpawnOptions | undefined,
  operation: string
) => Effect.Effect<RunningCommand, ExecFailure | Unsupported, Scope.Scope>

// The kernel's `winsize` holds 16 bits per dimension.
const isCells = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535

/** The size, or an `InvalidArgument` naming `argument` when a dimension is not 1 to 65535. */
export const checkSize = (argument: string, size: PtySize): Effect.Effect<PtySize, InvalidArgument> =>
  isCells(size.cols) && isCells(size.rows)
    ? Effect.succeed({ cols: size.cols, rows: size.rows })
    : Effect.fail(
      new InvalidArgument({ argument, detail: `${size.cols}x${size.rows}: columns and rows must be 1 to 65535` })
    )

/** The options of a command on a terminal: the size checked, `TERM` defaulting to `xterm-256color`. */
export const withTerminal = (
  options: SpawnOptions | undefined
): Effect.Effect<{ readonly pty: PtySize | undefined; readonly env: RunOptions["env"] }, InvalidArgument> =>
  options?.pty === undefined
    ? Effect.succeed({ pty: undefined, env: options?.env })
    : Effect.map(checkSize("pty", options.pty), (pty) => ({
      pty,
      env: { TERM: "xterm-256color", ...options.env }
    }))

/** `resize` of a command spawned without a terminal. */
export const noTerminal = (): Effect.Effect<never, InvalidArgument> =>
  Effect.fail(new InvalidArgument({ argument: "resize", detail: "the command has no terminal (spawn it with `pty`)" }))

// Output chunks read ahead of the consumer.
const outputBuffer = 16

/** Reads the transport's events on a fiber of the scope; the command stops when the scope closes. */
export const makeRunning = (transport: Transport): Effect.Effect<RunningCommand, never, Scope.Scope> =>
  Effect.gen(function*() {
    const startedAt = yield* Clock.currentTimeMillis
    const queue = yield* Effect.acquireRelease(
      Queue.bounded<Take.Take<OutputBytes, ExecFailure>>(outputBuffer),
      Queue.shutdown
    )
    const exit = yield* Deferred.make<CommandExit, ExecFailure>()
    yield* transport.events.pipe(
      Stream.runForEach((event) =>
        "_tag" in event
          ? Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Deferred.succeed(exit, new CommandExit({ exitCode: event.code, durationMillis: now - startedAt })))
          : Queue.offer(queue, Take.of(event))
      ),
      Effect.matchCauseEffect({
        onSuccess: () => Queue.offer(queue, Take.end),
        onFailure: (cause) =>
          Effect.zipRight(Deferred.failCause(exit, cause), Queue.offer(queue, Take.failCause(cause)))
      }),
      Effect.forkScoped
    )
    const lock = yield* Effect.makeSemaphore(1)
    const write = (data: string | Uint8Array) =>
      lock.withPermits(1)(Effect.suspend(() => {
        const bytes = toBytes(data)
        return Effect.forEach(
          Array.from({ length: Math.ceil(bytes.length / transport.maxWrite) }, (_, i) => i * transport.maxWrite),
          (offset) => transport.write(bytes.subarray(offset, offset + transport.maxWrite)),
          { discard: true }
        )
      }))
    const end = lock.withPermits(1)(transport.end)
    const stdin: CommandStdin = {
      write,
      end,
      sink: Sink.forEach(write).pipe(Sink.mapEffect(() => end))
    }
    return {
      stdin,
      output: Stream.flattenTake(Stream.fromQueue(queue)),
      exit: Deferred.await(exit),
      signal: transport.signal,
      resize: (cols, rows) => Effect.flatMap(checkSize("resize", { cols, rows }), transport.resize)
    } satisfies RunningCommand
  })

/** Writes `input` to `stdin`, then ends it. */
export const feed = (stdin: CommandStdin, input: StdinInput): Effect.Effect<void, ExecFailure> =>
  typeof input === "string" || input instanceof Uint8Array
    ? Effect.zipRight(stdin.write(input), stdin.end)
    : Stream.run(input, stdin.sink)

/** The output lines and exit of a command spawned with `spawn` and fed `options.stdin`. */
export const eventsWithStdin = (
  spawn: (options: RunOptions) => Effect.Effect<RunningCommand, ExecFailure, Scope.Scope>,
  options: RunOptions & { readonly stdin: StdinInput }
): Stream.Stream<ExecEvent, ExecFailure> =>
  Stream.unwrapScoped(Effect.map(spawn(options), (running) => {
    const events: Stream.Stream<ExecEvent, ExecFailure> = Stream.concat(
      outputLines(running.output),
      Stream.fromEffect(running.exit)
    )
    return Stream.merge(events, Stream.drain(Stream.fromEffect(feed(running.stdin, options.stdin))), {
      haltStrategy: "left"
    })
  }))
