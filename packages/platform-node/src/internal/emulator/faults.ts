/**
 * The emulator's fault switches and request log: failing or delaying the next matching requests,
 * failing the next deployment, the bounded record of received requests, and the admin routes
 * (`/_emulator/...`) that expose the switches over HTTP.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type {
  DelayOptions,
  DeploymentFaultOptions,
  FailOptions,
  KoyebEmulatorShape,
  RecordedRequest,
  RequestMatcher
} from "../../KoyebEmulator.js"
import { body, invalidArgument, json, notFound, queryRecord, rawUrl } from "./http.js"
import { codeForStatus, errorBody } from "./render.js"

/** The fault switches and the request log. */
export interface Faults {
  readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
  readonly clearRequests: Effect.Effect<void>
  readonly failNext: (options: FailOptions) => Effect.Effect<void>
  readonly delay: (options: DelayOptions) => Effect.Effect<void>
  readonly failNextDeployment: (options?: DeploymentFaultOptions) => Effect.Effect<void>
  readonly clearFaults: Effect.Effect<void>
  /** Takes the fault armed for the next deployment, if any. */
  readonly nextDeploymentFault: Effect.Effect<DeploymentFaultOptions | undefined>
  /**
   * Records the current request (admin calls excepted), then applies the first matching delay and
   * failure, like Koyeb's edge does before authentication: the response when the request fails.
   */
  readonly edge: Effect.Effect<
    Option.Option<HttpServerResponse.HttpServerResponse>,
    never,
    HttpServerRequest.HttpServerRequest
  >
}

interface Rule<A> {
  readonly matcher: RequestMatcher
  readonly remaining: number
  readonly value: A
}

interface Failure {
  readonly status: number
  readonly code: string
  readonly message: string
  readonly retryAfterSeconds: number | undefined
}

const MAX_RECORDED = 10_000

/** Whether the path starts with the admin prefix. */
export const isAdmin = (path: string) => path.startsWith("/_emulator/")

const matches = (matcher: RequestMatcher, method: string, path: string) =>
  (matcher.method === undefined || matcher.method.toUpperCase() === method) &&
  (matcher.path === undefined ||
    (typeof matcher.path === "string" ? path.startsWith(matcher.path) : matcher.path.test(path)))

/** Uses up one of the first rule matching the request, if any. */
const take = <A>(rules: Ref.Ref<ReadonlyArray<Rule<A>>>, method: string, path: string) =>
  Ref.modify(rules, (all): [Option.Option<A>, ReadonlyArray<Rule<A>>] => {
    const index = all.findIndex((r) => r.remaining > 0 && matches(r.matcher, method, path))
    if (index < 0) return [Option.none(), all]
    const rule = all[index]!
    return [Option.some(rule.value), all.map((r, i) => (i === index ? { ...r, remaining: r.remaining - 1 } : r))]
  })

const rule = <A>(matcher: RequestMatcher, remaining: number, value: A): Rule<A> => ({
  matcher: { method: matcher.method, path: matcher.path },
  remaining,
  value
})

/** Fresh switches (none armed) and an empty log. */
export const make: Effect.Effect<Faults> = Effect.gen(function*() {
  const recorded = yield* Ref.make(Chunk.empty<RecordedRequest>())
  const failures = yield* Ref.make<ReadonlyArray<Rule<Failure>>>([])
  const delays = yield* Ref.make<ReadonlyArray<Rule<Duration.Duration>>>([])
  const deploymentFaults = yield* Ref.make<ReadonlyArray<DeploymentFaultOptions>>([])

  const record = (request: HttpServerRequest.HttpServerRequest, target: URL) =>
    Effect.gen(function*() {
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(request.headers)) {
        if (name !== "authorization") headers[name] = value
      }
      const path = target.pathname
      const entry: RecordedRequest = {
        method: request.method,
        path,
        query: queryRecord(target.searchParams),
        headers,
        body: path === "/v1" || path.startsWith("/v1/") ? yield* body : undefined
      }
      // Bounded, so a long-running `effect-koyeb emulator` does not grow without end.
      yield* Ref.update(recorded, (all) => Chunk.takeRight(Chunk.append(all, entry), MAX_RECORDED))
    })

  const edge = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const target = new URL(yield* rawUrl, "http://emulator")
    const path = target.pathname
    if (isAdmin(path)) return Option.none()
    yield* record(request, target)
    const delay = yield* take(delays, request.method, path)
    if (Option.isSome(delay)) yield* Effect.sleep(delay.value)
    return Option.map(
      yield* take(failures, request.method, path),
      (failure) =>
        HttpServerResponse.unsafeJson(errorBody(failure.status, failure.code, failure.message), {
          status: failure.status,
          headers: failure.retryAfterSeconds === undefined
            ? undefined
            : { "retry-after": String(failure.retryAfterSeconds) }
        })
    )
  })

  return {
    requests: Effect.map(Ref.get(recorded), Chunk.toReadonlyArray),
    clearRequests: Ref.set(recorded, Chunk.empty()),
    failNext: (o) =>
      Ref.update(failures, (all) => [
        ...all,
        rule(o, o.times ?? 1, {
          status: o.status,
          code: o.code ?? codeForStatus(o.status),
          message: o.message ?? `Emulated failure (${o.status})`,
          retryAfterSeconds: o.retryAfter === undefined
            ? undefined
            : Math.ceil(Duration.toMillis(Duration.decode(o.retryAfter)) / 1000)
        })
      ]),
    delay: (o) =>
      Ref.update(delays, (all) => [...all, rule(o, o.times ?? Number.POSITIVE_INFINITY, Duration.decode(o.duration))]),
    failNextDeployment: (o) => Ref.update(deploymentFaults, (all) => [...all, o ?? {}]),
    clearFaults: Effect.all([Ref.set(failures, []), Ref.set(delays, []), Ref.set(deploymentFaults, [])], {
      discard: true
    }),
    nextDeploymentFault: Ref.modify(deploymentFaults, (all) => [all[0], all.slice(1)]),
    edge
  } satisfies Faults
})

// ---------------------------------------------------------------------------------------------
// Admin routes

const adminBody = Effect.map(body, (b) => (typeof b === "object" && b !== null ? b as Record<string, unknown> : {}))
const num = (u: unknown) => (typeof u === "number" ? u : undefined)
const str = (u: unknown) => (typeof u === "string" ? u : undefined)
const required = (field: string) => invalidArgument([{ field, description: "is required" }])
const ok = () => json({})

/** An admin call whose body is read as a JSON object (anything else reads as `{}`); a switch's fields of the wrong type read as absent. */
const withBody = <E, R>(
  handle: (body: Record<string, unknown>) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
) => Effect.flatMap(adminBody, handle)

/** `/_emulator/...`: the fault switches and the introspection of `emulator` over HTTP. */
export const adminRoutes = (emulator: KoyebEmulatorShape) =>
  HttpRouter.empty.pipe(
    HttpRouter.post(
      "/_emulator/faults/fail",
      withBody((b) => {
        const status = num(b.status)
        const retry = num(b.retry_after_seconds)
        return status === undefined ? Effect.succeed(required("status")) : emulator.failNext({
          status,
          times: num(b.times),
          method: str(b.method),
          path: str(b.path),
          code: str(b.code),
          message: str(b.message),
          retryAfter: retry === undefined ? undefined : Duration.seconds(retry)
        }).pipe(Effect.as(ok()))
      })
    ),
    HttpRouter.post(
      "/_emulator/faults/delay",
      withBody((b) => {
        const millis = num(b.millis)
        return millis === undefined ? Effect.succeed(required("millis")) : emulator.delay({
          duration: Duration.millis(millis),
          times: num(b.times),
          method: str(b.method),
          path: str(b.path)
        }).pipe(Effect.as(ok()))
      })
    ),
    HttpRouter.post(
      "/_emulator/faults/fail-next-deployment",
      withBody((b) => {
        const after = num(b.after_healthy_millis)
        return emulator.failNextDeployment({
          afterHealthy: after === undefined ? undefined : Duration.millis(after),
          message: str(b.message)
        }).pipe(Effect.as(ok()))
      })
    ),
    HttpRouter.del("/_emulator/faults", Effect.as(emulator.clearFaults, ok())),
    HttpRouter.post(
      "/_emulator/deployments/:id/fail",
      withBody((b) =>
        Effect.flatMap(HttpRouter.params, ({ id }) => emulator.failDeployment(id ?? "", str(b.message))).pipe(
          Effect.as(ok()),
          Effect.catchTag("SandboxNotFound", () => Effect.succeed(notFound("Deployment not found")))
        )
      )
    ),
    HttpRouter.get("/_emulator/state", Effect.map(emulator.state, (s) => json(s))),
    HttpRouter.get("/_emulator/requests", Effect.map(emulator.requests, (requests) => json({ requests }))),
    HttpRouter.del("/_emulator/requests", Effect.as(emulator.clearRequests, ok()))
  )
