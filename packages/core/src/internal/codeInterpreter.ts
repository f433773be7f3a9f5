/**
 * The code interpreter: one kernel process per context, started with `Executor.spawn`, spoken to
 * in JSON lines (requests on its stdin, messages on its stdout; see the package README). A fiber
 * of the context reads the messages and hands those of the running cell to it; one cell runs at a
 * time. Interrupting a cell sends SIGINT to the kernel until it reports the cell done, for the
 * grace period, then SIGKILL.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Hash from "effect/Hash"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Take from "effect/Take"
import type {
  CodeContext,
  CodeInterpreterShape,
  ContextOptions,
  CreateFailure,
  ExecutionEvent,
  Language,
  RunFailure,
  RunOptions
} from "../CodeInterpreter.js"
import { Execution, ExecutionError, Result } from "../CodeInterpreter.js"
import { Executor, type RunningCommand } from "../Executor.js"
import { Filesystem } from "../Filesystem.js"
import type { FilesystemFailure, Unsupported } from "../SandboxError.js"
import { KernelDied, Timeout } from "../SandboxError.js"
import { OutputChunk } from "../SandboxSchema.js"
import { formats } from "./codeInterpreterFormats.js"
import * as Kernels from "./codeInterpreterKernels.js"
import { outputLines } from "./outputLines.js"
import { quote, randomToken } from "./shell.js"

const StreamMessage = Schema.Struct({
  type: Schema.Literal("stream"),
  cell: Schema.NullOr(Schema.String),
  name: Schema.Literal("stdout", "stderr"),
  lines: Schema.Array(Schema.String)
})
const ResultMessage = Schema.Struct({
  type: Schema.Literal("result"),
  cell: Schema.NullOr(Schema.String),
  main: Schema.Boolean,
  data: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})
const Message = Schema.parseJson(Schema.Union(
  Schema.Struct({ type: Schema.Literal("ready"), pid: Schema.Number }),
  StreamMessage,
  ResultMessage,
  Schema.Struct({
    type: Schema.Literal("error"),
    cell: Schema.String,
    name: Schema.String,
    value: Schema.String,
    traceback: Schema.String
  }),
  Schema.Struct({ type: Schema.Literal("done"), cell: Schema.String })
))
const decodeMessage = Schema.decodeOption(Message)

const kernels: Record<Language, { readonly source: string; readonly extension: string; readonly program: string }> = {
  python: { source: Kernels.python, extension: "py", program: "python3" },
  javascript: { source: Kernels.javascript, extension: "js", program: "node" }
}

/** What a cell named the kernel's interruption of a cell started after its signal was aborted. */
const interruptionName: Record<Language, string> = { python: "KeyboardInterrupt", javascript: "Interrupted" }

// Messages of a cell read ahead of its consumer: the kernel then waits, as a full pipe makes it.
const cellBuffer = 64
// Diagnostic lines of a kernel kept for `KernelDied`.
const diagnosticLines = 20
const resignalEvery = Duration.millis(250)

/** A `Result` from the formats a kernel reported (unknown ones are dropped). */
const toResult = (isMain: boolean, data: Readonly<Record<string, unknown>>): Result => {
  const fields: Record<string, unknown> = {}
  for (const [field, mime] of formats) {
    const value = data[mime]
    if (value !== undefined && (field === "json" || typeof value === "string")) fields[field] = value
  }
  return new Result({ isMain, ...fields })
}

interface Cell {
  readonly id: string
  readonly queue: Queue.Queue<Take.Take<ExecutionEvent, RunFailure>>
  readonly done: Deferred.Deferred<void>
  discard: boolean
}

/** Starts a kernel from the file at `path` for the lifetime of the scope. */
const startContext = (
  path: string,
  language: Language,
  options: ContextOptions | undefined
): Effect.Effect<CodeContext & { readonly dead: () => boolean }, CreateFailure, Executor | Scope.Scope> =>
  Effect.gen(function*() {
    const executor = yield* Executor
    const id = randomToken().slice(0, 12)
    const grace = Duration.decode(options?.interruptGracePeriod ?? "3 seconds")
    const running: RunningCommand = yield* executor.spawn(`exec ${kernels[language].program} ${quote(path)}`, {
      cwd: options?.cwd,
      env: options?.env
    }).pipe(
      // Only a terminal is unsupported anywhere, and a kernel asks for none.
      Effect.catchAll((error) =>
        error._tag === "Unsupported" ? Effect.die(error) : Effect.fail(error as Exclude<typeof error, Unsupported>)
      )
    )
    const ready = yield* Deferred.make<number, KernelDied>()
    const diagnostics: Array<string> = []
    let current: Cell | undefined
    let dead: KernelDied | undefined

    const deliver = (cell: string | null, take: Take.Take<ExecutionEvent, RunFailure>) =>
      current !== undefined && current.id === cell && !current.discard ? Queue.offer(current.queue, take) : Effect.void
    const dispatch = (line: string) =>
      Option.match(decodeMessage(line), {
        // A line that is not a message was not written by the kernel's protocol: keep it as a diagnostic.
        onNone: () => Effect.sync(() => remember(line)),
        onSome: (message) => {
          switch (message.type) {
            case "ready":
              return Deferred.succeed(ready, message.pid)
            case "stream":
              return deliver(
                message.cell,
                Take.chunk(
                  Chunk.fromIterable(message.lines.map((data) => new OutputChunk({ stream: message.name, data })))
                )
              )
            case "result":
              return deliver(message.cell, Take.of(toResult(message.main, message.data)))
            case "error":
              return deliver(
                message.cell,
                Take.of(new ExecutionError({ name: message.name, value: message.value, traceback: message.traceback }))
              )
            case "done":
              return Effect.gen(function*() {
                const cell = current
                if (cell === undefined || cell.id !== message.cell) return
                current = undefined
                // Done before the end is seen: whoever sees the end finds nothing left to interrupt.
                yield* Deferred.succeed(cell.done, undefined)
                if (!cell.discard) yield* Queue.offer(cell.queue, Take.end)
              })
          }
        }
      })
    const remember = (line: string) => {
      diagnostics.push(line)
      if (diagnostics.length > diagnosticLines) diagnostics.shift()
    }

    yield* outputLines(running.output).pipe(
      Stream.runForEach((chunk) =>
        chunk.stream === "stdout" ? dispatch(chunk.data) : Effect.sync(() => remember(chunk.data))
      ),
      Effect.exit,
      Effect.flatMap((ended) =>
        Effect.gen(function*() {
          const exit = Exit.isSuccess(ended) ? yield* Effect.option(running.exit) : Option.none()
          const how = Exit.isFailure(ended)
            ? `its output failed: ${Exit.match(ended, { onFailure: String, onSuccess: String })}`
            : Option.match(exit, { onNone: () => "it ended", onSome: (e) => `it exited with code ${e.exitCode}` })
          const died = new KernelDied({
            contextId: id,
            language,
            reason: diagnostics.length > 0 ? `${how}: ${diagnostics.join("\n")}` : how
          })
          dead = died
          yield* Deferred.fail(ready, died)
          const cell = current
          current = undefined
          if (cell !== undefined) {
            yield* Deferred.succeed(cell.done, undefined)
            if (!cell.discard) yield* Queue.offer(cell.queue, Take.fail(died))
          }
        })
      ),
      Effect.forkScoped
    )
    const pid = yield* Deferred.await(ready)

    /** SIGINT until the cell is done, for the grace period, then SIGKILL to the kernel. */
    const interrupt = (cell: Cell) =>
      running.signal("SIGINT").pipe(
        Effect.ignore,
        Effect.zipRight(Effect.timeout(Deferred.await(cell.done), resignalEvery)),
        Effect.retry({ while: (e) => e._tag === "TimeoutException" }),
        Effect.timeout(grace),
        Effect.catchAll(() =>
          running.signal("SIGKILL").pipe(
            Effect.ignore,
            Effect.zipRight(Effect.timeout(Deferred.await(cell.done), grace)),
            Effect.ignore
          )
        )
      )

    const lock = yield* Effect.makeSemaphore(1)
    const runStream = (code: string, runOptions?: Omit<RunOptions, "context" | "language">) =>
      Stream.unwrapScoped(Effect.gen(function*() {
        yield* Effect.acquireRelease(lock.take(1), () => lock.release(1))
        const signal = runOptions?.signal
        if (signal?.aborted === true) {
          const error: ExecutionEvent = new ExecutionError({
            name: interruptionName[language],
            value: "aborted before it started",
            traceback: ""
          })
          return Stream.make(error)
        }
        const cell: Cell = {
          id: randomToken().slice(0, 12),
          queue: yield* Queue.bounded<Take.Take<ExecutionEvent, RunFailure>>(cellBuffer),
          done: yield* Deferred.make<void>(),
          discard: false
        }
        // No step between the check and the assignment: a kernel that dies later finds the cell.
        if (dead !== undefined) return yield* Effect.fail(dead)
        current = cell
        // Whoever leaves before the cell is done interrupts it, and waits for that.
        yield* Effect.addFinalizer(() =>
          Effect.gen(function*() {
            if (yield* Deferred.isDone(cell.done)) return
            cell.discard = true
            yield* Queue.takeAll(cell.queue)
            yield* interrupt(cell)
          })
        )
        yield* running.stdin.write(`${JSON.stringify({ type: "execute", cell: cell.id, code })}\n`)
        if (signal !== undefined) {
          yield* Effect.async<void>((resume) => {
            const onAbort = () => resume(Effect.void)
            signal.addEventListener("abort", onAbort, { once: true })
            return Effect.sync(() => signal.removeEventListener("abort", onAbort))
          }).pipe(Effect.zipRight(interrupt(cell)), Effect.forkScoped)
        }
        const events = Stream.flattenTake(Stream.fromQueue(cell.queue))
        if (runOptions?.timeout === undefined) return events
        const timeout = Duration.decode(runOptions.timeout)
        return Stream.interruptWhen(
          events,
          Effect.zipRight(
            Effect.sleep(timeout),
            Effect.fail(new Timeout({ operation: "CodeInterpreter.run", timeoutMillis: Duration.toMillis(timeout) }))
          )
        )
      }))

    const run = (code: string, runOptions?: Omit<RunOptions, "context" | "language">) =>
      Effect.suspend(() => {
        const stdout: Array<string> = []
        const stderr: Array<string> = []
        const results: Array<Result> = []
        let error: ExecutionError | undefined
        return Stream.runForEachChunk(runStream(code, runOptions), (events) =>
          Effect.sync(() => {
            for (const event of events) {
              if (event._tag === "OutputChunk") (event.stream === "stdout" ? stdout : stderr).push(event.data)
              else if (event._tag === "Result") results.push(event)
              else error = event
            }
          })).pipe(
            Effect.map(() =>
              new Execution(error === undefined ? { stdout, stderr, results } : { stdout, stderr, results, error })
            )
          )
      })

    return {
      id,
      language,
      pid,
      run: (code, runOptions) =>
        Effect.withSpan(run(code, runOptions), "CodeContext.run", { attributes: { language } }),
      runStream,
      dead: () => dead !== undefined
    }
  })

type LiveContext = Effect.Effect.Success<ReturnType<typeof startContext>>

/** The service: kernel files written on first use (deleted with the scope), default contexts per language. */
export const make: Effect.Effect<CodeInterpreterShape, never, Executor | Filesystem | Scope.Scope> = Effect.gen(
  function*() {
    const executor = yield* Executor
    const filesystem = yield* Filesystem
    const scope = yield* Effect.scope
    const paths = new Map<Language, string>()
    const writing = yield* Effect.makeSemaphore(1)
    const kernelPath = (language: Language): Effect.Effect<string, FilesystemFailure> =>
      writing.withPermits(1)(Effect.suspend(() => {
        const known = paths.get(language)
        if (known !== undefined) return Effect.succeed(known)
        const kernel = kernels[language]
        // The kernel's hash names its version; the token keeps interpreters from sharing a file.
        const hash = (Hash.string(kernel.source) >>> 0).toString(16)
        const path = `/tmp/.effect-koyeb-kernel-${hash}-${randomToken().slice(0, 8)}.${kernel.extension}`
        return filesystem.writeFile(path, kernel.source).pipe(
          Effect.zipRight(Scope.addFinalizer(scope, Effect.ignore(filesystem.deleteFile(path)))),
          Effect.tap(() => paths.set(language, path)),
          Effect.as(path)
        )
      }))

    const createIn = (options: ContextOptions | undefined) => {
      const language = options?.language ?? "python"
      if (!(language in kernels)) return Effect.dieMessage(`unknown language: ${language}`)
      return Effect.flatMap(kernelPath(language), (path) => startContext(path, language, options)).pipe(
        Effect.provideService(Executor, executor)
      )
    }

    const defaults = new Map<Language, { readonly context: LiveContext; readonly scope: Scope.CloseableScope }>()
    const starting = yield* Effect.makeSemaphore(1)
    const defaultContext = (language: Language) =>
      starting.withPermits(1)(Effect.gen(function*() {
        const known = defaults.get(language)
        if (known !== undefined && !known.context.dead()) return known.context
        // A dead default context is replaced: the next run gets a new kernel.
        if (known !== undefined) yield* Scope.close(known.scope, Exit.void)
        const own = yield* Scope.fork(scope, ExecutionStrategy.sequential)
        const started = yield* Effect.onError(
          Scope.extend(createIn({ language }), own),
          () => Scope.close(own, Exit.void)
        )
        defaults.set(language, { context: started, scope: own })
        return started
      }))
    const contextOf = (options: RunOptions | undefined) =>
      options?.context !== undefined ? Effect.succeed(options.context) : defaultContext(options?.language ?? "python")

    return {
      createContext: Effect.fn("CodeInterpreter.createContext")(function*(options?: ContextOptions) {
        return yield* createIn(options)
      }),
      run: Effect.fn("CodeInterpreter.run")(function*(code: string, options?: RunOptions) {
        const target = yield* contextOf(options)
        return yield* target.run(code, cellOptions(options))
      }),
      runStream: (code, options) =>
        Stream.unwrap(Effect.map(contextOf(options), (target) => target.runStream(code, cellOptions(options))))
    } satisfies CodeInterpreterShape
  }
)

/** The options of a cell, without those choosing its context. */
const cellOptions = (options: RunOptions | undefined): Omit<RunOptions, "context" | "language"> => ({
  timeout: options?.timeout,
  signal: options?.signal
})
