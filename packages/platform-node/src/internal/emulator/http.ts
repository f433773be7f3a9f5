/**
 * Request and response helpers shared by the emulator's routes, gateway and fault switches.
 *
 * @internal
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { errorBody, invalidArgumentBody } from "./render.js"
import type { FieldViolation } from "./validation.js"

/** A JSON response. */
export const json = (body: unknown, status = 200): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(body, { status })

/** Koyeb's 404 `NOT_FOUND`. */
export const notFound = (message: string) => json(errorBody(404, "NOT_FOUND", message), 404)

/** Koyeb's 400 `INVALID_ARGUMENT` with the rejected fields. */
export const invalidArgument = (fields: ReadonlyArray<FieldViolation>) => json(invalidArgumentBody(fields), 400)

const parseBody = (text: string): unknown => {
  if (text === "") return undefined
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** The request body as JSON (the raw text if it is not JSON, undefined when empty or unreadable). */
export const body = Effect.flatMap(
  HttpServerRequest.HttpServerRequest,
  (request) => request.text.pipe(Effect.map(parseBody), Effect.orElseSucceed(() => undefined))
)

/** The request target as received (path and query). */
export const rawUrl = Effect.map(
  HttpServerRequest.HttpServerRequest,
  (request) => NodeHttpServerRequest.toIncomingMessage(request).url ?? "/"
)

/** The query parameters. */
export const query = Effect.map(rawUrl, (raw) => new URL(raw, "http://emulator").searchParams)

/** A path parameter of the route ("" when absent). */
export const param = (name: string) => Effect.map(HttpRouter.params, (p) => p[name] ?? "")

/** `limit` (default 100) and `offset` (default 0) of a list call. */
export const page = (q: URLSearchParams) => ({
  limit: Math.max(0, Number(q.get("limit") ?? 100) || 100),
  offset: Math.max(0, Number(q.get("offset") ?? 0) || 0)
})

/** Query parameters as a record; a repeated parameter gives an array. */
export const queryRecord = (params: URLSearchParams): Record<string, string | ReadonlyArray<string>> => {
  const out: Record<string, string | Array<string>> = {}
  for (const key of new Set(params.keys())) {
    const all = params.getAll(key)
    out[key] = all.length === 1 ? all[0]! : all
  }
  return out
}
