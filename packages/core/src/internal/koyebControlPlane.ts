/**
 * `KoyebControlPlane.make`: resolves the options (host and region from the environment when
 * absent), then assembles the control plane from the HTTP policy (`koyebHttp`), the resource
 * lookups (`koyebResources`), create (`koyebCreate`), readiness (`koyebReadiness`) and the other
 * operations (`koyebQueries`).
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { ControlPlane, type ControlPlaneShape, type SandboxEndpoint } from "../ControlPlane.js"
import * as ExecutorClient from "../ExecutorClient.js"
import type { KoyebControlPlaneOptions } from "../KoyebControlPlane.js"
import { makeCreate } from "./koyebCreate.js"
import * as KoyebHttp from "./koyebHttp.js"
import { makeQueries } from "./koyebQueries.js"
import { makeWaitReady } from "./koyebReadiness.js"
import * as KoyebResources from "./koyebResources.js"
import { withAdoption } from "./sandboxRelease.js"

/** The Koyeb API host used when neither an option nor `KOYEB_API_HOST` gives one. */
export const DEFAULT_HOST = "https://app.koyeb.com"

const envOr = (name: string, fallback: string): Effect.Effect<string> =>
  Config.string(name).pipe(Config.withDefault(fallback), Effect.orElseSucceed(() => fallback))

/** The options with their token, from `KOYEB_API_TOKEN` when they give none. Shared with `Secrets`. */
export const withConfigToken = (
  options: Partial<KoyebControlPlaneOptions>
): Effect.Effect<KoyebControlPlaneOptions, ConfigError.ConfigError> =>
  options.token === undefined
    ? Effect.map(Config.redacted("KOYEB_API_TOKEN"), (token) => ({ ...options, token }))
    : Effect.succeed({ ...options, token: options.token })

/** The HTTP policy of the options: host from `KOYEB_API_HOST` when the options give none. Shared with `Secrets`. */
export const makeHttp = (
  options: KoyebControlPlaneOptions
): Effect.Effect<KoyebHttp.KoyebHttp, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const host = (options.host ?? (yield* envOr("KOYEB_API_HOST", DEFAULT_HOST))).replace(/\/+$/, "")
    return yield* KoyebHttp.make({
      host,
      token: options.token,
      requestTimeout: Duration.decode(options.requestTimeout ?? "30 seconds"),
      retryTimes: Math.max(0, options.retry?.times ?? 4),
      baseDelay: Duration.decode(options.retry?.baseDelay ?? "250 millis")
    })
  })

export const make = (
  options: KoyebControlPlaneOptions
): Effect.Effect<ControlPlaneShape, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const httpClient = yield* HttpClient.HttpClient
    const defaultRegion = options.region ?? (yield* envOr("KOYEB_REGION", "na"))
    const http = yield* makeHttp(options)
    const resources = KoyebResources.make(http)
    // Executor clients share the control plane's HttpClient.
    const connect = (endpoint: SandboxEndpoint) =>
      ExecutorClient.make({ url: endpoint.url, secret: endpoint.secret, routingKey: endpoint.routingKey }).pipe(
        Effect.provideService(HttpClient.HttpClient, httpClient)
      )
    return ControlPlane.of({
      create: makeCreate(resources, defaultRegion),
      waitReady: makeWaitReady(resources, connect),
      connect,
      ...makeQueries(resources)
    })
  })

/**
 * `make` for the layers: the sandboxes of scoped constructors that are still alive when the scope
 * closes are deleted then, before the `HttpClient` the layer was given can close.
 */
export const makeScoped = (
  options: KoyebControlPlaneOptions
): Effect.Effect<ControlPlaneShape, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.flatMap(make(options), (controlPlane) => withAdoption(controlPlane))
