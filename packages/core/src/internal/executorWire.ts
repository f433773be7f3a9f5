/**
 * Wire schemas of the executor's JSON replies (`koyeb-wire.md` §2.4–2.8), and the small
 * hand-written validators used on the streaming hot path.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { RunStreamEvent } from "../ExecutorClient.js"
import { ProcessInfo, ProcessLogLine } from "../SandboxSchema.js"

/** `/run` (200). Go always writes `stdout`, `stderr` and `code`; `error` only when code ≠ 0. */
export const RunReply = Schema.Struct({
  stdout: Schema.optionalWith(Schema.String, { default: () => "" }),
  stderr: Schema.optionalWith(Schema.String, { default: () => "" }),
  code: Schema.Number
})

/** The six file endpoints (always 200): `error` on failure; `content`/`entries` omitted when empty. */
export const FileReply = Schema.Struct({
  success: Schema.optional(Schema.Boolean),
  error: Schema.optional(Schema.String),
  content: Schema.optional(Schema.String),
  entries: Schema.optional(Schema.NullOr(Schema.Array(Schema.String)))
})

/** A `{success, error?}` reply: `/bind_port`, `/unbind_port`, `/kill_process` (200). */
export const SuccessReply = Schema.Struct({
  success: Schema.optional(Schema.Boolean),
  error: Schema.optional(Schema.String)
})

/** `/bind_port` (409). */
export const PortConflictReply = Schema.Struct({
  current_port: Schema.String
})

/** `/start_process` (201). */
export const StartProcessReply = Schema.Struct({
  id: Schema.String,
  pid: Schema.Number,
  status: Schema.String
})

/** A JSON body carrying an `error` text (`/start_process` 500, `/kill_process` 400). */
export const ErrorReply = Schema.Struct({
  error: Schema.String
})

/** `/list_processes` (200); extra fields of newer executors are ignored. */
export const ProcessListReply = Schema.Struct({
  processes: Schema.optional(Schema.NullOr(Schema.Array(ProcessInfo)))
})

/** `/health` (200, JSON sent as text/plain). */
export const HealthReply = Schema.Struct({
  status: Schema.String,
  capabilities: Schema.optional(Schema.Array(Schema.String))
})

/** The `data` of a `/process_logs_streaming` `log` event. */
export const LogEvent = ProcessLogLine

/** Decodes a JSON text with a schema; the failure is a one-line description. */
export const decodeJson = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeEither(Schema.parseJson(schema), { errors: "first" })
  return (text: string): Either.Either<A, string> =>
    Either.mapLeft(decode(text), (error) => ParseResult.TreeFormatter.formatErrorSync(error))
}

const outputHead = `{"data":"`
const stdoutTail = `","stream":"stdout"}`
const stderrTail = `","stream":"stderr"}`

/**
 * The event when it is exactly `{"data":"<text>","stream":"…"}` (the executors' own layout) and
 * `<text>` has no `"`, `\` or control character, hence no escape: the text is then the data as is,
 * with no `JSON.parse` and no intermediate object. Anything else: undefined.
 */
const plainOutput = (text: string): RunStreamEvent | undefined => {
  if (!text.startsWith(outputHead)) return undefined
  const stream = text.endsWith(stdoutTail) ? "stdout" : text.endsWith(stderrTail) ? "stderr" : undefined
  if (stream === undefined) return undefined
  const end = text.length - stdoutTail.length
  if (end < outputHead.length) return undefined
  const data = text.slice(outputHead.length, end)
  return needsUnescape.test(data) ? undefined : { _tag: "Output", stream, data }
}

// A native scan: several times faster than a loop over char codes on long lines.
// eslint-disable-next-line no-control-regex -- matching the control characters JSON escapes is the point
const needsUnescape = /["\\\u0000-\u001f]/

/** Parses the `data` of an `output` event (`{"data":"…","stream":"stdout"}`) without Schema overhead (hot path). */
export const parseOutput = (text: string): RunStreamEvent | undefined => {
  const plain = plainOutput(text)
  if (plain !== undefined) return plain
  const value = parseObject(text)
  if (value === undefined) return undefined
  const stream = value.stream
  const data = value.data
  return typeof data === "string" && (stream === "stdout" || stream === "stderr")
    ? { _tag: "Output", stream, data }
    : undefined
}

/** Parses the `data` of a `complete` event (`{"code":0,"error":false}`): the exit code. */
export const parseComplete = (text: string): number | undefined => {
  const code = parseObject(text)?.code
  return typeof code === "number" && Number.isInteger(code) ? code : undefined
}

// The executor hand-writes `{"error": "<text>"}` without escaping, so a text with `"` is not JSON.
const handWrittenError = /^\{\s*"error"\s*:\s*"([\s\S]*)"\s*\}\s*$/

/** Extracts the text of an SSE `error` event or of an error body, JSON or not. */
export const errorText = (text: string): string => {
  const error = parseObject(text)?.error
  if (typeof error === "string") return error
  const match = handWrittenError.exec(text)
  return match !== null ? match[1]! : text.trim()
}

const parseObject = (text: string): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined
  } catch {
    return undefined
  }
}
