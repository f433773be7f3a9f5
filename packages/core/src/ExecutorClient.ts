/**
 * The wire client of a sandbox's executor: one method per endpoint of the executor's HTTP API,
 * bound to `{ url, secret, routingKey? }`. Public for power users (like the Python SDK's
 * `SandboxClient`); most programs use `Executor`, `Filesystem` and `Processes` instead.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Stream from "effect/Stream"
import * as Context from "effect/Context"
import type {
  ExecutorFailure,
  FilesystemError,
  FileNotFound,
  InvalidArgument,
  PortAlreadyBound,
  ProcessNotFound,
  ProcessNotRunning
} from "./SandboxError.js"
import type { ProcessInfo, ProcessLogLine, StreamName } from "./SandboxSchema.js"

/** Where an executor is and how to authenticate to it. */
export interface ExecutorClientOptions {
  /** Base URL of the executor, e.g. `http://127.0.0.1:3030` or `https://host/koyeb-sandbox` (no trailing slash needed). */
  readonly url: string
  /** The sandbox secret sent as `Authorization: Bearer <secret>`. */
  readonly secret: Redacted.Redacted<string>
  /** Sent as `X-Routing-Key` when the sandbox is reached through Koyeb's shared gateway. */
  readonly routingKey?: string | undefined
  /** Bound on every non-streaming request (default 60 seconds). Streams have no deadline, only TCP keep-alive. */
  readonly requestTimeout?: Duration.DurationInput | undefined
}

/** The body of `/run`, `/run_streaming` and `/start_process`. */
export interface CommandRequest {
  readonly cmd: string
  readonly cwd?: string | undefined
  readonly env?: Readonly<Record<string, string>> | undefined
}

/** The reply of `/run`. */
export interface RunResponse {
  readonly stdout: string
  readonly stderr: string
  readonly code: number
}

/** An event of `/run_streaming`: an output line, or the final `complete`. */
export type RunStreamEvent =
  | { readonly _tag: "Output"; readonly stream: StreamName; readonly data: string }
  | { readonly _tag: "Complete"; readonly code: number }

/** The reply of `/start_process`. */
export interface StartedProcess {
  readonly id: string
  readonly pid: number
  readonly status: string
}

/** The reply of `/health`; `capabilities` only from executors that advertise extensions. */
export interface HealthStatus {
  readonly status: string
  readonly capabilities?: ReadonlyArray<string> | undefined
}

/** Failures of the file endpoints. */
export type FileEndpointFailure = FileNotFound | FilesystemError | ExecutorFailure

/** The executor wire client. */
export interface ExecutorClientShape {
  /** The options the client is bound to. */
  readonly options: ExecutorClientOptions
  /** `GET /health` (no auth). */
  readonly health: Effect.Effect<HealthStatus, ExecutorFailure>
  /** `POST /run`: buffered. Never use for commands whose stderr may exceed 64 KiB on the stock executor. */
  readonly run: (request: CommandRequest) => Effect.Effect<RunResponse, InvalidArgument | ExecutorFailure>
  /** `POST /run_streaming`: output events then exactly one `Complete`; an SSE `error` or a stream without `complete` fails. */
  readonly runStreaming: (request: CommandRequest) => Stream.Stream<RunStreamEvent, InvalidArgument | ExecutorFailure>
  /** `POST /write_file` (UTF-8 text only). */
  readonly writeFile: (path: string, content: string) => Effect.Effect<void, FileEndpointFailure>
  /** `POST /read_file` (UTF-8 text; invalid bytes come back as U+FFFD). */
  readonly readFile: (path: string) => Effect.Effect<string, FileEndpointFailure>
  /** `POST /delete_file` (a file or an empty directory). */
  readonly deleteFile: (path: string) => Effect.Effect<void, FileEndpointFailure>
  /** `POST /delete_dir` (recursive; succeeds for a missing path). */
  readonly deleteDir: (path: string) => Effect.Effect<void, FileEndpointFailure>
  /** `POST /make_dir` (with parents; succeeds if it exists). */
  readonly makeDir: (path: string) => Effect.Effect<void, FileEndpointFailure>
  /** `POST /list_dir`: entry names sorted by name. */
  readonly listDir: (path: string) => Effect.Effect<ReadonlyArray<string>, FileEndpointFailure>
  /** `POST /bind_port`: forward the proxy port to `port`; fails with `PortAlreadyBound` (409) if one is bound. */
  readonly bindPort: (port: string) => Effect.Effect<void, PortAlreadyBound | InvalidArgument | ExecutorFailure>
  /** `POST /unbind_port`. */
  readonly unbindPort: Effect.Effect<void, ExecutorFailure>
  /** `POST /start_process` (201). */
  readonly startProcess: (request: CommandRequest) => Effect.Effect<StartedProcess, InvalidArgument | ExecutorFailure>
  /** `GET /list_processes`. */
  readonly listProcesses: Effect.Effect<ReadonlyArray<ProcessInfo>, ExecutorFailure>
  /** `POST /kill_process`. */
  readonly killProcess: (id: string) => Effect.Effect<void, ProcessNotFound | ProcessNotRunning | ExecutorFailure>
  /** `GET /process_logs_streaming?id=`: replayed then live lines, ending when the process has ended. */
  readonly processLogs: (id: string) => Stream.Stream<ProcessLogLine, ProcessNotFound | ExecutorFailure>
}

/** The executor wire client service. */
export class ExecutorClient extends Context.Tag("@effect-koyeb/core/ExecutorClient")<
  ExecutorClient,
  ExecutorClientShape
>() {}
