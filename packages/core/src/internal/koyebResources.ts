/**
 * The Koyeb resources behind a sandbox, as the control plane's operations read and delete them:
 * its service, deployments and app, the executor secret kept in the deployment definition, and
 * the address of its executor (the deployment's gateway, else the app's domain).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { SandboxEndpoint } from "../ControlPlane.js"
import {
  AppList,
  AppReply,
  type Deployment,
  DeploymentReply,
  SECRET_ENV,
  type Service,
  ServiceReply
} from "../KoyebWire.js"
import { ControlPlaneError, type ControlPlaneFailure } from "../SandboxError.js"
import type { KoyebHttp } from "./koyebHttp.js"
import * as Wire from "./koyebWire.js"

/** Lookups and deletions of the resources of sandboxes. */
export interface KoyebResources {
  readonly http: KoyebHttp
  readonly getService: (id: string) => Effect.Effect<Service, ControlPlaneFailure>
  /** The deployment `deploymentId` of sandbox `sandboxId` (a 404 is `SandboxNotFound` of the sandbox). */
  readonly getDeployment: (sandboxId: string, deploymentId: string) => Effect.Effect<Deployment, ControlPlaneFailure>
  /** The app's name; `SandboxNotFound` (of the app id) when it is gone. */
  readonly appName: (appId: string) => Effect.Effect<string, ControlPlaneFailure>
  /** The first domain of the app, if it has one yet. */
  readonly appDomain: (appId: string) => Effect.Effect<Option.Option<string>, ControlPlaneFailure>
  /** Every app named `name`. */
  readonly appsNamed: (name: string) => Effect.Effect<ReadonlyArray<{ readonly id: string }>, ControlPlaneFailure>
  readonly deleteApp: (appId: string) => Effect.Effect<void, ControlPlaneFailure>
  readonly deleteService: (id: string) => Effect.Effect<void, ControlPlaneFailure>
  /** The executor secret of a deployment; `NoSecret` when its definition carries none. */
  readonly secretOf: (
    deployment: Deployment,
    sandboxId: string
  ) => Effect.Effect<Redacted.Redacted<string>, ControlPlaneError>
  /** The executor's address: the deployment's gateway, else the app's domain; `NoEndpoint` when neither exists. */
  readonly endpointOf: (
    deployment: Option.Option<Deployment>,
    appId: string,
    secret: Redacted.Redacted<string>
  ) => Effect.Effect<SandboxEndpoint, ControlPlaneFailure>
  /** The error of a sandbox whose service has no deployment. */
  readonly noDeployment: (id: string) => ControlPlaneError
  /** The error of a sandbox with no public address. */
  readonly noEndpoint: (detail: string, path: string) => ControlPlaneError
}

/** The resources reached through `http`. */
export const make = (http: KoyebHttp): KoyebResources => {
  const { host } = http
  const noEndpoint = (detail: string, path: string) =>
    new ControlPlaneError({ reason: "NoEndpoint", detail, method: "GET", url: host + path })

  const appDomain = (appId: string) =>
    http.get(`/v1/apps/${encodeURIComponent(appId)}`, AppReply).pipe(
      Effect.map((r) => Option.fromNullable(r.app.domains?.[0]?.name || null))
    )

  return {
    http,
    getService: (id) =>
      http.get(`/v1/services/${encodeURIComponent(id)}`, ServiceReply, { notFound: id }).pipe(
        Effect.map((r) => r.service)
      ),
    getDeployment: (sandboxId, deploymentId) =>
      http.get(`/v1/deployments/${encodeURIComponent(deploymentId)}`, DeploymentReply, { notFound: sandboxId }).pipe(
        Effect.map((r) => r.deployment)
      ),
    appName: (appId) =>
      http.get(`/v1/apps/${encodeURIComponent(appId)}`, AppReply, { notFound: appId }).pipe(
        Effect.map((r) => r.app.name ?? "")
      ),
    appDomain,
    appsNamed: (name) =>
      http.get("/v1/apps", AppList, { urlParams: { name, limit: "100" } }).pipe(
        Effect.map((r) => (r.apps ?? []).filter((app) => app.name === name))
      ),
    deleteApp: (appId) => http.delete(`/v1/apps/${encodeURIComponent(appId)}`, { notFound: appId }),
    deleteService: (id) => http.delete(`/v1/services/${encodeURIComponent(id)}`, { notFound: id }),
    secretOf: (deployment, sandboxId) =>
      Option.match(Wire.secretOf(Wire.definitionView(deployment.definition)), {
        onNone: () =>
          Effect.fail(
            new ControlPlaneError({
              reason: "NoSecret",
              detail: `sandbox ${sandboxId} has no ${SECRET_ENV} in its deployment definition`,
              method: "GET",
              url: `${host}/v1/deployments/${deployment.id}`
            })
          ),
        onSome: (s) => Effect.succeed(Redacted.make(s))
      }),
    endpointOf: (deployment, appId, secret) =>
      Option.match(Option.flatMap(deployment, Wire.gatewayOf), {
        onSome: (g) => Effect.succeed({ url: `${g.publicUrl}/koyeb-sandbox`, secret, routingKey: g.routingKey }),
        onNone: () =>
          appDomain(appId).pipe(
            Effect.flatMap(Option.match({
              onNone: () =>
                Effect.fail(
                  noEndpoint(`app ${appId} has no domain and the deployment no gateway`, `/v1/apps/${appId}`)
                ),
              onSome: (domain) => Effect.succeed({ url: `https://${domain}/koyeb-sandbox`, secret })
            }))
          )
      }),
    noDeployment: (id) =>
      new ControlPlaneError({
        reason: "NoDeployment",
        detail: `sandbox ${id} has no deployment`,
        method: "GET",
        url: `${host}/v1/services/${id}`
      }),
    noEndpoint
  }
}
