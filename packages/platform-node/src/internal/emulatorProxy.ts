/**
 * Streaming HTTP forwarding for the emulator's gateway: the request body is piped to the target
 * and the target's response body is piped back as it arrives (SSE is never buffered). When the
 * client goes away the upstream connection is destroyed, so the executor sees the disconnect.
 *
 * @internal
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Headers from "@effect/platform/Headers"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Http from "node:http"
import { errorBody } from "./emulatorState.js"

const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host"
])

const endToEnd = (headers: Http.IncomingHttpHeaders): Record<string, string | Array<string>> => {
  const out: Record<string, string | Array<string>> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !hopByHop.has(name)) out[name] = value
  }
  return out
}

/** Forwards the current request to `http://<hostname>:<port><path>` (path includes the query). */
export const forward = (
  request: HttpServerRequest.HttpServerRequest,
  target: { readonly hostname: string; readonly port: number; readonly path: string }
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.async<HttpServerResponse.HttpServerResponse>((resume) => {
    const incoming = NodeHttpServerRequest.toIncomingMessage(request)
    let done = false
    const upstream = Http.request({
      hostname: target.hostname,
      port: target.port,
      method: incoming.method ?? "GET",
      path: target.path,
      headers: endToEnd(incoming.headers),
      agent: false
    }, (response) => {
      done = true
      resume(Effect.succeed(HttpServerResponse.raw(response, {
        status: response.statusCode ?? 502,
        headers: Headers.fromInput(endToEnd(response.headers))
      })))
    })
    // a target that replied before reading the whole body (or failed) reads no more of it: the
    // rest is dropped, so the client's request completes and its connection stays usable
    upstream.once("close", () => {
      incoming.unpipe(upstream)
      incoming.resume()
    })
    upstream.on("error", (cause) => {
      if (done) return
      done = true
      resume(Effect.succeed(HttpServerResponse.unsafeJson(
        errorBody(502, "BAD_GATEWAY", `Sandbox unreachable: ${cause.message}`),
        { status: 502 }
      )))
    })
    incoming.pipe(upstream)
    return Effect.sync(() => upstream.destroy())
  })
