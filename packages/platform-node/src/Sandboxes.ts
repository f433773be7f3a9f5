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
import * as Cleanup from "@effect-koyeb/core/Cleanup"
// The root export until package.json lists the `./CodeInterpreter` subpath.
import * as CodeInterpreter from "@effect-koyeb/core/CodeInterpreter"
import {
  ControlPlane,
  type CreateOptions,
  type LifecycleOptions,
  type SandboxInfo,
  type WaitReadyOptions
} from "@effect-koyeb/core/ControlPlane"
import {
  Executor,
  type OutputBytes,
  type RunningCommand,
  type RunOptions,
  type SpawnOptions
} from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import type * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import type * as Processes from "@effect-koyeb/core/Processes"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import { InvalidArgument, type SandboxError } from "@effect-koyeb/core/SandboxError"
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
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { dispose, iterate, run, runDetached, type Runtime, SandboxFailure } from "./internal/promiseRuntime.js"
import type { SandboxErrorFields } from "./internal/promiseRuntime.js"
import type * as LocalControlPlane from "./LocalControlPlane.js"
import * as NodeSandbox from "./NodeSandbox.js" // Node 20 before 20.4 has no `Symbol.asyncDispose`; Node's own polyfill uses this registered symbol.
;(Symbol as { asyncDispose?: symbol }).asyncDispose ??= Symbol.for("nodejs.asyncDispose")

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

type Services = ControlPlane | FileSystem.FileSystem

const controlPlaneLayer = (options: BackendOptions): Layer.Layer<ControlPlane, InvalidArgument> => {
  const layer = options.backend === "local"
    ? NodeSandbox.layerLocal(options.local)
    : options.backend === "koyeb"
    ? NodeSandbox.layerConfig(options.koyeb)
    : NodeSandbox.layerFromEnv
  return Layer.mapError(layer, (error) => new InvalidArgument({ argument: "configuration", detail: String(error) }))
}

/** Runs a scoped effect in a scope of its own (closed if it fails): its value and the scope that releases it. */
const inOwnScope = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  open: Effect.Effect<Scope.CloseableScope> = Scope.make()
): Effect.Effect<{ readonly scope: Scope.CloseableScope; readonly value: A }, E, Exclude<R, Scope.Scope>> =>
  Effect.flatMap(open, (scope) =>
    Scope.extend(effect, scope).pipe(
      Effect.onError(() => Scope.close(scope, Exit.void)),
      Effect.map((value) => ({ scope, value }))
    ))

const makeRuntime = (options: BackendOptions): Runtime<Services> =>
  ManagedRuntime.make(Layer.merge(controlPlaneLayer(options), NodeFileSystem.layer))

const split = <O extends CallOptions>(options: O | undefined): [Omit<O, "signal">, AbortSignal | undefined] => {
  if (options === undefined) return [{} as Omit<O, "signal">, undefined]
  const { signal, ...rest } = options
  return [rest, signal]
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

const watching = (
  runtime: Runtime<Services>,
  scope: Scope.CloseableScope,
  events: Stream.Stream<FileEvent, unknown>,
  signal: AbortSignal | undefined
): PromiseWatch => {
  const stopped = Effect.runSync(Deferred.make<void>())
  let closed: Promise<void> | undefined
  const close = (): Promise<void> =>
    closed ??= runDetached(Effect.zipRight(Deferred.succeed(stopped, undefined), Scope.close(scope, Exit.void)))
      .finally(() => signal?.removeEventListener("abort", close))
  if (signal?.aborted) void close()
  else signal?.addEventListener("abort", close, { once: true })
  // a pending `next()` ends when the watch is closed, not only when the scope's resources go
  const iterable = iterate(runtime, Stream.interruptWhen(events, Deferred.await(stopped)), signal)
  return {
    [Symbol.asyncIterator]() {
      const iterator = iterable[Symbol.asyncIterator]()
      return {
        next: () =>
          iterator.next().then(
            (result) => result.done === true ? close().then(() => result) : result,
            (error: unknown) => close().then(() => Promise.reject(error))
          ),
        return: () => iterator.return!().finally(close)
      }
    },
    close,
    [Symbol.asyncDispose]: close
  }
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

const runningCommand = (
  runtime: Runtime<Services>,
  scope: Scope.CloseableScope,
  running: RunningCommand
): PromiseRunningCommand => {
  let closed: Promise<void> | undefined
  const close = () => (closed ??= runDetached(Scope.close(scope, Exit.void)))
  return {
    stdin: {
      write: (data, options) => run(runtime, running.stdin.write(data), options?.signal),
      end: (options) => run(runtime, running.stdin.end, options?.signal)
    },
    output: iterate(runtime, running.output),
    wait: (options) => run(runtime, running.exit, options?.signal),
    kill: (signal = "SIGTERM", options) => run(runtime, running.signal(signal), options?.signal),
    resize: (cols, rows, options) => run(runtime, running.resize(cols, rows), options?.signal),
    close,
    [Symbol.asyncDispose]: close
  }
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
    const call = <A, E>(effect: Effect.Effect<A, E, Services>, signal: AbortSignal | undefined) =>
      run(runtime, effect, signal)
    const fs = handle.filesystem
    this.files = {
      writeFile: (path, content, options) => {
        const [rest, signal] = split(options)
        return call(fs.writeFile(path, content, rest), signal)
      },
      appendFile: (path, content, options) => call(fs.appendFile(path, content), options?.signal),
      writeStream: (path, source, options) => {
        const [rest, signal] = split(options)
        const stream = Symbol.asyncIterator in source
          ? Stream.fromAsyncIterable(source as AsyncIterable<Uint8Array>, (error) => error)
          : Stream.fromIterable(source as Iterable<Uint8Array>)
        return call(fs.writeStream(path, stream, rest), signal)
      },
      writeFiles: (files, options) => call(fs.writeFiles(files), options?.signal),
      readFile: (path, options) => call(fs.readFile(path), options?.signal),
      readFileString: (path, options) => call(fs.readFileString(path), options?.signal),
      readStream: (path, options) => iterate(runtime, fs.readStream(path), options?.signal),
      mkdir: (path, options) => {
        const [rest, signal] = split(options)
        return call(fs.mkdir(path, rest), signal)
      },
      list: (path, options) => call(fs.list(path), options?.signal),
      listDetailed: (path, options) => call(fs.listDetailed(path), options?.signal),
      stat: (path, options) => call(fs.stat(path), options?.signal),
      deleteFile: (path, options) => call(fs.deleteFile(path), options?.signal),
      deleteDir: (path, options) => call(fs.deleteDir(path), options?.signal),
      rename: (from, to, options) => {
        const [rest, signal] = split(options)
        return call(fs.rename(from, to, rest), signal)
      },
      move: (from, to, options) => {
        const [rest, signal] = split(options)
        return call(fs.move(from, to, rest), signal)
      },
      exists: (path, options) => call(fs.exists(path), options?.signal),
      isFile: (path, options) => call(fs.isFile(path), options?.signal),
      isDir: (path, options) => call(fs.isDir(path), options?.signal),
      rm: (path, options) => {
        const [rest, signal] = split(options)
        return call(fs.rm(path, rest), signal)
      },
      upload: (localPath, remotePath, options) => {
        const [rest, signal] = split(options)
        return call(fs.upload(localPath, remotePath, rest), signal)
      },
      download: (remotePath, localPath, options) => call(fs.download(remotePath, localPath), options?.signal),
      watch: (path, options) => {
        const [rest, signal] = split(options)
        return call(inOwnScope(fs.watchScoped(path, rest)), signal).then(({ scope, value }) =>
          watching(runtime, scope, value, signal)
        )
      }
    }
    const ps = handle.processes
    const processHandle = (launched: Processes.ProcessHandle): PromiseProcess => ({
      id: launched.id,
      pid: launched.pid,
      command: launched.command,
      info: (options) => call(launched.info, options?.signal),
      kill: (options) => {
        const [rest, signal] = split(options)
        return call(launched.kill(rest), signal)
      },
      logs: (options) => iterate(runtime, launched.logs, options?.signal),
      wait: (options) => {
        const [rest, signal] = split(options)
        return call(launched.wait(rest), signal)
      },
      waitForLog: (pattern, options) => {
        const [rest, signal] = split(options)
        return call(launched.waitForLog(pattern, rest), signal)
      }
    })
    this.processes = {
      launch: (command, options) => {
        const [rest, signal] = split(options)
        return call(ps.launch(command, rest), signal).then(processHandle)
      },
      list: (options) => call(ps.list, options?.signal),
      get: (id, options) => call(ps.get(id), options?.signal),
      kill: (id, options) => {
        const [rest, signal] = split(options)
        return call(ps.kill(id, rest), signal)
      },
      killAll: (options) => call(ps.killAll, options?.signal),
      logs: (id, options) => iterate(runtime, ps.logs(id), options?.signal),
      wait: (id, options) => {
        const [rest, signal] = split(options)
        return call(ps.wait(id, rest), signal)
      },
      waitForLog: (id, pattern, options) => {
        const [rest, signal] = split(options)
        return call(ps.waitForLog(id, pattern, rest), signal)
      },
      waitForPort: (port, options) => {
        const [rest, signal] = split(options)
        return call(ps.waitForPort(port, rest), signal)
      }
    }
    this.#interpreterScope = Effect.runSync(Scope.make())
    const interpreterScope = this.#interpreterScope
    // Built on first use; its default contexts and kernel files live until the handle is released.
    const interpreter = Effect.runSync(Effect.cached(
      CodeInterpreter.make.pipe(
        Scope.extend(interpreterScope),
        Effect.provideService(Executor, handle.executor),
        Effect.provideService(Filesystem.Filesystem, handle.filesystem)
      )
    ))
    const codeContext = (scope: Scope.CloseableScope, context: CodeInterpreter.CodeContext): PromiseCodeContext => {
      const close = () => Effect.runPromise(Scope.close(scope, Exit.void))
      return {
        id: context.id,
        language: context.language,
        pid: context.pid,
        run: (code, options) => {
          const [rest, signal] = split(options)
          return call(context.run(code, rest), signal)
        },
        runStream: (code, options) => {
          const [rest, signal] = split(options)
          return iterate(runtime, context.runStream(code, rest), signal)
        },
        close,
        [Symbol.asyncDispose]: close
      }
    }
    this.codeInterpreter = {
      run: (code, options) => {
        const [rest, signal] = split(options)
        return call(Effect.flatMap(interpreter, (i) => i.run(code, rest)), signal)
      },
      runStream: (code, options) => {
        const [rest, signal] = split(options)
        return iterate(runtime, Stream.unwrap(Effect.map(interpreter, (i) => i.runStream(code, rest))), signal)
      },
      createContext: (options) => {
        const [rest, signal] = split(options)
        return call(
          inOwnScope(
            Effect.flatMap(interpreter, (i) => i.createContext(rest)),
            Scope.fork(interpreterScope, ExecutionStrategy.sequential)
          ),
          signal
        ).then(({ scope, value }) => codeContext(scope, value))
      }
    }
  }

  /** The sandbox (Koyeb service) id. */
  get id(): string {
    return this.info.id
  }

  /** @ignore */
  #call<A, E>(effect: Effect.Effect<A, E, Services>, signal: AbortSignal | undefined): Promise<A> {
    return run(this.#runtime, effect, signal)
  }

  /**
   * Runs a command and buffers its output; throws a `CommandError` failure on a non-zero exit code.
   *
   * @since 0.1.0
   */
  run(command: ShellCommand.Input, options?: CommandOptions): Promise<CommandResult> {
    const [rest, signal] = split(options)
    return this.#call(this.#handle.executor.run(command, rest), signal)
  }

  /**
   * Runs a command and buffers its output, whatever its exit code.
   *
   * @since 0.1.0
   */
  exec(command: ShellCommand.Input, options?: CommandOptions): Promise<CommandResult> {
    const [rest, signal] = split(options)
    return this.#call(this.#handle.executor.exec(command, rest), signal)
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
    const [rest, signal] = split(options)
    return this.#call(inOwnScope(this.#handle.executor.spawn(command, rest)), signal).then(({ scope, value }) =>
      runningCommand(this.#runtime, scope, value)
    )
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
    return this.#call(this.#handle.exposePort(port), options?.signal)
  }

  /**
   * Stops forwarding the public port.
   *
   * @since 0.1.0
   */
  unexposePort(options?: CallOptions): Promise<void> {
    return this.#call(this.#handle.unexposePort, options?.signal)
  }

  /**
   * The public host of the sandbox, if it has one.
   *
   * @since 0.1.0
   */
  domain(options?: CallOptions): Promise<string | undefined> {
    return this.#call(Effect.map(this.#handle.domain, Option.getOrUndefined), options?.signal)
  }

  /**
   * The public TCP address of the proxy port, when created with `enableTcpProxy`.
   *
   * @since 0.1.0
   */
  tcpProxy(options?: CallOptions): Promise<{ readonly host: string; readonly port: number } | undefined> {
    return this.#call(Effect.map(this.#handle.tcpProxy, Option.getOrUndefined), options?.signal)
  }

  /**
   * True when the executor answers as healthy; never throws (but for an abort).
   *
   * @since 0.1.0
   */
  isHealthy(options?: CallOptions): Promise<boolean> {
    return this.#call(this.#handle.isHealthy, options?.signal)
  }

  /**
   * Waits until the sandbox is ready.
   *
   * @since 0.1.0
   */
  waitReady(options?: WaitReadyOptions & CallOptions): Promise<void> {
    const [rest, signal] = split(options)
    return this.#call(this.#handle.waitReady(rest), signal)
  }

  /**
   * Changes the deletion delays; unspecified ones keep their value.
   *
   * @since 0.1.0
   */
  updateLifecycle(lifecycle: LifecycleOptions, options?: CallOptions): Promise<void> {
    return this.#call(this.#handle.updateLifecycle(lifecycle), options?.signal)
  }

  /**
   * Deletes the sandbox now (whichever way it was obtained), then releases this handle.
   *
   * @since 0.1.0
   */
  async delete(options?: CallOptions): Promise<void> {
    await this.#call(this.#handle.delete, options?.signal)
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
    return createWith(this.#runtime, options, () => Promise.resolve())
  }

  /**
   * Attaches to an existing sandbox; disposing the handle leaves it running (`delete()` deletes it).
   *
   * @since 0.1.0
   */
  fromId(id: string, options?: CallOptions): Promise<PromiseSandbox> {
    return fromIdWith(this.#runtime, id, options, () => Promise.resolve())
  }

  /**
   * The sandboxes visible to the credentials.
   *
   * @since 0.1.0
   */
  list(options?: CallOptions): Promise<ReadonlyArray<SandboxInfo>> {
    return run(this.#runtime, Effect.flatMap(ControlPlane, (controlPlane) => controlPlane.list), options?.signal)
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

const createWith = async (
  runtime: Runtime<Services>,
  options: SandboxesCreateOptions | undefined,
  after: () => Promise<void>
): Promise<PromiseSandbox> => {
  const [createOptions, signal] = split(options)
  const scope = Effect.runSync(Scope.make())
  // Not through the runtime: the client may have been disposed first (and deleted the sandbox).
  const close = () => runDetached(Scope.close(scope, Exit.void))
  try {
    const handle = await run(runtime, Scope.extend(Sandbox.make(createOptions), scope), signal)
    return new PromiseSandbox(runtime, handle, () => close().finally(after))
  } catch (error) {
    await close().finally(after)
    throw error
  }
}

const fromIdWith = async (
  runtime: Runtime<Services>,
  id: string,
  options: CallOptions | undefined,
  after: () => Promise<void>
): Promise<PromiseSandbox> => {
  try {
    return new PromiseSandbox(runtime, await run(runtime, Sandbox.fromId(id), options?.signal), after)
  } catch (error) {
    await after()
    throw error
  }
}

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
  return createWith(runtime, createOptions, () => dispose(runtime))
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
  return fromIdWith(runtime, id, options, () => dispose(runtime))
}

/**
 * Lists the sandboxes of a backend (Koyeb by default when `KOYEB_API_TOKEN` is set).
 *
 * @since 0.1.0
 * @category utils
 */
export const list = async (options: CallOptions & BackendOptions = {}): Promise<ReadonlyArray<SandboxInfo>> => {
  const sandboxes = client(options)
  try {
    return await sandboxes.list(options)
  } finally {
    await sandboxes.dispose()
  }
}

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
export const assertNoLeftovers = async (
  options: Cleanup.AssertNoneOptions & CallOptions & BackendOptions = {}
): Promise<void> => {
  const runtime = makeRuntime(options)
  try {
    await run(runtime, Cleanup.assertNone({ olderThan: options.olderThan }), options.signal)
  } finally {
    await dispose(runtime)
  }
}
