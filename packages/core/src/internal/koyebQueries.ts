/**
 * The Koyeb control plane's operations on existing sandboxes: get (with the secret recovered from
 * the deployment), list, delete, public domain, exposed URL, TCP proxy and lifecycle updates.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { ControlPlaneShape, LifecycleOptions, ProvisionedSandbox } from "../ControlPlane.js"
import { deepSleepSeconds, type Deployment, type Service, ServiceList, TERMINAL_STATUSES } from "../KoyebWire.js"
import { SandboxInfo } from "../SandboxSchema.js"
import { sdkAppName } from "./koyebCreate.js"
import type { KoyebResources } from "./koyebResources.js"
import * as Wire from "./koyebWire.js"

/**
 * A listed sandbox: its info, whether the SDK created its app, its deployment's status and, when
 * it sleeps, its last traffic (the deployment fell asleep that many seconds after it).
 */
const listed = (service: Service, deployment: Option.Option<Deployment>, appName: string): SandboxInfo => {
  const status = Option.flatMap(deployment, (d) => Option.fromNullable(d.status))
  const lastActivity = Option.flatMap(
    Option.filter(deployment, (d) => d.status === "SLEEPING" && typeof d.updated_at === "string"),
    (d) => {
      const sleptAt = Wire.dateOf(d.updated_at).getTime()
      const idleSeconds = deepSleepSeconds(Wire.definitionView(d.definition))
      return sleptAt > 0 ? Option.some(new Date(sleptAt - idleSeconds * 1000)) : Option.none()
    }
  )
  return new SandboxInfo({
    ...Wire.infoOf(service, deployment, false),
    managed: sdkAppName.test(appName),
    ...(Option.isSome(status) ? { status: status.value } : {}),
    ...(Option.isSome(lastActivity) ? { lastActivity: lastActivity.value } : {})
  })
}

/** The operations of `ControlPlaneShape` on existing sandboxes. */
export const makeQueries = (
  resources: KoyebResources
): Pick<ControlPlaneShape, "get" | "list" | "delete" | "domain" | "exposedUrl" | "tcpProxy" | "updateLifecycle"> => {
  const { getDeployment, getService, http } = resources

  const deploymentOf = (sandboxId: string, service: Service) =>
    Option.match(Wire.currentDeployment(service), {
      onNone: () => Effect.succeed(Option.none<Deployment>()),
      onSome: (deploymentId) => Effect.asSome(getDeployment(sandboxId, deploymentId))
    })

  // The deployment's gateway, else (only then) the app's domain.
  const located = (id: string) =>
    Effect.gen(function*() {
      const service = yield* getService(id)
      const gateway = Option.flatMap(yield* deploymentOf(id, service), Wire.gatewayOf)
      const domain = Option.isSome(gateway) ? Option.none<string>() : yield* resources.appDomain(service.app_id)
      return { gateway, domain }
    })

  const get = Effect.fn("KoyebControlPlane.get")(function*(id: string) {
    yield* Effect.annotateCurrentSpan("sandbox.id", id)
    const service = yield* getService(id)
    const deploymentId = yield* Option.match(Wire.currentDeployment(service), {
      onNone: () => Effect.fail(resources.noDeployment(id)),
      onSome: Effect.succeed
    })
    const deployment = yield* getDeployment(id, deploymentId)
    const secret = yield* resources.secretOf(deployment, id)
    const endpoint = yield* resources.endpointOf(Option.some(deployment), service.app_id, secret)
    return { info: Wire.infoOf(service, Option.some(deployment), false), endpoint } satisfies ProvisionedSandbox
  })

  const list = Effect.gen(function*() {
    const limit = 100
    const services: Array<Service> = []
    for (let offset = 0;; offset += limit) {
      const page = yield* http.get("/v1/services", ServiceList, {
        urlParams: { types: "SANDBOX", limit: String(limit), offset: String(offset) }
      })
      const items = page.services ?? []
      for (const item of items) services.push(item)
      if (items.length < limit || page.has_next === false) break
    }
    const appNames = new Map(
      yield* Effect.forEach(
        new Set(services.map((service) => service.app_id)),
        (appId) =>
          resources.appName(appId).pipe(
            Effect.catchTag("SandboxNotFound", () => Effect.succeed("")),
            Effect.map((name) => [appId, name] as const)
          ),
        { concurrency: 4 }
      )
    )
    const infos = yield* Effect.forEach(services, (service) =>
      deploymentOf(service.id, service).pipe(
        Effect.map((deployment) => Option.some(listed(service, deployment, appNames.get(service.app_id) ?? ""))),
        // Deleted between the listing and the lookup: not a sandbox any more.
        Effect.catchTag("SandboxNotFound", () => Effect.succeedNone)
      ), { concurrency: 4 })
    return infos.flatMap(Option.toArray)
  }).pipe(Effect.withSpan("KoyebControlPlane.list"))

  const delete_ = Effect.fn("KoyebControlPlane.delete")(function*(info: SandboxInfo) {
    yield* Effect.annotateCurrentSpan("sandbox.id", info.id)
    yield* (info.ownsApp ? resources.deleteApp(info.appId) : resources.deleteService(info.id)).pipe(
      Effect.catchTag("SandboxNotFound", () => Effect.void)
    )
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
    return yield* resources.noEndpoint(`sandbox ${id} has no public domain yet`, `/v1/services/${id}`)
  })

  const tcpProxy = Effect.fn("KoyebControlPlane.tcpProxy")(function*(id: string) {
    yield* Effect.annotateCurrentSpan("sandbox.id", id)
    const service = yield* getService(id)
    if (!service.active_deployment_id) return Option.none()
    return Wire.tcpProxyOf(yield* getDeployment(id, service.active_deployment_id))
  })

  const updateLifecycle = Effect.fn("KoyebControlPlane.updateLifecycle")(
    function*(id: string, options: LifecycleOptions) {
      yield* Effect.annotateCurrentSpan("sandbox.id", id)
      // -1: not given, keep the current value.
      const afterCreate = yield* Wire.seconds("deleteAfterDelay", options.deleteAfterDelay, -1)
      const afterSleep = yield* Wire.seconds("deleteAfterInactivityDelay", options.deleteAfterInactivityDelay, -1)
      const service = yield* getService(id)
      if (!service.latest_deployment_id) return yield* resources.noDeployment(id)
      const deployment = yield* getDeployment(id, service.latest_deployment_id)
      const current = service.life_cycle ?? {}
      yield* http.put(`/v1/services/${encodeURIComponent(id)}`, {
        definition: deployment.definition,
        life_cycle: {
          delete_after_create: afterCreate >= 0 ? afterCreate : current.delete_after_create ?? 0,
          delete_after_sleep: afterSleep >= 0 ? afterSleep : current.delete_after_sleep ?? 0
        }
      }, { notFound: id })
      yield* replaced(id, service.latest_deployment_id)
    }
  )

  /**
   * Whether Koyeb answers a lifecycle-only PUT with a replacement deployment is not known (the
   * emulator does): when one was made, waits (at most 5 minutes) until it is active or failed, so
   * that the sandbox's address (a new routing key) can be resolved again afterwards.
   */
  const replaced = (id: string, previous: string) =>
    Effect.gen(function*() {
      const service = yield* getService(id)
      const latest = service.latest_deployment_id ?? ""
      if (latest === "" || latest === previous || service.active_deployment_id === latest) return true
      return TERMINAL_STATUSES.has((yield* getDeployment(id, latest)).status ?? "")
    }).pipe(
      Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (settled) => settled }),
      Effect.timeoutOption("5 minutes"),
      Effect.asVoid
    )

  return { get, list, delete: delete_, domain, exposedUrl, tcpProxy, updateLifecycle }
}
