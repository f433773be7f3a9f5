/**
 * The emulator's `/v1/instances`: one instance per deployment (its executor), whose status follows
 * the deployment's as Koyeb shows it: ALLOCATING while provisioning, STARTING, HEALTHY, SLEEPING
 * while the service sleeps (STARTING again while it wakes), STOPPING, STOPPED, ERROR.
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Crypto from "node:crypto"
import { json, notFound, page, param, query } from "./http.js"
import { iso } from "./render.js"
import type { DeploymentRecord, Store } from "./state.js"

/** The instance status shown for a deployment status; undefined before an instance exists. */
const instanceStatus = (deployment: DeploymentRecord): string | undefined => {
  switch (deployment.status) {
    case "PENDING":
      return undefined
    case "PROVISIONING":
    case "SCHEDULED":
    case "ALLOCATING":
      return "ALLOCATING"
    case "STARTING":
    case "HEALTHY":
    case "SLEEPING":
    case "STOPPING":
    case "STOPPED":
      return deployment.status
    case "CANCELED":
    case "CANCELING":
      return deployment.allocatedAt === undefined ? undefined : "STOPPED"
    case "ERRORING":
    case "ERROR":
      return "ERROR"
    default:
      return "UNHEALTHY"
  }
}

/** A stable UUID-shaped instance id derived from the deployment id. */
const instanceId = (deploymentId: string): string => {
  const h = Crypto.createHash("sha256").update(`instance:${deploymentId}`).digest("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`
}

const instanceJson = (d: DeploymentRecord, status: string, organizationId: string) => ({
  id: instanceId(d.id),
  created_at: iso(d.allocatedAt ?? d.createdAt),
  updated_at: iso(d.updatedAt),
  organization_id: organizationId,
  app_id: d.appId,
  service_id: d.serviceId,
  deployment_id: d.id,
  regional_deployment_id: d.id,
  allocation_id: d.id,
  type: "micro",
  replica_index: 0,
  region: "na",
  datacenter: "local",
  status,
  messages: d.messages,
  started_at: iso(d.startedAt),
  terminated_at: iso(d.terminatedAt)
})

const instancesOf = (store: Store) =>
  Array.from(store.deployments.values()).flatMap((d) => {
    const status = instanceStatus(d)
    return status === undefined ? [] : [{ d, status }]
  })

/** `GET /v1/instances` (`app_id`, `service_id`, `deployment_id`, `statuses`, `limit`, `offset`) and `GET /v1/instances/{id}`. */
export const routes = (store: Ref.Ref<Store>, organizationId: string) => {
  const list = Effect.gen(function*() {
    const q = yield* query
    const { limit, offset } = page(q)
    const statuses = q.getAll("statuses")
    const matches = (name: string, value: string) => q.get(name) === null || q.get(name) === value
    const matching = instancesOf(yield* Ref.get(store)).filter(({ d, status }) =>
      matches("app_id", d.appId) && matches("service_id", d.serviceId) && matches("deployment_id", d.id) &&
      (statuses.length === 0 || statuses.includes(status))
    ).reverse()
    return json({
      instances: matching.slice(offset, offset + limit).map(({ d, status }) => instanceJson(d, status, organizationId)),
      limit,
      offset,
      count: matching.length,
      order: "desc"
    })
  })

  const get = Effect.gen(function*() {
    const id = yield* param("id")
    const found = instancesOf(yield* Ref.get(store)).find(({ d }) => instanceId(d.id) === id)
    return found === undefined
      ? notFound("Instance not found")
      : json({ instance: instanceJson(found.d, found.status, organizationId) })
  })

  return HttpRouter.empty.pipe(
    HttpRouter.get("/v1/instances", list),
    HttpRouter.get("/v1/instances/:id", get)
  )
}
