/**
 * The wire client of a sandbox's executor: one method per endpoint of the executor's HTTP API,
 * bound to `{ url, secret, routingKey? }`. Public for power users (like the Python SDK's
 * `SandboxClient`); most programs use `Executor`, `Filesystem` and `Processes` instead.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Stream from "effect/Stream"
import * as internal from "./internal/executorClient.js"
import type {
  ExecutorFailure,
  FileNotFound,
  FilesystemError,
  InvalidArgument,
  PortAlreadyBound,
  ProcessNotFound,
  ProcessNotRunning
} from "./SandboxError.js"
import type { FileEvent, ProcessInfo, ProcessLogLine, StreamName } from "./SandboxSchema.js"

/**
 * Where an executor is and how to authenticate to it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecutorClientOptions {
  /** Base URL of the executor, e.g. `http://127.0.0.1:3030` or `https://host/koyeb-sandbox` (no trailing slash needed). */
  readonly url: string
  /** The sandbox secret sent as `Authorization: Bearer <secret>`. */
  readonly secret: Redacted.Redacted<string>
  /** Sent as `X-Routing-Key` when the sandbox is reached through Koyeb's shared gateway. */
  readonly routingKey?: string | undefined
  /** Bound on every non-streaming request (default 60 seconds). Streams have no deadline, only TCP keep-alive. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** Largest SSE event accepted from a stream, in UTF-16 code units (default 16 MiB); a larger one fails the stream. */
  readonly maxEventSize?: number | undefined
}

/**
 * The body of `/run`, `/run_streaming` and `/start_process`.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandRequest {
  readonly cmd: string
  readonly cwd?: string | undefined
  readonly env?: Readonly<Record<string, string>> | undefined
}

/**
 * The body of `/spawn`: a command, optionally on a pseudo-terminal of `pty`'s size (executors
 * advertising `pty`).
 *
 * @since 0.2.0
 * @category models
 */
export interface SpawnRequest extends CommandRequest {
  readonly pty?: { readonly cols: number; readonly rows: number } | undefined
}

/**
 * The reply of `/run`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunResponse {
  readonly stdout: string
  readonly stderr: string
  readonly code: number
}

/**
 * An event of `/run_streaming`: an output line, or the final `complete`.
 *
 * @since 0.1.0
 * @category models
 */
export type RunStreamEvent =
  | { readonly _tag: "Output"; readonly stream: StreamName; readonly data: string }
  | { readonly _tag: "Complete"; readonly code: number }

/**
 * An event of `/spawn` (the `interactive` extension): `Started` first, then raw output bytes as
 * read from each pipe, then exactly one `Complete`.
 *
 * @since 0.2.0
 * @category models
 */
export type SpawnEvent =
  | { readonly _tag: "Started"; readonly id: string; readonly pid: number }
  | { readonly _tag: "Output"; readonly stream: StreamName; readonly data: Uint8Array }
  | { readonly _tag: "Complete"; readonly code: number }

/**
 * An event of `/watch` (the `watch` extension): `Ready` once the executor watches the directory,
 * then one `Change` per event.
 *
 * @since 0.2.0
 * @category models
 */
export type WatchEvent =
  | { readonly _tag: "Ready" }
  | { readonly _tag: "Change"; readonly event: FileEvent }

/**
 * The reply of `/start_process`.
 *
 * @since 0.1.0
 * @category models
 */
export interface StartedProcess {
  readonly id: string
  readonly pid: number
  readonly status: string
}

/**
 * The reply of `/health`; `capabilities` only from executors that advertise extensions.
 *
 * @since 0.1.0
 * @category models
 */
export interface HealthStatus {
  readonly status: string
  readonly capabilities?: ReadonlyArray<string> | undefined
}

/**
 * Failures of the file endpoints.
 *
 * @since 0.1.0
 * @category errors
 */
export type FileEndpointFailure = FileNotFound | FilesystemError | ExecutorFailure

/**
 * The executor wire client.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecutorClientShape {
  /** The options the client is bound to. */
  readonly options: ExecutorClientOptions
  /** `GET /health` (no auth). */
  readonly health: Effect.Effect<HealthStatus, ExecutorFailure>
  /**
   * The extensions the executor's `/health` advertises (such as `binary-files` and
   * `process-group-kill`): asked once per client, when first needed, and shared by every caller;
   * a failed probe, or one without an answer within 2 seconds, means none. Interrupting the first
   * caller does not cancel the probe.
   *
   * @since 0.2.0
   */
  readonly capabilities: Effect.Effect<ReadonlySet<string>>
  /**
   * Whether `/health` answers within 5 seconds with a healthy status (`ok`, `healthy` or `ready`,
   * any case); never fails.
   *
   * @since 0.2.0
   */
  readonly isHealthy: Effect.Effect<boolean>
  /** `POST /run`: buffered. Never use for commands whose stderr may exceed 64 KiB on the stock executor. */
  readonly run: (request: CommandRequest) => Effect.Effect<RunResponse, InvalidArgument | ExecutorFailure>
  /** `POST /run_streaming`: output events then exactly one `Complete`; an SSE `error` or a stream without `complete` fails. */
  readonly runStreaming: (request: CommandRequest) => Stream.Stream<RunStreamEvent, InvalidArgument | ExecutorFailure>
  /**
   * `POST /run_streaming` read to its end: the events of `runStreaming` at once, for callers that
   * keep all the output anyway (it costs less per call than a stream). Interrupting it closes the
   * connection, as closing the stream does.
   */
  readonly runStreamingCollect: (
    request: CommandRequest
  ) => Effect.Effect<ReadonlyArray<RunStreamEvent>, InvalidArgument | ExecutorFailure>
  /** `POST /write_file` (UTF-8 text only). */
  readonly writeFile: (path: string, content: string) => Effect.Effect<void, FileEndpointFailure>
  /** `POST /read_file` (UTF-8 text; invalid bytes come back as U+FFFD). */
  readonly readFile: (path: string) => Effect.Effect<string, FileEndpointFailure>
  /**
   * `POST /write_file_bytes?path=`: the bytes as the request body, written like `/write_file`
   * (created or truncated). Only for executors whose `/health` lists `binary-files`.
   */
  readonly writeFileBytes: (path: string, content: Uint8Array) => Effect.Effect<void, FileEndpointFailure>
  /**
   * `GET /read_file_bytes?path=`: the file's bytes as they arrive. Only for executors whose
   * `/health` lists `binary-files`.
   */
  readonly readFileBytes: (path: string) => Stream.Stream<Uint8Array, FileEndpointFailure>
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
  /**
   * `POST /spawn`: starts a command with a stdin pipe; closing the stream stops it. Only for
   * executors whose `/health` lists `interactive`. This and the members after it are
   * optional so that existing implementations of this interface stay valid; the client of
   * `make` has them all.
   *
   * @since 0.2.0
   */
  readonly spawn?: (request: SpawnRequest) => Stream.Stream<SpawnEvent, InvalidArgument | ExecutorFailure>
  /**
   * `POST /stdin?id=`: writes bytes to a spawned command's stdin, succeeding once its pipe took
   * them all (no deadline: a command that does not read holds the write back). `false` when the
   * command had closed its stdin, or had ended, and the bytes were discarded.
   *
   * @since 0.2.0
   */
  readonly writeStdin?: (id: string, data: Uint8Array) => Effect.Effect<boolean, ExecutorFailure>
  /**
   * `POST /stdin_end`: closes a spawned command's stdin (nothing to do once it has ended).
   *
   * @since 0.2.0
   */
  readonly endStdin?: (id: string) => Effect.Effect<void, ExecutorFailure>
  /**
   * `POST /signal`: sends a signal (such as `SIGINT`) to a spawned command's process group
   * (nothing to do once it has ended); an unknown signal name is an `InvalidArgument`.
   *
   * @since 0.2.0
   */
  readonly signalSpawned?: (id: string, signal: string) => Effect.Effect<void, InvalidArgument | ExecutorFailure>
  /**
   * `GET /watch?path=&recursive=`: the changes below a directory, from when `Ready` comes until
   * the stream is closed (which stops the watch) or the directory goes away (after its `delete`).
   * Only for executors whose `/health` lists `watch`; optional like `spawn`.
   *
   * @since 0.2.0
   */
  readonly watch?: (
    path: string,
    options: { readonly recursive: boolean }
  ) => Stream.Stream<WatchEvent, FileEndpointFailure>
  /**
   * `POST /resize`: sets the terminal size of a command spawned with `pty` (executors advertising
   * `pty`); its foreground process group gets `SIGWINCH` (nothing to do once it has ended). A
   * command without a terminal, or a bad size, is an `InvalidArgument`.
   *
   * @since 0.2.0
   */
  readonly resize?: (id: string, cols: number, rows: number) => Effect.Effect<void, InvalidArgument | ExecutorFailure>
}

/**
 * The executor wire client service.
 *
 * @since 0.1.0
 * @category tags
 */
export class ExecutorClient extends Context.Tag("@effect-koyeb/core/ExecutorClient")<
  ExecutorClient,
  ExecutorClientShape
>() {}

/**
 * Builds an executor wire client on the given `HttpClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: ExecutorClientOptions
) => Effect.Effect<ExecutorClientShape, never, HttpClient.HttpClient> = internal.make

/**
 * A layer of the executor wire client bound to `options`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ExecutorClientOptions): Layer.Layer<ExecutorClient, never, HttpClient.HttpClient> =>
  Layer.effect(ExecutorClient, make(options))

/**
 * A layer of the executor wire client read from configuration: by default `EXECUTOR_URL`,
 * `EXECUTOR_SECRET` (redacted) and the optional `EXECUTOR_ROUTING_KEY`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<ExecutorClientOptions> = {
    url: Config.string("EXECUTOR_URL"),
    secret: Config.redacted("EXECUTOR_SECRET"),
    routingKey: Config.string("EXECUTOR_ROUTING_KEY").pipe(Config.option, Config.map(Option.getOrUndefined))
  }
): Layer.Layer<ExecutorClient, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))
