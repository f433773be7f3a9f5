/**
 * A sandbox executor server that speaks the stock Koyeb executor's wire format (`/run`,
 * `/run_streaming`, files, background processes, TCP proxy; with and without the
 * `/koyeb-sandbox` prefix), so Koyeb's SDKs and ours work against it unchanged (down to invalid
 * UTF-8 in output: one U+FFFD per invalid byte, as Go writes it), while fixing the stock's bugs: no
 * stderr deadlock, no crash or loss on log replay, kills reach the whole process group and the
 * descendants that left it, a client that drops `/run` stops its command, bounded memory and
 * bodies, and the sandbox secret is hidden from commands.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/executor/server.js"

/**
 * Options of the executor server; every field is optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecutorServerOptions {
  /** Interface of both listeners (default `127.0.0.1`). */
  readonly host?: string | undefined
  /** HTTP API port (default 0: ephemeral). */
  readonly port?: number | undefined
  /** TCP proxy port (default 0: ephemeral). */
  readonly proxyPort?: number | undefined
  /**
   * An inherited socket, already listening, to serve the HTTP API on instead of `host:port` (the
   * local backend binds it on host loopback, outside the sandbox's network namespace).
   *
   * @since 0.2.0
   */
  readonly fd?: number | undefined
  /**
   * An inherited listening socket for the TCP proxy, instead of `host:proxyPort`.
   *
   * @since 0.2.0
   */
  readonly proxyFd?: number | undefined
  /** The bearer secret (default: the `SANDBOX_SECRET` environment variable). */
  readonly secret?: Redacted.Redacted<string> | undefined
  /** Working directory of commands and base of relative file paths (default `process.cwd()`). */
  readonly cwd?: string | undefined
  /** Base environment of commands (default `process.env`); `SANDBOX_SECRET` is always removed. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** Time between SIGTERM and SIGKILL when a process group is killed (default 2 seconds). */
  readonly killGracePeriod?: Duration.DurationInput | undefined
  /**
   * The `effect-koyeb-spawner` binary that starts commands (`posix_spawn`, no fork of this process):
   * default the one built with this package, where there is one for this platform; `false`: Node's
   * own spawn. A binary that does not run here is left aside for Node's spawn.
   */
  readonly spawner?: string | false | undefined
  /** Largest accepted JSON request body; larger ones get 413 (default 64 MiB). `/write_file_bytes` streams to disk, unbounded. */
  readonly maxBodyBytes?: number | undefined
  /** Lines kept per stream of each background process (default 10 000). */
  readonly logLinesPerStream?: number | undefined
  /** Finished background processes kept in the table (default 1000). */
  readonly maxFinishedProcesses?: number | undefined
}

/**
 * Where a running executor server listens.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecutorServerAddressShape {
  /** Base URL of the HTTP API, e.g. `http://127.0.0.1:41234`. */
  readonly url: string
  readonly port: number
  /** Port of the TCP proxy (what `/bind_port` forwards). */
  readonly proxyPort: number
}

/**
 * The address of the executor server provided by `layer`.
 *
 * @since 0.1.0
 * @category tags
 */
export class ExecutorServerAddress extends Context.Tag("@effect-koyeb/platform-node/ExecutorServerAddress")<
  ExecutorServerAddress,
  ExecutorServerAddressShape
>() {}

/**
 * The executor server could not start: no secret configured, or a port could not be bound.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExecutorServerError extends Schema.TaggedError<ExecutorServerError>(
  "@effect-koyeb/platform-node/ExecutorServerError"
)("ExecutorServerError", {
  reason: Schema.Literal("MissingSecret", "Listen"),
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  get message(): string {
    return `Executor server failed to start (${this.reason}): ${this.detail}`
  }
}

/**
 * Starts the executor server; both listeners close and every process group it started is killed when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: ExecutorServerOptions
) => Effect.Effect<ExecutorServerAddressShape, ExecutorServerError, Scope.Scope> = internal.make

/**
 * The executor server as a layer providing its address.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ExecutorServerOptions = {}): Layer.Layer<ExecutorServerAddress, ExecutorServerError> =>
  Layer.scoped(ExecutorServerAddress, make(options))

/**
 * The executor server as a layer whose options are read from `Config`: each option a `Config`,
 * or one `Config` of all of them.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<ExecutorServerOptions>
): Layer.Layer<ExecutorServerAddress, ExecutorServerError | ConfigError.ConfigError> =>
  Layer.scoped(ExecutorServerAddress, Effect.flatMap(Config.unwrap(options), make))

/**
 * Runs the server until interrupted, or until the process `parentPid` is gone (polled every
 * 500 ms): the entry point of `effect-koyeb executor`. When listening it prints one JSON line to
 * stdout: `{"event":"listening","url":…,"port":…,"proxyPort":…}`.
 *
 * @since 0.1.0
 * @category running
 */
export const run: (
  options?: ExecutorServerOptions & { readonly parentPid?: number | undefined }
) => Effect.Effect<void, ExecutorServerError> = internal.run
