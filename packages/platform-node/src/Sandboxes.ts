/**
 * A Promise facade for programs that do not use Effect, built on the Effect services through a
 * `ManagedRuntime`:
 *
 * ```ts
 * import { Sandboxes } from "@effect-koyeb/platform-node"
 *
 * await using sandbox = await Sandboxes.create({ backend: "local" })
 * const result = await sandbox.run("echo hello")           // CommandResult; throws on exit ≠ 0
 * for await (const chunk of sandbox.stream("make test")) console.log(chunk.stream, chunk.data)
 * await sandbox.files.writeFile("/tmp/a.bin", new Uint8Array([0, 1, 2]))
 * // leaving the block deletes the sandbox
 * ```
 *
 * Every method takes an optional `AbortSignal` (`{ signal }`, as the last argument): aborting
 * interrupts the call, which stops the command in the sandbox, and rejects with the signal's
 * reason (an `AbortError` `DOMException` by default). Streams are async iterables; `break` stops
 * them the same way. effect-koyeb's errors are thrown as `SandboxFailure`s: `Error`s whose `_tag`
 * and `name` are the error's tag, with its fields (`path`, `exitCode`, `stderr`…) as properties
 * and the original Effect error as `cause`.
 *
 * Importing this module defines `Symbol.asyncDispose` when the runtime lacks it (as
 * `Symbol.for("nodejs.asyncDispose")`, the symbol Node itself uses), so that `await using` works.
 *
 * @since 0.1.0
 */
import type * as Cleanup from "@effect-koyeb/core/Cleanup"
import type * as CodeInterpreter from "@effect-koyeb/core/CodeInterpreter"
import type { CreateOptions, LifecycleOptions, SandboxInfo, WaitReadyOptions } from "@effect-koyeb/core/ControlPlane"
import type { OutputBytes, RunOptions, SpawnOptions } from "@effect-koyeb/core/Executor"
import type * as Filesystem from "@effect-koyeb/core/Filesystem"
import type * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import type * as Processes from "@effect-koyeb/core/Processes"
import type * as Sandbox from "@effect-koyeb/core/Sandbox"
import type { SandboxError } from "@effect-koyeb/core/SandboxError"
import type {
  CommandExit,
  CommandResult,
  ExecEvent,
  ExposedPort,
  FileEntry,
  FileEvent,
  OutputChunk,
  ProcessInfo,
  ProcessLogLine
} from "@effect-koyeb/core/SandboxSchema"
import type * as ShellCommand from "@effect-koyeb/core/ShellCommand"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as CodeInterpreterFacade from "./internal/facade/codeInterpreter.js"
import * as Files from "./internal/facade/files.js"
import * as ProcessesFacade from "./internal/facade/processes.js"
import { callWith, makeRuntime, type Services, split } from "./internal/facade/runtime.js"
import * as Acquire from "./internal/facade/sandbox.js"
import * as Spawn from "./internal/facade/spawn.js"
import { dispose, iterate, run, type Runtime, SandboxFailure } from "./internal/promiseRuntime.js"
import type { SandboxErrorFields } from "./internal/promiseRuntime.js"
import type * as LocalControlPlane from "./LocalControlPlane.js"

// Node 20 before 20.4 has no `Symbol.asyncDispose`; Node's own polyfill uses this registered symbol.
const symbols: { asyncDispose?: symbol } = Symbol
symbols.asyncDispose ??= Symbol.for("nodejs.asyncDispose")

export {
  /**
   * An effect-koyeb error as a plain `Error`, keeping `_tag` and the fields; `cause` is the Effect error.
   *
   * @since 0.1.0
   * @category errors
   */
  SandboxFailure
}
export type {
  /**
   * The fields of an effect-koyeb error, without `_tag`.
   *
   * @since 0.1.0
   * @category errors
   */
  SandboxErrorFields,
  /**
   * The tag of every effect-koyeb error.
   *
   * @since 0.1.0
   * @category errors
   */
  SandboxErrorTag
} from "./internal/promiseRuntime.js"

/**
 * A `SandboxFailure` of one tag, with that error's fields typed.
 *
 * @since 0.1.0
 * @category errors
 */
export type SandboxFailureOf<T extends SandboxError["_tag"]> =
  & SandboxFailure
  & { readonly _tag: T; readonly cause: Extract<SandboxError, { readonly _tag: T }> }
  & SandboxErrorFields<Extract<SandboxError, { readonly _tag: T }>>

/**
 * True for a `SandboxFailure` (of the given tag, when one is given).
 *
 * @since 0.1.0
 * @category guards
 */
export const isSandboxFailure: {
  <T extends SandboxError["_tag"]>(u: unknown, tag: T): u is SandboxFailureOf<T>
  (u: unknown): u is SandboxFailure
} = (u: unknown, tag?: string): u is SandboxFailure =>
  u instanceof SandboxFailure && (tag === undefined || u._tag === tag)

/**
 * The optional `AbortSignal` every call accepts.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallOptions {
  readonly signal?: AbortSignal | undefined
}

/**
 * Which control plane the facade uses.
 *
 * @since 0.1.0
 * @category models
 */
export interface BackendOptions {
  /**
   * `"env"` (default): Koyeb when `KOYEB_API_TOKEN` is set (with `KOYEB_API_HOST`, `KOYEB_REGION`),
   * else this machine. `"koyeb"`: Koyeb, configured by `koyeb` and the environment. `"local"`: this
   * machine, configured by `local`; local sandboxes live only as long as their client.
   */
  readonly backend?: "env" | "koyeb" | "local" | undefined
  /** Options of the Koyeb backend; the token defaults to `KOYEB_API_TOKEN`. */
  readonly koyeb?: Partial<KoyebControlPlane.KoyebControlPlaneOptions> | undefined
  /** Options of the local backend. */
  readonly local?: LocalControlPlane.LocalControlPlaneOptions | undefined
}

/**
 * Files and directories of a sandbox (the `Filesystem` service as Promises).
 *
 * @since 0.1.0
 * @category models
 */
export interface PromiseFilesystem {
  /** Writes a file: a string as UTF-8 text, bytes exactly. The parent directory must exist. */
  writeFile(path: string, content: string | Uint8Array, options?: Filesystem.WriteOptions & CallOptions): Promise<void>
  /** Appends text or bytes to a file, creating it if missing. */
  appendFile(path: string, content: string | Uint8Array, options?: CallOptions): Promise<void>
  /** Writes a file from (async) iterable bytes, holding only a few chunks in memory. */
  writeStream(
    path: string,
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options?: Filesystem.WriteOptions & CallOptions
  ): Promise<void>
  /** Writes many files in few commands. */
  writeFiles(files: Iterable<Filesystem.FileToWrite>, options?: CallOptions): Promise<void>
  /** Reads a file's bytes exactly. */
  readFile(path: string, options?: CallOptions): Promise<Uint8Array>
  /** Reads a file as UTF-8 text. */
  readFileString(path: string, options?: CallOptions): Promise<string>
  /** Reads a file as a stream of byte chunks. */
  readStream(path: string, options?: CallOptions): AsyncIterable<Uint8Array>
  /** Creates a directory. */
  mkdir(path: string, options?: Filesystem.MkdirOptions & CallOptions): Promise<void>
  /** The names in a directory. */
  list(path: string, options?: CallOptions): Promise<ReadonlyArray<string>>
  /** The entries of a directory with type, size, mode and modification time. */
  listDetailed(path: string, options?: CallOptions): Promise<ReadonlyArray<FileEntry>>
  /** Metadata of one path. */
  stat(path: string, options?: CallOptions): Promise<FileEntry>
  /** Deletes a file (not a directory). */
  deleteFile(path: string, options?: CallOptions): Promise<void>
  /** Deletes a directory and its contents. */
  deleteDir(path: string, options?: CallOptions): Promise<void>
  /** Renames a path (the destination is the exact new path). */
  rename(from: string, to: string, options?: Filesystem.MoveOptions & CallOptions): Promise<void>
  /** Moves a path (the destination is the exact new path). */
  move(from: string, to: string, options?: Filesystem.MoveOptions & CallOptions): Promise<void>
  /** Whether the path exists. */
  exists(path: string, options?: CallOptions): Promise<boolean>
  /** Whether the path is a regular file. */
  isFile(path: string, options?: CallOptions): Promise<boolean>
  /** Whether the path is a directory. */
  isDir(path: string, options?: CallOptions): Promise<boolean>
  /** Removes a path like `rm`. */
  rm(path: string, options?: Filesystem.RmOptions & CallOptions): Promise<void>
  /** Copies a local file into the sandbox, streaming. */
  upload(localPath: string, remotePath: string, options?: Filesystem.WriteOptions & CallOptions): Promise<void>
  /** Copies a sandbox file to a local path, streaming. */
  download(remotePath: string, localPath: string, options?: CallOptions): Promise<void>
  /**
   * Watches a directory: resolves once the watch is set up (so changes made afterwards are seen),
   * with its events as an async iterable. `break`, `close()` (or `await using`) and an abort of
   * `signal` stop the watch in the sandbox; the iteration ends after the directory's own `delete`.
   */
  watch(path: string, options?: Filesystem.WatchOptions & CallOptions): Promise<PromiseWatch>
}

/**
 * A directory watch of `files.watch`: its events, buffered from when the watch was set up until
 * they are read; iterate it once.
 *
 * @since 0.2.0
 * @category models
 */
export interface PromiseWatch extends AsyncIterable<FileEvent>, AsyncDisposable {
  /** Stops the watch; an iteration in progress ends. */
  close(): Promise<void>
}

/**
 * A background process started with `processes.launch`.
 *
 * @since 0.1.0
 * @category models
 */
export interface PromiseProcess {
  /** The executor's id of the process. */
  readonly id: string
  /** Its PID in the sandbox (also its process-group id). */
  readonly pid: number
  /** The command line as given to `launch`. */
  readonly command: string
  /** The current status of the process. */
  info(options?: CallOptions): Promise<ProcessInfo>
  /** Stops the process and its descendants. */
  kill(options?: Processes.KillOptions & CallOptions): Promise<void>
  /** Its output from its start, live while it runs; ends when it has exited. */
  logs(options?: CallOptions): AsyncIterable<ProcessLogLine>
  /** Waits until it has exited and returns its final info. */
  wait(options?: Processes.WaitOptions & CallOptions): Promise<ProcessInfo>
  /** Waits for the first output line containing (string) or matching (RegExp) `pattern`. */
  waitForLog(pattern: string | RegExp, options?: Processes.WaitForLogOptions & CallOptions): Promise<ProcessLogLine>
}

/**
 * Background processes of a sandbox (the `Processes` service as Promises).
 *
 * @since 0.1.0
 * @category models
 */
export interface PromiseProcesses {
  /** Starts a command in the background. */
  launch(command: ShellCommand.Input, options?: Processes.LaunchOptions & CallOptions): Promise<PromiseProcess>
  /** Every process the executor knows. */
  list(options?: CallOptions): Promise<ReadonlyArray<ProcessInfo>>
  /** The current info of one process. */
  get(id: string, options?: CallOptions): Promise<ProcessInfo>
  /** Stops a running process and its descendants. */
  kill(id: string, options?: Processes.KillOptions & CallOptions): Promise<void>
  /** Kills every running process; returns how many. */
  killAll(options?: CallOptions): Promise<number>
  /** The output of a launched process from its start, live while it runs. */
  logs(id: string, options?: CallOptions): AsyncIterable<ProcessLogLine>
  /** Waits until a process has exited. */
  wait(id: string, options?: Processes.WaitOptions & CallOptions): Promise<ProcessInfo>
  /** Waits for the first matching output line of a process. */
  waitForLog(
    id: string,
    pattern: string | RegExp,
    options?: Processes.WaitForLogOptions & CallOptions
  ): Promise<ProcessLogLine>
  /** Waits until something listens on `port` in the sandbox. */
  waitForPort(port: number, options?: Processes.WaitForPortOptions & CallOptions): Promise<void>
}

/**
 * Options of `run`, `exec`, `stream` and `streamEvents`.
 *
 * @since 0.1.0
 * @category models
 */
export type CommandOptions = RunOptions & CallOptions

/**
 * Options of `spawn`: those of a command, plus `pty` (a terminal of that size).
 *
 * @since 0.2.0
 * @category models
 */
export type SpawnCommandOptions = SpawnOptions & CallOptions

/**
 * A command started by `spawn`: write to its stdin, read its raw output, wait for its exit, signal
 * it. `await using` (or `close()`) stops it if it still runs.
 *
 * @since 0.2.0
 * @category models
 */
export interface PromiseRunningCommand extends AsyncDisposable {
  /** The command's stdin: each write resolves once the sandbox took the bytes; `end` closes it. */
  readonly stdin: {
    readonly write: (data: string | Uint8Array, options?: CallOptions) => Promise<void>
    readonly end: (options?: CallOptions) => Promise<void>
  }
  /** Its stdout and stderr as raw byte chunks, as read, ending when it has exited; iterate it once. */
  readonly output: AsyncIterable<OutputBytes>
  /** Resolves with its exit, whatever the exit code. */
  wait(options?: CallOptions): Promise<CommandExit>
  /** Sends a signal (default `SIGTERM`) to its process group (on a terminal: the foreground one). */
  kill(signal?: string, options?: CallOptions): Promise<void>
  /**
   * Sets the size of its terminal (spawned with `pty`); its foreground processes get `SIGWINCH`.
   * Rejects with `InvalidArgument` without a terminal, `Unsupported` on Koyeb's stock executor.
   */
  resize(cols: number, rows: number, options?: CallOptions): Promise<void>
  /** Stops it if it still runs, and releases it. */
  close(): Promise<void>
}

/**
 * A code context of `codeInterpreter.createContext`: a kernel and its variables until it is closed
 * (or the sandbox released).
 *
 * @since 0.2.0
 * @category models
 */
export interface PromiseCodeContext extends AsyncDisposable {
  readonly id: string
  readonly language: CodeInterpreter.Language
  /** The kernel's process id in the sandbox. */
  readonly pid: number
  /** Runs a cell; an abort interrupts the cell (the context keeps its state) and rejects. */
  readonly run: (code: string, options?: CodeCellOptions) => Promise<CodeInterpreter.Execution>
  /** Runs a cell, yielding its output lines and results as they happen. */
  readonly runStream: (code: string, options?: CodeCellOptions) => AsyncIterable<CodeInterpreter.ExecutionEvent>
  /** Stops the kernel. */
  readonly close: () => Promise<void>
}

/**
 * Options of a cell in the facade (`timeout`, and `signal`, which rejects as every call does).
 *
 * @since 0.2.0
 * @category models
 */
export interface CodeCellOptions extends CallOptions {
  readonly timeout?: CodeInterpreter.RunOptions["timeout"]
}

/**
 * The code interpreter of a sandbox (the `CodeInterpreter` service as Promises): see
 * `@effect-koyeb/core/CodeInterpreter`. Aborting a run interrupts the cell, keeps the context's
 * state, and rejects with the signal's reason.
 *
 * @since 0.2.0
 * @category models
 */
export interface PromiseCodeInterpreter {
  /** Runs a cell in the sandbox's default context of `language` (default `"python"`). */
  readonly run: (
    code: string,
    options?: CodeCellOptions & { readonly language?: CodeInterpreter.Language | undefined }
  ) => Promise<CodeInterpreter.Execution>
  /** Runs a cell, yielding its output lines and results as they happen. */
  readonly runStream: (
    code: string,
    options?: CodeCellOptions & { readonly language?: CodeInterpreter.Language | undefined }
  ) => AsyncIterable<CodeInterpreter.ExecutionEvent>
  /** Starts a new context (a kernel of its own). */
  readonly createContext: (options?: CodeInterpreter.ContextOptions & CallOptions) => Promise<PromiseCodeContext>
}

/**
 * One live sandbox. `await using` (or `[Symbol.asyncDispose]()`) releases it: see `create` and `fromId`.
 *
 * @since 0.1.0
 * @category models
 */
export class PromiseSandbox implements AsyncDisposable {
  /**
   * What the control plane knows about the sandbox.
   *
   * @since 0.1.0
   */
  readonly info: SandboxInfo
  /**
   * Files and directories.
   *
   * @since 0.1.0
   */
  readonly files: PromiseFilesystem
  /**
   * Background processes.
   *
   * @since 0.1.0
   */
  readonly processes: PromiseProcesses
  /**
   * The code interpreter: stateful Python and JavaScript contexts, stopped when the handle is released.
   *
   * @since 0.2.0
   */
  readonly codeInterpreter: PromiseCodeInterpreter
  /** @ignore */
  readonly #interpreterScope: Scope.CloseableScope
  /** @ignore */
  readonly #runtime: Runtime<Services>
  /** @ignore */
  readonly #handle: Sandbox.SandboxHandle
  /** @ignore */
  readonly #release: () => Promise<void>
  /** @ignore */
  #released: Promise<void> | undefined

  /** @internal */
  constructor(runtime: Runtime<Services>, handle: Sandbox.SandboxHandle, release: () => Promise<void>) {
    this.#runtime = runtime
    this.#handle = handle
    this.#release = release
    this.info = handle.info
    this.files = Files.make(runtime, handle.filesystem)
    this.processes = ProcessesFacade.make(runtime, handle.processes)
    this.#interpreterScope = Effect.runSync(Scope.make())
    this.codeInterpreter = CodeInterpreterFacade.make(runtime, handle, this.#interpreterScope)
  }

  /** The sandbox (Koyeb service) id. */
  get id(): string {
    return this.info.id
  }

  /**
   * Runs a command and buffers its output; throws a `CommandError` failure on a non-zero exit code.
   *
   * @since 0.1.0
   */
  run(command: ShellCommand.Input, options?: CommandOptions): Promise<CommandResult> {
    return callWith(this.#runtime, options, (rest) => this.#handle.executor.run(command, rest))
  }

  /**
   * Runs a command and buffers its output, whatever its exit code.
   *
   * @since 0.1.0
   */
  exec(command: ShellCommand.Input, options?: CommandOptions): Promise<CommandResult> {
    return callWith(this.#runtime, options, (rest) => this.#handle.executor.exec(command, rest))
  }

  /**
   * The output lines of a command, live; throws a `CommandError` failure after the last line on a non-zero exit code.
   *
   * @since 0.1.0
   */
  stream(command: ShellCommand.Input, options?: CommandOptions): AsyncIterable<OutputChunk> {
    const [rest, signal] = split(options)
    return iterate(this.#runtime, this.#handle.executor.stream(command, rest), signal)
  }

  /**
   * Starts a command that reads stdin and whose output arrives as raw bytes: see
   * `PromiseRunningCommand`. With `pty: { cols, rows }` it runs on a terminal (see
   * `Executor.SpawnOptions`).
   *
   * @since 0.2.0
   */
  spawn(command: ShellCommand.Input, options?: SpawnCommandOptions): Promise<PromiseRunningCommand> {
    return Spawn.spawn(this.#runtime, this.#handle.executor, command, options)
  }

  /**
   * The output lines of a command, live, then one `CommandExit`, whatever the exit code.
   *
   * @since 0.1.0
   */
  streamEvents(command: ShellCommand.Input, options?: CommandOptions): AsyncIterable<ExecEvent> {
    const [rest, signal] = split(options)
    return iterate(this.#runtime, this.#handle.executor.streamEvents(command, rest), signal)
  }

  /**
   * Forwards the sandbox's public port to `port`; returns its public URL.
   *
   * @since 0.1.0
   */
  exposePort(port: number, options?: CallOptions): Promise<ExposedPort> {
    return run(this.#runtime, this.#handle.exposePort(port), options?.signal)
  }

  /**
   * Stops forwarding the public port.
   *
   * @since 0.1.0
   */
  unexposePort(options?: CallOptions): Promise<void> {
    return run(this.#runtime, this.#handle.unexposePort, options?.signal)
  }

  /**
   * The public host of the sandbox, if it has one.
   *
   * @since 0.1.0
   */
  domain(options?: CallOptions): Promise<string | undefined> {
    return run(this.#runtime, Effect.map(this.#handle.domain, Option.getOrUndefined), options?.signal)
  }

  /**
   * The public TCP address of the proxy port, when created with `enableTcpProxy`.
   *
   * @since 0.1.0
   */
  tcpProxy(options?: CallOptions): Promise<{ readonly host: string; readonly port: number } | undefined> {
    return run(this.#runtime, Effect.map(this.#handle.tcpProxy, Option.getOrUndefined), options?.signal)
  }

  /**
   * True when the executor answers as healthy; never throws (but for an abort).
   *
   * @since 0.1.0
   */
  isHealthy(options?: CallOptions): Promise<boolean> {
    return run(this.#runtime, this.#handle.isHealthy, options?.signal)
  }

  /**
   * Waits until the sandbox is ready.
   *
   * @since 0.1.0
   */
  waitReady(options?: WaitReadyOptions & CallOptions): Promise<void> {
    return callWith(this.#runtime, options, (rest) => this.#handle.waitReady(rest))
  }

  /**
   * Changes the deletion delays; unspecified ones keep their value.
   *
   * @since 0.1.0
   */
  updateLifecycle(lifecycle: LifecycleOptions, options?: CallOptions): Promise<void> {
    return run(this.#runtime, this.#handle.updateLifecycle(lifecycle), options?.signal)
  }

  /**
   * Deletes the sandbox now (whichever way it was obtained), then releases this handle.
   *
   * @since 0.1.0
   */
  async delete(options?: CallOptions): Promise<void> {
    await run(this.#runtime, this.#handle.delete, options?.signal)
    await this[Symbol.asyncDispose]()
  }

  /**
   * Releases the handle: a sandbox from `create` is deleted (if its client has not deleted it
   * already); one from `fromId` is left running. A handle from the module-level `create` /
   * `fromId` also stops its own runtime. Idempotent. Rejects with a `SandboxLeaked` failure when
   * the sandbox could not be deleted.
   *
   * @since 0.1.0
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#released ??= Effect.runPromise(Scope.close(this.#interpreterScope, Exit.void)).then(this.#release)
  }
}

/**
 * Options of `create`.
 *
 * @since 0.1.0
 * @category models
 */
export type SandboxesCreateOptions = CreateOptions & CallOptions

/**
 * A facade runtime over one backend: create, attach to and list sandboxes. Dispose it to stop it (and its local sandboxes).
 *
 * @since 0.1.0
 * @category models
 */
export class SandboxesClient implements AsyncDisposable {
  /** @ignore */
  readonly #runtime: Runtime<Services>

  /** @internal */
  constructor(runtime: Runtime<Services>) {
    this.#runtime = runtime
  }

  /**
   * Creates a sandbox and (unless `waitReady: false`) waits until it is ready; disposing the sandbox deletes it.
   *
   * @since 0.1.0
   */
  create(options?: SandboxesCreateOptions): Promise<PromiseSandbox> {
    return Acquire.create(this.#runtime, options, () => Promise.resolve()).then(promiseSandbox(this.#runtime))
  }

  /**
   * Attaches to an existing sandbox; disposing the handle leaves it running (`delete()` deletes it).
   *
   * @since 0.1.0
   */
  fromId(id: string, options?: CallOptions): Promise<PromiseSandbox> {
    return Acquire.fromId(this.#runtime, id, options, () => Promise.resolve()).then(promiseSandbox(this.#runtime))
  }

  /**
   * The sandboxes visible to the credentials.
   *
   * @since 0.1.0
   */
  list(options?: CallOptions): Promise<ReadonlyArray<SandboxInfo>> {
    return Acquire.list(this.#runtime, options)
  }

  /**
   * Stops the runtime, deleting the sandboxes its `create` made that are still alive (and, on
   * the local backend, every sandbox). Rejects with a `SandboxLeaked` failure when one could not
   * be deleted.
   *
   * @since 0.1.0
   */
  dispose(): Promise<void> {
    return dispose(this.#runtime)
  }

  /**
   * Same as `dispose`.
   *
   * @since 0.1.0
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose()
  }
}

// The handle over a sandbox obtained on `runtime`.
const promiseSandbox = (runtime: Runtime<Services>) => ({ handle, release }: Acquire.Acquired): PromiseSandbox =>
  new PromiseSandbox(runtime, handle, release)

/**
 * A client over one backend, for several sandboxes (a local backend's sandboxes live as long as the client).
 *
 * @since 0.1.0
 * @category constructors
 */
export const client = (options: BackendOptions = {}): SandboxesClient => new SandboxesClient(makeRuntime(options))

/**
 * Creates a sandbox on its own runtime; disposing it (`await using`, `[Symbol.asyncDispose]()` or
 * `delete()`) deletes the sandbox and stops the runtime.
 *
 * @example
 * ```ts
 * import * as Sandboxes from "@effect-koyeb/platform-node/Sandboxes"
 *
 * export async function main() {
 *   // Koyeb when KOYEB_API_TOKEN is set, else this machine; deleted when the block ends.
 *   await using sandbox = await Sandboxes.create({ name: "demo" })
 *   const { stdout } = await sandbox.run("uname -a", { signal: AbortSignal.timeout(10_000) })
 *   console.log(stdout)
 *   for await (const chunk of sandbox.stream("ls -la /")) console.log(chunk.stream, chunk.data)
 *   try {
 *     await sandbox.files.readFileString("/missing.txt")
 *   } catch (error) {
 *     if (!Sandboxes.isSandboxFailure(error, "FileNotFound")) throw error
 *     console.log(`no ${error.path}`)
 *   }
 * }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const create = (options: SandboxesCreateOptions & BackendOptions = {}): Promise<PromiseSandbox> => {
  const runtime = makeRuntime(options)
  const { backend: _backend, koyeb: _koyeb, local: _local, ...createOptions } = options
  return Acquire.create(runtime, createOptions, () => dispose(runtime)).then(promiseSandbox(runtime))
}

/**
 * Attaches to an existing sandbox on its own runtime; disposing the handle stops the runtime and
 * leaves the sandbox running. Local sandboxes belong to the client that created them: use
 * `client().fromId` for those.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromId = (id: string, options: CallOptions & BackendOptions = {}): Promise<PromiseSandbox> => {
  const runtime = makeRuntime(options)
  return Acquire.fromId(runtime, id, options, () => dispose(runtime)).then(promiseSandbox(runtime))
}

/**
 * Lists the sandboxes of a backend (Koyeb by default when `KOYEB_API_TOKEN` is set).
 *
 * @since 0.1.0
 * @category utils
 */
export const list = (options: CallOptions & BackendOptions = {}): Promise<ReadonlyArray<SandboxInfo>> =>
  Acquire.listBackend(options)

/**
 * Rejects (a `LeftoverSandboxes` failure naming them) when effect-koyeb's sandboxes still exist on
 * the backend, optionally only those older than `olderThan`: the check of a test suite's global
 * teardown (see `Cleanup.assertNone`).
 *
 * @example
 * ```ts
 * // vitest.config.ts: test.globalSetup: ["./teardown.ts"]; jest: globalTeardown: "./teardown.ts"
 * import * as Sandboxes from "@effect-koyeb/platform-node/Sandboxes"
 *
 * export default () => () => Sandboxes.assertNoLeftovers() // vitest: setup returns the teardown
 * ```
 *
 * @since 0.2.0
 * @category utils
 */
export const assertNoLeftovers = (
  options: Cleanup.AssertNoneOptions & CallOptions & BackendOptions = {}
): Promise<void> => Acquire.assertNoLeftovers(options)
