/**
 * `ControlPlane` over the Koyeb REST API (or the local emulator of its sandbox subset), built on
 * `@effect/platform` HttpClient: create (app + SANDBOX service), readiness polling, get, list,
 * delete, domain, TCP proxy and lifecycle updates, with timeouts and bounded retries of
 * idempotent calls.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import {
  ControlPlane,
  type ControlPlaneShape,
  type CreateOptions,
  type LifecycleOptions,
  type ProvisionedSandbox,
  type SandboxEndpoint,
  SandboxInfo,
  type WaitReadyOptions
} from "./ControlPlane.js"
import * as ExecutorClient from "./ExecutorClient.js"
import * as Wire from "./internal/koyebWire.js"
import { randomToken } from "./internal/shell.js"
import {
  ApiError,
  type ControlPlaneFailure,
  DeploymentFailed,
  type InvalidArgument,
  RateLimited,
  SandboxNotFound,
  Timeout,
  Unauthorized
} from "./SandboxError.js"

/**
 * The Koyeb API host used when neither an option nor `KOYEB_API_HOST` gives one.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_HOST = "https://app.koyeb.com"

/**
 * Options of the Koyeb control plane.
 *
 * @since 0.1.0
 * @category models
 */
export interface KoyebControlPlaneOptions {
  /** Koyeb API token (`KOYEB_API_TOKEN`). Sent only in the `Authorization` header. */
  readonly token: Redacted.Redacted<string>
  /** API host; default `KOYEB_API_HOST`, else `https://app.koyeb.com`. An explicit value wins over the environment. */
  readonly host?: string | undefined
  /** Default region of new sandboxes; default `KOYEB_REGION`, else `"na"`. */
  readonly region?: string | undefined
  /** Bound on each HTTP attempt, body included (default 30 seconds). */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** Retries of idempotent calls (GET, PUT, DELETE) on 429, 5xx and transport failures. POSTs are never retried. */
  readonly retry?: {
    /** Retries after the first attempt (default 4). */
    readonly times?: number | undefined
    /** First backoff delay, doubled on each retry, with jitter (default 250 ms). */
    readonly baseDelay?: Duration.DurationInput | undefined
  } | undefined
}

type Method = "GET" | "POST" | "PUT" | "DELETE"

interface CallOptions {
  readonly body?: unknown
  readonly urlParams?: Record<string, string>
  /** Sandbox id reported by `SandboxNotFound` when the call answers 404. */
  readonly notFound?: string | undefined
}

// Longest Retry-After the SDK sleeps through by itself; beyond it the caller gets RateLimited.
const MAX_RETRY_AFTER_MILLIS = 60_000
const HEALTH_TIMEOUT = Duration.seconds(5)
const HEALTHY_REPLIES = new Set(["ok", "healthy", "ready"])
const APP_PREFIX = "sandbox-app-"
const MAX_APP_NAME = 63
// Pauses between lookups of an app whose create reply was lost: the request may still be in
// flight on the server, so an empty first lookup is repeated for about two seconds.
const LOST_APP_LOOKUP_PAUSES = ["250 millis", "500 millis", "1250 millis"] as const

/** An attempt failure that may be retried, with the server's Retry-After when it sent one. */
class Retryable {
  constructor(readonly error: ApiError | RateLimited, readonly retryAfterMillis: number | undefined) {}
}

const envOr = (name: string, fallback: string): Effect.Effect<string> =>
  Config.string(name).pipe(Config.withDefault(fallback), Effect.orElseSucceed(() => fallback))

const noEndpoint = (detail: string, url: string) =>
  new ApiError({ status: 0, code: "NoEndpoint", detail, method: "GET", url })

const isTransient = (e: ControlPlaneFailure): boolean =>
  e._tag === "RateLimited" || (e._tag === "ApiError" && (e.status === 0 || e.status >= 500))

/**
 * Builds the control plane from explicit options, reading `KOYEB_API_HOST` / `KOYEB_REGION` for
 * absent host and region. Executor clients it hands out share the same `HttpClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: KoyebControlPlaneOptions
): Effect.Effect<ControlPlaneShape, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const httpClient = yield* HttpClient.HttpClient
    const host = (options.host ?? (yield* envOr("KOYEB_API_HOST", DEFAULT_HOST))).replace(/\/+$/, "")
    const defaultRegion = options.region ?? (yield* envOr("KOYEB_REGION", "na"))
    const requestTimeout = Duration.decode(options.requestTimeout ?? "30 seconds")
    const retryTimes = Math.max(0, options.retry?.times ?? 4)
    const baseDelayMillis = Duration.toMillis(Duration.decode(options.retry?.baseDelay ?? "250 millis"))

    // One attempt: send, bound by the timeout, classify. The token only ever goes into the header.
    const attempt = <A, I>(
      method: Method,
      path: string,
      schema: Schema.Schema<A, I> | undefined,
      call: CallOptions
    ): Effect.Effect<A | undefined, ControlPlaneFailure | Retryable> => {
      const url = host + path
      let request = HttpClientRequest.make(method)(url).pipe(
        HttpClientRequest.bearerToken(options.token),
        HttpClientRequest.acceptJson
      )
      if (call.urlParams) request = HttpClientRequest.setUrlParams(request, call.urlParams)
      if (call.body !== undefined) request = HttpClientRequest.bodyUnsafeJson(request, call.body)
      const apiError = (status: number, code: string, detail: string) =>
        new ApiError({ status, code, detail, method, url })
      return httpClient.execute(request).pipe(
        Effect.mapError((e: HttpClientError.HttpClientError) =>
          e._tag === "RequestError" && e.reason !== "Transport"
            ? apiError(0, e.reason, e.description ?? e.reason)
            : new Retryable(apiError(0, "Transport", e.description ?? "could not reach the API"), undefined)
        ),
        Effect.flatMap((response) => classify(response, schema, call, method, url, apiError)),
        Effect.timeoutFail({
          duration: requestTimeout,
          onTimeout: () =>
            new Retryable(apiError(0, "Timeout", `no reply within ${Duration.format(requestTimeout)}`), undefined)
        })
      )
    }

    // Retries only idempotent methods: a POST may have reached the server even when its reply was lost.
    const call = <A, I>(
      method: Method,
      path: string,
      schema: Schema.Schema<A, I> | undefined,
      opts: CallOptions = {}
    ) => {
      const loop = (n: number): Effect.Effect<A | undefined, ControlPlaneFailure> =>
        attempt(method, path, schema, opts).pipe(
          Effect.catchIf((e): e is Retryable => e instanceof Retryable, (r) => {
            const canRetry = method !== "POST" && n < retryTimes &&
              (r.retryAfterMillis === undefined || r.retryAfterMillis <= MAX_RETRY_AFTER_MILLIS)
            if (!canRetry) return Effect.fail(r.error)
            return Random.nextRange(0.5, 1.5).pipe(
              Effect.flatMap((jitter) =>
                Effect.sleep(Duration.millis(r.retryAfterMillis ?? Math.round(baseDelayMillis * 2 ** n * jitter)))
              ),
              Effect.zipRight(loop(n + 1))
            )
          })
        ) as Effect.Effect<A | undefined, ControlPlaneFailure>
      return loop(0)
    }
    const get = <A, I>(path: string, schema: Schema.Schema<A, I>, opts?: CallOptions) =>
      call("GET", path, schema, opts) as Effect.Effect<A, ControlPlaneFailure>
    const post = <A, I>(path: string, schema: Schema.Schema<A, I>, body: unknown) =>
      call("POST", path, schema, { body }) as Effect.Effect<A, ControlPlaneFailure>

    const getService = (id: string) =>
      get(`/v1/services/${encodeURIComponent(id)}`, Wire.ServiceReply, { notFound: id }).pipe(
        Effect.map((r) => r.service)
      )
    const getDeployment = (sandboxId: string, deploymentId: string) =>
      get(`/v1/deployments/${encodeURIComponent(deploymentId)}`, Wire.DeploymentReply, { notFound: sandboxId }).pipe(
        Effect.map((r) => r.deployment)
      )
    const currentDeployment = (service: Wire.Service) =>
      Option.fromNullable(service.active_deployment_id || service.latest_deployment_id || null)
    const appDomain = (appId: string) =>
      get(`/v1/apps/${encodeURIComponent(appId)}`, Wire.AppReply).pipe(
        Effect.map((r) => Option.fromNullable(r.app.domains?.[0]?.name || null))
      )
    const deleteApp = (appId: string) =>
      call("DELETE", `/v1/apps/${encodeURIComponent(appId)}`, undefined, { notFound: appId })
    const deleteService = (id: string) =>
      call("DELETE", `/v1/services/${encodeURIComponent(id)}`, undefined, { notFound: id })
    const appsNamed = (name: string) =>
      get("/v1/apps", Wire.AppList, { urlParams: { name, limit: "100" } }).pipe(
        Effect.map((r) => (r.apps ?? []).filter((app) => app.name === name))
      )
    // The app POST's reply was lost, but the server may have created (or still create) the app:
    // its name is unique per attempt, so every app with that name is ours to delete.
    const deleteLostApp = (name: string) => {
      const lookup = (pauses: ReadonlyArray<Duration.DurationInput>): Effect.Effect<void, ControlPlaneFailure> =>
        appsNamed(name).pipe(
          Effect.flatMap((apps) =>
            apps.length > 0
              ? Effect.forEach(
                apps,
                (app) => deleteApp(app.id).pipe(Effect.catchTag("SandboxNotFound", () => Effect.void)),
                {
                  discard: true
                }
              )
              : pauses.length === 0
              ? Effect.void
              : Effect.sleep(pauses[0]!).pipe(Effect.zipRight(lookup(pauses.slice(1))))
          )
        )
      return lookup(LOST_APP_LOOKUP_PAUSES).pipe(
        Effect.catchAllCause((cause) =>
          Effect.logWarning(`KoyebControlPlane.create: cleanup of app ${name} after a lost reply failed`, cause)
        )
      )
    }

    const endpointOf = (deployment: Option.Option<Wire.Deployment>, appId: string, secret: Redacted.Redacted<string>) =>
      Option.flatMap(deployment, Wire.gatewayOf).pipe(
        Option.match({
          onSome: (g): Effect.Effect<SandboxEndpoint, ControlPlaneFailure> =>
            Effect.succeed({ url: `${g.publicUrl}/koyeb-sandbox`, secret, routingKey: g.routingKey }),
          onNone: () =>
            appDomain(appId).pipe(
              Effect.flatMap(Option.match({
                onNone: () =>
                  Effect.fail(
                    noEndpoint(`app ${appId} has no domain and the deployment no gateway`, `${host}/v1/apps/${appId}`)
                  ),
                onSome: (domain) => Effect.succeed({ url: `https://${domain}/koyeb-sandbox`, secret })
              }))
            )
        })
      )

    const secretOf = (deployment: Wire.Deployment, sandboxId: string) =>
      Option.match(Wire.secretOf(Wire.definitionView(deployment.definition)), {
        onNone: () =>
          Effect.fail(
            new ApiError({
              status: 200,
              code: "NoSandboxSecret",
              detail: `sandbox ${sandboxId} has no ${Wire.SECRET_ENV} in its deployment definition`,
              method: "GET",
              url: `${host}/v1/deployments/${deployment.id}`
            })
          ),
        onSome: (s) => Effect.succeed(Redacted.make(s))
      })

    const infoOf = (service: Wire.Service, deployment: Option.Option<Wire.Deployment>, ownsApp: boolean) => {
      const view: Wire.DefinitionView = Option.match(deployment, {
        onNone: () => ({}),
        onSome: (d) => Wire.definitionView(d.definition)
      })
      return new SandboxInfo({
        id: service.id,
        appId: service.app_id,
        name: view.name ?? service.name ?? "",
        region: view.regions?.[0] ?? "",
        instanceType: view.instance_types?.[0]?.type ?? "",
        image: view.docker?.image ?? "",
        createdAt: dateOf(service.created_at),
        ownsApp
      })
    }

    const connect = (endpoint: SandboxEndpoint) =>
      ExecutorClient.make({ url: endpoint.url, secret: endpoint.secret, routingKey: endpoint.routingKey }).pipe(
        Effect.provideService(HttpClient.HttpClient, httpClient)
      )

    const create = Effect.fn("KoyebControlPlane.create")(function*(options: CreateOptions) {
      const resolved = yield* Either.match(Wire.resolveCreate(options, defaultRegion), {
        onLeft: (e): Effect.Effect<never, InvalidArgument> => Effect.fail(e),
        onRight: Effect.succeed
      })
      const secret = generateSecret()
      // The POSTs are not interruptible (a create cut short between them would leak an app; each is
      // bounded by the request timeout); what follows is, and cleans up after itself.
      return yield* Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          let appId = resolved.appId
          const ownsApp = appId === undefined
          if (appId === undefined) {
            const name = appName(resolved.name, Math.floor((yield* Clock.currentTimeMillis) / 1000))
            const reply = yield* post("/v1/apps", Wire.AppReply, {
              name,
              life_cycle: { delete_when_empty: true }
            }).pipe(
              Effect.tapError((e) =>
                e._tag === "ApiError" && (e.status === 0 || e.status >= 500) ? deleteLostApp(name) : Effect.void
              )
            )
            appId = reply.app.id
          }
          yield* Effect.annotateCurrentSpan("koyeb.app_id", appId)
          const createdApp = appId
          const rollback = (serviceId: string | undefined) =>
            (ownsApp ? deleteApp(createdApp) : serviceId ? deleteService(serviceId) : Effect.void).pipe(
              Effect.catchAllCause((cause) =>
                Effect.logWarning("KoyebControlPlane.create: cleanup after a failed create failed", cause)
              )
            )
          const service = yield* post("/v1/services", Wire.ServiceReply, resolved.serviceBody(createdApp, secret)).pipe(
            Effect.map((r) => r.service),
            Effect.onError(() => rollback(undefined))
          )
          yield* Effect.annotateCurrentSpan("sandbox.id", service.id)
          const redacted = Redacted.make(secret)
          const endpoint = yield* restore(
            Option.match(Option.fromNullable(service.latest_deployment_id || null), {
              onNone: () => Effect.succeed(Option.none<Wire.Deployment>()),
              onSome: (id) => Effect.asSome(getDeployment(service.id, id))
            }).pipe(Effect.flatMap((deployment) => endpointOf(deployment, createdApp, redacted)))
          ).pipe(Effect.onError(() => rollback(service.id)))
          const info = new SandboxInfo({
            id: service.id,
            appId: createdApp,
            name: resolved.name,
            region: resolved.region,
            instanceType: resolved.instanceType,
            image: resolved.image,
            createdAt: dateOf(service.created_at),
            ownsApp
          })
          return { info, endpoint } satisfies ProvisionedSandbox
        })
      )
    })

    const get_ = Effect.fn("KoyebControlPlane.get")(function*(id: string) {
      yield* Effect.annotateCurrentSpan("sandbox.id", id)
      const service = yield* getService(id)
      const deploymentId = yield* Option.match(currentDeployment(service), {
        onNone: () =>
          Effect.fail(
            new ApiError({
              status: 200,
              code: "NoDeployment",
              detail: `sandbox ${id} has no deployment`,
              method: "GET",
              url: `${host}/v1/services/${id}`
            })
          ),
        onSome: Effect.succeed
      })
      const deployment = yield* getDeployment(id, deploymentId)
      const secret = yield* secretOf(deployment, id)
      const endpoint = yield* endpointOf(Option.some(deployment), service.app_id, secret)
      return { info: infoOf(service, Option.some(deployment), false), endpoint } satisfies ProvisionedSandbox
    })

    const list = Effect.gen(function*() {
      const limit = 100
      const services: Array<Wire.Service> = []
      for (let offset = 0;; offset += limit) {
        const page = yield* get("/v1/services", Wire.ServiceList, {
          urlParams: { types: "SANDBOX", limit: String(limit), offset: String(offset) }
        })
        const items = page.services ?? []
        for (const item of items) services.push(item)
        if (items.length < limit || page.has_next === false) break
      }
      const infos = yield* Effect.forEach(services, (service) =>
        Option.match(currentDeployment(service), {
          onNone: () => Effect.succeed(Option.none<Wire.Deployment>()),
          onSome: (id) => Effect.asSome(getDeployment(service.id, id))
        }).pipe(
          Effect.map((deployment) => Option.some(infoOf(service, deployment, false))),
          // Deleted between the listing and the lookup: not a sandbox any more.
          Effect.catchTag("SandboxNotFound", () => Effect.succeedNone)
        ), { concurrency: 4 })
      return infos.flatMap(Option.toArray)
    }).pipe(Effect.withSpan("KoyebControlPlane.list"))

    const delete_ = Effect.fn("KoyebControlPlane.delete")(function*(info: SandboxInfo) {
      yield* Effect.annotateCurrentSpan("sandbox.id", info.id)
      yield* (info.ownsApp ? deleteApp(info.appId) : deleteService(info.id)).pipe(
        Effect.catchTag("SandboxNotFound", () => Effect.void)
      )
    })

    // None: not ready yet (keep polling). Transient API failures also mean "not yet".
    const readyOnce = (
      id: string
    ): Effect.Effect<Option.Option<SandboxEndpoint>, DeploymentFailed | ControlPlaneFailure> =>
      Effect.gen(function*() {
        const service = yield* getService(id)
        const deploymentId = currentDeployment(service)
        if (Option.isNone(deploymentId)) return Option.none()
        const deployment = yield* getDeployment(id, deploymentId.value)
        const status = deployment.status ?? ""
        if (Wire.TERMINAL_STATUSES.has(status)) {
          const messages = deployment.messages?.join("; ")
          return yield* new DeploymentFailed({ sandbox: id, status, ...(messages ? { detail: messages } : {}) })
        }
        // A probe through the edge wakes a sleeping sandbox; other statuses are not ready yet.
        if (status !== "HEALTHY" && status !== "SLEEPING") return Option.none()
        const secret = yield* secretOf(deployment, id)
        const endpoint = yield* endpointOf(Option.some(deployment), service.app_id, secret)
        const client = yield* connect(endpoint)
        const healthy = yield* client.health.pipe(
          Effect.timeout(HEALTH_TIMEOUT),
          Effect.map((h) => HEALTHY_REPLIES.has(h.status.toLowerCase())),
          Effect.orElseSucceed(() => false)
        )
        return healthy ? Option.some(endpoint) : Option.none()
      }).pipe(Effect.catchIf(isTransientFailure, () => Effect.succeedNone))

    const waitReady = Effect.fn("KoyebControlPlane.waitReady")(function*(id: string, options?: WaitReadyOptions) {
      yield* Effect.annotateCurrentSpan("sandbox.id", id)
      const timeout = Duration.decode(options?.timeout ?? "5 minutes")
      const maxPause = Duration.decode(options?.pollInterval ?? "500 millis")
      const poll = (pause: Duration.Duration): Effect.Effect<SandboxEndpoint, DeploymentFailed | ControlPlaneFailure> =>
        readyOnce(id).pipe(
          Effect.flatMap(Option.match({
            onSome: Effect.succeed,
            onNone: () =>
              Effect.sleep(pause).pipe(Effect.zipRight(poll(Duration.min(Duration.times(pause, 2), maxPause))))
          }))
        )
      return yield* poll(Duration.min(Duration.millis(100), maxPause)).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new Timeout({ operation: `waitReady(${id})`, timeoutMillis: Duration.toMillis(timeout) })
        })
      )
    })

    const located = (id: string) =>
      Effect.gen(function*() {
        const service = yield* getService(id)
        const deployment = yield* Option.match(currentDeployment(service), {
          onNone: () => Effect.succeed(Option.none<Wire.Deployment>()),
          onSome: (d) => Effect.asSome(getDeployment(id, d))
        })
        const gateway = Option.flatMap(deployment, Wire.gatewayOf)
        const domain = Option.isSome(gateway) ? Option.none<string>() : yield* appDomain(service.app_id)
        return { gateway, domain }
      })

    const domain = Effect.fn("KoyebControlPlane.domain")(function*(id: string) {
      yield* Effect.annotateCurrentSpan("sandbox.id", id)
      const { domain, gateway } = yield* located(id)
      return Option.match(gateway, {
        onSome: (g) => Option.some(`${g.publicUrl.replace(/^[a-z]+:\/\//i, "")}/r/${g.routingKey}/`),
        onNone: () => domain
      })
    })

    const exposedUrl = Effect.fn("KoyebControlPlane.exposedUrl")(function*(id: string) {
      yield* Effect.annotateCurrentSpan("sandbox.id", id)
      const { domain, gateway } = yield* located(id)
      if (Option.isSome(gateway)) return `${gateway.value.publicUrl}/r/${gateway.value.routingKey}/`
      if (Option.isSome(domain)) return `https://${domain.value}`
      return yield* noEndpoint(`sandbox ${id} has no public domain yet`, `${host}/v1/services/${id}`)
    })

    const tcpProxy = Effect.fn("KoyebControlPlane.tcpProxy")(function*(id: string) {
      yield* Effect.annotateCurrentSpan("sandbox.id", id)
      const service = yield* getService(id)
      if (!service.active_deployment_id) return Option.none()
      const deployment = yield* getDeployment(id, service.active_deployment_id)
      return Wire.tcpProxyOf(deployment)
    })

    const updateLifecycle = Effect.fn("KoyebControlPlane.updateLifecycle")(
      function*(id: string, options: LifecycleOptions) {
        yield* Effect.annotateCurrentSpan("sandbox.id", id)
        const afterCreate = yield* Either.match(Wire.seconds("deleteAfterDelay", options.deleteAfterDelay, -1), {
          onLeft: (e): Effect.Effect<never, InvalidArgument> => Effect.fail(e),
          onRight: Effect.succeed
        })
        const afterSleep = yield* Either.match(
          Wire.seconds("deleteAfterInactivityDelay", options.deleteAfterInactivityDelay, -1),
          { onLeft: (e): Effect.Effect<never, InvalidArgument> => Effect.fail(e), onRight: Effect.succeed }
        )
        const service = yield* getService(id)
        if (!service.latest_deployment_id) {
          return yield* new ApiError({
            status: 200,
            code: "NoDeployment",
            detail: `sandbox ${id} has no deployment`,
            method: "GET",
            url: `${host}/v1/services/${id}`
          })
        }
        const deployment = yield* getDeployment(id, service.latest_deployment_id)
        const current = service.life_cycle ?? {}
        yield* call("PUT", `/v1/services/${encodeURIComponent(id)}`, undefined, {
          notFound: id,
          body: {
            definition: deployment.definition,
            life_cycle: {
              delete_after_create: afterCreate >= 0 ? afterCreate : current.delete_after_create ?? 0,
              delete_after_sleep: afterSleep >= 0 ? afterSleep : current.delete_after_sleep ?? 0
            }
          }
        })
      }
    )

    return ControlPlane.of({
      create,
      get: get_,
      list,
      delete: delete_,
      waitReady,
      domain,
      exposedUrl,
      tcpProxy,
      connect,
      updateLifecycle
    })
  })

/**
 * The Koyeb control plane as the `ControlPlane` service.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: KoyebControlPlaneOptions): Layer.Layer<ControlPlane, never, HttpClient.HttpClient> =>
  Layer.effect(ControlPlane, make(options))

/**
 * The Koyeb control plane configured from the environment: `KOYEB_API_TOKEN` (required),
 * `KOYEB_API_HOST`, `KOYEB_REGION`. Options given here win over the environment.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Partial<KoyebControlPlaneOptions> = {}
): Layer.Layer<ControlPlane, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(
    ControlPlane,
    Effect.flatMap(
      options.token === undefined ? Config.redacted("KOYEB_API_TOKEN") : Effect.succeed(options.token),
      (token) => make({ ...options, token })
    )
  )

/** `sandbox-app-<name>-<unix seconds>-<8 hex>`, the name cut so that the whole stays within 63 characters. */
const appName = (name: string, unixSeconds: number): string => {
  const suffix = `-${unixSeconds}-${randomToken().slice(0, 8)}`
  const room = MAX_APP_NAME - APP_PREFIX.length - suffix.length
  return `${APP_PREFIX}${name.slice(0, room).replace(/-+$/, "")}${suffix}`
}

const generateSecret = (): string => Encoding.encodeBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(32)))

const dateOf = (s: string | null | undefined): Date => {
  const date = s ? new Date(s) : new Date(0)
  return Number.isNaN(date.getTime()) ? new Date(0) : date
}

const isTransientFailure = (e: DeploymentFailed | ControlPlaneFailure): boolean =>
  e._tag !== "DeploymentFailed" && isTransient(e)

const classify = <A, I>(
  response: HttpClientResponse.HttpClientResponse,
  schema: Schema.Schema<A, I> | undefined,
  call: CallOptions,
  method: Method,
  url: string,
  apiError: (status: number, code: string, detail: string) => ApiError
): Effect.Effect<A | undefined, ControlPlaneFailure | Retryable> => {
  const status = response.status
  if (status >= 200 && status < 300) {
    if (schema === undefined) return Effect.succeed(undefined)
    return response.json.pipe(
      Effect.mapError(() => apiError(status, "Decode", "the reply is not JSON")),
      Effect.flatMap((json) =>
        Schema.decodeUnknown(schema)(json).pipe(
          // Paths only: the values may hold secrets (a definition's env).
          Effect.mapError((e) =>
            apiError(
              status,
              "Decode",
              `unexpected reply at ${
                ParseResult.ArrayFormatter.formatErrorSync(e).map((i) => i.path.join(".") || "<root>").join(", ")
              }`
            )
          )
        )
      )
    )
  }
  return response.text.pipe(
    Effect.orElseSucceed(() => ""),
    Effect.flatMap((text): Effect.Effect<never, ControlPlaneFailure | Retryable> => {
      const body = Option.getOrElse(
        Schema.decodeUnknownOption(Schema.parseJson(Wire.ErrorBody))(text),
        (): typeof Wire.ErrorBody.Type => ({})
      )
      const fields = body.fields?.map((f) => `${f.field ?? "?"}: ${f.description ?? ""}`).join("; ")
      const detail = [body.message || text.slice(0, 200) || `HTTP ${status}`, fields].filter(Boolean).join(" — ")
      const code = body.code === undefined ? "" : String(body.code)
      if (status === 401 || status === 403) return Effect.fail(new Unauthorized({ detail }))
      if (status === 404 && call.notFound !== undefined) {
        return Effect.fail(new SandboxNotFound({ id: call.notFound }))
      }
      if (status === 429) {
        return Clock.currentTimeMillis.pipe(Effect.flatMap((now) => {
          const retryAfterMillis = Wire.parseRetryAfter(response.headers["retry-after"], now)
          return Effect.fail(
            new Retryable(
              new RateLimited({ method, url, ...(retryAfterMillis === undefined ? {} : { retryAfterMillis }) }),
              retryAfterMillis
            )
          )
        }))
      }
      const error = apiError(status, code, detail)
      if (status >= 500) {
        return Clock.currentTimeMillis.pipe(
          Effect.flatMap((now) =>
            Effect.fail(new Retryable(error, Wire.parseRetryAfter(response.headers["retry-after"], now)))
          )
        )
      }
      return Effect.fail(error)
    })
  )
}
