/**
 * A local emulator of the Koyeb REST API subset that sandboxes use (apps, services of type SANDBOX,
 * deployments), plus the sandbox gateway. Every service runs a real local executor process, so any
 * Koyeb client pointed at `KOYEB_API_HOST=<emulator url>` works against it with no account and no
 * network.
 *
 * - REST: `POST /v1/apps`, `GET /v1/apps` (`name`, `limit`, `offset`), `GET|DELETE /v1/apps/{id}`,
 *   `POST /v1/services` (`?dry_run=true` validates only), `GET /v1/services` (`app_id`, `name`, `types`, `statuses`, `limit`, `offset`),
 *   `GET|PUT|DELETE /v1/services/{id}`, `GET /v1/deployments/{id}`, with Koyeb's JSON shapes and
 *   error bodies (`400 INVALID_ARGUMENT` with `fields`, `401 UNAUTHENTICATED`, `404 NOT_FOUND`).
 * - Deployments move PENDING → PROVISIONING → STARTING → HEALTHY (HEALTHY once the executor answers
 *   `/health`); a PUT creates a new deployment which, once HEALTHY, replaces (STOPPED) the old one.
 * - Gateway: `metadata.sandbox.public_url` is the emulator's own URL and `routing_key` is random per
 *   deployment. `<url>/koyeb-sandbox/<endpoint>` with `X-Routing-Key` is forwarded to that
 *   deployment's executor as `/<endpoint>`; `<url>/r/<routing_key>/<path>` is forwarded to its
 *   proxy port (the exposed port). Bodies stream both ways (SSE is not buffered).
 * - App domains are fake `<app name>-local.koyeb.app` names (type `AUTOASSIGNED`); they do not
 *   resolve, but a request to the emulator whose `Host` header is such a domain is routed like
 *   Koyeb's edge does: `/koyeb-sandbox/<endpoint>` to the executor, anything else to the proxy port.
 * - `metadata.proxy_ports` lists `{host: "127.0.0.1", public_port: <executor proxy port>, port: 3031,
 *   protocol: "tcp"}` when the definition asks for a TCP proxy on 3031.
 * - `life_cycle.delete_after_create` deletes the service after that many seconds; app
 *   `life_cycle.delete_when_empty` deletes the app with its last service. `delete_after_sleep` and
 *   scaling to zero are stored but never trigger (emulated sandboxes never sleep).
 *
 * Fault switches (also over HTTP under `/_emulator/`, with the same bearer token):
 * `POST /_emulator/faults/fail` `{status, times?, method?, path?, code?, message?, retry_after_seconds?}`,
 * `POST /_emulator/faults/delay` `{millis, times?, method?, path?}`,
 * `POST /_emulator/faults/fail-next-deployment` `{after_healthy_millis?, message?}`,
 * `POST /_emulator/deployments/{id}/fail` `{message?}` (a deployment or service id),
 * `DELETE /_emulator/faults`, `GET /_emulator/state`, `GET|DELETE /_emulator/requests`.
 *
 * @since 0.1.0
 */
import { SandboxNotFound } from "@effect-koyeb/core/SandboxError"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import { forward } from "./internal/emulatorProxy.js"
import {
  appJson,
  type AppRecord,
  codeForStatus,
  deploymentJson,
  type DeploymentRecord,
  errorBody,
  invalidArgumentBody,
  serviceObject,
  type ServiceRecord,
  terminalStatuses
} from "./internal/emulatorState.js"
import {
  type ParsedDefinition,
  type ParsedLifeCycle,
  validateCreateApp,
  validateCreateService,
  validateUpdateService
} from "./internal/emulatorValidation.js"
import { spawnExecutor } from "./internal/localRuntime.js"

/**
 * Options of `make` / `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The API token clients must send as `Authorization: Bearer <token>`. */
  readonly token: Redacted.Redacted<string>
  /** Interface to bind (default `127.0.0.1`). */
  readonly host?: string | undefined
  /** Port to bind (default 0: a free port). */
  readonly port?: number | undefined
  /** Time spent in each deployment status before the next one (default 25 ms). */
  readonly stepDelay?: Duration.DurationInput | undefined
  /** Sandbox isolation passed to the local runtime (default: the runtime's own default). */
  readonly isolation?: "none" | "bubblewrap" | "auto" | undefined
  /** Directory under which the sandboxes' root directories are created (default: the runtime's). */
  readonly baseDir?: string | undefined
  /** `metadata.sandbox.public_url` to advertise (default: the emulator's own URL). */
  readonly publicUrl?: string | undefined
}

/**
 * A request the emulator received (admin `/_emulator/` calls excepted).
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedRequest {
  readonly method: string
  /** Path without the query string. */
  readonly path: string
  /** Query parameters; a repeated parameter gives an array. */
  readonly query: Readonly<Record<string, string | ReadonlyArray<string>>>
  /** Lower-cased request headers, without `authorization`. */
  readonly headers: Readonly<Record<string, string>>
  /** The parsed JSON body of `/v1` calls (the raw text if it is not JSON, undefined when empty); gateway bodies are not recorded. */
  readonly body: unknown
}

/**
 * Selects the requests a fault applies to; absent fields match everything but `/_emulator/` calls.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestMatcher {
  readonly method?: string | undefined
  /** A path prefix (`"/v1/services"` also matches `/v1/services/<id>`) or a RegExp tested on the path. */
  readonly path?: string | RegExp | undefined
}

/**
 * Fail the next matching requests with a Koyeb-style error body.
 *
 * @since 0.1.0
 * @category models
 */
export interface FailOptions extends RequestMatcher {
  readonly status: number
  /** How many requests to fail (default 1). */
  readonly times?: number | undefined
  /** Error `code` (default derived from the status, e.g. 429 → `RESOURCE_EXHAUSTED`). */
  readonly code?: string | undefined
  readonly message?: string | undefined
  /** Sent as a `Retry-After` header, in whole seconds (rounded up). */
  readonly retryAfter?: Duration.DurationInput | undefined
}

/**
 * Delay matching requests before they are handled.
 *
 * @since 0.1.0
 * @category models
 */
export interface DelayOptions extends RequestMatcher {
  readonly duration: Duration.DurationInput
  /** How many requests to delay (default: all, until `clearFaults`). */
  readonly times?: number | undefined
}

/**
 * How the next deployment fails.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeploymentFaultOptions {
  /** Become HEALTHY, stay so this long, then go to ERROR; absent: go to ERROR while STARTING, before any executor runs. */
  readonly afterHealthy?: Duration.DurationInput | undefined
  /** Message added to the deployment's `messages`. */
  readonly message?: string | undefined
}

/**
 * A snapshot of everything the emulator holds, for tests asserting that nothing leaks.
 *
 * @since 0.1.0
 * @category models
 */
export interface EmulatorState {
  readonly apps: ReadonlyArray<{ readonly id: string; readonly name: string; readonly domain: string }>
  readonly services: ReadonlyArray<{
    readonly id: string
    readonly appId: string
    readonly name: string
    readonly status: string
    readonly activeDeploymentId: string
    readonly latestDeploymentId: string
  }>
  readonly deployments: ReadonlyArray<{
    readonly id: string
    readonly serviceId: string
    readonly status: string
    readonly routingKey: string
  }>
  /** Executor processes currently alive. */
  readonly executors: ReadonlyArray<{
    readonly deploymentId: string
    readonly serviceId: string
    readonly pid: number
    readonly url: string
    readonly proxyPort: number
    readonly isolation: "none" | "bubblewrap"
  }>
}

/**
 * A running emulator.
 *
 * @since 0.1.0
 * @category models
 */
export interface KoyebEmulatorHandle {
  /** Base URL, e.g. `http://127.0.0.1:41234`: use it as `KOYEB_API_HOST`. It is also the sandbox gateway. */
  readonly url: string
  /** The requests received so far (the last 10 000), oldest first (admin `/_emulator/` calls excepted). */
  readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
  /** Forgets the recorded requests. */
  readonly clearRequests: Effect.Effect<void>
  /** Fails the next matching requests (before authentication, like Koyeb's edge). */
  readonly failNext: (options: FailOptions) => Effect.Effect<void>
  /** Delays matching requests. */
  readonly delay: (options: DelayOptions) => Effect.Effect<void>
  /** Makes the next created deployment (service create or update) go to ERROR. */
  readonly failNextDeployment: (options?: DeploymentFaultOptions) => Effect.Effect<void>
  /** Drives a deployment (by deployment id, or a service id for its latest deployment) to ERROR now, killing its executor. */
  readonly failDeployment: (id: string, message?: string) => Effect.Effect<void, SandboxNotFound>
  /** Removes every pending fault and delay. */
  readonly clearFaults: Effect.Effect<void>
  /** The current apps, services, deployments and live executor processes. */
  readonly state: Effect.Effect<EmulatorState>
}

/**
 * The emulator as a service.
 *
 * @since 0.1.0
 * @category tags
 */
export class KoyebEmulator extends Context.Tag("@effect-koyeb/platform-node/KoyebEmulator")<
  KoyebEmulator,
  KoyebEmulatorHandle
>() {}

/**
 * The emulator could not start (for example the port is taken).
 *
 * @since 0.1.0
 * @category errors
 */
export class KoyebEmulatorError extends Schema.TaggedError<KoyebEmulatorError>(
  "@effect-koyeb/platform-node/KoyebEmulatorError"
)("KoyebEmulatorError", { detail: Schema.String, cause: Schema.optional(Schema.Defect) }) {
  get message(): string {
    return `Koyeb emulator: ${this.detail}`
  }
}

interface FailRule {
  readonly matcher: RequestMatcher
  remaining: number
  readonly status: number
  readonly code: string
  readonly message: string
  readonly retryAfterSeconds: number | undefined
}

interface DelayRule {
  readonly matcher: RequestMatcher
  remaining: number
  readonly duration: Duration.Duration
}

const matches = (matcher: RequestMatcher, method: string, path: string) =>
  (matcher.method === undefined || matcher.method.toUpperCase() === method) &&
  (matcher.path === undefined ||
    (typeof matcher.path === "string" ? path.startsWith(matcher.path) : matcher.path.test(path)))

const MAX_RECORDED = 10_000

const json = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status })

const notFound = (message: string) => json(errorBody(404, "NOT_FOUND", message), 404)

const parseBody = (text: string): unknown => {
  if (text === "") return undefined
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const queryRecord = (params: URLSearchParams): Record<string, string | ReadonlyArray<string>> => {
  const out: Record<string, string | Array<string>> = {}
  for (const key of new Set(params.keys())) {
    const all = params.getAll(key)
    out[key] = all.length === 1 ? all[0]! : all
  }
  return out
}

const sameSecret = (given: string, expected: string) => {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && Crypto.timingSafeEqual(a, b)
}

/**
 * Starts the emulator on `host:port` (default `127.0.0.1:0`). Closing the scope kills every sandbox
 * executor and stops the server.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: Options
) => Effect.Effect<KoyebEmulatorHandle, KoyebEmulatorError, Scope.Scope> = Effect.fn("KoyebEmulator.make")(function*(
  options: Options
) {
  const emulatorScope = yield* Effect.scope
  const token = Redacted.value(options.token)
  const stepDelay = Duration.decode(options.stepDelay ?? "25 millis")
  const organizationId = Crypto.randomUUID()

  const apps = new Map<string, AppRecord>()
  const services = new Map<string, ServiceRecord>()
  const deployments = new Map<string, DeploymentRecord>()
  const routes = new Map<string, string>() // routing key → deployment id
  const recorded: Array<RecordedRequest> = []
  let failRules: Array<FailRule> = []
  let delayRules: Array<DelayRule> = []
  let deploymentFaults: Array<DeploymentFaultOptions> = []

  const nodeServer = Http.createServer()
  const server = yield* NodeHttpServer.make(() => nodeServer, {
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 0
  }).pipe(
    Effect.mapError((cause) => new KoyebEmulatorError({ detail: `cannot listen: ${String(cause.cause)}`, cause }))
  )
  // Runs after every sandbox is killed (finalizers run in reverse) and before server.close waits for connections.
  yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer.closeAllConnections()))
  const address = server.address._tag === "TcpAddress" ? server.address : undefined
  if (address === undefined) return yield* new KoyebEmulatorError({ detail: "not listening on TCP" })
  const hostname = address.hostname === "0.0.0.0" || address.hostname === "::" ? "127.0.0.1" : address.hostname
  const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${address.port}`
  const publicUrl = options.publicUrl ?? url

  // ---- state transitions --------------------------------------------------------------------

  const touch = (d: DeploymentRecord, status: string) => {
    d.status = status
    d.updatedAt = new Date()
  }

  const serviceDeployments = (serviceId: string) =>
    Array.from(deployments.values()).filter((d) => d.serviceId === serviceId)

  /** Stops a deployment's progression and kills its executor (never called from its own fiber). */
  const teardown = (d: DeploymentRecord) =>
    Effect.gen(function*() {
      const fiber = d.fiber
      d.fiber = undefined
      if (fiber !== undefined) yield* Fiber.interrupt(fiber)
      yield* killExecutor(d)
    })

  /** `state` keeps listing the executor until it is dead, so leak checks see dying sandboxes too. */
  const killExecutor = (d: DeploymentRecord) =>
    Effect.suspend(() => {
      const scope = d.scope
      d.scope = undefined
      return scope === undefined ? Effect.void : Scope.close(scope, Exit.void)
    }).pipe(Effect.ensuring(Effect.sync(() => {
      d.executor = undefined
    })))

  /** ERRORING while the executor is killed, then ERROR: a client that sees ERROR sees a dead sandbox. */
  const markFailed = (d: DeploymentRecord, message: string) =>
    Effect.gen(function*() {
      touch(d, "ERRORING")
      d.messages.push(message)
      const service = services.get(d.serviceId)
      if (service !== undefined && service.latestDeploymentId === d.id) {
        service.status = "UNHEALTHY"
        service.updatedAt = new Date()
      }
      yield* killExecutor(d)
      touch(d, "ERROR")
      d.terminatedAt = new Date()
    }).pipe(Effect.uninterruptible)

  /** The deployment a new one replaces is stopped first: once HEALTHY is visible, only the new sandbox runs. */
  const onHealthy = (d: DeploymentRecord) =>
    Effect.gen(function*() {
      const service = services.get(d.serviceId)
      const previous = service === undefined || service.activeDeploymentId === ""
        ? undefined
        : deployments.get(service.activeDeploymentId)
      if (previous !== undefined && previous !== d) {
        touch(previous, "STOPPING")
        yield* teardown(previous)
        touch(previous, "STOPPED")
        previous.terminatedAt = new Date()
      }
      touch(d, "HEALTHY")
      d.succeededAt = new Date()
      if (service === undefined) return
      service.activeDeploymentId = d.id
      service.status = "HEALTHY"
      service.updatedAt = new Date()
    })

  const progress = (d: DeploymentRecord, fault: DeploymentFaultOptions | undefined) =>
    Effect.gen(function*() {
      yield* Effect.sleep(stepDelay)
      touch(d, "PROVISIONING")
      d.allocatedAt = new Date()
      yield* Effect.sleep(stepDelay)
      touch(d, "STARTING")
      d.startedAt = new Date()
      if (fault !== undefined && fault.afterHealthy === undefined) {
        yield* Effect.sleep(stepDelay)
        touch(d, "ERRORING")
        yield* Effect.sleep(stepDelay)
        return yield* markFailed(d, fault.message ?? "Instance failed to start (emulated fault)")
      }
      const scope = yield* Scope.fork(emulatorScope, ExecutionStrategy.sequential)
      d.scope = scope
      const started = yield* spawnExecutor({
        id: d.id,
        secret: Redacted.make(d.definition.secret),
        env: d.definition.env,
        isolation: options.isolation,
        baseDir: options.baseDir
      }).pipe(Scope.extend(scope), Effect.either)
      if (started._tag === "Left") {
        touch(d, "ERRORING")
        return yield* markFailed(d, `Instance failed to start: ${started.left.message}`)
      }
      const executor = started.right
      d.executor = executor
      yield* onHealthy(d)
      // The fiber lives as long as the deployment (teardown interrupts it before killing the
      // executor), so an executor that exits while it waits here has crashed.
      const afterHealthy = fault?.afterHealthy
      const outcome = yield* afterHealthy === undefined
        ? Effect.as(executor.exited, "crashed" as const)
        : Effect.raceFirst(
          Effect.as(executor.exited, "crashed" as const),
          Effect.as(Effect.sleep(afterHealthy), "fault" as const)
        )
      yield* markFailed(
        d,
        outcome === "crashed"
          ? "Instance exited unexpectedly"
          : fault?.message ?? "Instance stopped unexpectedly (emulated fault)"
      )
    })

  const startDeployment = (service: ServiceRecord, definition: ParsedDefinition, parentId: string) =>
    Effect.gen(function*() {
      const now = new Date()
      const d: DeploymentRecord = {
        id: Crypto.randomUUID(),
        serviceId: service.id,
        appId: service.appId,
        parentId,
        definition,
        routingKey: Crypto.randomBytes(16).toString("hex"),
        createdAt: now,
        version: service.version,
        updatedAt: now,
        status: "PENDING",
        messages: [],
        allocatedAt: undefined,
        startedAt: undefined,
        succeededAt: undefined,
        terminatedAt: undefined,
        scope: undefined,
        fiber: undefined,
        executor: undefined
      }
      deployments.set(d.id, d)
      routes.set(d.routingKey, d.id)
      service.latestDeploymentId = d.id
      const fault = deploymentFaults.shift()
      d.fiber = yield* Effect.forkIn(progress(d, fault), emulatorScope)
      return d
    })

  /** The service (and an emptied delete_when_empty app) disappears at once; deployments stay listed in `state` until their executors are dead. */
  const deleteService = (service: ServiceRecord) =>
    Effect.gen(function*() {
      if (!services.delete(service.id)) return
      const app = apps.get(service.appId)
      if (app?.deleteWhenEmpty && !Array.from(services.values()).some((s) => s.appId === app.id)) {
        apps.delete(app.id)
      }
      const owned = serviceDeployments(service.id)
      for (const d of owned) routes.delete(d.routingKey)
      const timer = service.deleteTimer
      service.deleteTimer = undefined
      if (timer !== undefined) yield* Fiber.interrupt(timer)
      for (const d of owned) {
        yield* teardown(d)
        deployments.delete(d.id)
      }
    }).pipe(Effect.uninterruptible)

  const scheduleDeletion = (service: ServiceRecord) =>
    Effect.gen(function*() {
      const timer = service.deleteTimer
      service.deleteTimer = undefined
      if (timer !== undefined) yield* Fiber.interrupt(timer)
      const seconds = service.lifeCycle.delete_after_create ?? 0
      if (seconds <= 0) return
      const remaining = Math.max(0, service.createdAt.getTime() + seconds * 1000 - Date.now())
      service.deleteTimer = yield* Effect.sleep(Duration.millis(remaining)).pipe(
        Effect.zipRight(Effect.suspend(() => {
          service.deleteTimer = undefined
          return deleteService(service)
        })),
        Effect.forkIn(emulatorScope)
      )
    })

  const failDeployment = (id: string, message?: string) =>
    Effect.gen(function*() {
      const d = deployments.get(id) ?? deployments.get(services.get(id)?.latestDeploymentId ?? "")
      if (d === undefined) return yield* new SandboxNotFound({ id })
      const fiber = d.fiber
      d.fiber = undefined
      if (fiber !== undefined) yield* Fiber.interrupt(fiber)
      yield* markFailed(d, message ?? "Instance stopped unexpectedly (emulated fault)")
    })

  // ---- REST handlers ------------------------------------------------------------------------

  const body = Effect.flatMap(
    HttpServerRequest.HttpServerRequest,
    (request) => request.text.pipe(Effect.map(parseBody), Effect.orElseSucceed(() => undefined))
  )
  const rawUrl = Effect.map(
    HttpServerRequest.HttpServerRequest,
    (request) => NodeHttpServerRequest.toIncomingMessage(request).url ?? "/"
  )
  const query = Effect.map(rawUrl, (raw) => new URL(raw, "http://emulator").searchParams)
  const param = (name: string) => Effect.map(HttpRouter.params, (p) => p[name] ?? "")

  const createApp = Effect.gen(function*() {
    const validated = validateCreateApp(yield* body)
    if (validated._tag === "Invalid") return json(invalidArgumentBody(validated.fields), 400)
    const app: AppRecord = {
      id: Crypto.randomUUID(),
      name: validated.value.name,
      domain: `${validated.value.name}-local.koyeb.app`,
      deleteWhenEmpty: validated.value.deleteWhenEmpty,
      createdAt: new Date()
    }
    apps.set(app.id, app)
    return json(appJson(app, organizationId))
  })

  const listApps = Effect.gen(function*() {
    const q = yield* query
    const limit = Math.max(0, Number(q.get("limit") ?? 100) || 100)
    const offset = Math.max(0, Number(q.get("offset") ?? 0) || 0)
    const name = q.get("name")
    const matching = Array.from(apps.values())
      .filter((a) => name === null || a.name === name)
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
    return json({
      apps: matching.slice(offset, offset + limit).map((a) => appJson(a, organizationId).app),
      limit,
      offset,
      count: matching.length
    })
  })

  const getApp = Effect.gen(function*() {
    const app = apps.get(yield* param("id"))
    return app === undefined ? notFound("App not found") : json(appJson(app, organizationId))
  })

  const deleteApp = Effect.gen(function*() {
    const app = apps.get(yield* param("id"))
    if (app === undefined) return notFound("App not found")
    for (const service of Array.from(services.values())) {
      if (service.appId === app.id) yield* deleteService(service)
    }
    apps.delete(app.id)
    return json({})
  })

  const createService = Effect.gen(function*() {
    const validated = validateCreateService(yield* body)
    if (validated._tag === "Invalid") return json(invalidArgumentBody(validated.fields), 400)
    const { appId, definition, lifeCycle } = validated.value
    const now = new Date()
    const service: ServiceRecord = {
      id: "",
      appId,
      name: definition.name,
      createdAt: now,
      updatedAt: now,
      status: "STARTING",
      lifeCycle,
      activeDeploymentId: "",
      latestDeploymentId: "",
      version: 1,
      deleteTimer: undefined
    }
    if ((yield* query).get("dry_run") === "true") return json({ service: serviceObject(service, organizationId) })
    if (!apps.has(appId)) return notFound("App not found")
    const created: ServiceRecord = { ...service, id: Crypto.randomUUID() }
    services.set(created.id, created)
    yield* startDeployment(created, definition, "")
    yield* scheduleDeletion(created)
    return json({ service: serviceObject(created, organizationId) })
  })

  const listServices = Effect.gen(function*() {
    const q = yield* query
    const limit = Math.max(0, Number(q.get("limit") ?? 100) || 100)
    const offset = Math.max(0, Number(q.get("offset") ?? 0) || 0)
    const types = q.getAll("types")
    const statuses = q.getAll("statuses")
    const appId = q.get("app_id")
    const name = q.get("name")
    const matching = Array.from(services.values())
      .filter((s) =>
        (appId === null || s.appId === appId) &&
        (name === null || s.name === name) &&
        (types.length === 0 || types.includes("SANDBOX")) &&
        (statuses.length === 0 || statuses.includes(s.status))
      )
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
    const page = matching.slice(offset, offset + limit)
    return json({
      services: page.map((s) => serviceObject(s, organizationId)),
      limit,
      offset,
      count: matching.length,
      has_next: offset + page.length < matching.length
    })
  })

  const getService = Effect.gen(function*() {
    const service = services.get(yield* param("id"))
    return service === undefined
      ? notFound("Service not found")
      : json({ service: serviceObject(service, organizationId) })
  })

  const updateService = Effect.gen(function*() {
    const service = services.get(yield* param("id"))
    if (service === undefined) return notFound("Service not found")
    const validated = validateUpdateService(yield* body)
    if (validated._tag === "Invalid") return json(invalidArgumentBody(validated.fields), 400)
    if ((yield* query).get("dry_run") === "true") return json({ service: serviceObject(service, organizationId) })
    const { definition, lifeCycle, saveOnly } = validated.value
    service.lifeCycle = { ...service.lifeCycle, ...lifeCycle } satisfies ParsedLifeCycle
    service.updatedAt = new Date()
    yield* scheduleDeletion(service)
    if (!saveOnly) {
      // A deployment still on its way is superseded by the new one.
      for (const d of serviceDeployments(service.id)) {
        if (d.id !== service.activeDeploymentId && !terminalStatuses.has(d.status)) {
          yield* teardown(d)
          touch(d, "CANCELED")
          d.terminatedAt = new Date()
        }
      }
      service.version += 1
      yield* startDeployment(service, definition, service.latestDeploymentId)
    }
    return json({ service: serviceObject(service, organizationId) })
  })

  const deleteServiceRoute = Effect.gen(function*() {
    const service = services.get(yield* param("id"))
    if (service === undefined) return notFound("Service not found")
    yield* deleteService(service)
    return json({})
  })

  const getDeployment = Effect.gen(function*() {
    const d = deployments.get(yield* param("id"))
    return d === undefined ? notFound("Deployment not found") : json(deploymentJson(d, organizationId, publicUrl))
  })

  // ---- gateway ------------------------------------------------------------------------------

  const forwardTo = (port: number, path: string) =>
    Effect.flatMap(
      HttpServerRequest.HttpServerRequest,
      (request) => forward(request, { hostname: "127.0.0.1", port, path: path.startsWith("/") ? path : `/${path}` })
    )

  const unavailable = json(errorBody(503, "UNAVAILABLE", "The sandbox is not running"), 503)

  /** Requests without a routing key: route by `Host` when it is an app domain, as Koyeb's edge does. */
  const byDomain = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const host = (request.headers.host ?? "").replace(/:\d+$/, "")
    const app = Array.from(apps.values()).find((a) => a.domain === host)
    if (app === undefined) return notFound("Not Found")
    const service = Array.from(services.values()).find((s) => s.appId === app.id)
    const d = deployments.get(service?.activeDeploymentId ?? "")
    if (d?.executor === undefined) return unavailable
    const path = yield* rawUrl
    return path.startsWith("/koyeb-sandbox/")
      ? yield* forwardTo(d.executor.port, path.slice("/koyeb-sandbox".length))
      : yield* forwardTo(d.executor.proxyPort, path)
  })

  const gateway = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const key = request.headers["x-routing-key"]
    if (key === undefined) return yield* byDomain
    const d = deployments.get(routes.get(key) ?? "")
    if (d === undefined) return notFound("No sandbox for this routing key")
    if (d.executor === undefined) return unavailable
    return yield* forwardTo(d.executor.port, (yield* rawUrl).slice("/koyeb-sandbox".length))
  })

  const exposed = Effect.gen(function*() {
    const key = yield* param("key")
    const d = deployments.get(routes.get(key) ?? "")
    if (d === undefined) return notFound("No sandbox for this routing key")
    if (d.executor === undefined) return unavailable
    return yield* forwardTo(d.executor.proxyPort, (yield* rawUrl).slice(`/r/${key}`.length))
  })

  // ---- fault switches and introspection -------------------------------------------------------

  const handle: KoyebEmulatorHandle = {
    url,
    requests: Effect.sync(() => recorded.slice()),
    clearRequests: Effect.sync(() => {
      recorded.length = 0
    }),
    failNext: (o) =>
      Effect.sync(() => {
        failRules.push({
          matcher: { method: o.method, path: o.path },
          remaining: o.times ?? 1,
          status: o.status,
          code: o.code ?? codeForStatus(o.status),
          message: o.message ?? `Emulated failure (${o.status})`,
          retryAfterSeconds: o.retryAfter === undefined
            ? undefined
            : Math.ceil(Duration.toMillis(Duration.decode(o.retryAfter)) / 1000)
        })
      }),
    delay: (o) =>
      Effect.sync(() => {
        delayRules.push({
          matcher: { method: o.method, path: o.path },
          remaining: o.times ?? Number.POSITIVE_INFINITY,
          duration: Duration.decode(o.duration)
        })
      }),
    failNextDeployment: (o) =>
      Effect.sync(() => {
        deploymentFaults.push(o ?? {})
      }),
    failDeployment: (id, message) => failDeployment(id, message),
    clearFaults: Effect.sync(() => {
      failRules = []
      delayRules = []
      deploymentFaults = []
    }),
    state: Effect.sync(() => ({
      apps: Array.from(apps.values()).map((a) => ({ id: a.id, name: a.name, domain: a.domain })),
      services: Array.from(services.values()).map((s) => ({
        id: s.id,
        appId: s.appId,
        name: s.name,
        status: s.status,
        activeDeploymentId: s.activeDeploymentId,
        latestDeploymentId: s.latestDeploymentId
      })),
      deployments: Array.from(deployments.values()).map((d) => ({
        id: d.id,
        serviceId: d.serviceId,
        status: d.status,
        routingKey: d.routingKey
      })),
      executors: Array.from(deployments.values()).flatMap((d) =>
        d.executor === undefined ? [] : [{
          deploymentId: d.id,
          serviceId: d.serviceId,
          pid: d.executor.pid,
          url: d.executor.url,
          proxyPort: d.executor.proxyPort,
          isolation: d.executor.isolation
        }]
      )
    }))
  }

  const adminBody = Effect.map(body, (b) => (typeof b === "object" && b !== null ? b as Record<string, unknown> : {}))
  const num = (u: unknown) => (typeof u === "number" ? u : undefined)
  const str = (u: unknown) => (typeof u === "string" ? u : undefined)

  const adminFail = Effect.gen(function*() {
    const b = yield* adminBody
    const status = num(b.status)
    if (status === undefined) return json(invalidArgumentBody([{ field: "status", description: "is required" }]), 400)
    const retry = num(b.retry_after_seconds)
    yield* handle.failNext({
      status,
      times: num(b.times),
      method: str(b.method),
      path: str(b.path),
      code: str(b.code),
      message: str(b.message),
      retryAfter: retry === undefined ? undefined : Duration.seconds(retry)
    })
    return json({})
  })

  const adminDelay = Effect.gen(function*() {
    const b = yield* adminBody
    const millis = num(b.millis)
    if (millis === undefined) return json(invalidArgumentBody([{ field: "millis", description: "is required" }]), 400)
    yield* handle.delay({
      duration: Duration.millis(millis),
      times: num(b.times),
      method: str(b.method),
      path: str(b.path)
    })
    return json({})
  })

  const adminFailNextDeployment = Effect.gen(function*() {
    const b = yield* adminBody
    const after = num(b.after_healthy_millis)
    yield* handle.failNextDeployment({
      afterHealthy: after === undefined ? undefined : Duration.millis(after),
      message: str(b.message)
    })
    return json({})
  })

  const adminFailDeployment = Effect.gen(function*() {
    const id = yield* param("id")
    const b = yield* adminBody
    return yield* failDeployment(id, str(b.message)).pipe(
      Effect.as(json({})),
      Effect.catchTag("SandboxNotFound", () => Effect.succeed(notFound("Deployment not found")))
    )
  })

  const router = HttpRouter.empty.pipe(
    HttpRouter.post("/v1/apps", createApp),
    HttpRouter.get("/v1/apps", listApps),
    HttpRouter.get("/v1/apps/:id", getApp),
    HttpRouter.del("/v1/apps/:id", deleteApp),
    HttpRouter.post("/v1/services", createService),
    HttpRouter.get("/v1/services", listServices),
    HttpRouter.get("/v1/services/:id", getService),
    HttpRouter.put("/v1/services/:id", updateService),
    HttpRouter.del("/v1/services/:id", deleteServiceRoute),
    HttpRouter.get("/v1/deployments/:id", getDeployment)
  ).pipe(
    HttpRouter.all("/koyeb-sandbox/*", gateway),
    HttpRouter.all("/r/:key", exposed),
    HttpRouter.all("/r/:key/*", exposed),
    HttpRouter.post("/_emulator/faults/fail", adminFail),
    HttpRouter.post("/_emulator/faults/delay", adminDelay),
    HttpRouter.post("/_emulator/faults/fail-next-deployment", adminFailNextDeployment),
    HttpRouter.del("/_emulator/faults", Effect.as(handle.clearFaults, json({}))),
    HttpRouter.post("/_emulator/deployments/:id/fail", adminFailDeployment),
    HttpRouter.get("/_emulator/state", Effect.map(handle.state, (s) => json(s))),
    HttpRouter.get("/_emulator/requests", Effect.map(handle.requests, (requests) => json({ requests }))),
    HttpRouter.del("/_emulator/requests", Effect.as(handle.clearRequests, json({})))
  )
  const routed = (yield* HttpRouter.toHttpApp(router)).pipe(
    Effect.catchTag(
      "RouteNotFound",
      () => Effect.flatMap(rawUrl, (path) => path.startsWith("/v1/") ? Effect.succeed(notFound("Not Found")) : byDomain)
    )
  )

  const app = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const target = new URL(yield* rawUrl, "http://emulator")
    const path = target.pathname
    const isApi = path === "/v1" || path.startsWith("/v1/")
    if (!path.startsWith("/_emulator/")) {
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(request.headers)) {
        if (name !== "authorization") headers[name] = value
      }
      recorded.push({
        method: request.method,
        path,
        query: queryRecord(target.searchParams),
        headers,
        body: isApi ? yield* body : undefined
      })
      // Bounded, so a long-running `effect-koyeb emulator` does not grow without end.
      if (recorded.length > MAX_RECORDED) recorded.splice(0, recorded.length - MAX_RECORDED)
      const delayRule = delayRules.find((r) => r.remaining > 0 && matches(r.matcher, request.method, path))
      if (delayRule !== undefined) {
        delayRule.remaining -= 1
        yield* Effect.sleep(delayRule.duration)
      }
      const rule = failRules.find((r) => r.remaining > 0 && matches(r.matcher, request.method, path))
      if (rule !== undefined) {
        rule.remaining -= 1
        return HttpServerResponse.unsafeJson(errorBody(rule.status, rule.code, rule.message), {
          status: rule.status,
          headers: rule.retryAfterSeconds === undefined ? undefined : { "retry-after": String(rule.retryAfterSeconds) }
        })
      }
    }
    if (isApi || path.startsWith("/_emulator/")) {
      const auth = request.headers.authorization ?? ""
      if (!auth.startsWith("Bearer ") || !sameSecret(auth.slice("Bearer ".length), token)) {
        return json(errorBody(401, "UNAUTHENTICATED", "Invalid or missing API token"), 401)
      }
    }
    return yield* routed
  })

  yield* server.serve(app)
  return handle
})

/**
 * The emulator as a layer; it stops (killing every sandbox) when the layer's scope closes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<KoyebEmulator, KoyebEmulatorError> =>
  Layer.scoped(KoyebEmulator, make(options))
