/**
 * The executor wire client: one operation per endpoint of the executor's HTTP API, each turning
 * the endpoint's replies into values and typed errors, plus the client's memoized view of
 * `/health` (capabilities and health).
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import type {
  CommandRequest,
  ExecutorClientOptions,
  ExecutorClientShape,
  FileEndpointFailure,
  HealthStatus,
  RunResponse,
  RunStreamEvent,
  SpawnEvent,
  SpawnRequest,
  StartedProcess,
  WatchEvent
} from "../ExecutorClient.js"
import {
  type ExecutorError,
  type ExecutorFailure,
  InvalidArgument,
  PortAlreadyBound,
  ProcessNotFound,
  ProcessNotRunning
} from "../SandboxError.js"
import type { ProcessInfo, ProcessLogLine } from "../SandboxSchema.js"
import * as Capabilities from "./capabilities.js"
import {
  badCwd,
  decodeFile,
  decodeHealth,
  decodePortConflict,
  decodeProcessList,
  decodeRun,
  decodeSpawnReply,
  decodeStarted,
  notRunning,
  processLogsHandler,
  runStreamHandler,
  runStreamingFailure,
  spawnHandler,
  statusError,
  tooLongArgument,
  watchHandler
} from "./executorReplies.js"
import { makeTransport } from "./executorTransport.js"
import * as Wire from "./executorWire.js"
import * as FileErrors from "./fileErrors.js"
import * as Sse from "./sse.js"

/** Builds an executor wire client on the `HttpClient` of the context. */
export const make = (
  options: ExecutorClientOptions
): Effect.Effect<ExecutorClientShape, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const { authorized, bodyStream, call, exchange, fileCall, fileReply, post, sseOptions, stream, successReply, url } =
      makeTransport(yield* HttpClient.HttpClient, options)

    const health = call("/health", HttpClientRequest.get(url("/health")), (status, body) =>
      status === 200
        ? Effect.map(decodeHealth("/health", body), (reply): HealthStatus =>
          reply.capabilities === undefined
            ? { status: reply.status }
            : { status: reply.status, capabilities: reply.capabilities })
        : Effect.fail(statusError("/health", status, body))).pipe(Effect.withSpan("ExecutorClient.health"))

    // one probe per client, shared by the services built on it (`Executor` and `Filesystem` of one
    // sandbox ask `/health` once, which on Koyeb is a round trip through the gateway)
    const capabilities = yield* Capabilities.makeProbe(health)

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
        Effect.flatMap(authorized(endpoint, (status, body) =>
          status !== 200
            ? Effect.fail(runStreamingFailure(status, body))
            : Either.match(Sse.decodeAll(body, sseOptions(endpoint, runStreamHandler(request))), {
              onLeft: Effect.fail,
              onRight: (events): Effect.Effect<ReadonlyArray<RunStreamEvent>> => Effect.succeed(events)
            })))
      )
    })

    const writeFile = Effect.fn("ExecutorClient.writeFile")(function*(path: string, content: string) {
      return yield* fileCall("/write_file", path, { path, content }, () => undefined)
    })

    const readFile = Effect.fn("ExecutorClient.readFile")(function*(path: string) {
      return yield* fileCall("/read_file", path, { path }, (reply) => reply.content ?? "")
    })

    const writeFileBytes = Effect.fn("ExecutorClient.writeFileBytes")(function*(path: string, content: Uint8Array) {
      const request = HttpClientRequest.post(url("/write_file_bytes")).pipe(
        HttpClientRequest.setUrlParam("path", path),
        HttpClientRequest.bodyUint8Array(content, "application/octet-stream")
      )
      return yield* fileReply("/write_file_bytes", path, request, () => undefined)
    })

    const readFileBytes = (path: string): Stream.Stream<Uint8Array, FileEndpointFailure> => {
      const endpoint = "/read_file_bytes"
      return bodyStream(
        endpoint,
        HttpClientRequest.get(url(endpoint), { urlParams: { path } }),
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
            return successReply("/bind_port", body)
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
    const unbindPort = call("/unbind_port", post("/unbind_port", {}), (status, body) =>
      status === 200
        ? successReply("/unbind_port", body)
        : Effect.fail(statusError("/unbind_port", status, body))).pipe(Effect.withSpan("ExecutorClient.unbindPort"))

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
      HttpClientRequest.get(url("/list_processes")),
      (status, body) =>
        status === 200
          ? Effect.map(
            decodeProcessList("/list_processes", body),
            (reply): ReadonlyArray<ProcessInfo> => reply.processes ?? []
          )
          : Effect.fail(statusError("/list_processes", status, body))
    ).pipe(Effect.withSpan("ExecutorClient.listProcesses"))

    const killProcess = Effect.fn("ExecutorClient.killProcess")(function*(id: string) {
      return yield* call(
        "/kill_process",
        post("/kill_process", { id }),
        (status, body): Effect.Effect<void, ProcessNotFound | ProcessNotRunning | ExecutorError> => {
          if (status === 200) return successReply("/kill_process", body)
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
        HttpClientRequest.get(url("/process_logs_streaming"), { urlParams: { id } }),
        (status, body) =>
          status === 400 && body.trim() === "Process ID is required"
            ? new ProcessNotFound({ id })
            : statusError("/process_logs_streaming", status, body),
        processLogsHandler(id)
      ).pipe(Stream.withSpan("ExecutorClient.processLogs"))

    const spawn = (request: SpawnRequest): Stream.Stream<SpawnEvent, InvalidArgument | ExecutorFailure> =>
      stream("/spawn", post("/spawn", request), (status, body) =>
        (status === 400 ? badCwd(body) : undefined) ?? statusError("/spawn", status, body), spawnHandler(request))
        .pipe(Stream.withSpan("ExecutorClient.spawn"))

    // no deadline: the reply waits until the command's stdin pipe took every byte
    const writeStdin = Effect.fn("ExecutorClient.writeStdin")(function*(id: string, data: Uint8Array) {
      const endpoint = "/stdin"
      const request = HttpClientRequest.post(url(endpoint)).pipe(
        HttpClientRequest.setUrlParam("id", id),
        HttpClientRequest.bodyUint8Array(data, "application/octet-stream")
      )
      return yield* exchange(endpoint, request).pipe(
        Effect.flatMap(authorized(endpoint, (status, body) =>
          // 404: the command has ended and its stream was closed
          status === 404
            ? Effect.succeed(false)
            : status !== 200
            ? Effect.fail(statusError(endpoint, status, body))
            : Effect.map(decodeSpawnReply(endpoint, body), (reply) =>
              reply.closed !== true)))
      )
    })

    const endStdin = Effect.fn("ExecutorClient.endStdin")(function*(id: string) {
      // 404: the command has ended and its stream was closed, so its stdin is closed too
      return yield* call("/stdin_end", post("/stdin_end", { id }), (status, body) =>
        status === 200
          ? successReply("/stdin_end", body)
          : status === 404
          ? Effect.void
          : Effect.fail(statusError("/stdin_end", status, body)))
    })

    const signalSpawned = Effect.fn("ExecutorClient.signalSpawned")(function*(id: string, signal: string) {
      return yield* call("/signal", post("/signal", { id, signal }), (status, body): Effect.Effect<
        void,
        InvalidArgument | ExecutorError
      > => {
        if (status === 200) {
          return successReply("/signal", body)
        }
        if (status === 400) {
          return Effect.fail(new InvalidArgument({ argument: "signal", detail: body.trim() }))
        }
        return Effect.fail(statusError("/signal", status, body))
      })
    })

    const resize = Effect.fn("ExecutorClient.resize")(function*(id: string, cols: number, rows: number) {
      return yield* call("/resize", post("/resize", { id, cols, rows }), (status, body): Effect.Effect<
        void,
        InvalidArgument | ExecutorError
      > =>
        status === 200
          ? successReply("/resize", body)
          : status === 404 // the command has ended
          ? Effect.void
          : status === 400
          ? Effect.fail(new InvalidArgument({ argument: "resize", detail: body.trim() }))
          : Effect.fail(statusError("/resize", status, body)))
    })

    const watch = (
      path: string,
      options: { readonly recursive: boolean }
    ): Stream.Stream<WatchEvent, FileEndpointFailure> => {
      const endpoint = "/watch"
      return stream(
        endpoint,
        HttpClientRequest.get(url(endpoint), { urlParams: { path, recursive: String(options.recursive) } }),
        (status, body) =>
          status === 422 ? FileErrors.classify(path, Wire.errorText(body)) : statusError(endpoint, status, body),
        watchHandler(path)
      ).pipe(Stream.withSpan("ExecutorClient.watch"))
    }

    return {
      options,
      health,
      capabilities,
      isHealthy: Capabilities.isHealthy(health),
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
      processLogs,
      spawn,
      writeStdin,
      endStdin,
      signalSpawned,
      resize,
      watch
    } satisfies ExecutorClientShape
  })
