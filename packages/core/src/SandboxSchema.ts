/**
 * The public data of effect-koyeb: sandbox info, command results, output chunks, processes, ports and files.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * Which output stream a line came from.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StreamName = Schema.Literal("stdout", "stderr")
/**
 * @see StreamName
 * @since 0.1.0
 * @category models
 */
export type StreamName = typeof StreamName.Type

/**
 * How a command ended: `finished` (exit 0) or `failed` (non-zero exit, or killed by a signal).
 *
 * @since 0.1.0
 * @category schemas
 */
export const CommandStatus = Schema.Literal("finished", "failed")
/**
 * @see CommandStatus
 * @since 0.1.0
 * @category models
 */
export type CommandStatus = typeof CommandStatus.Type

/**
 * The buffered result of a command, whatever its exit code (like the Python SDK's `CommandResult`).
 *
 * @since 0.1.0
 * @category schemas
 */
export class CommandResult extends Schema.Class<CommandResult>("@effect-koyeb/core/CommandResult")({
  command: Schema.String,
  stdout: Schema.String,
  stderr: Schema.String,
  exitCode: Schema.Number,
  status: CommandStatus,
  durationMillis: Schema.Number
}) {
  /** True when the command exited with code 0. */
  get success(): boolean {
    return this.exitCode === 0
  }
  /** stdout, followed by a newline and stderr when stderr is not empty (as the Python SDK). */
  get output(): string {
    return this.stderr ? `${this.stdout}\n${this.stderr}` : this.stdout
  }
}

/**
 * One line of command output, without its trailing newline.
 *
 * @since 0.1.0
 * @category schemas
 */
export class OutputChunk extends Schema.TaggedClass<OutputChunk>("@effect-koyeb/core/OutputChunk")("OutputChunk", {
  stream: StreamName,
  data: Schema.String
}) {}

/**
 * The last event of an exec stream: how the command exited (-1 when killed by a signal).
 *
 * @since 0.1.0
 * @category schemas
 */
export class CommandExit extends Schema.TaggedClass<CommandExit>("@effect-koyeb/core/CommandExit")("CommandExit", {
  exitCode: Schema.Number,
  durationMillis: Schema.Number
}) {}

/**
 * An event of an exec stream that exposes the exit: output lines, then exactly one `CommandExit`.
 *
 * @since 0.1.0
 * @category models
 */
export type ExecEvent = OutputChunk | CommandExit

/**
 * The status of a background process as the executor reports it; unknown values are kept as strings.
 *
 * @since 0.1.0
 * @category models
 */
export type ProcessStatus = "running" | "completed" | "failed" | "killed" | (string & {})

/**
 * A background process started with `Processes.launch`.
 *
 * @since 0.1.0
 * @category schemas
 */
export class ProcessInfo extends Schema.Class<ProcessInfo>("@effect-koyeb/core/ProcessInfo")({
  id: Schema.String,
  pid: Schema.Number,
  status: Schema.String,
  command: Schema.String
}) {
  /** True while the process is running. */
  get isRunning(): boolean {
    return this.status === "running"
  }
}

/**
 * One captured line of a background process's output.
 *
 * @since 0.1.0
 * @category schemas
 */
export class ProcessLogLine extends Schema.Class<ProcessLogLine>("@effect-koyeb/core/ProcessLogLine")({
  timestamp: Schema.String,
  stream: StreamName,
  data: Schema.String
}) {}

/**
 * A port of the sandbox made reachable from outside, and the URL it is reachable at.
 *
 * @since 0.1.0
 * @category schemas
 */
export class ExposedPort extends Schema.Class<ExposedPort>("@effect-koyeb/core/ExposedPort")({
  port: Schema.Number,
  url: Schema.String
}) {}

/**
 * The kind of a directory entry.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FileType = Schema.Literal("file", "directory", "symlink", "other")
/**
 * @see FileType
 * @since 0.1.0
 * @category models
 */
export type FileType = typeof FileType.Type

/**
 * A directory entry with metadata, from `Filesystem.listDetailed` / `Filesystem.stat`.
 *
 * @since 0.1.0
 * @category schemas
 */
export class FileEntry extends Schema.Class<FileEntry>("@effect-koyeb/core/FileEntry")({
  name: Schema.String,
  path: Schema.String,
  type: FileType,
  size: Schema.Number,
  mode: Schema.Number,
  modifiedAt: Schema.DateFromSelf
}) {}

/**
 * The kind of a `FileEvent`: an entry appeared, a file's content or metadata changed, an entry
 * went away, or an entry moved within the watched tree.
 *
 * @since 0.2.0
 * @category schemas
 */
export const FileEventKind = Schema.Literal("create", "modify", "delete", "rename")
/**
 * @see FileEventKind
 * @since 0.2.0
 * @category models
 */
export type FileEventKind = typeof FileEventKind.Type

/**
 * A change seen by `Filesystem.watch`. `path` is the watched path joined with the entry's path
 * below it; a `rename` also has `from`, the path before. `directory` tells whether the entry is (or
 * was) a directory, when known.
 *
 * @since 0.2.0
 * @category schemas
 */
export class FileEvent extends Schema.Class<FileEvent>("@effect-koyeb/core/FileEvent")({
  kind: FileEventKind,
  path: Schema.String,
  from: Schema.optional(Schema.String),
  directory: Schema.optional(Schema.Boolean)
}) {}

/**
 * What a local sandbox's commands can reach: `private` (a network namespace of its own: its own
 * loopback, no outbound), `user-mode` (its own namespace with outbound traffic through
 * `slirp4netns` or `pasta`; no host loopback) or `shared` (the host's network, ports included).
 *
 * @since 0.2.0
 * @category schemas
 */
export const SandboxNetwork = Schema.Literal("private", "user-mode", "shared")
/**
 * @see SandboxNetwork
 * @since 0.2.0
 * @category models
 */
export type SandboxNetwork = typeof SandboxNetwork.Type

/**
 * How a local sandbox is separated from the host: `mode` is `bubblewrap` (own mount and PID
 * namespaces) or `none` (a plain process of the current user, NOT a security boundary).
 *
 * @since 0.2.0
 * @category schemas
 */
export class SandboxIsolation extends Schema.Class<SandboxIsolation>("@effect-koyeb/core/SandboxIsolation")({
  mode: Schema.Literal("bubblewrap", "none"),
  network: SandboxNetwork
}) {}

/**
 * The limits a local sandbox got from its instance type: memory in bytes and the number of tasks
 * (processes and threads), each absent when this machine could not apply it (`detail` says why).
 *
 * @since 0.2.0
 * @category schemas
 */
export class SandboxLimits extends Schema.Class<SandboxLimits>("@effect-koyeb/core/SandboxLimits")({
  memoryBytes: Schema.optional(Schema.Number),
  processes: Schema.optional(Schema.Number),
  detail: Schema.optional(Schema.String)
}) {}

/**
 * What is known about a sandbox. `id` is the Koyeb service id.
 *
 * @since 0.1.0
 * @category schemas
 */
export class SandboxInfo extends Schema.Class<SandboxInfo>("@effect-koyeb/core/SandboxInfo")({
  id: Schema.String,
  appId: Schema.String,
  name: Schema.String,
  region: Schema.String,
  instanceType: Schema.String,
  image: Schema.String,
  createdAt: Schema.DateFromSelf,
  /** True when the SDK created the app for this sandbox (then delete removes the app, else only the service). */
  ownsApp: Schema.Boolean,
  /**
   * Listed sandboxes: true when effect-koyeb created the sandbox's app (Koyeb apps named
   * `sandbox-app-<name>-<unix seconds>-<8 hex>`); absent from control planes that hold nothing else
   * (local, memory).
   *
   * @since 0.2.0
   */
  managed: Schema.optional(Schema.Boolean),
  /**
   * Listed sandboxes: the status of the current deployment (`HEALTHY`, `SLEEPING`, `ERROR`, …), when known.
   *
   * @since 0.2.0
   */
  status: Schema.optional(Schema.String),
  /**
   * Listed sandboxes: when the sandbox last had traffic, when the control plane can tell (on Koyeb,
   * for a sleeping sandbox: when it fell asleep, less its idle timeout). Absent for an awake one.
   *
   * @since 0.2.0
   */
  lastActivity: Schema.optional(Schema.DateFromSelf),
  /**
   * Local sandboxes: how the sandbox is isolated, its network included. Absent elsewhere (a Koyeb
   * sandbox is a microVM with a network of its own).
   *
   * @since 0.2.0
   */
  isolation: Schema.optional(SandboxIsolation),
  /**
   * Local sandboxes: the resource limits of the instance type that apply (see `SandboxLimits`).
   * Absent when the sandbox has none (no instance type, or `local`).
   *
   * @since 0.2.0
   */
  limits: Schema.optional(SandboxLimits),
  /**
   * `privileged` as asked at creation, when the control plane records it (locally: recorded, no effect).
   *
   * @since 0.2.0
   */
  privileged: Schema.optional(Schema.Boolean),
  /**
   * The registry secret's name as given at creation, when the control plane records it (locally:
   * recorded, no effect: no image is pulled).
   *
   * @since 0.2.0
   */
  registrySecret: Schema.optional(Schema.String)
}) {}
