/**
 * Decoding of the executor's replies: JSON through the schemas of `ExecutorWire`, and the small
 * hand-written validators used on the streaming hot path.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { RunStreamEvent } from "../ExecutorClient.js"

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
