/**
 * Every typed error of effect-koyeb, with the unions each service fails with.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * Brand carried by every error of effect-koyeb (see `isSandboxError`).
 *
 * @since 0.2.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-koyeb/core/SandboxError")

/**
 * The type of `TypeId`.
 *
 * @since 0.2.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * True for any error of effect-koyeb (any member of `SandboxError`).
 *
 * @since 0.2.0
 * @category refinements
 */
export const isSandboxError = (u: unknown): u is SandboxError => Predicate.hasProperty(u, TypeId)

const id = (name: string) => `@effect-koyeb/core/${name}`

/**
 * A file or directory that an operation needs does not exist in the sandbox.
 *
 * @since 0.1.0
 * @category errors
 */
export class FileNotFound extends Schema.TaggedError<FileNotFound>(id("FileNotFound"))("FileNotFound", {
  path: Schema.String,
  detail: Schema.optional(Schema.String)
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `File not found: ${this.path}${this.detail ? ` (${this.detail})` : ""}`
  }
}

/**
 * An exclusive operation (create-only write, mkdir that must not exist, move without overwrite) found its target present.
 *
 * @since 0.1.0
 * @category errors
 */
export class FileExists extends Schema.TaggedError<FileExists>(id("FileExists"))("FileExists", {
  path: Schema.String
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `File already exists: ${this.path}`
  }
}

/**
 * The reasons a filesystem operation can fail other than a missing file.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FilesystemErrorReason = Schema.Literal(
  "IsADirectory",
  "NotADirectory",
  "DirectoryNotEmpty",
  "PermissionDenied",
  "InvalidPath",
  "Unknown"
)
/**
 * @see FilesystemErrorReason
 * @since 0.1.0
 * @category models
 */
export type FilesystemErrorReason = typeof FilesystemErrorReason.Type

/**
 * A filesystem operation failed in the sandbox for a reason other than a missing file.
 *
 * @since 0.1.0
 * @category errors
 */
export class FilesystemError extends Schema.TaggedError<FilesystemError>(id("FilesystemError"))("FilesystemError", {
  path: Schema.String,
  reason: FilesystemErrorReason,
  detail: Schema.String
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Filesystem error (${this.reason}) on ${this.path}: ${this.detail}`
  }
}

/**
 * An operation did not finish within the time the caller allowed.
 *
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends Schema.TaggedError<Timeout>(id("Timeout"))("Timeout", {
  operation: Schema.String,
  timeoutMillis: Schema.Number
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `${this.operation} timed out after ${this.timeoutMillis} ms`
  }
}

/**
 * A command ended with a non-zero exit code (or was killed by a signal: exitCode -1).
 *
 * @since 0.1.0
 * @category errors
 */
export class CommandError extends Schema.TaggedError<CommandError>(id("CommandError"))("CommandError", {
  command: Schema.String,
  exitCode: Schema.Number,
  stdout: Schema.String,
  stderr: Schema.String
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    const tail = this.stderr.length > 500 ? `…${this.stderr.slice(-500)}` : this.stderr
    return `Command exited with code ${this.exitCode}: ${this.command}${tail ? `\n${tail}` : ""}`
  }
}

/**
 * The reasons an executor call can fail at the transport or protocol level.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ExecutorErrorReason = Schema.Literal("Transport", "Status", "Decode", "Protocol")
/**
 * @see ExecutorErrorReason
 * @since 0.1.0
 * @category models
 */
export type ExecutorErrorReason = typeof ExecutorErrorReason.Type

/**
 * The executor could not be reached, answered with an unexpected status, or sent a reply that does not decode.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExecutorError extends Schema.TaggedError<ExecutorError>(id("ExecutorError"))("ExecutorError", {
  reason: ExecutorErrorReason,
  endpoint: Schema.String,
  status: Schema.optional(Schema.Number),
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Executor ${this.endpoint}: ${this.reason}${
      this.status === undefined ? "" : ` ${this.status}`
    }: ${this.detail}`
  }
}

/**
 * The executor or the Koyeb API refused the credentials.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>(id("Unauthorized"))("Unauthorized", {
  detail: Schema.String
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Unauthorized: ${this.detail}`
  }
}

/**
 * An argument was rejected before or by the sandbox: a bad port, an empty command, a bad path or cwd.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidArgument extends Schema.TaggedError<InvalidArgument>(id("InvalidArgument"))("InvalidArgument", {
  argument: Schema.String,
  detail: Schema.String
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Invalid ${this.argument}: ${this.detail}`
  }
}

/**
 * The executor already forwards another port (HTTP 409 from `/bind_port`).
 *
 * @since 0.1.0
 * @category errors
 */
export class PortAlreadyBound extends Schema.TaggedError<PortAlreadyBound>(id("PortAlreadyBound"))(
  "PortAlreadyBound",
  { port: Schema.String, currentPort: Schema.String }
) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Cannot bind port ${this.port}: port ${this.currentPort} is already bound`
  }
}

/**
 * No background process with this id exists in the sandbox.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProcessNotFound extends Schema.TaggedError<ProcessNotFound>(id("ProcessNotFound"))("ProcessNotFound", {
  id: Schema.String
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Process not found: ${this.id}`
  }
}

/**
 * The background process is no longer running (it completed, failed or was killed).
 *
 * @since 0.1.0
 * @category errors
 */
export class ProcessNotRunning extends Schema.TaggedError<ProcessNotRunning>(id("ProcessNotRunning"))(
  "ProcessNotRunning",
  { id: Schema.String, status: Schema.String }
) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Process ${this.id} is not running (status: ${this.status})`
  }
}

/**
 * The sandbox (service) does not exist, or no longer exists.
 *
 * @since 0.1.0
 * @category errors
 */
export class SandboxNotFound extends Schema.TaggedError<SandboxNotFound>(id("SandboxNotFound"))("SandboxNotFound", {
  id: Schema.String
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Sandbox not found: ${this.id}`
  }
}

/**
 * A sandbox that a scoped constructor (`Sandbox.make`, `Sandbox.layer`, the Promise facade's
 * `create`) created could not be deleted when its scope or its control plane closed, even after
 * the retries: it may still be running (and billed) until someone deletes it. A finalizer cannot
 * fail with a typed error, so the close dies with this error as its defect: find it in the cause
 * with `Cause.find` / `isSandboxError` (the Promise facade rejects with it as a `SandboxFailure`).
 *
 * @since 0.2.0
 * @category errors
 */
export class SandboxLeaked extends Schema.TaggedError<SandboxLeaked>(id("SandboxLeaked"))("SandboxLeaked", {
  id: Schema.String,
  name: Schema.optional(Schema.String),
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Sandbox ${this.id}${
      this.name === undefined ? "" : ` (${this.name})`
    } may still be running: its delete failed: ${this.detail}`
  }
}

/**
 * The executor cannot do what was asked: Koyeb's stock executor cannot resize a terminal, and a
 * sandbox without `script(1)` cannot give a command a terminal.
 *
 * @since 0.2.0
 * @category errors
 */
export class Unsupported extends Schema.TaggedError<Unsupported>(id("Unsupported"))("Unsupported", {
  operation: Schema.String,
  detail: Schema.String
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Unsupported ${this.operation}: ${this.detail}`
  }
}

/**
 * The kernel of a `CodeInterpreter` context died (or could not start): its runs fail, the context
 * is dead for good, and a new one can be created.
 *
 * @since 0.2.0
 * @category errors
 */
export class KernelDied extends Schema.TaggedError<KernelDied>(id("KernelDied"))("KernelDied", {
  contextId: Schema.String,
  language: Schema.String,
  /** What is known of the death: the exit code and the kernel's last diagnostic lines. */
  reason: Schema.String
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `The ${this.language} kernel of context ${this.contextId} died: ${this.reason}`
  }
}

/**
 * The sandbox's deployment reached a terminal status and will not become ready.
 *
 * @since 0.1.0
 * @category errors
 */
export class DeploymentFailed extends Schema.TaggedError<DeploymentFailed>(id("DeploymentFailed"))(
  "DeploymentFailed",
  { sandbox: Schema.String, status: Schema.String, detail: Schema.optional(Schema.String) }
) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Deployment of sandbox ${this.sandbox} reached status ${this.status}${this.detail ? `: ${this.detail}` : ""}`
  }
}

/**
 * The Koyeb API (or emulator) answered 429; `retryAfterMillis` comes from Retry-After when present.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimited extends Schema.TaggedError<RateLimited>(id("RateLimited"))("RateLimited", {
  retryAfterMillis: Schema.optional(Schema.Number),
  method: Schema.String,
  url: Schema.String
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Rate limited on ${this.method} ${this.url}${
      this.retryAfterMillis === undefined ? "" : `, retry after ${this.retryAfterMillis} ms`
    }`
  }
}

/**
 * The Koyeb API answered with an error status, or with a success whose body does not decode (code
 * `Decode`). Failures without such a reply are `ControlPlaneError`s. The token is never included.
 *
 * @since 0.1.0
 * @category errors
 */
export class ApiError extends Schema.TaggedError<ApiError>(id("ApiError"))("ApiError", {
  status: Schema.Number,
  code: Schema.String,
  detail: Schema.String,
  method: Schema.String,
  url: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Koyeb API ${this.method} ${this.url} failed (${this.status}${
      this.code ? ` ${this.code}` : ""
    }): ${this.detail}`
  }
}

/**
 * Why a control-plane call failed without an HTTP error reply:
 * - `Transport`: the API could not be reached, or the connection broke;
 * - `Timeout`: no complete reply within the per-request timeout;
 * - `InvalidRequest`: the request could not be built (a malformed host URL, a body that does not encode);
 * - `NoEndpoint`: the sandbox has no public address yet (no gateway, no app domain);
 * - `NoDeployment`: the sandbox's service has no deployment;
 * - `NoSecret`: the sandbox's deployment carries no executor secret;
 * - `Runtime`: a local backend could not start the sandbox.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ControlPlaneErrorReason = Schema.Literal(
  "Transport",
  "Timeout",
  "InvalidRequest",
  "NoEndpoint",
  "NoDeployment",
  "NoSecret",
  "Runtime"
)
/**
 * @see ControlPlaneErrorReason
 * @since 0.2.0
 * @category models
 */
export type ControlPlaneErrorReason = typeof ControlPlaneErrorReason.Type

/**
 * A control-plane call failed without an HTTP error reply to show for it (see
 * `ControlPlaneErrorReason`); `method` and `url` name the request involved, when there is one.
 * The token is never included.
 *
 * @since 0.2.0
 * @category errors
 */
export class ControlPlaneError extends Schema.TaggedError<ControlPlaneError>(id("ControlPlaneError"))(
  "ControlPlaneError",
  {
    reason: ControlPlaneErrorReason,
    detail: Schema.String,
    method: Schema.optional(Schema.String),
    url: Schema.optional(Schema.String),
    cause: Schema.optional(Schema.Defect)
  }
) {
  /**
   * Marks the error as one of effect-koyeb's (see `isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    const request = this.method === undefined || this.url === undefined ? "" : ` ${this.method} ${this.url}`
    return `Control plane${request}: ${this.reason}: ${this.detail}`
  }
}

/**
 * Failures of any call to a sandbox's executor that are not about files or processes.
 *
 * @since 0.1.0
 * @category errors
 */
export type ExecutorFailure = ExecutorError | Unauthorized

/**
 * Failures of a filesystem operation.
 *
 * @since 0.1.0
 * @category errors
 */
export type FilesystemFailure = FileNotFound | FileExists | FilesystemError | InvalidArgument | ExecutorFailure

/**
 * Failures of any control-plane call.
 *
 * @since 0.1.0
 * @category errors
 */
export type ControlPlaneFailure = ApiError | ControlPlaneError | Unauthorized | RateLimited | SandboxNotFound

/**
 * Every error effect-koyeb can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type SandboxError =
  | FileNotFound
  | FileExists
  | FilesystemError
  | Timeout
  | CommandError
  | ExecutorError
  | Unauthorized
  | InvalidArgument
  | PortAlreadyBound
  | ProcessNotFound
  | ProcessNotRunning
  | SandboxNotFound
  | DeploymentFailed
  | RateLimited
  | ApiError
  | ControlPlaneError
  | SandboxLeaked
  | Unsupported
  | KernelDied
