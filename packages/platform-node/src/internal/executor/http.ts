/**
 * The HTTP plumbing of the executor's endpoints, as Go's `net/http` and the stock handlers do it:
 * plain-text errors (`http.Error`), JSON replies (`json.Encoder`), bounded request bodies decoded
 * with the request schemas, and query parameters; and the writing of a reply to Node's response.
 *
 * @internal
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Chunk from "effect/Chunk"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as Http from "node:http"
import { Readable } from "node:stream"
import * as GoJson from "../goJson.js"
import type { AppContext } from "./context.js"

/** A reply of an endpoint. */
export type Response = HttpServerResponse.HttpServerResponse

/** A request of an endpoint: Node's request and response, as the server got them. */
export interface Request {
  readonly method: string
  readonly url: string
  readonly headers: Http.IncomingHttpHeaders
  readonly incoming: Http.IncomingMessage
  readonly response: Http.ServerResponse
}

/** The request of Node's `request` event. */
export const request = (incoming: Http.IncomingMessage, response: Http.ServerResponse): Request => ({
  method: incoming.method!,
  url: incoming.url!,
  headers: incoming.headers,
  incoming,
  response
})

/** `http.Error`: text/plain, nosniff, message + "\n". */
export const plain = (status: number, message: string, headers?: Record<string, string>): Response =>
  HttpServerResponse.text(`${message}\n`, {
    status,
    contentType: "text/plain; charset=utf-8",
    headers: { "x-content-type-options": "nosniff", ...headers }
  })

/** `json.NewEncoder(w).Encode(...)`: the body ends with "\n". */
export const json = (status: number, body: string): Response =>
  HttpServerResponse.text(`${body}\n`, { status, contentType: "application/json" })

/** The reply to a body that is not JSON or does not fit the endpoint's request schema. */
export const invalidRequest = plain(400, "Invalid request")
/** The reply of the four endpoints that check the method, to any other method. */
export const methodNotAllowed = plain(405, "Method not allowed")
/** The reply to a request without the bearer secret. */
export const unauthorized = plain(401, "Unauthorized")
/** Go's `ServeMux` reply to an unknown path. */
export const notFound = plain(404, "404 page not found")
/** The reply to a JSON body over the configured limit (an extension: the stock has none). */
export const tooLarge = plain(413, "Request body too large", { connection: "close" })

class BodyTooLarge extends Data.TaggedError("BodyTooLarge") {}

/** Reads the body as UTF-8 text as Go does (`GoJson.decodeRequest`), refusing (without buffering) one over `max` bytes. */
const readBody = (request: Request, max: number): Effect.Effect<string, BodyTooLarge> =>
  Effect.async<string, BodyTooLarge>((resume) => {
    const incoming = request.incoming
    const declared = Number(incoming.headers["content-length"] ?? "0")
    if (declared > max) return resume(Effect.fail(new BodyTooLarge()))
    const chunks: Array<Buffer> = []
    let size = 0
    const cleanup = () => {
      incoming.off("data", onData)
      incoming.off("end", onEnd)
      incoming.off("error", onEnd)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > max) {
        cleanup()
        incoming.pause()
        resume(Effect.fail(new BodyTooLarge()))
      } else {
        chunks.push(chunk)
      }
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(GoJson.decodeRequest(Buffer.concat(chunks, size))))
    }
    if (incoming.readableEnded) return onEnd()
    incoming.on("data", onData)
    incoming.on("end", onEnd)
    incoming.on("error", onEnd)
    return Effect.sync(cleanup)
  })

/**
 * Reads and decodes the body with `decode` (a `GoJson.decoder` of the endpoint's request schema);
 * the handler gets the decoded body, or the request gets `413` or `400 Invalid request`.
 */
export const withBody = <A>(
  ctx: AppContext,
  request: Request,
  decode: (text: string) => Option.Option<A>,
  handle: (body: A) => Effect.Effect<Response>
): Effect.Effect<Response> =>
  Effect.matchEffect(readBody(request, ctx.maxBodyBytes), {
    onFailure: () => Effect.succeed(tooLarge),
    onSuccess: (text) => Option.match(decode(text), { onNone: () => Effect.succeed(invalidRequest), onSome: handle })
  })

/** Runs `handle` for requests of `method`; any other method gets `405`. */
export const onlyMethod = (
  method: "GET" | "POST",
  request: Request,
  handle: () => Effect.Effect<Response>
): Effect.Effect<Response> => request.method === method ? handle() : Effect.succeed(methodNotAllowed)

/** A query parameter as Go's `r.URL.Query().Get` reads it (`""` when absent). */
export const queryParam = (request: Request, name: string): string => {
  const query = request.url.indexOf("?")
  return query === -1 ? "" : new URLSearchParams(request.url.slice(query + 1)).get(name) ?? ""
}

/**
 * Writes `reply` to the request's response, as `@effect/platform`'s Node server does (same status,
 * headers and body bytes; no body for `HEAD`), at once; what is left is the effect returned: a
 * stream body piped, interruptibly, so that a client that goes away stops it.
 */
export const write = (request: Request, reply: Response): Effect.Effect<void> | undefined => {
  const response = request.response
  if (response.writableEnded) return undefined
  response.writeHead(reply.status, reply.headers)
  const body = reply.body
  if (request.method === "HEAD") {
    response.end()
    return undefined
  }
  switch (body._tag) {
    case "Uint8Array":
      response.end(body.body)
      return undefined
    case "Raw":
      if (body.body instanceof Readable) return pipeTo(body.body, response)
      response.end(body.body)
      return undefined
    case "Stream":
      return writeStream(response, body.stream)
    default:
      response.end()
      return undefined
  }
}

/**
 * `source` piped to the response until the response closes, as `stream.pipeline` does it (a read
 * error destroys the connection: the client sees a truncated body; a client gone destroys the
 * source), without the abort controller and `AbortError` that each `pipeline` call makes.
 * Interruptible: interrupted, it destroys both.
 */
const pipeTo = (source: Readable, response: Http.ServerResponse): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (response.destroyed) {
      source.destroy()
      return resume(Effect.void)
    }
    source.on("error", () => response.destroy())
    response.on("error", () => {})
    response.once("close", () => {
      source.destroy()
      resume(Effect.void)
    })
    source.pipe(response)
    return Effect.sync(() => {
      source.destroy()
      response.destroy()
    })
  }).pipe(Effect.interruptible)

/** The chunks of `stream` written as they come, waiting for `drain` when the socket is full. */
const writeStream = <E>(response: Http.ServerResponse, stream: Stream.Stream<Uint8Array, E>): Effect.Effect<void> => {
  const drained = Effect.unsafeMakeLatch()
  response.on("drain", () => drained.unsafeOpen())
  return stream.pipe(
    Stream.runForEachChunk((chunk) => {
      let full = false
      for (const bytes of Chunk.toReadonlyArray(chunk)) full = !response.write(bytes)
      if (!full) return Effect.void
      drained.unsafeClose()
      return drained.await
    }),
    Effect.interruptible,
    Effect.ignore,
    // a failed stream ends the body where it is, as the platform does
    Effect.ensuring(Effect.sync(() => response.end()))
  )
}
