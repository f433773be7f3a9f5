/**
 * A code interpreter: stateful Python and JavaScript contexts in a sandbox, as notebooks have.
 * A cell sees the variables of the cells before it; its printed lines stream while it runs; its
 * value comes back in rich formats (text, HTML, Markdown, SVG, PNG, JPEG, JSON), and an exception
 * comes back as data (`ExecutionError`, with its traceback), not as a failure.
 *
 * Each context is one kernel process in the sandbox: a small program the SDK writes under `/tmp`
 * on first use (Python: the standard library only; JavaScript: `node`, one `vm` context) that
 * reads JSON requests on its stdin and writes JSON messages on its stdout, one per line (the
 * protocol is described in the package README). It is started with `Executor.spawn`: over the
 * `interactive` channel of effect-koyeb's executor, or over the stock fallback on Koyeb's executor
 * (each cell then costs a few more round trips). Contexts are isolated from each other.
 *
 * - The main result is the value of the cell's last expression (when it is not `None` /
 *   `undefined`). `display(value)` in a cell adds more results; matplotlib figures left open by a
 *   cell become `image/png` results (when matplotlib is importable); objects with `_repr_html_`,
 *   `_repr_markdown_`, `_repr_svg_`, `_repr_png_`, `_repr_jpeg_`, `_repr_json_` or
 *   `_repr_mimebundle_` are shown in those formats, as IPython does (a pandas DataFrame gives
 *   `text/html` that way).
 * - Output is line based: what the cell (or a program it starts) writes on its stdout and stderr,
 *   decoded as UTF-8 (an invalid byte becomes U+FFFD), split into lines; a line longer than 1 MiB
 *   is cut into pieces of 1 MiB. `run` keeps every line; use `runStream` for very large output.
 *   Output written between cells (by a thread or a program the cell left running) is dropped.
 * - Interrupting a run (fiber interruption, its `timeout`, its `signal`) sends SIGINT to the
 *   kernel: the cell stops (`KeyboardInterrupt` in Python, `Interrupted` in JavaScript) and the
 *   context keeps its state. A cell that ignores SIGINT for `interruptGracePeriod` gets its
 *   kernel killed. A kernel that dies (killed, out of memory, `os._exit`) fails the runs with
 *   `KernelDied` (in `SandboxError`); its context is dead for good, and a new one can be created.
 * - JavaScript: top-level `let` / `const` / `function` declarations persist between cells; a cell
 *   whose value is a promise is awaited; top-level `await` is not supported (wrap it in an async
 *   function and return its promise). `require` resolves from the context's working directory.
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { ExecFailure, Executor } from "./Executor.js"
import type { Filesystem } from "./Filesystem.js"
import * as internal from "./internal/codeInterpreter.js"
import { formats } from "./internal/codeInterpreterFormats.js"
import type { FilesystemFailure, KernelDied } from "./SandboxError.js"
import type { OutputChunk } from "./SandboxSchema.js"

/**
 * The languages a context can run.
 *
 * @since 0.2.0
 * @category models
 */
export type Language = "python" | "javascript"

/**
 * Options of `createContext`.
 *
 * @since 0.2.0
 * @category models
 */
export interface ContextOptions {
  /** Default `"python"`. */
  readonly language?: Language | undefined
  /** Working directory of the kernel (it must exist); default: the executor's. */
  readonly cwd?: string | undefined
  /** Variables added to the kernel's environment. */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** How long an interrupted cell may ignore SIGINT before its kernel is killed (default 3 seconds). */
  readonly interruptGracePeriod?: Duration.DurationInput | undefined
}

/**
 * Options of `run` and `runStream`.
 *
 * @since 0.2.0
 * @category models
 */
export interface RunOptions {
  /** The context to run in; default: the interpreter's own context of `language`, started on first use. */
  readonly context?: CodeContext | undefined
  /** The language of the default context (ignored with `context`); default `"python"`. */
  readonly language?: Language | undefined
  /** Interrupts the cell and fails with `Timeout` when it has not ended after this long; default: none. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * Interrupts the cell when aborted: the run then succeeds with an `Execution` whose `error` is
   * the interruption (`KeyboardInterrupt` in Python), and the context keeps its state.
   */
  readonly signal?: AbortSignal | undefined
}

/**
 * One result of a cell, in every format it has (images as base64 text).
 *
 * @since 0.2.0
 * @category models
 */
export class Result extends Schema.TaggedClass<Result>("@effect-koyeb/core/CodeInterpreter/Result")("Result", {
  /** True for the value of the cell's last expression, false for `display(...)` and figures. */
  isMain: Schema.Boolean,
  /** `text/plain` */
  text: Schema.optional(Schema.String),
  /** `text/html` */
  html: Schema.optional(Schema.String),
  /** `text/markdown` */
  markdown: Schema.optional(Schema.String),
  /** `image/svg+xml` */
  svg: Schema.optional(Schema.String),
  /** `image/png`, base64 */
  png: Schema.optional(Schema.String),
  /** `image/jpeg`, base64 */
  jpeg: Schema.optional(Schema.String),
  /** `application/json` */
  json: Schema.optional(Schema.Unknown)
}) {
  /**
   * The MIME types this result has.
   *
   * @since 0.2.0
   */
  get formats(): ReadonlyArray<string> {
    return formats.filter(([field]) => this[field] !== undefined).map(([, mime]) => mime)
  }
}

/**
 * An exception raised by a cell: its class name, its message and its formatted traceback.
 *
 * @since 0.2.0
 * @category models
 */
export class ExecutionError
  extends Schema.TaggedClass<ExecutionError>("@effect-koyeb/core/CodeInterpreter/ExecutionError")("ExecutionError", {
    name: Schema.String,
    value: Schema.String,
    traceback: Schema.String
  })
{}

/**
 * What a cell did: its output lines, its results and its error, if it raised one.
 *
 * @since 0.2.0
 * @category models
 */
export class Execution extends Schema.Class<Execution>("@effect-koyeb/core/CodeInterpreter/Execution")({
  stdout: Schema.Array(Schema.String),
  stderr: Schema.Array(Schema.String),
  results: Schema.Array(Result),
  error: Schema.optional(ExecutionError)
}) {
  /**
   * The `text/plain` of the main result, if any.
   *
   * @since 0.2.0
   */
  get text(): string | undefined {
    return this.results.find((result) => result.isMain)?.text
  }
}

/**
 * What `runStream` emits as it happens: output lines, results, then the error if the cell raised one.
 *
 * @since 0.2.0
 * @category models
 */
export type ExecutionEvent = OutputChunk | Result | ExecutionError

/**
 * How a run can fail (an exception in the cell is not a failure: see `Execution.error`).
 *
 * @since 0.2.0
 * @category errors
 */
export type RunFailure = KernelDied | ExecFailure

/**
 * How creating a context can fail.
 *
 * @since 0.2.0
 * @category errors
 */
export type CreateFailure = KernelDied | ExecFailure | FilesystemFailure

/**
 * One live context: a kernel and its variables, until its scope closes.
 *
 * @since 0.2.0
 * @category models
 */
export interface CodeContext {
  readonly id: string
  readonly language: Language
  /** The kernel's process id in the sandbox. */
  readonly pid: number
  /** Runs a cell; one cell at a time per context (others wait their turn). */
  readonly run: (
    code: string,
    options?: Omit<RunOptions, "context" | "language">
  ) => Effect.Effect<Execution, RunFailure>
  /** Runs a cell, emitting its output lines and results as they happen. */
  readonly runStream: (
    code: string,
    options?: Omit<RunOptions, "context" | "language">
  ) => Stream.Stream<ExecutionEvent, RunFailure>
}

/**
 * The code interpreter of one sandbox.
 *
 * @example
 * ```ts
 * import * as CodeInterpreter from "@effect-koyeb/core/CodeInterpreter"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const interpreter = yield* CodeInterpreter.CodeInterpreter
 *   yield* interpreter.run("data = [1, 2, 3]")
 *   const execution = yield* interpreter.run("sum(data)")
 *   return execution.text // "6"
 * })
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface CodeInterpreterShape {
  /** Starts a kernel; closing the scope stops it. */
  readonly createContext: (options?: ContextOptions) => Effect.Effect<CodeContext, CreateFailure, Scope.Scope>
  /** Runs a cell in `options.context`, or in the default context of `options.language`. */
  readonly run: (code: string, options?: RunOptions) => Effect.Effect<Execution, RunFailure | FilesystemFailure>
  /** Runs a cell, emitting its output lines and results as they happen. */
  readonly runStream: (
    code: string,
    options?: RunOptions
  ) => Stream.Stream<ExecutionEvent, RunFailure | FilesystemFailure>
}

/**
 * The code interpreter of one sandbox.
 *
 * @since 0.2.0
 * @category tags
 */
export class CodeInterpreter extends Context.Tag("@effect-koyeb/core/CodeInterpreter")<
  CodeInterpreter,
  CodeInterpreterShape
>() {}

/**
 * Builds the service; its default contexts live as long as the scope.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: Effect.Effect<CodeInterpreterShape, never, Executor | Filesystem | Scope.Scope> = internal.make

/**
 * The `CodeInterpreter` service from the sandbox's `Executor` and `Filesystem`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<CodeInterpreter, never, Executor | Filesystem> = Layer.scoped(CodeInterpreter, make)
