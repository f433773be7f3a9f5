/**
 * The emulator's Koyeb REST routes: apps, services of type SANDBOX, deployments and secrets, with
 * Koyeb's JSON shapes and error bodies.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Ref from "effect/Ref"
import * as Crypto from "node:crypto"
import type { Deployments } from "./deployments.js"
import { body, invalidArgument, json, notFound, page, param, query } from "./http.js"
import { appJson, deploymentJson, serviceObject } from "./render.js"
import { createViolations } from "./sandboxOptions.js"
import * as Secrets from "./secrets.js"
import * as State from "./state.js"
import type { ServiceRecord, Store } from "./state.js"
import { validateCreateApp, validateCreateService, validateUpdateService } from "./validation.js"

/** What the routes work on. */
export interface RoutesContext {
  readonly store: Ref.Ref<Store>
  readonly deployments: Deployments
  readonly organizationId: string
  /** `metadata.sandbox.public_url` of the deployments. */
  readonly publicUrl: string
  /** The domain of a new app, from its name. */
  readonly appDomain: (name: string) => string
}

/** `/v1/apps`, `/v1/services` and `/v1/deployments`. */
export const make = ({ appDomain, deployments, organizationId, publicUrl, store }: RoutesContext) => {
  const lookup = <A>(select: (store: Store, id: string) => A | undefined) =>
    Effect.map(Effect.zip(Ref.get(store), param("id")), ([s, id]) => select(s, id))
  const serviceReply = (service: ServiceRecord) => json({ service: serviceObject(service, organizationId) })
  const dryRun = Effect.map(query, (q) => q.get("dry_run") === "true")

  const createApp = Effect.gen(function*() {
    const validated = validateCreateApp(yield* body)
    if (Either.isLeft(validated)) return invalidArgument(validated.left)
    const { deleteWhenEmpty, name } = validated.right
    const app = {
      id: Crypto.randomUUID(),
      name,
      domain: appDomain(name),
      deleteWhenEmpty,
      createdAt: yield* Clock.currentTimeMillis
    }
    yield* Ref.update(store, State.putApp(app))
    return json(appJson(app, organizationId))
  })

  const listApps = Effect.gen(function*() {
    const q = yield* query
    const { limit, offset } = page(q)
    const name = q.get("name")
    const matching = Array.from((yield* Ref.get(store)).apps.values())
      .filter((a) => name === null || a.name === name)
      .sort((a, b) => b.createdAt - a.createdAt)
    return json({
      apps: matching.slice(offset, offset + limit).map((a) => appJson(a, organizationId).app),
      limit,
      offset,
      count: matching.length
    })
  })

  const getApp = Effect.map(
    lookup((s, id) => s.apps.get(id)),
    (app) => app === undefined ? notFound("App not found") : json(appJson(app, organizationId))
  )

  const deleteApp = Effect.gen(function*() {
    const app = yield* lookup((s, id) => s.apps.get(id))
    if (app === undefined) return notFound("App not found")
    for (const service of Array.from((yield* Ref.get(store)).services.values())) {
      if (service.appId === app.id) yield* deployments.deleteService(service.id)
    }
    yield* Ref.update(store, State.removeApp(app.id))
    return json({})
  })

  const createService = Effect.gen(function*() {
    const validated = validateCreateService(yield* body)
    if (Either.isLeft(validated)) return invalidArgument(validated.left)
    const { appId, definition, lifeCycle } = validated.right
    const violations = createViolations(definition, yield* Ref.get(store), appId)
    if (violations.length > 0) return invalidArgument(violations)
    const now = yield* Clock.currentTimeMillis
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
      lastActivityAt: now
    }
    if (yield* dryRun) return serviceReply(service)
    if (!(yield* Ref.get(store)).apps.has(appId)) return notFound("App not found")
    const created: ServiceRecord = { ...service, id: Crypto.randomUUID() }
    yield* Ref.update(store, State.putService(created))
    yield* deployments.start(created, definition, "")
    yield* deployments.scheduleDeletion(created.id)
    return serviceReply((yield* Ref.get(store)).services.get(created.id) ?? created)
  })

  const listServices = Effect.gen(function*() {
    const q = yield* query
    const { limit, offset } = page(q)
    const types = q.getAll("types")
    const statuses = q.getAll("statuses")
    const appId = q.get("app_id")
    const name = q.get("name")
    const matching = Array.from((yield* Ref.get(store)).services.values())
      .filter((s) =>
        (appId === null || s.appId === appId) &&
        (name === null || s.name === name) &&
        (types.length === 0 || types.includes("SANDBOX")) &&
        (statuses.length === 0 || statuses.includes(s.status))
      )
      .sort((a, b) => b.createdAt - a.createdAt)
    const services = matching.slice(offset, offset + limit)
    return json({
      services: services.map((s) => serviceObject(s, organizationId)),
      limit,
      offset,
      count: matching.length,
      has_next: offset + services.length < matching.length
    })
  })

  const getService = Effect.map(
    lookup((s, id) => s.services.get(id)),
    (service) => service === undefined ? notFound("Service not found") : serviceReply(service)
  )

  const updateService = Effect.gen(function*() {
    const service = yield* lookup((s, id) => s.services.get(id))
    if (service === undefined) return notFound("Service not found")
    const validated = validateUpdateService(yield* body)
    if (Either.isLeft(validated)) return invalidArgument(validated.left)
    const violations = createViolations(validated.right.definition, yield* Ref.get(store), service.appId)
    if (violations.length > 0) return invalidArgument(violations)
    if (yield* dryRun) return serviceReply(service)
    const { definition, lifeCycle, saveOnly } = validated.right
    const now = yield* Clock.currentTimeMillis
    yield* Ref.update(
      store,
      State.updateService(service.id, (s) => ({ ...s, lifeCycle: { ...s.lifeCycle, ...lifeCycle }, updatedAt: now }))
    )
    yield* deployments.scheduleDeletion(service.id)
    if (!saveOnly) {
      // A deployment still on its way is superseded by the new one.
      yield* deployments.cancelPending(service.id)
      yield* Ref.update(store, State.updateService(service.id, (s) => ({ ...s, version: s.version + 1 })))
      const updated = (yield* Ref.get(store)).services.get(service.id)
      if (updated !== undefined) yield* deployments.start(updated, definition, updated.latestDeploymentId)
    }
    return serviceReply((yield* Ref.get(store)).services.get(service.id) ?? service)
  })

  const deleteService = Effect.gen(function*() {
    const service = yield* lookup((s, id) => s.services.get(id))
    if (service === undefined) return notFound("Service not found")
    yield* deployments.deleteService(service.id)
    return json({})
  })

  const getDeployment = Effect.map(
    lookup((s, id) => s.deployments.get(id)),
    (d) => d === undefined ? notFound("Deployment not found") : json(deploymentJson(d, organizationId, publicUrl))
  )

  return HttpRouter.empty.pipe(
    HttpRouter.post("/v1/apps", createApp),
    HttpRouter.get("/v1/apps", listApps),
    HttpRouter.get("/v1/apps/:id", getApp),
    HttpRouter.del("/v1/apps/:id", deleteApp),
    HttpRouter.post("/v1/services", createService),
    HttpRouter.get("/v1/services", listServices),
    HttpRouter.get("/v1/services/:id", getService),
    HttpRouter.put("/v1/services/:id", updateService),
    HttpRouter.del("/v1/services/:id", deleteService),
    HttpRouter.get("/v1/deployments/:id", getDeployment),
    HttpRouter.concat(Secrets.routes(store, organizationId))
  )
}
