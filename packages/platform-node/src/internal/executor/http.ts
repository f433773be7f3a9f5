/**
 * The HTTP plumbing of the executor's endpoints, as Go's `net/http` and the stock handlers do it:
 * plain-text errors (`http.Error`), JSON replies (`json.Encoder`), bounded request bodies decoded
 * with the request schemas, and query parameters.
 *
 * @internal
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { AppContext } from "./context.js"

/** A reply of an endpoint. */
export type Response = HttpServerResponse.HttpServerResponse

/** A request of an endpoint. */
export type Request = HttpServerRequest.HttpServerRequest

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

/** Reads the body as UTF-8 text, refusing (without buffering) one over `max` bytes. */
const readBody = (request: Request, max: number): Effect.Effect<string, BodyTooLarge> =>
  Effect.async<string, BodyTooLarge>((resume) => {
    const incoming = NodeHttpServerRequest.toIncomingMessage(request)
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
      resume(Effect.succeed(Buffer.concat(chunks, size).toString("utf8")))
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
