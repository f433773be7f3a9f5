/**
 * Server-Sent Events decoding for the executor's streaming endpoints.
 *
 * A small incremental parser (line endings `\n`, `\r\n` and `\r`, comments, multi-line `data`,
 * `id`/`retry` ignored since nothing reconnects) plus a channel that feeds it text chunks and
 * hands each event to a caller-supplied handler. Unlike `@effect/experimental/Sse` it finds
 * lines with `indexOf` instead of a per-character loop, never sleeps on `retry:`, emits one
 * output chunk per input chunk, and reports an oversize event as a typed failure.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Either from "effect/Either"

/** Returned by a handler to stop decoding: the stream ends after the outputs emitted so far. */
export const End: unique symbol = Symbol.for("@effect-koyeb/core/internal/sse/End")

/** Receives each complete event; pushes outputs to `out`; returns `End` to stop, a failure to fail. */
export type Handler<A, E> = (event: string, data: string, out: Array<A>) => E | typeof End | undefined

/** An incremental SSE parser. */
export interface Parser {
  /** Feeds a piece of text; calls `onEvent` per event. Returns false when the pending event outgrew the limit. */
  readonly feed: (text: string, onEvent: (event: string, data: string) => boolean) => boolean
}

/** Creates a parser that refuses events (pending line plus data) longer than `maxEventSize` code units. */
export const makeParser = (maxEventSize: number): Parser => {
  let pending = "" // incomplete line carried over between chunks
  let skipLf = false // the previous chunk ended with "\r": a leading "\n" belongs to it
  let first = true
  let eventName = ""
  let data = ""
  let hasData = false
  let overflow = false

  // returns false when the handler asked to stop or the event outgrew the limit
  const line = (text: string, onEvent: (event: string, data: string) => boolean): boolean => {
    if (text.length === 0) {
      const stop = hasData ? !onEvent(eventName === "" ? "message" : eventName, data) : false
      eventName = ""
      data = ""
      hasData = false
      return !stop
    }
    const colon = text.indexOf(":")
    if (colon === 0) return true
    const field = colon === -1 ? text : text.slice(0, colon)
    const value = colon === -1 ? "" : text.slice(text.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1)
    if (field === "data") {
      data = hasData ? `${data}\n${value}` : value
      hasData = true
      if (data.length > maxEventSize) {
        overflow = true
        return false
      }
    } else if (field === "event") {
      eventName = value
    }
    return true
  }

  const feed = (chunk: string, onEvent: (event: string, data: string) => boolean): boolean => {
    let text = chunk
    if (first && text.length > 0) {
      first = false
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
    }
    if (skipLf) {
      if (text.length > 0) {
        skipLf = false
        if (text.charCodeAt(0) === 10) text = text.slice(1)
      }
    }
    if (text.indexOf("\r") !== -1) {
      skipLf = text.charCodeAt(text.length - 1) === 13
      text = text.replace(/\r\n?/g, "\n")
    }
    let start = 0
    let nl = text.indexOf("\n")
    if (pending.length > 0) {
      if (nl === -1) {
        pending += text
        return pending.length + data.length <= maxEventSize
      }
      const head = pending + text.slice(0, nl)
      pending = ""
      if (!line(head, onEvent)) return !overflow
      start = nl + 1
      nl = text.indexOf("\n", start)
    }
    while (nl !== -1) {
      if (!line(text.slice(start, nl), onEvent)) return !overflow
      start = nl + 1
      nl = text.indexOf("\n", start)
    }
    pending = start < text.length ? text.slice(start) : ""
    return pending.length + data.length <= maxEventSize
  }

  return { feed }
}

/**
 * A channel from text chunks to handler outputs. It ends when the handler returns `End` (and the
 * input has ended), fails
 * with the handler's failure, with `onTooLarge()` when an event exceeds `maxEventSize`, and with
 * `onEnd()` when the input ends first.
 */
export const decode = <A, E, IE>(options: {
  readonly maxEventSize: number
  readonly handler: Handler<A, E>
  readonly onTooLarge: () => E
  readonly onEnd: () => E
}): Channel.Channel<Chunk.Chunk<A>, Chunk.Chunk<string>, E | IE, IE, void, unknown> =>
  Channel.suspend(() => {
    const parser = makeParser(options.maxEventSize)
    const handler = options.handler
    let out: Array<A> = []
    let result: E | typeof End | undefined
    const onEvent = (event: string, data: string): boolean => {
      result = handler(event, data, out)
      return result === undefined
    }
    const flush = (): Chunk.Chunk<A> => {
      const chunk = Chunk.unsafeFromArray(out)
      out = []
      return chunk
    }
    const emitThen = <E2>(
      next: Channel.Channel<Chunk.Chunk<A>, Chunk.Chunk<string>, E2, IE, void, unknown>
    ): Channel.Channel<Chunk.Chunk<A>, Chunk.Chunk<string>, E2, IE, void, unknown> =>
      out.length === 0 ? next : Channel.zipRight(Channel.write(flush()), next)

    // After the last event the body ends at once; reading that end (instead of aborting) keeps
    // the connection reusable. A peer that goes on sending is cut off after a few KiB.
    let trailing = 0
    const drain: Channel.Channel<Chunk.Chunk<A>, Chunk.Chunk<string>, never, IE, void, unknown> = Channel
      .readWithCause({
        onInput: (input: Chunk.Chunk<string>) => {
          for (const text of input) trailing += text.length
          return trailing > 65536 ? Channel.void : drain
        },
        onFailure: () => Channel.void,
        onDone: () => Channel.void
      })

    const loop: Channel.Channel<Chunk.Chunk<A>, Chunk.Chunk<string>, E | IE, IE, void, unknown> = Channel
      .readWithCause({
        onInput: (input: Chunk.Chunk<string>) => {
          for (const text of input) {
            const fits = parser.feed(text, onEvent)
            if (result !== undefined) {
              return result === End ? emitThen(drain) : emitThen(Channel.fail(result))
            }
            if (!fits) return emitThen(Channel.fail(options.onTooLarge()))
          }
          return emitThen(loop)
        },
        onFailure: (cause: Cause.Cause<IE>) => Channel.failCause(cause),
        onDone: () => Channel.fail(options.onEnd())
      })
    return loop
  })

/**
 * Decodes a whole SSE body at once with the same rules as `decode`: the handler's outputs up to
 * `End`, or the failure (the handler's, `onTooLarge()`, or `onEnd()` when no handler said `End`).
 * Text after `End` is ignored.
 */
export const decodeAll = <A, E>(
  text: string,
  options: {
    readonly maxEventSize: number
    readonly handler: Handler<A, E>
    readonly onTooLarge: () => E
    readonly onEnd: () => E
  }
): Either.Either<Array<A>, E> => {
  const out: Array<A> = []
  let result: E | typeof End | undefined
  const fits = makeParser(options.maxEventSize).feed(text, (event, data) => {
    result = options.handler(event, data, out)
    return result === undefined
  })
  if (result === End) return Either.right(out)
  if (result !== undefined) return Either.left(result)
  return Either.left(fits ? options.onEnd() : options.onTooLarge())
}
