/**
 * How the executor's replies become values and typed errors: the error of each kind of failure,
 * the schema decoders, the texts that name a caller's mistake (a bad working directory, an
 * argument over the kernel's limit), and the handlers of the two SSE streams.
 *
 * @internal
 */
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Schema from "effect/Schema"
import type { CommandRequest, RunStreamEvent, SpawnEvent, WatchEvent } from "../ExecutorClient.js"
import * as ExecutorWire from "../ExecutorWire.js"
import { ExecutorError, FilesystemError, InvalidArgument, ProcessNotFound, Unauthorized } from "../SandboxError.js"
import type { ProcessLogLine } from "../SandboxSchema.js"
import * as Base64 from "./base64Transfer.js"
import * as Wire from "./executorWire.js"
import { maxArgBytes, utf8Length } from "./shell.js"
import * as Sse from "./sse.js"

const maxDetail = 1000

const truncate = (text: string): string => text.length > maxDetail ? `${text.slice(0, maxDetail)}…` : text

/** A request that got no reply: the platform error holds the request (and its secret header), so only its cause is kept. */
export const transportError = (endpoint: string) => (error: HttpClientError.HttpClientError): ExecutorError =>
  new ExecutorError({ reason: "Transport", endpoint, detail: error.message, cause: error.cause })

/** An unexpected status, with the (truncated) body as detail. */
export const statusError = (endpoint: string, status: number, body: string): ExecutorError =>
  new ExecutorError({ reason: "Status", endpoint, status, detail: truncate(body.trim()) || "(empty body)" })

/** A reply that breaks the protocol. */
export const protocolError = (endpoint: string, detail: string): ExecutorError =>
  new ExecutorError({ reason: "Protocol", endpoint, detail: truncate(detail) })

/** A reply whose body does not decode. */
export const decodeError = (endpoint: string, detail: string): ExecutorError =>
  new ExecutorError({ reason: "Decode", endpoint, detail: truncate(detail) })

/** A 401, on any endpoint. */
export const unauthorized = (endpoint: string): Unauthorized =>
  new Unauthorized({ detail: `the executor refused the sandbox secret (${endpoint})` })

const decoder = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Wire.decodeJson(schema)
  return (endpoint: string, body: string): Effect.Effect<A, ExecutorError> =>
    Either.match(decode(body), {
      onLeft: (detail) => Effect.fail(decodeError(endpoint, detail)),
      onRight: Effect.succeed
    })
}

/** `/run` (200), or a `Decode` error. */
export const decodeRun = decoder(ExecutorWire.RunReply)
/** The file endpoints' reply, or a `Decode` error. */
export const decodeFile = decoder(ExecutorWire.FileReply)
/** A `{success, error?}` reply, or a `Decode` error. */
export const decodeSuccess = decoder(ExecutorWire.SuccessReply)
/** `/bind_port` (409), or a `Decode` error. */
export const decodePortConflict = decoder(ExecutorWire.PortConflictReply)
/** `/start_process` (201), or a `Decode` error. */
export const decodeStarted = decoder(ExecutorWire.StartProcessReply)
/** `/list_processes` (200), or a `Decode` error. */
export const decodeProcessList = decoder(ExecutorWire.ProcessListReply)
/** `/stdin` (200): `closed` when the bytes were discarded, or a `Decode` error. */
export const decodeSpawnReply = decoder(ExecutorWire.StdinReply)
/** `/health` (200), or a `Decode` error. */
export const decodeHealth = decoder(ExecutorWire.HealthReply)
const decodeLog = Wire.decodeJson(ExecutorWire.LogEvent)

/**
 * Why the kernel refused to start `request`, when one of its strings is over Linux's
 * `MAX_ARG_STRLEN`. The executor's start failures say nothing about the cause; E2BIG is the one a
 * caller can fix.
 */
export const tooLongArgument = (request: CommandRequest): InvalidArgument | undefined => {
  const cmdBytes = utf8Length(request.cmd)
  if (cmdBytes > maxArgBytes) {
    return new InvalidArgument({
      argument: "command",
      detail:
        `the command is ${cmdBytes} bytes; one argument is limited to 128 KiB in the sandbox (put long scripts in a file)`
    })
  }
  for (const [key, value] of Object.entries(request.env ?? {})) {
    const bytes = utf8Length(`${key}=${value}`)
    if (bytes > maxArgBytes) {
      return new InvalidArgument({
        argument: "env",
        detail: `the variable ${key} is ${bytes} bytes; one variable is limited to 128 KiB in the sandbox`
      })
    }
  }
  return undefined
}

/** The executor's reply to a working directory that does not exist, as `InvalidArgument`. */
export const badCwd = (body: string): InvalidArgument | undefined => {
  const text = body.trim()
  return text.startsWith("Invalid working directory")
    ? new InvalidArgument({ argument: "cwd", detail: text })
    : undefined
}

/** A `/run_streaming` reply other than 200 (or 401). */
export const runStreamingFailure = (status: number, body: string): InvalidArgument | ExecutorError =>
  (status === 400 ? badCwd(body) : undefined) ?? statusError("/run_streaming", status, body)

const startFailure = (endpoint: string, request: CommandRequest, text: string): InvalidArgument | ExecutorError =>
  (text === "Failed to start command" ? tooLongArgument(request) : undefined) ??
    protocolError(endpoint, `the executor could not start the command: ${text}`)

/**
 * The end of a command's stream, on `/run_streaming` and `/spawn` alike: `complete` (pushed, and
 * the end of decoding) or `error` (a start failure); any other event is ignored.
 */
const commandEnd = (
  endpoint: string,
  request: CommandRequest,
  event: string,
  data: string,
  out: { push: (complete: { readonly _tag: "Complete"; readonly code: number }) => unknown }
): InvalidArgument | ExecutorError | typeof Sse.End | undefined => {
  switch (event) {
    case "complete": {
      const code = Wire.parseComplete(data)
      if (code === undefined) return decodeError(endpoint, `bad complete event: ${data}`)
      out.push({ _tag: "Complete", code })
      return Sse.End
    }
    case "error":
      return startFailure(endpoint, request, Wire.errorText(data))
    default:
      return undefined
  }
}

/** The events of `/run_streaming`: output lines, then `complete`; an `error` event is a start failure. */
export const runStreamHandler =
  (request: CommandRequest): Sse.Handler<RunStreamEvent, InvalidArgument | ExecutorError> => (event, data, out) => {
    switch (event) {
      case "output": {
        const output = Wire.parseOutput(data)
        if (output === undefined) return decodeError("/run_streaming", `bad output event: ${data}`)
        out.push(output)
        return undefined
      }
      default:
        return commandEnd("/run_streaming", request, event, data, out)
    }
  }

/** The events of `/process_logs_streaming`: `log` lines, then `complete`; `error` names a missing process. */
export const processLogsHandler =
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

const decodeSpawnStarted = Wire.decodeJson(ExecutorWire.SpawnStartedEvent)
const decodeSpawnOutput = Wire.decodeJson(ExecutorWire.SpawnOutputEvent)

/** The events of `/spawn`: `started`, raw `output` (base64), then `complete`; `error` is a start failure. */
export const spawnHandler =
  (request: CommandRequest): Sse.Handler<SpawnEvent, InvalidArgument | ExecutorError> => (event, data, out) => {
    switch (event) {
      case "started": {
        const started = decodeSpawnStarted(data)
        if (Either.isLeft(started)) return decodeError("/spawn", `bad started event: ${started.left}`)
        out.push({ _tag: "Started", id: started.right.id, pid: started.right.pid })
        return undefined
      }
      case "output": {
        const output = decodeSpawnOutput(data)
        const bytes = Either.isRight(output) ? Base64.decode(output.right.data) : undefined
        if (Either.isLeft(output) || bytes === undefined) return decodeError("/spawn", `bad output event: ${data}`)
        out.push({ _tag: "Output", stream: output.right.stream, data: bytes })
        return undefined
      }
      default:
        return commandEnd("/spawn", request, event, data, out)
    }
  }

const decodeWatchEvent = Wire.decodeJson(ExecutorWire.WatchEvent)

/** The events of `/watch`: `ready`, `change` events, then `complete`; `error` is a failed watch of `path`. */
export const watchHandler =
  (path: string): Sse.Handler<WatchEvent, FilesystemError | ExecutorError> => (event, data, out) => {
    switch (event) {
      case "ready":
        out.push({ _tag: "Ready" })
        return undefined
      case "change": {
        const change = decodeWatchEvent(data)
        if (Either.isLeft(change)) return decodeError("/watch", `bad change event: ${change.left}`)
        out.push({ _tag: "Change", event: change.right })
        return undefined
      }
      case "complete":
        return Sse.End
      case "error":
        return new FilesystemError({ path, reason: "Unknown", detail: `the watch failed: ${Wire.errorText(data)}` })
      default:
        return undefined
    }
  }

/** The `/kill_process` 400 text for a process that has ended: its status. */
export const notRunning = /^process is not running \(status: ([\s\S]*)\)$/
