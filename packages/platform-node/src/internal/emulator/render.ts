/**
 * The Koyeb JSON shapes the emulator answers with: `App`, `Service`, `Deployment`, `Error` and
 * `ErrorWithFields`.
 *
 * @internal
 */
import { PROXY_PORT } from "@effect-koyeb/core/KoyebWire"
import type { AppRecord, DeploymentRecord, ServiceRecord } from "./state.js"
import type { FieldViolation } from "./validation.js"

/** An epoch-millis time as Koyeb writes it: ISO 8601, `null` when unset. */
export const iso = (millis: number | undefined) => (millis === undefined ? null : new Date(millis).toISOString())

/** Koyeb's `Error` body. */
export const errorBody = (status: number, code: string, message: string) => ({ status, code, message })

/** Koyeb's `ErrorWithFields` body (400 `INVALID_ARGUMENT`). */
export const invalidArgumentBody = (fields: ReadonlyArray<FieldViolation>) => ({
  status: 400,
  code: "INVALID_ARGUMENT",
  message: "Validation error",
  fields
})

/** The `code` Koyeb-style errors carry for a status. */
export const codeForStatus = (status: number): string => {
  switch (status) {
    case 400:
      return "INVALID_ARGUMENT"
    case 401:
      return "UNAUTHENTICATED"
    case 403:
      return "PERMISSION_DENIED"
    case 404:
      return "NOT_FOUND"
    case 409:
      return "ALREADY_EXISTS"
    case 429:
      return "RESOURCE_EXHAUSTED"
    case 503:
      return "UNAVAILABLE"
    case 504:
      return "DEADLINE_EXCEEDED"
    default:
      return status >= 500 ? "INTERNAL" : "UNKNOWN"
  }
}

/** `{app: App}` */
export const appJson = (app: AppRecord, organizationId: string) => ({
  app: {
    id: app.id,
    name: app.name,
    organization_id: organizationId,
    created_at: iso(app.createdAt),
    updated_at: iso(app.createdAt),
    started_at: iso(app.createdAt),
    succeeded_at: iso(app.createdAt),
    paused_at: null,
    resumed_at: null,
    terminated_at: null,
    status: "HEALTHY",
    messages: [],
    version: "1",
    domains: [{
      id: `${app.id}-domain`,
      organization_id: organizationId,
      app_id: app.id,
      name: app.domain,
      type: "AUTOASSIGNED",
      status: "ACTIVE",
      created_at: iso(app.createdAt),
      updated_at: iso(app.createdAt),
      deployment_group: "prod",
      messages: [],
      version: "1"
    }],
    life_cycle: { delete_when_empty: app.deleteWhenEmpty }
  }
})

/** The `Service` object (also used for list items). */
export const serviceObject = (service: ServiceRecord, organizationId: string) => ({
  id: service.id,
  app_id: service.appId,
  organization_id: organizationId,
  name: service.name,
  type: "SANDBOX",
  status: service.status,
  messages: [],
  version: String(service.version),
  active_deployment_id: service.activeDeploymentId,
  latest_deployment_id: service.latestDeploymentId,
  last_provisioned_deployment_id: service.latestDeploymentId,
  life_cycle: {
    delete_after_create: service.lifeCycle.delete_after_create ?? 0,
    delete_after_sleep: service.lifeCycle.delete_after_sleep ?? 0
  },
  created_at: iso(service.createdAt),
  updated_at: iso(service.updatedAt),
  started_at: iso(service.createdAt),
  succeeded_at: null,
  paused_at: null,
  resumed_at: null,
  terminated_at: null,
  state: {}
})

/** `{deployment: Deployment}`; `publicUrl` is the emulator's own base URL (its gateway). */
export const deploymentJson = (d: DeploymentRecord, organizationId: string, publicUrl: string) => ({
  deployment: {
    id: d.id,
    app_id: d.appId,
    service_id: d.serviceId,
    organization_id: organizationId,
    parent_id: d.parentId,
    child_id: "",
    status: d.status,
    messages: d.messages,
    definition: d.definition.raw,
    metadata: {
      sandbox: { public_url: publicUrl, routing_key: d.routingKey },
      proxy_ports: d.definition.tcpProxy && d.executor !== undefined
        ? [{ host: "127.0.0.1", public_port: d.executor.proxyPort, port: PROXY_PORT, protocol: "tcp" }]
        : []
    },
    version: String(d.version),
    deployment_group: "prod",
    skip_build: true,
    created_at: iso(d.createdAt),
    updated_at: iso(d.updatedAt),
    allocated_at: iso(d.allocatedAt),
    started_at: iso(d.startedAt),
    succeeded_at: iso(d.succeededAt),
    terminated_at: iso(d.terminatedAt)
  }
})
