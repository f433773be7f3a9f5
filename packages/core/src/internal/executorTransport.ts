/**
 * The HTTP side of the executor client: authenticated requests to one executor, bounded calls
 * that hand status and body to a reply handler, 401 as `Unauthorized` everywhere, body streams and
 * SSE streams checked for their status before any parsing, and the stock file endpoints'
 * "200 + error in the body" replies.
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { ExecutorClientOptions, FileEndpointFailure } from "../ExecutorClient.js"
import type * as ExecutorWire from "../ExecutorWire.js"
import { ExecutorError, type ExecutorFailure, type FileNotFound, FilesystemError } from "../SandboxError.js"
import type { Unauthorized } from "../SandboxError.js"
import { timeoutDetached } from "./bounded.js"
import {
  decodeFile,
  decodeSuccess,
  protocolError,
  statusError,
  transportError,
  unauthorized
} from "./executorReplies.js"
import * as FileErrors from "./fileErrors.js"
import * as Sse from "./sse.js"

const defaultRequestTimeout = Duration.seconds(60)
const defaultMaxEventSize = 16 * 1024 * 1024

/** Handles the status and whole body of a reply other than 401. */
type OnReply<A, E> = (status: number, body: string) => Effect.Effect<A, E>

/** The requests of one executor client, bound to its options. */
// The JSON body each endpoint takes: what `ExecutorWire` defines for the servers that decode them.
interface RequestBodies {
  readonly "/run": typeof ExecutorWire.CommandRequest.Encoded
  readonly "/run_streaming": typeof ExecutorWire.CommandRequest.Encoded
  readonly "/start_process": typeof ExecutorWire.CommandRequest.Encoded
  readonly "/write_file": typeof ExecutorWire.WriteFileRequest.Encoded
  readonly "/read_file": typeof ExecutorWire.PathRequest.Encoded
  readonly "/delete_file": typeof ExecutorWire.PathRequest.Encoded
  readonly "/delete_dir": typeof ExecutorWire.PathRequest.Encoded
  readonly "/make_dir": typeof ExecutorWire.PathRequest.Encoded
  readonly "/list_dir": typeof ExecutorWire.PathRequest.Encoded
  readonly "/kill_process": typeof ExecutorWire.KillProcessRequest.Encoded
  readonly "/bind_port": typeof ExecutorWire.BindPortRequest.Encoded
  readonly "/spawn": typeof ExecutorWire.SpawnRequest.Encoded
  readonly "/stdin_end": typeof ExecutorWire.SpawnControlRequest.Encoded
  readonly "/signal": typeof ExecutorWire.SpawnControlRequest.Encoded
  readonly "/resize": typeof ExecutorWire.ResizeRequest.Encoded
  // The executor ignores this body.
  readonly "/unbind_port": Record<string, never>
}

type FileEndpoint = "/write_file" | "/read_file" | "/delete_file" | "/delete_dir" | "/make_dir" | "/list_dir"

export const makeTransport = (httpClient: HttpClient.HttpClient, options: ExecutorClientOptions) => {
  const baseUrl = options.url.replace(/\/+$/, "")
  const requestTimeout = options.requestTimeout === undefined
    ? defaultRequestTimeout
    : Duration.decode(options.requestTimeout)
  const maxEventSize = options.maxEventSize ?? defaultMaxEventSize
  const routingKey = options.routingKey
  const client = httpClient.pipe(
    HttpClient.mapRequest((request) => {
      // bearerToken reads the Redacted value here, when the request is made
      const authorized = HttpClientRequest.bearerToken(request, options.secret)
      return routingKey === undefined
        ? authorized
        : HttpClientRequest.setHeader(authorized, "X-Routing-Key", routingKey)
    }),
    HttpClient.withTracerPropagation(false),
    // Each operation has its span (`ExecutorClient.*`); a transport span per request would double
    // the cost of small calls, and its result keeps the request (the secret header) alive.
    HttpClient.withTracerDisabledWhen(() => true)
  )

  const url = (endpoint: string): string => baseUrl + endpoint

  const post = <E extends keyof RequestBodies>(endpoint: E, body: RequestBodies[E]) =>
    HttpClientRequest.bodyUnsafeJson(HttpClientRequest.post(url(endpoint)), body)

  // A request's status and whole body (no deadline).
  const exchange = (endpoint: string, request: HttpClientRequest.HttpClientRequest) =>
    client.execute(request).pipe(
      Effect.flatMap((response) => Effect.map(response.text, (body) => [response.status, body] as const)),
      Effect.mapError(transportError(endpoint))
    )

  // 401 is `Unauthorized` on every endpoint; any other status goes to `onReply`.
  const authorized =
    <A, E>(endpoint: string, onReply: OnReply<A, E>) =>
    ([status, body]: readonly [number, string]): Effect.Effect<A, E | Unauthorized> =>
      status === 401 ? Effect.fail(unauthorized(endpoint)) : onReply(status, body)

  // One bounded request: status and whole body, or a typed failure.
  const call = <A, E>(
    endpoint: string,
    request: HttpClientRequest.HttpClientRequest,
    onReply: OnReply<A, E>
  ): Effect.Effect<A, E | ExecutorFailure> =>
    exchange(endpoint, request).pipe(
      // the deadline must also hold in finalizers (kill and cleanup requests)
      (self) =>
        timeoutDetached(self, {
          duration: requestTimeout,
          onTimeout: () =>
            new ExecutorError({
              reason: "Transport",
              endpoint,
              detail: `no complete reply within ${Duration.format(requestTimeout)}`
            })
        }),
      Effect.flatMap(authorized(endpoint, onReply))
    )

  const sseOptions = <A, E>(endpoint: string, handler: Sse.Handler<A, E | ExecutorError>) => ({
    maxEventSize,
    handler,
    onTooLarge: () => protocolError(endpoint, `an event exceeded ${maxEventSize} characters`),
    onEnd: () => protocolError(endpoint, "stream ended without complete")
  })

  // A 200 body as it arrives; any other status is read whole and failed by `onError`. No deadline.
  const bodyStream = <E>(
    endpoint: string,
    request: HttpClientRequest.HttpClientRequest,
    onError: OnReply<never, E>
  ): Stream.Stream<Uint8Array, E | ExecutorFailure> =>
    client.execute(request).pipe(
      Effect.mapError(transportError(endpoint)),
      Effect.flatMap((response) =>
        response.status === 200
          ? Effect.succeed(Stream.mapError(response.stream, transportError(endpoint)))
          : response.text.pipe(
            Effect.mapError(transportError(endpoint)),
            Effect.flatMap((body) => authorized(endpoint, onError)([response.status, body]))
          )
      ),
      Stream.unwrap
    )

  // An SSE request: the status is checked before any parsing; no deadline.
  const stream = <A, E>(
    endpoint: string,
    request: HttpClientRequest.HttpClientRequest,
    onError: (status: number, body: string) => E | ExecutorError,
    handler: Sse.Handler<A, E | ExecutorError>
  ): Stream.Stream<A, E | ExecutorFailure> =>
    bodyStream(endpoint, request, (status, body) => Effect.fail(onError(status, body))).pipe(
      Stream.decodeText(),
      Stream.pipeThroughChannel(Sse.decode(sseOptions(endpoint, handler)))
    )

  // The stock file endpoints' "200 + error in the body" replies.
  const fileReply = <A>(
    endpoint: string,
    path: string,
    request: HttpClientRequest.HttpClientRequest,
    onSuccess: (reply: ExecutorWire.FileReply) => A
  ): Effect.Effect<A, FileEndpointFailure> =>
    call(endpoint, request, (status, text) =>
      status !== 200
        ? Effect.fail(statusError(endpoint, status, text))
        : Effect.flatMap(decodeFile(endpoint, text), (reply): Effect.Effect<A, FileNotFound | FilesystemError> => {
          if (reply.error !== undefined && reply.error !== "") {
            return Effect.fail(FileErrors.classify(path, reply.error))
          }
          if (reply.success === false) {
            return Effect.fail(
              new FilesystemError({ path, reason: "Unknown", detail: `${endpoint} reported failure without an error` })
            )
          }
          return Effect.succeed(onSuccess(reply))
        }))

  // A file endpoint called with a JSON body.
  const fileCall = <A, E extends FileEndpoint>(
    endpoint: E,
    path: string,
    body: RequestBodies[E],
    onSuccess: (reply: ExecutorWire.FileReply) => A
  ): Effect.Effect<A, FileEndpointFailure> => fileReply(endpoint, path, post(endpoint, body), onSuccess)

  // A `{success, error?}` reply: `success: false` is a protocol error.
  const successReply = (endpoint: string, body: string): Effect.Effect<void, ExecutorError> =>
    Effect.flatMap(decodeSuccess(endpoint, body), (reply) =>
      reply.success === false
        ? Effect.fail(protocolError(endpoint, `the executor reported: ${reply.error ?? "failure"}`))
        : Effect.void)

  return { url, post, exchange, authorized, call, sseOptions, bodyStream, stream, fileReply, fileCall, successReply }
}
