/**
 * The emulator's sandbox gateway. `/koyeb-sandbox/<endpoint>` with `X-Routing-Key` goes to that
 * deployment's executor as `/<endpoint>`; `/r/<routing key>/<path>` goes to its proxy port; a
 * request without a routing key whose `Host` is an app domain is routed like Koyeb's edge does.
 * Forwarding streams both ways: the request body is piped to the target and the target's
 * response is piped back as it arrives (SSE is never buffered); when the client goes away the
 * upstream connection is destroyed, so the executor sees the disconnect. Each request routed to a
 * service is its traffic: the idle timer of `deployments` counts from the last one, and a request
 * to a sleeping service wakes it and waits (bounded) until it is HEALTHY, as Koyeb's edge does;
 * an exchange still open (a stream) is held traffic: the service does not fall asleep under it.
 *
 * @internal
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Headers from "@effect/platform/Headers"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Http from "node:http"
import { endToEnd } from "../endToEnd.js"
import type { Deployments } from "./deployments.js"
import { json, notFound, param, rawUrl } from "./http.js"
import { errorBody } from "./render.js"
import * as State from "./state.js"
import type { Store } from "./state.js"

/**
 * Forwards the current request to `http://<hostname>:<port><path>` (path includes the query);
 * `release` runs once the exchange is over (response read to its end, failed, or abandoned).
 */
const forward = (
  request: HttpServerRequest.HttpServerRequest,
  target: { readonly hostname: string; readonly port: number; readonly path: string },
  release: () => void
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
      release()
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

/**
 * The gateway's handlers over the emulator's store; every request routed to a service counts as its
 * traffic, and `wake` gives the executor of a deployment, waking it first when it sleeps.
 */
export const make = (store: Ref.Ref<Store>, { hold, wake }: Pick<Deployments, "wake" | "hold">) => {
  const active = (serviceId: string) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.update(store, State.touchService(serviceId, now)))

  const forwardTo = (serviceId: string, port: number, path: string) =>
    Effect.flatMap(
      HttpServerRequest.HttpServerRequest,
      (request) =>
        forward(
          request,
          { hostname: "127.0.0.1", port, path: path.startsWith("/") ? path : `/${path}` },
          hold(serviceId)
        )
    )

  const unavailable = () => json(errorBody(503, "UNAVAILABLE", "The sandbox is not running"), 503)

  /** Requests without a routing key: route by `Host` when it is an app domain, as Koyeb's edge does. */
  const byDomain = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const host = (request.headers.host ?? "").replace(/:\d+$/, "")
    const s = yield* Ref.get(store)
    // With TLS, domains carry the emulator's port.
    const app = Array.from(s.apps.values()).find((a) => a.domain.replace(/:\d+$/, "") === host)
    if (app === undefined) return notFound("Not Found")
    const service = Array.from(s.services.values()).find((s) => s.appId === app.id)
    if (service === undefined) return unavailable()
    yield* active(service.id)
    const executor = yield* wake(service.activeDeploymentId)
    if (executor === undefined) return unavailable()
    const path = yield* rawUrl
    return path.startsWith("/koyeb-sandbox/")
      ? yield* forwardTo(service.id, executor.port, path.slice("/koyeb-sandbox".length))
      : yield* forwardTo(service.id, executor.proxyPort, path)
  })

  /** `/koyeb-sandbox/<endpoint>`, by `X-Routing-Key` (or by domain without one). */
  const executor = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const key = request.headers["x-routing-key"]
    if (key === undefined) return yield* byDomain
    const d = State.routed(yield* Ref.get(store), key)
    if (d === undefined) return notFound("No sandbox for this routing key")
    yield* active(d.serviceId)
    const executor = yield* wake(d.id)
    if (executor === undefined) return unavailable()
    return yield* forwardTo(d.serviceId, executor.port, (yield* rawUrl).slice("/koyeb-sandbox".length))
  })

  /** `/r/<routing key>/<path>`: the port bound in the sandbox. */
  const exposed = Effect.gen(function*() {
    const key = yield* param("key")
    const d = State.routed(yield* Ref.get(store), key)
    if (d === undefined) return notFound("No sandbox for this routing key")
    yield* active(d.serviceId)
    const executor = yield* wake(d.id)
    if (executor === undefined) return unavailable()
    return yield* forwardTo(d.serviceId, executor.proxyPort, (yield* rawUrl).slice(`/r/${key}`.length))
  })

  return { byDomain, executor, exposed }
}
