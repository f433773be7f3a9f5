/**
 * The interactive commands of the command line: `shell` (a terminal in the sandbox) and `exec -i`
 * (the CLI's own stdin piped in). Both copy this process's stdin to the running command as it
 * arrives, and its output to this process's stdout / stderr as it is read, until the command exits.
 *
 * For `shell`, a local terminal is put in raw mode for the session, so every key (Ctrl-C and
 * Ctrl-D among them) is a byte for the remote terminal, whose line discipline turns Ctrl-C into
 * `SIGINT` for its foreground job; the local terminal's size is the remote one's, and follows each
 * resize (`SIGWINCH` here, `resize` there). Koyeb's stock executor cannot resize a terminal: the
 * size then stays the initial one.
 *
 * @internal
 */
import type { RunningCommand, SpawnOptions } from "@effect-koyeb/core/Executor"
import type { ExecutorShape } from "@effect-koyeb/core/Executor"
import type * as ShellCommand from "@effect-koyeb/core/ShellCommand"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"

// A terminal whose size this process cannot know: the usual default.
const defaultSize = { cols: 80, rows: 24 }

/** Writes `data` to `out`, waiting while it is full (a slow terminal holds the command back). */
const write = (out: NodeJS.WriteStream, data: Uint8Array) =>
  Effect.async<void>((resume) => {
    out.write(data, () => resume(Effect.void))
  })

/**
 * This process's stdin as a stream of chunks, ending at its end of input; read one chunk ahead of
 * the consumer. Not `Stream.fromAsyncIterable`: ending that stream early waits for the next chunk
 * (an async iterator's `return` queues behind its pending `next`), so a command that exits would
 * wait for a key.
 */
export const stdinStream: Stream.Stream<Uint8Array> = Stream.async<Uint8Array>((emit) => {
  const stdin = process.stdin
  const onData = (chunk: Buffer) => {
    stdin.pause()
    void emit.single(chunk).then(() => stdin.resume())
  }
  const onEnd = () => void emit.end()
  stdin.on("data", onData)
  stdin.once("end", onEnd)
  stdin.once("error", onEnd)
  stdin.resume()
  return Effect.sync(() => {
    stdin.off("data", onData)
    stdin.off("end", onEnd)
    stdin.off("error", onEnd)
    stdin.pause()
  })
})

/**
 * Copies stdin in and the output out until `running` exits; its exit code (255 for a command
 * killed by a signal). The output ends before the exit, so everything printed is out first.
 */
const session = (running: RunningCommand) =>
  Effect.gen(function*() {
    const input = yield* Effect.fork(Stream.run(stdinStream, running.stdin.sink))
    yield* Stream.runForEach(
      running.output,
      (chunk) => write(chunk.stream === "stdout" ? process.stdout : process.stderr, chunk.data)
    )
    const exit = yield* running.exit
    yield* Fiber.interrupt(input)
    return exit.exitCode < 0 ? 255 : exit.exitCode
  })

/** `exec -i`: the command with this process's stdin; its exit code. */
export const execInteractive = (
  executor: ExecutorShape,
  command: ShellCommand.Input,
  options: SpawnOptions
) => Effect.scoped(Effect.flatMap(executor.spawn(command, options), session))

/** The login-style default of `shell`: bash when the sandbox has it, else sh. */
export const defaultShell = "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"

/** Raw mode on a local terminal for the lifetime of the scope. */
const rawMode = Effect.acquireRelease(
  Effect.sync(() => {
    if (!process.stdin.isTTY) return false
    process.stdin.setRawMode(true)
    return true
  }),
  (raw) => Effect.sync(() => void (raw && process.stdin.setRawMode(false)))
)

const localSize = () =>
  process.stdout.isTTY && process.stdout.columns > 0 && process.stdout.rows > 0
    ? { cols: process.stdout.columns, rows: process.stdout.rows }
    : defaultSize

/** `shell`: the command on a terminal of this terminal's size, keys and resizes forwarded; its exit code. */
export const shell = (
  executor: ExecutorShape,
  command: ShellCommand.Input,
  options: SpawnOptions
) =>
  Effect.scoped(Effect.gen(function*() {
    const env = process.env.TERM === undefined ? options.env : { TERM: process.env.TERM, ...options.env }
    const running = yield* executor.spawn(command, { ...options, env, pty: localSize() })
    yield* rawMode
    // Resizes are sent one at a time, the last one winning; one the executor cannot do is dropped.
    const resizes = Stream.async<void>((emit) => {
      const onResize = () => void emit.single(undefined)
      process.stdout.on("resize", onResize)
      return Effect.sync(() => void process.stdout.off("resize", onResize))
    }, { bufferSize: 1, strategy: "sliding" })
    yield* resizes.pipe(
      Stream.runForEach(() =>
        Effect.ignore(Effect.suspend(() => {
          const size = localSize()
          return running.resize(size.cols, size.rows)
        }))
      ),
      Effect.forkScoped
    )
    return yield* session(running)
  }))
