/**
 * The Koyeb emulator's records (apps, services, deployments and routing keys), held as immutable
 * values in one `Ref`; the functions here are the pure updates of that store.
 *
 * @internal
 */
import type * as Scope from "effect/Scope"
import type { EmulatorState } from "../../KoyebEmulator.js"
import type { LocalExecutorProcess } from "../localRuntime.js"
import type { ParsedDefinition, ParsedLifeCycle } from "./validation.js"

/** A Koyeb app; times are epoch milliseconds. */
export interface AppRecord {
  readonly id: string
  readonly name: string
  readonly domain: string
  readonly deleteWhenEmpty: boolean
  readonly createdAt: number
}

/** A Koyeb service of type SANDBOX. */
export interface ServiceRecord {
  readonly id: string
  readonly appId: string
  readonly name: string
  readonly createdAt: number
  readonly updatedAt: number
  readonly status: string
  readonly lifeCycle: ParsedLifeCycle
  readonly activeDeploymentId: string
  readonly latestDeploymentId: string
  readonly version: number
  /** The last request routed to the service through the gateway (or when it became healthy). */
  readonly lastActivityAt: number
}

/** A deployment: one executor process once provisioned. */
export interface DeploymentRecord {
  readonly id: string
  readonly serviceId: string
  readonly appId: string
  readonly parentId: string
  readonly definition: ParsedDefinition
  readonly routingKey: string
  readonly createdAt: number
  readonly version: number
  readonly updatedAt: number
  readonly status: string
  readonly messages: ReadonlyArray<string>
  readonly allocatedAt: number | undefined
  readonly startedAt: number | undefined
  readonly succeededAt: number | undefined
  readonly terminatedAt: number | undefined
  /** Owns the executor; closing it kills the executor. */
  readonly scope: Scope.CloseableScope | undefined
  /** The executor while it is alive. */
  readonly executor: LocalExecutorProcess | undefined
}

/** A Koyeb secret of type SIMPLE; times are epoch milliseconds. */
export interface SecretRecord {
  readonly id: string
  readonly name: string
  readonly value: string
  readonly createdAt: number
  readonly updatedAt: number
}

/** Everything the emulator holds; maps keep insertion order. */
export interface Store {
  readonly apps: ReadonlyMap<string, AppRecord>
  readonly services: ReadonlyMap<string, ServiceRecord>
  readonly deployments: ReadonlyMap<string, DeploymentRecord>
  /** Routing key → deployment id. */
  readonly routes: ReadonlyMap<string, string>
  /** Secrets by id. */
  readonly secrets: ReadonlyMap<string, SecretRecord>
}

/** Deployment statuses after which nothing runs any more. */
export const terminalStatuses: ReadonlySet<string> = new Set(["ERROR", "CANCELED", "STOPPED"])

/** The empty store. */
export const empty: Store = {
  apps: new Map(),
  services: new Map(),
  deployments: new Map(),
  routes: new Map(),
  secrets: new Map()
}

const set = <V>(map: ReadonlyMap<string, V>, key: string, value: V): ReadonlyMap<string, V> =>
  new Map(map).set(key, value)

const without = <V>(map: ReadonlyMap<string, V>, keys: Iterable<string>): ReadonlyMap<string, V> => {
  const out = new Map(map)
  for (const key of keys) out.delete(key)
  return out
}

/** Adds or replaces an app. */
export const putApp = (app: AppRecord) => (store: Store): Store => ({ ...store, apps: set(store.apps, app.id, app) })

/** Removes an app. */
export const removeApp = (id: string) => (store: Store): Store => ({ ...store, apps: without(store.apps, [id]) })

/** Adds or replaces a secret. */
export const putSecret = (secret: SecretRecord) => (store: Store): Store => ({
  ...store,
  secrets: set(store.secrets, secret.id, secret)
})

/** Removes a secret. */
export const removeSecret = (id: string) => (store: Store): Store => ({
  ...store,
  secrets: without(store.secrets, [id])
})

/** The secret called `name`, if any. */
export const secretNamed = (store: Store, name: string): SecretRecord | undefined =>
  Array.from(store.secrets.values()).find((s) => s.name === name)

/** Secret values by name: what deploy-time templates are resolved against. */
export const secretValues = (store: Store): ReadonlyMap<string, string> =>
  new Map(Array.from(store.secrets.values(), (s) => [s.name, s.value]))

/** Adds or replaces a service. */
export const putService = (service: ServiceRecord) => (store: Store): Store => ({
  ...store,
  services: set(store.services, service.id, service)
})

/** Changes a service, if it still exists. */
export const updateService = (id: string, f: (service: ServiceRecord) => ServiceRecord) => (store: Store): Store => {
  const service = store.services.get(id)
  return service === undefined ? store : putService(f(service))(store)
}

/** Records traffic to a service now. */
export const touchService = (id: string, now: number) => updateService(id, (s) => ({ ...s, lastActivityAt: now }))

/** Adds a deployment, routes its key to it and makes it its service's latest. */
export const addDeployment = (deployment: DeploymentRecord) => (store: Store): Store =>
  updateService(deployment.serviceId, (s) => ({ ...s, latestDeploymentId: deployment.id }))({
    ...store,
    deployments: set(store.deployments, deployment.id, deployment),
    routes: set(store.routes, deployment.routingKey, deployment.id)
  })

/** Changes a deployment, if it still exists. */
export const updateDeployment =
  (id: string, f: (deployment: DeploymentRecord) => DeploymentRecord) => (store: Store): Store => {
    const deployment = store.deployments.get(id)
    return deployment === undefined ? store : { ...store, deployments: set(store.deployments, id, f(deployment)) }
  }

/** Removes deployments. */
export const removeDeployments = (ids: ReadonlyArray<string>) => (store: Store): Store => ({
  ...store,
  deployments: without(store.deployments, ids)
})

/** The deployments of a service, oldest first. */
export const deploymentsOf = (store: Store, serviceId: string): ReadonlyArray<DeploymentRecord> =>
  Array.from(store.deployments.values()).filter((d) => d.serviceId === serviceId)

/** The deployment a routing key leads to. */
export const routed = (store: Store, routingKey: string): DeploymentRecord | undefined =>
  store.deployments.get(store.routes.get(routingKey) ?? "")

/**
 * Removes a service, the routes of its deployments and, when it was the last service of a
 * `delete_when_empty` app, the app; the deployments stay until their executors are dead. Returns
 * the removed service's deployments, or undefined when the service was already gone.
 */
export const removeService = (id: string) => (store: Store): [ReadonlyArray<DeploymentRecord> | undefined, Store] => {
  const service = store.services.get(id)
  if (service === undefined) return [undefined, store]
  const services = without(store.services, [id])
  const app = store.apps.get(service.appId)
  const emptied = app?.deleteWhenEmpty === true && !Array.from(services.values()).some((s) => s.appId === app.id)
  const owned = deploymentsOf(store, id)
  return [owned, {
    ...store,
    services,
    apps: emptied ? without(store.apps, [service.appId]) : store.apps,
    routes: without(store.routes, owned.map((d) => d.routingKey))
  }]
}

/** The public view of the store (`KoyebEmulatorShape.state`). */
export const snapshot = (store: Store): EmulatorState => ({
  apps: Array.from(store.apps.values()).map((a) => ({ id: a.id, name: a.name, domain: a.domain })),
  services: Array.from(store.services.values()).map((s) => ({
    id: s.id,
    appId: s.appId,
    name: s.name,
    status: s.status,
    activeDeploymentId: s.activeDeploymentId,
    latestDeploymentId: s.latestDeploymentId
  })),
  deployments: Array.from(store.deployments.values()).map((d) => ({
    id: d.id,
    serviceId: d.serviceId,
    status: d.status,
    routingKey: d.routingKey
  })),
  executors: Array.from(store.deployments.values()).flatMap((d) =>
    d.executor === undefined ? [] : [{
      deploymentId: d.id,
      serviceId: d.serviceId,
      pid: d.executor.pid,
      url: d.executor.url,
      proxyPort: d.executor.proxyPort,
      isolation: d.executor.isolation
    }]
  )
})
