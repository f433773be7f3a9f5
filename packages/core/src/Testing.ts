/**
 * Test kit for programs built on effect-koyeb: an in-memory sandbox (a filesystem tree, commands
 * answered by your handlers, background processes, an exposed port) and an in-memory control
 * plane, so code that depends on `Executor`, `Filesystem`, `Processes`, `Sandbox` or
 * `ControlPlane` runs in tests with no server. Both honour the real services' error contract: a
 * missing file is `FileNotFound`, an exclusive write on an existing file `FileExists`, a non-zero
 * exit `CommandError`, an unknown process `ProcessNotFound`, and so on.
 *
 * Differences from a real sandbox: no shell runs (each command line goes to the first matching
 * handler; an unhandled one exits with code 127), there are no symlinks, permissions are not
 * enforced, and a handler's output arrives all at once (stdout lines, then stderr lines).
 *
 * For a partial mock of one service, `Layer.mock` (effect ≥ 3.17) needs no helper: the methods you
 * leave out die with an `UnimplementedError` when called.
 *
 * ```ts
 * import * as Executor from "@effect-koyeb/core/Executor"
 * import { CommandResult } from "@effect-koyeb/core/SandboxSchema"
 * import * as Effect from "effect/Effect"
 * import * as Layer from "effect/Layer"
 *
 * const ExecutorTest = Layer.mock(Executor.Executor, {
 *   run: (command) =>
 *     Effect.succeed(new CommandResult({
 *       command: String(command), stdout: "ok\n", stderr: "", exitCode: 0, status: "finished", durationMillis: 0
 *     }))
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as CodeInterpreter from "./CodeInterpreter.js"
import { ControlPlane, type LifecycleOptions } from "./ControlPlane.js"
import { type ExecFailure, Executor } from "./Executor.js"
import { Filesystem, type FilesystemShape } from "./Filesystem.js"
import * as CodeInterpreterMemory from "./internal/codeInterpreterMemory.js"
import * as MemoryControlPlaneInternal from "./internal/memoryControlPlane.js"
import * as MemorySandboxInternal from "./internal/memorySandbox.js"
import { SuppliedServices } from "./internal/sandboxServices.js"
import { Processes } from "./Processes.js"
import { Sandbox } from "./Sandbox.js"
import type { FilesystemFailure, SandboxNotFound } from "./SandboxError.js"
import type { ExposedPort, ProcessInfo, SandboxInfo } from "./SandboxSchema.js"

/**
 * What a command handler answers: output (split into lines) and exit code (default 0).
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandReply {
  readonly stdout?: string | undefined
  readonly stderr?: string | undefined
  readonly exitCode?: number | undefined
  /** After printing its output the command keeps running until interrupted or killed (a server, `sleep`). */
  readonly keepRunning?: boolean | undefined
  /** Ports a launched process listens on while it keeps running (seen by `Processes.waitForPort`). */
  readonly ports?: ReadonlyArray<number> | undefined
}

/**
 * What a handler function receives.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandContext {
  /** The command line, as the shell would receive it. */
  readonly command: string
  readonly cwd: string | undefined
  /** The sandbox's environment with the call's variables applied. */
  readonly env: Readonly<Record<string, string>>
  /** The sandbox's filesystem, so a handler can read or write files like the command would. */
  readonly fs: FilesystemShape
  /**
   * The command's whole stdin as text, once it was ended (`""` for commands given none).
   *
   * @since 0.2.0
   */
  readonly stdin?: Effect.Effect<string> | undefined
}

/**
 * Answers the commands it matches: a string matches the whole command line (ignoring surrounding
 * whitespace), a RegExp is tested against it, a function decides. The first matching handler wins.
 * Argv arrays and `Command.sh` values reach handlers as the quoted line the shell would get.
 * A reply effect that fails with a file error (`FileNotFound`, `FileExists`, `FilesystemError`)
 * makes the command exit with code 1 and the error's message on stderr; other errors are the call's.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandHandler {
  readonly match: string | RegExp | ((command: string) => boolean)
  readonly reply:
    | CommandReply
    | ((context: CommandContext) => CommandReply | Effect.Effect<CommandReply, ExecFailure | FilesystemFailure>)
}

/**
 * A command the memory sandbox received, in order.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedCommand {
  readonly command: string
  readonly cwd: string | undefined
  readonly env: Readonly<Record<string, string>>
  /** `run` for the `Executor` (and the executor client's `/run`), `launch` for background processes. */
  readonly via: "run" | "launch"
}

/**
 * Options of `layerMemory`.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions {
  /** Initial files by path (parent directories are created); `/` and `/tmp` always exist. */
  readonly files?: Readonly<Record<string, string | Uint8Array>> | undefined
  /** The command handlers, tried in order. */
  readonly commands?: ReadonlyArray<CommandHandler> | undefined
  /** The sandbox's environment, seen by handlers. */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** Overrides of the sandbox's info (default id `memory-sandbox`). */
  readonly info?: Partial<SandboxInfo> | undefined
  /** The code interpreter's cell handlers, tried in order (an unmatched cell gets an `Unscripted` error). */
  readonly cells?: ReadonlyArray<CellHandler> | undefined
}

/**
 * A cell the memory code interpreter received.
 *
 * @since 0.2.0
 * @category models
 */
export interface ScriptedCell {
  readonly code: string
  readonly language: CodeInterpreter.Language
  readonly contextId: string
  /** 1 for the first cell of its context, then 2, 3… */
  readonly count: number
}

/**
 * What a scripted cell gives: output (text split into lines, or lines), the main result's
 * `text/plain` (`value`), other results, and an exception.
 *
 * @since 0.2.0
 * @category models
 */
export interface CellReply {
  readonly stdout?: string | ReadonlyArray<string> | undefined
  readonly stderr?: string | ReadonlyArray<string> | undefined
  readonly value?: string | undefined
  readonly results?: ReadonlyArray<Omit<ConstructorParameters<typeof CodeInterpreter.Result>[0], "isMain">> | undefined
  readonly error?: { readonly name: string; readonly value: string; readonly traceback?: string } | undefined
}

/**
 * Answers the cells whose code equals `match` (or matches it) in `language` (default: any).
 *
 * @since 0.2.0
 * @category models
 */
export interface CellHandler {
  readonly match: string | RegExp
  readonly language?: CodeInterpreter.Language | undefined
  readonly reply: CellReply | ((cell: ScriptedCell) => Effect.Effect<CellReply, CodeInterpreter.RunFailure>)
}

/**
 * The state of a memory sandbox, for assertions.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemorySandboxShape {
  readonly info: SandboxInfo
  /** Every file by absolute path, sorted. */
  readonly files: Effect.Effect<ReadonlyMap<string, Uint8Array>>
  /** The text of a file (UTF-8), if it exists. */
  readonly fileText: (path: string) => Effect.Effect<Option.Option<string>>
  /** Every directory by absolute path, sorted. */
  readonly directories: Effect.Effect<ReadonlyArray<string>>
  /** The commands received so far, in order. */
  readonly commands: Effect.Effect<ReadonlyArray<RecordedCommand>>
  /** The launched processes with their current status. */
  readonly processes: Effect.Effect<ReadonlyArray<ProcessInfo>>
  /** The port exposed with `Sandbox.exposePort`, if any. */
  readonly exposedPort: Effect.Effect<Option.Option<ExposedPort>>
  /** The deletion delays last set with `updateLifecycle`. */
  readonly lifecycle: Effect.Effect<LifecycleOptions>
  /** True once the sandbox was deleted. */
  readonly deleted: Effect.Effect<boolean>
}

/**
 * The state of the memory sandbox provided by `layerMemory`.
 *
 * @since 0.1.0
 * @category tags
 */
export class MemorySandbox extends Context.Tag("@effect-koyeb/core/Testing/MemorySandbox")<
  MemorySandbox,
  MemorySandboxShape
>() {}

/**
 * Options of `layerControlPlaneMemory`.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryControlPlaneOptions {
  /** Command handlers shared by every sandbox created. */
  readonly commands?: ReadonlyArray<CommandHandler> | undefined
  /** Initial files of every sandbox (each gets its own copy; `configFiles` are added on create). */
  readonly files?: Readonly<Record<string, string | Uint8Array>> | undefined
}

/**
 * The state of the memory control plane, for assertions (cleanup, per-sandbox state).
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryControlPlaneShape {
  /** Ids of every sandbox created, in order. */
  readonly created: Effect.Effect<ReadonlyArray<string>>
  /** Ids of every sandbox deleted, in order. */
  readonly deleted: Effect.Effect<ReadonlyArray<string>>
  /** Ids of the sandboxes created and not deleted. */
  readonly live: Effect.Effect<ReadonlyArray<string>>
  /** The state of one sandbox (also after deletion). */
  readonly sandbox: (id: string) => Effect.Effect<MemorySandboxShape, SandboxNotFound>
}

/**
 * The state of the control plane provided by `layerControlPlaneMemory`.
 *
 * @since 0.1.0
 * @category tags
 */
export class MemoryControlPlane extends Context.Tag("@effect-koyeb/core/Testing/MemoryControlPlane")<
  MemoryControlPlane,
  MemoryControlPlaneShape
>() {}

/**
 * One in-memory sandbox: `Sandbox`, `Executor`, `Filesystem` and `Processes` over a filesystem
 * tree and your command handlers, a `CodeInterpreter` answering with your cell handlers (output
 * all at once: stdout lines, stderr lines, results, error), plus `MemorySandbox` to inspect its
 * state. Processes still running when the layer closes are interrupted.
 *
 * @example
 * ```ts
 * import * as Executor from "@effect-koyeb/core/Executor"
 * import * as Filesystem from "@effect-koyeb/core/Filesystem"
 * import * as Testing from "@effect-koyeb/core/Testing"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const fs = yield* Filesystem.Filesystem
 *   const exec = yield* Executor.Executor
 *   yield* fs.writeFile("/app/name.txt", "world")
 *   return (yield* exec.run("greet", { cwd: "/app" })).stdout // "hello world\n"
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(Testing.layerMemory({
 *   files: { "/app/.keep": "" },
 *   commands: [
 *     { match: "greet", reply: ({ fs }) => Effect.map(fs.readFileString("/app/name.txt"), (name) => ({ stdout: `hello ${name}` })) },
 *     { match: /^npm (install|ci)\b/, reply: { stdout: "added 1 package" } },
 *     { match: "false", reply: { exitCode: 1 } }
 *   ]
 * })))).then(console.log) // hello world
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (
  options: MemoryOptions = {}
): Layer.Layer<Sandbox | Executor | Filesystem | Processes | MemorySandbox | CodeInterpreter.CodeInterpreter> =>
  Layer.scopedContext(
    Effect.map(MemorySandboxInternal.fromOptions(options), (backend) =>
      Context.make(Sandbox, backend.sandbox).pipe(
        Context.add(Executor, backend.executor),
        Context.add(Filesystem, backend.filesystem),
        Context.add(Processes, backend.processes),
        Context.add(MemorySandbox, backend.inspect),
        Context.add(CodeInterpreter.CodeInterpreter, CodeInterpreterMemory.make(options.cells ?? []))
      ))
  )

/**
 * An in-memory `ControlPlane`: `Sandbox.layer(options)` and `Sandbox.make(options)` work with no
 * server, each created sandbox being a fresh memory sandbox (its `env` seen by handlers, its
 * `configFiles` written). `MemoryControlPlane` records which sandboxes were created and deleted.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerControlPlaneMemory = (
  options: MemoryControlPlaneOptions = {}
): Layer.Layer<ControlPlane | MemoryControlPlane> =>
  Layer.scopedContext(
    Effect.map(MemoryControlPlaneInternal.make(options), ({ controlPlane, inspect, services }) =>
      Context.make(ControlPlane, controlPlane).pipe(
        Context.add(MemoryControlPlane, inspect),
        // Not in the layer's type: how `Sandbox` gets the memory sandboxes' own services.
        Context.add(SuppliedServices, services)
      ))
  )
