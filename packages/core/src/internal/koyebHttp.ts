/**
 * The HTTP policy of the Koyeb control plane. Every request carries the bearer token (only ever in
 * the `Authorization` header) and asks for JSON. Each attempt, reply body included, is bounded by
 * the request timeout. Replies are classified into the typed errors: 401/403 `Unauthorized`, 404
 * `SandboxNotFound` (when the call names a sandbox), 429 `RateLimited`, others `ApiError`;
 * failures without a reply are `ControlPlaneError`s. Idempotent calls (GET, PUT, DELETE) are
 * retried on 429, 5xx, transport failures and timeouts, after a jittered exponential backoff or
 * the server's `Retry-After`. A POST is never retried: it may have reached the server even when
 * its reply was lost.
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { flow } from "effect/Function"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { ErrorBody } from "../KoyebWire.js"
import {
  ApiError,
  ControlPlaneError,
  type ControlPlaneFailure,
  RateLimited,
  SandboxNotFound,
  Unauthorized
} from "../SandboxError.js"

/** What the HTTP policy needs from the control plane's options, resolved. */
export interface Settings {
  /** API host, without a trailing slash. */
  readonly host: string
  readonly token: Redacted.Redacted<string>
  readonly requestTimeout: Duration.Duration
  /** Retries after the first attempt of an idempotent call. */
  readonly retryTimes: number
  /** First backoff delay, doubled on each retry. */
  readonly baseDelay: Duration.Duration
}

/** The parts of one call besides its method and path. */
export interface CallOptions {
  readonly urlParams?: Record<string, string> | undefined
  readonly body?: unknown
  /** Sandbox id reported by `SandboxNotFound` when the call answers 404. */
  readonly notFound?: string | undefined
}

/** The Koyeb REST API, one method per HTTP verb, with the policy above. */
export interface KoyebHttp {
  readonly host: string
  readonly get: <A, I>(
    path: string,
    schema: Schema.Schema<A, I>,
    options?: CallOptions
  ) => Effect.Effect<A, ControlPlaneFailure>
  readonly post: <A, I>(
    path: string,
    schema: Schema.Schema<A, I>,
    body: unknown
  ) => Effect.Effect<A, ControlPlaneFailure>
  readonly put: (path: string, body: unknown, options?: CallOptions) => Effect.Effect<void, ControlPlaneFailure>
  readonly delete: (path: string, options?: CallOptions) => Effect.Effect<void, ControlPlaneFailure>
}

/**
 * True when the call got no usable reply: the API could not be reached, did not answer in time,
 * or answered 5xx. Such a call may or may not have taken effect on the server.
 */
export const isUnavailable = (e: ControlPlaneFailure): boolean =>
  (e._tag === "ControlPlaneError" &&
    (e.reason === "Transport" || e.reason === "Timeout" || e.reason === "InvalidRequest")) ||
  (e._tag === "ApiError" && e.status >= 500)

/**
 * Parses `Retry-After` (a delay in seconds, or an HTTP date relative to `now`) into milliseconds.
 */
export const parseRetryAfter = (header: string | undefined, now: number): number | undefined => {
  if (header === undefined || header.trim() === "") return undefined
  const trimmed = header.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

// Longest Retry-After the SDK sleeps through by itself; beyond it the caller gets RateLimited.
const MAX_RETRY_AFTER = Duration.minutes(1)

/** A failed attempt worth another one, with the server's Retry-After when it sent one. */
class Retryable extends Data.TaggedError("Retryable")<{
  readonly error: ApiError | RateLimited | ControlPlaneError
  readonly retryAfter: Option.Option<Duration.Duration>
}> {}

type AttemptFailure = ControlPlaneFailure | Retryable

/** What one attempt needs to know about its call. */
interface Attempt {
  readonly method: string
  readonly url: string
  /** Read the body of a 2xx reply within the attempt (the call decodes it). */
  readonly readBody: boolean
  readonly notFound: string | undefined
}

const canRetry = (e: AttemptFailure): boolean =>
  e._tag === "Retryable" &&
  Option.match(e.retryAfter, {
    onNone: () => true,
    onSome: (delay) => Duration.lessThanOrEqualTo(delay, MAX_RETRY_AFTER)
  })

/**
 * The pauses between attempts: `baseDelay` doubled on each retry, times a random factor between
 * 0.5 and 1.5, in whole milliseconds; the server's Retry-After instead when it sent one.
 */
const retrySchedule = (baseDelay: Duration.Duration): Schedule.Schedule<AttemptFailure, AttemptFailure> =>
  Schedule.exponential(baseDelay, 2).pipe(
    Schedule.jitteredWith({ min: 0.5, max: 1.5 }),
    Schedule.zipRight(Schedule.identity<AttemptFailure>()),
    Schedule.modifyDelay((failure, backoff) =>
      Option.getOrElse(
        failure._tag === "Retryable" ? failure.retryAfter : Option.none(),
        () => Duration.millis(Math.round(Duration.toMillis(backoff)))
      )
    )
  )

/** Builds the API over the `HttpClient` of the environment. */
export const make = (settings: Settings): Effect.Effect<KoyebHttp, never, HttpClient.HttpClient> =>
  Effect.map(HttpClient.HttpClient, (httpClient) => {
    const authorized = HttpClient.mapRequest(
      httpClient,
      flow(HttpClientRequest.bearerToken(settings.token), HttpClientRequest.acceptJson)
    )
    const schedule = retrySchedule(settings.baseDelay)

    /** Sends the call: the 2xx reply (its body read when `readBody`), or the typed failure. */
    const send = (
      method: "GET" | "POST" | "PUT" | "DELETE",
      path: string,
      options: CallOptions,
      readBody: boolean
    ): Effect.Effect<HttpClientResponse.HttpClientResponse, ControlPlaneFailure> => {
      const url = settings.host + path
      let request = HttpClientRequest.make(method)(url)
      if (options.urlParams) request = HttpClientRequest.setUrlParams(request, options.urlParams)
      if (options.body !== undefined) request = HttpClientRequest.bodyUnsafeJson(request, options.body)
      const once = HttpClient.transformResponse(
        authorized,
        (exchange) => attempt(exchange, { method, url, readBody, notFound: options.notFound }, settings.requestTimeout)
      )
      // Attempts fail only with the errors above, which retryTransient's own transient test never
      // matches: `canRetry` alone decides.
      const client = method === "POST"
        ? once
        : HttpClient.retryTransient(once, {
          mode: "errors-only",
          while: canRetry,
          schedule,
          times: settings.retryTimes
        })
      return client.execute(request).pipe(Effect.catchTag("Retryable", (retryable) => Effect.fail(retryable.error)))
    }

    return {
      host: settings.host,
      get: (path, schema, options = {}) =>
        Effect.flatMap(send("GET", path, options, true), decode(schema, "GET", settings.host + path)),
      post: (path, schema, body) =>
        Effect.flatMap(send("POST", path, { body }, true), decode(schema, "POST", settings.host + path)),
      put: (path, body, options = {}) => Effect.asVoid(send("PUT", path, { ...options, body }, false)),
      delete: (path, options = {}) => Effect.asVoid(send("DELETE", path, options, false))
    }
  })

/** One attempt: the exchange, classified, bounded by the request timeout. */
const attempt = (
  exchange: Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>,
  call: Attempt,
  requestTimeout: Duration.Duration
): Effect.Effect<HttpClientResponse.HttpClientResponse, AttemptFailure> => {
  const { method, url } = call
  return exchange.pipe(
    Effect.mapError((e): AttemptFailure =>
      e._tag === "RequestError" && e.reason !== "Transport"
        ? new ControlPlaneError({ reason: "InvalidRequest", detail: e.description ?? e.reason, method, url })
        : new Retryable({
          error: new ControlPlaneError({
            reason: "Transport",
            detail: e.description ?? "could not reach the API",
            method,
            url
          }),
          retryAfter: Option.none()
        })
    ),
    Effect.flatMap((response) => classify(response, call)),
    Effect.timeoutFail({
      duration: requestTimeout,
      onTimeout: () =>
        new Retryable({
          error: new ControlPlaneError({
            reason: "Timeout",
            detail: `no reply within ${Duration.format(requestTimeout)}`,
            method,
            url
          }),
          retryAfter: Option.none()
        })
    })
  )
}

const notJson = (status: number, method: string, url: string) =>
  new ApiError({ status, code: "Decode", detail: "the reply is not JSON", method, url })

/**
 * A 2xx reply passes, its body read when the call decodes it, so that the timeout and the retries
 * cover the body too (the responses of `@effect/platform` clients keep their text, which `decode`
 * then reads again); any other status fails with its typed error.
 */
const classify = (
  response: HttpClientResponse.HttpClientResponse,
  call: Attempt
): Effect.Effect<HttpClientResponse.HttpClientResponse, AttemptFailure> => {
  const { method, url } = call
  const status = response.status
  if (status >= 200 && status < 300) {
    return call.readBody
      ? Effect.as(Effect.mapError(response.text, () => notJson(status, method, url)), response)
      : Effect.succeed(response)
  }
  return response.text.pipe(
    Effect.orElseSucceed(() => ""),
    Effect.flatMap((text): Effect.Effect<never, AttemptFailure> => {
      const body = Option.getOrElse(
        Schema.decodeUnknownOption(Schema.parseJson(ErrorBody))(text),
        (): ErrorBody => ({})
      )
      const fields = body.fields?.map((f) => `${f.field ?? "?"}: ${f.description ?? ""}`).join("; ")
      const detail = [body.message || text.slice(0, 200) || `HTTP ${status}`, fields].filter(Boolean).join(" — ")
      const code = body.code === undefined ? "" : String(body.code)
      if (status === 401 || status === 403) return Effect.fail(new Unauthorized({ detail }))
      if (status === 404 && call.notFound !== undefined) return Effect.fail(new SandboxNotFound({ id: call.notFound }))
      const error = new ApiError({ status, code, detail, method, url })
      if (status !== 429 && status < 500) return Effect.fail(error)
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const retryAfterMillis = parseRetryAfter(response.headers["retry-after"], now)
        return Effect.fail(
          new Retryable({
            error: status === 429
              ? new RateLimited({ method, url, ...(retryAfterMillis === undefined ? {} : { retryAfterMillis }) })
              : error,
            retryAfter: Option.map(Option.fromNullable(retryAfterMillis), Duration.millis)
          })
        )
      })
    })
  )
}

/** Decodes the (already read) body of a 2xx reply; a failure names the paths, never the values. */
const decode = <A, I>(schema: Schema.Schema<A, I>, method: string, url: string) =>
(
  response: HttpClientResponse.HttpClientResponse
): Effect.Effect<A, ApiError> =>
  response.json.pipe(
    Effect.mapError(() => notJson(response.status, method, url)),
    Effect.flatMap((json) =>
      Schema.decodeUnknown(schema)(json).pipe(
        // Paths only: the values may hold secrets (a definition's env).
        Effect.mapError((e) =>
          new ApiError({
            status: response.status,
            code: "Decode",
            detail: `unexpected reply at ${
              ParseResult.ArrayFormatter.formatErrorSync(e).map((i) => i.path.join(".") || "<root>").join(", ")
            }`,
            method,
            url
          })
        )
      )
    )
  )
