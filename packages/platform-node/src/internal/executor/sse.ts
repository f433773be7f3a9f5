/**
 * The executor's server-sent events, framed as the stock writes them: every event is exactly
 * `event: <name>\n`, `data: <one-line JSON>\n`, `\n`; no ids, comments or heartbeats. Go escapes
 * `<`, `>` and `&` inside the JSON, which is all there is to escape in the frames built here.
 *
 * @internal
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Stream from "effect/Stream"
import type { Readable } from "node:stream"
import * as GoJson from "../goJson.js"
import type { LogEntry, StreamName } from "../processTable.js"

const headers = { "cache-control": "no-cache", connection: "keep-alive" }

/** An SSE response of a stream of frames. */
export const sse = (body: Stream.Stream<Uint8Array>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.stream(body, { contentType: "text/event-stream", headers })

/** An SSE response written straight from a Node stream of frames. */
export const sseRaw = (body: Readable): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.raw(body, { contentType: "text/event-stream", headers })

const encoder = new TextEncoder()

/** One event whose `data` is already JSON text. */
export const frame = (event: string, data: string): Uint8Array => encoder.encode(`event: ${event}\ndata: ${data}\n\n`)

const outputTail = {
  stdout: `,"stream":"stdout"}\n\n`,
  stderr: `,"stream":"stderr"}\n\n`
}

/** The `output` events of `/run_streaming` for the lines of one pipe read, in one buffer. */
export const outputFrames = (lines: ReadonlyArray<string>, stream: StreamName): Uint8Array => {
  const tail = outputTail[stream]
  let text = ""
  for (let i = 0; i < lines.length; i++) text += `event: output\ndata: {"data":${JSON.stringify(lines[i])}${tail}`
  return Buffer.from(GoJson.goEscapes(text), "utf8")
}

/** The `log` events of `/process_logs_streaming` for a batch of entries, in one buffer. */
export const logFrames = (entries: ReadonlyArray<LogEntry>): Uint8Array => {
  let text = ""
  for (const e of entries) {
    text += `event: log\ndata: {"timestamp":"${e.timestamp}","stream":"${e.stream}","data":${
      JSON.stringify(e.data)
    }}\n\n`
  }
  return Buffer.from(GoJson.goEscapes(text), "utf8")
}
