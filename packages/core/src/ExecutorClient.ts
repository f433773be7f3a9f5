/**
 * The wire client of a sandbox's executor: one method per endpoint of the executor's HTTP API,
 * bound to `{ url, secret, routingKey? }`. Public for power users (like the Python SDK's
 * `SandboxClient`); most programs use `Executor`, `Filesystem` and `Processes` instead.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { timeoutDetached } from "./internal/bounded.js"
import * as Wire from "./internal/executorWire.js"
import * as FileErrors from "./internal/fileErrors.js"
import * as Sse from "./internal/sse.js"
import {
  ExecutorError,
  type ExecutorFailure,
  type FileNotFound,
  FilesystemError,
  InvalidArgument,
  PortAlreadyBound,
  ProcessNotFound,
  ProcessNotRunning,
  Unauthorized
} from "./SandboxError.js"
import type { ProcessInfo, ProcessLogLine, StreamName } from "./SandboxSchema.js"

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

const defaultRequestTimeout = Duration.seconds(60)
const defaultMaxEventSize = 16 * 1024 * 1024
// Linux MAX_ARG_STRLEN: one argv or env string, terminating NUL included
const maxArgBytes = 128 * 1024
const maxDetail = 1000

const truncate = (text: string): string => text.length > maxDetail ? `${text.slice(0, maxDetail)}…` : text

const utf8Length = (text: string): number =>
  text.length * 3 < maxArgBytes ? text.length : new TextEncoder().encode(text).length

// The executor's start failures say nothing about the cause; E2BIG is the one a caller can fix.
const tooLongArgument = (request: CommandRequest): InvalidArgument | undefined => {
  const cmdBytes = utf8Length(request.cmd)
  if (cmdBytes >= maxArgBytes) {
    return new InvalidArgument({
      argument: "command",
      detail:
        `the command is ${cmdBytes} bytes; one argument is limited to 128 KiB in the sandbox (put long scripts in a file)`
    })
  }
  for (const [key, value] of Object.entries(request.env ?? {})) {
    const bytes = utf8Length(`${key}=${value}`)
    if (bytes >= maxArgBytes) {
      return new InvalidArgument({
        argument: "env",
        detail: `the variable ${key} is ${bytes} bytes; one variable is limited to 128 KiB in the sandbox`
      })
    }
  }
  return undefined
}

const transportError = (endpoint: string) => (error: HttpClientError.HttpClientError): ExecutorError =>
  // the platform error holds the request (and its Authorization header): keep only its cause
  new ExecutorError({ reason: "Transport", endpoint, detail: error.message, cause: error.cause })

const statusError = (endpoint: string, status: number, body: string): ExecutorError =>
  new ExecutorError({ reason: "Status", endpoint, status, detail: truncate(body.trim()) || "(empty body)" })

const protocolError = (endpoint: string, detail: string): ExecutorError =>
  new ExecutorError({ reason: "Protocol", endpoint, detail: truncate(detail) })

const decodeError = (endpoint: string, detail: string): ExecutorError =>
  new ExecutorError({ reason: "Decode", endpoint, detail: truncate(detail) })

const unauthorized = (endpoint: string): Unauthorized =>
  new Unauthorized({ detail: `the executor refused the sandbox secret (${endpoint})` })

const decoder = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Wire.decodeJson(schema)
  return (endpoint: string, body: string): Effect.Effect<A, ExecutorError> =>
    Either.match(decode(body), {
      onLeft: (detail) => Effect.fail(decodeError(endpoint, detail)),
      onRight: Effect.succeed
    })
}

const decodeRun = decoder(Wire.RunReply)
const decodeFile = decoder(Wire.FileReply)
const decodeSuccess = decoder(Wire.SuccessReply)
const decodePortConflict = decoder(Wire.PortConflictReply)
const decodeStarted = decoder(Wire.StartProcessReply)
const decodeProcessList = decoder(Wire.ProcessListReply)
const decodeHealth = decoder(Wire.HealthReply)
const decodeLog = Wire.decodeJson(Wire.LogEvent)

const badCwd = (body: string): InvalidArgument | undefined => {
  const text = body.trim()
  return text.startsWith("Invalid working directory")
    ? new InvalidArgument({ argument: "cwd", detail: text })
    : undefined
}

const runStreamingFailure = (status: number, body: string): InvalidArgument | ExecutorError =>
  (status === 400 ? badCwd(body) : undefined) ?? statusError("/run_streaming", status, body)

const startFailure = (endpoint: string, request: CommandRequest, text: string): InvalidArgument | ExecutorError =>
  (text === "Failed to start command" ? tooLongArgument(request) : undefined) ??
    protocolError(endpoint, `the executor could not start the command: ${text}`)

const runStreamHandler =
  (request: CommandRequest): Sse.Handler<RunStreamEvent, InvalidArgument | ExecutorError> => (event, data, out) => {
    switch (event) {
      case "output": {
        const output = Wire.parseOutput(data)
        if (output === undefined) return decodeError("/run_streaming", `bad output event: ${data}`)
        out.push(output)
        return undefined
      }
      case "complete": {
        const code = Wire.parseComplete(data)
        if (code === undefined) return decodeError("/run_streaming", `bad complete event: ${data}`)
        out.push({ _tag: "Complete", code })
        return Sse.End
      }
      case "error":
        return startFailure("/run_streaming", request, Wire.errorText(data))
      default:
        return undefined
    }
  }

const processLogsHandler =
  (id: string): Sse.Handler<ProcessLogLine, ProcessNotFound | ExecutorError> => (event, data, out) => {
    switch (event) {
      case "log": {
        const line = decodeLog(data)
        if (Either.isLeft(line)) return decodeError("/process_logs_streaming", `bad log event: ${line.left}`)
        out.push(line.right)
        return undefined
      }
      case "complete":
        return Sse.End
      case "error": {
        const text = Wire.errorText(data)
        return text.startsWith("process not found")
          ? new ProcessNotFound({ id })
          : protocolError("/process_logs_streaming", `the executor reported: ${text}`)
      }
      default:
        return undefined
    }
  }

const notRunning = /^process is not running \(status: ([\s\S]*)\)$/

/**
 * Builds an executor wire client on the given `HttpClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: ExecutorClientOptions
): Effect.Effect<ExecutorClientShape, never, HttpClient.HttpClient> =>
  Effect.map(HttpClient.HttpClient, (httpClient) => {
    const baseUrl = options.url.replace(/\/+$/, "")
    const requestTimeout = options.requestTimeout === undefined
      ? defaultRequestTimeout
      : Duration.decode(options.requestTimeout)
    const maxEventSize = options.maxEventSize ?? defaultMaxEventSize
    const routingKey = options.routingKey
    const client = httpClient.pipe(
      HttpClient.mapRequest((request) => {
        // bearerToken reads the Redacted value here, when the request is made
        const authorized = HttpClientRequest.bearerToken(request, options.secret)
        return routingKey === undefined
          ? authorized
          : HttpClientRequest.setHeader(authorized, "X-Routing-Key", routingKey)
      }),
      HttpClient.withTracerPropagation(false),
      // Each operation has its span (`ExecutorClient.*`); a transport span per request would double
      // the cost of small calls, and its result keeps the request (the secret header) alive.
      HttpClient.withTracerDisabledWhen(() => true)
    )

    const post = (endpoint: string, body: unknown) =>
      HttpClientRequest.bodyUnsafeJson(HttpClientRequest.post(baseUrl + endpoint), body)

    // A request's status and whole body (no deadline).
    const exchange = (endpoint: string, request: HttpClientRequest.HttpClientRequest) =>
      client.execute(request).pipe(
        Effect.flatMap((response) => Effect.map(response.text, (body) => [response.status, body] as const)),
        Effect.mapError(transportError(endpoint))
      )

    // 401 is `Unauthorized` on every endpoint; any other status goes to `onReply`.
    const authorized =
      <A, E>(endpoint: string, onReply: (status: number, body: string) => Effect.Effect<A, E>) =>
      ([status, body]: readonly [number, string]): Effect.Effect<A, E | Unauthorized> =>
        status === 401 ? Effect.fail(unauthorized(endpoint)) : onReply(status, body)

    // One bounded request: status and whole body, or a typed failure.
    const call = <A, E>(
      endpoint: string,
      request: HttpClientRequest.HttpClientRequest,
      onReply: (status: number, body: string) => Effect.Effect<A, E>
    ): Effect.Effect<A, E | ExecutorFailure> =>
      exchange(endpoint, request).pipe(
        // the deadline must also hold in finalizers (kill and cleanup requests)
        (self) =>
          timeoutDetached(self, {
            duration: requestTimeout,
            onTimeout: () =>
              new ExecutorError({
                reason: "Transport",
                endpoint,
                detail: `no complete reply within ${Duration.format(requestTimeout)}`
              })
          }),
        Effect.flatMap(authorized(endpoint, onReply))
      )

    const sseOptions = <A, E>(endpoint: string, handler: Sse.Handler<A, E | ExecutorError>) => ({
      maxEventSize,
      handler,
      onTooLarge: () => protocolError(endpoint, `an event exceeded ${maxEventSize} characters`),
      onEnd: () => protocolError(endpoint, "stream ended without complete")
    })

    // A 200 body as it arrives; any other status is read whole and failed by `onError`. No deadline.
    const bodyStream = <E>(
      endpoint: string,
      request: HttpClientRequest.HttpClientRequest,
      onError: (status: number, body: string) => Effect.Effect<never, E>
    ): Stream.Stream<Uint8Array, E | ExecutorFailure> =>
      client.execute(request).pipe(
        Effect.mapError(transportError(endpoint)),
        Effect.flatMap((response) =>
          response.status === 200
            ? Effect.succeed(Stream.mapError(response.stream, transportError(endpoint)))
            : response.text.pipe(
              Effect.mapError(transportError(endpoint)),
              Effect.flatMap((body) => authorized(endpoint, onError)([response.status, body]))
            )
        ),
        Stream.unwrap
      )

    // An SSE request: the status is checked before any parsing; no deadline.
    const stream = <A, E>(
      endpoint: string,
      request: HttpClientRequest.HttpClientRequest,
      onError: (status: number, body: string) => E | ExecutorError,
      handler: Sse.Handler<A, E | ExecutorError>
    ): Stream.Stream<A, E | ExecutorFailure> =>
      bodyStream(endpoint, request, (status, body) => Effect.fail(onError(status, body))).pipe(
        Stream.decodeText(),
        Stream.pipeThroughChannel(Sse.decode(sseOptions(endpoint, handler)))
      )

    const fileCall = <A>(
      endpoint: string,
      path: string,
      body: unknown,
      onSuccess: (reply: typeof Wire.FileReply.Type) => A
    ): Effect.Effect<A, FileEndpointFailure> => fileReply(endpoint, path, post(endpoint, body), onSuccess)

    // The stock file endpoints' "200 + error in the body" replies.
    const fileReply = <A>(
      endpoint: string,
      path: string,
      request: HttpClientRequest.HttpClientRequest,
      onSuccess: (reply: typeof Wire.FileReply.Type) => A
    ): Effect.Effect<A, FileEndpointFailure> =>
      call(endpoint, request, (status, text) =>
        status !== 200
          ? Effect.fail(statusError(endpoint, status, text))
          : Effect.flatMap(decodeFile(endpoint, text), (reply): Effect.Effect<A, FileNotFound | FilesystemError> => {
            if (reply.error !== undefined && reply.error !== "") {
              return Effect.fail(FileErrors.classify(path, reply.error))
            }
            if (reply.success === false) {
              return Effect.fail(
                new FilesystemError({
                  path,
                  reason: "Unknown",
                  detail: `${endpoint} reported failure without an error`
                })
              )
            }
            return Effect.succeed(onSuccess(reply))
          }))

    const successCall = (endpoint: string, body: unknown) =>
      call(endpoint, post(endpoint, body), (status, text) =>
        status === 200
          ? Effect.flatMap(decodeSuccess(endpoint, text), (reply) =>
            reply.success === false
              ? Effect.fail(protocolError(endpoint, `the executor reported: ${reply.error ?? "failure"}`))
              : Effect.void)
          : Effect.fail(statusError(endpoint, status, text)))

    const health = call("/health", HttpClientRequest.get(`${baseUrl}/health`), (status, body) =>
      status === 200
        ? Effect.map(decodeHealth("/health", body), (reply): HealthStatus =>
          reply.capabilities === undefined
            ? { status: reply.status }
            : { status: reply.status, capabilities: reply.capabilities })
        : Effect.fail(statusError("/health", status, body))).pipe(Effect.withSpan("ExecutorClient.health"))

    const run = Effect.fn("ExecutorClient.run")(function*(request: CommandRequest) {
      return yield* call(
        "/run",
        post("/run", request),
        (status, body): Effect.Effect<RunResponse, InvalidArgument | ExecutorError> => {
          if (status === 200) return decodeRun("/run", body)
          if (status === 400) {
            const invalid = badCwd(body)
            if (invalid !== undefined) return Effect.fail(invalid)
          }
          if (status === 500 && body.trim() === "Failed to start command") {
            const invalid = tooLongArgument(request)
            if (invalid !== undefined) return Effect.fail(invalid)
          }
          return Effect.fail(statusError("/run", status, body))
        }
      )
    })

    const runStreaming = (request: CommandRequest): Stream.Stream<RunStreamEvent, InvalidArgument | ExecutorFailure> =>
      stream(
        "/run_streaming",
        post("/run_streaming", request),
        runStreamingFailure,
        runStreamHandler(request)
      ).pipe(Stream.withSpan("ExecutorClient.runStreaming"))

    const runStreamingCollect = Effect.fn("ExecutorClient.runStreamingCollect")(function*(request: CommandRequest) {
      const endpoint = "/run_streaming"
      return yield* exchange(endpoint, post(endpoint, request)).pipe(
        Effect.flatMap(authorized(endpoint, (status, body) => {
          if (status !== 200) return Effect.fail(runStreamingFailure(status, body))
          const decoded = Sse.decodeAll(body, sseOptions(endpoint, runStreamHandler(request)))
          return decoded._tag === "Done" ? Effect.succeed(decoded.out) : Effect.fail(decoded.error)
        }))
      )
    })

    const writeFile = Effect.fn("ExecutorClient.writeFile")(function*(path: string, content: string) {
      return yield* fileCall("/write_file", path, { path, content }, () => undefined)
    })

    const readFile = Effect.fn("ExecutorClient.readFile")(function*(path: string) {
      return yield* fileCall("/read_file", path, { path }, (reply) => reply.content ?? "")
    })

    const writeFileBytes = Effect.fn("ExecutorClient.writeFileBytes")(function*(path: string, content: Uint8Array) {
      const request = HttpClientRequest.post(`${baseUrl}/write_file_bytes`).pipe(
        HttpClientRequest.setUrlParam("path", path),
        HttpClientRequest.bodyUint8Array(content, "application/octet-stream")
      )
      return yield* fileReply("/write_file_bytes", path, request, () => undefined)
    })

    const readFileBytes = (path: string): Stream.Stream<Uint8Array, FileEndpointFailure> => {
      const endpoint = "/read_file_bytes"
      return bodyStream(
        endpoint,
        HttpClientRequest.get(`${baseUrl}${endpoint}`, { urlParams: { path } }),
        (status, body): Effect.Effect<never, FileEndpointFailure> =>
          status !== 422
            ? Effect.fail(statusError(endpoint, status, body))
            : Effect.flatMap(
              decodeFile(endpoint, body),
              (reply) => Effect.fail(FileErrors.classify(path, reply.error ?? `${endpoint} failed without an error`))
            )
      ).pipe(Stream.withSpan("ExecutorClient.readFileBytes"))
    }

    const deleteFile = Effect.fn("ExecutorClient.deleteFile")(function*(path: string) {
      return yield* fileCall("/delete_file", path, { path }, () => undefined)
    })

    const deleteDir = Effect.fn("ExecutorClient.deleteDir")(function*(path: string) {
      return yield* fileCall("/delete_dir", path, { path }, () => undefined)
    })

    const makeDir = Effect.fn("ExecutorClient.makeDir")(function*(path: string) {
      return yield* fileCall("/make_dir", path, { path }, () => undefined)
    })

    const listDir = Effect.fn("ExecutorClient.listDir")(function*(path: string) {
      return yield* fileCall("/list_dir", path, { path }, (reply): ReadonlyArray<string> => reply.entries ?? [])
    })

    const bindPort = Effect.fn("ExecutorClient.bindPort")(function*(port: string) {
      return yield* call("/bind_port", post("/bind_port", { port }), (status, body): Effect.Effect<
        void,
        PortAlreadyBound | InvalidArgument | ExecutorError
      > => {
        switch (status) {
          case 200:
            return Effect.flatMap(decodeSuccess("/bind_port", body), (reply) =>
              reply.success === false
                ? Effect.fail(protocolError("/bind_port", `the executor reported: ${reply.error ?? "failure"}`))
                : Effect.void)
          case 409:
            return Effect.flatMap(
              decodePortConflict("/bind_port", body),
              (reply) => Effect.fail(new PortAlreadyBound({ port, currentPort: reply.current_port }))
            )
          case 400:
            if (body.trim() === "Port is required") {
              return Effect.fail(new InvalidArgument({ argument: "port", detail: "Port is required" }))
            }
        }
        return Effect.fail(statusError("/bind_port", status, body))
      })
    })

    // older executors decode the body of /unbind_port, so send an empty object
    const unbindPort = successCall("/unbind_port", {}).pipe(Effect.withSpan("ExecutorClient.unbindPort"))

    const startProcess = Effect.fn("ExecutorClient.startProcess")(function*(request: CommandRequest) {
      return yield* call(
        "/start_process",
        post("/start_process", request),
        (status, body): Effect.Effect<StartedProcess, InvalidArgument | ExecutorError> => {
          if (status === 201 || status === 200) return decodeStarted("/start_process", body)
          if (status === 400) {
            const text = body.trim()
            if (text === "Command is required") {
              return Effect.fail(new InvalidArgument({ argument: "command", detail: text }))
            }
            const invalid = badCwd(text)
            if (invalid !== undefined) return Effect.fail(invalid)
          }
          if (status === 500) {
            const text = Wire.errorText(body)
            const invalid = text.endsWith("argument list too long") ? tooLongArgument(request) : undefined
            return Effect.fail(invalid ?? statusError("/start_process", status, text))
          }
          return Effect.fail(statusError("/start_process", status, body))
        }
      )
    })

    const listProcesses = call(
      "/list_processes",
      HttpClientRequest.get(`${baseUrl}/list_processes`),
      (status, body) =>
        status === 200
          ? Effect.map(decodeProcessList("/list_processes", body), (reply): ReadonlyArray<ProcessInfo> =>
            reply.processes ?? [])
          : Effect.fail(statusError("/list_processes", status, body))
    ).pipe(Effect.withSpan("ExecutorClient.listProcesses"))

    const killProcess = Effect.fn("ExecutorClient.killProcess")(function*(id: string) {
      return yield* call(
        "/kill_process",
        post("/kill_process", { id }),
        (status, body): Effect.Effect<void, ProcessNotFound | ProcessNotRunning | ExecutorError> => {
          if (status === 200) {
            return Effect.flatMap(decodeSuccess("/kill_process", body), (reply) =>
              reply.success === false
                ? Effect.fail(protocolError("/kill_process", `the executor reported: ${reply.error ?? "failure"}`))
                : Effect.void)
          }
          if (status === 400) {
            const text = Wire.errorText(body)
            if (text.startsWith("process not found") || text === "Process ID is required") {
              return Effect.fail(new ProcessNotFound({ id }))
            }
            const match = notRunning.exec(text)
            if (match !== null) return Effect.fail(new ProcessNotRunning({ id, status: match[1]! }))
            // kill raced with the natural exit; its final status shows up in listProcesses shortly
            if (text === "os: process already finished") {
              return Effect.fail(new ProcessNotRunning({ id, status: "finished" }))
            }
          }
          return Effect.fail(statusError("/kill_process", status, body))
        }
      )
    })

    const processLogs = (id: string): Stream.Stream<ProcessLogLine, ProcessNotFound | ExecutorFailure> =>
      stream(
        "/process_logs_streaming",
        HttpClientRequest.get(`${baseUrl}/process_logs_streaming`, { urlParams: { id } }),
        (status, body) =>
          status === 400 && body.trim() === "Process ID is required"
            ? new ProcessNotFound({ id })
            : statusError("/process_logs_streaming", status, body),
        processLogsHandler(id)
      ).pipe(Stream.withSpan("ExecutorClient.processLogs"))

    return ExecutorClient.of({
      options,
      health,
      run,
      runStreaming,
      runStreamingCollect,
      writeFile,
      readFile,
      writeFileBytes,
      readFileBytes,
      deleteFile,
      deleteDir,
      makeDir,
      listDir,
      bindPort,
      unbindPort,
      startProcess,
      listProcesses,
      killProcess,
      processLogs
    })
  })

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
