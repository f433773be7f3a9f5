/**
 * `ControlPlane` over the Koyeb REST API (or the local emulator of its sandbox subset), built on
 * `@effect/platform` HttpClient: create (app + SANDBOX service), readiness polling, get, list,
 * delete, domain, TCP proxy and lifecycle updates, with timeouts and bounded retries of
 * idempotent calls.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import { ControlPlane, type ControlPlaneShape } from "./ControlPlane.js"
import * as internal from "./internal/koyebControlPlane.js"

/**
 * The Koyeb API host used when neither an option nor `KOYEB_API_HOST` gives one.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_HOST: string = internal.DEFAULT_HOST

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
  /**
   * Retries of idempotent calls (GET, PUT, DELETE) on 429, 5xx, transport failures and timeouts,
   * after the server's `Retry-After` when it sends one of at most a minute (a longer one fails at
   * once with `RateLimited`). POSTs are never retried.
   */
  readonly retry?: {
    /** Retries after the first attempt (default 4). */
    readonly times?: number | undefined
    /** First backoff delay, doubled on each retry, with jitter (default 250 ms). */
    readonly baseDelay?: Duration.DurationInput | undefined
  } | undefined
}

/**
 * Builds the control plane from explicit options, reading `KOYEB_API_HOST` / `KOYEB_REGION` for
 * absent host and region. Executor clients it hands out share the same `HttpClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: KoyebControlPlaneOptions
) => Effect.Effect<ControlPlaneShape, never, HttpClient.HttpClient> = internal.make

/**
 * The Koyeb control plane as the `ControlPlane` service. Closing the layer deletes the sandboxes
 * of `Sandbox.make` / `Sandbox.layer` still alive, while its `HttpClient` is still open.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: KoyebControlPlaneOptions): Layer.Layer<ControlPlane, never, HttpClient.HttpClient> =>
  Layer.scoped(ControlPlane, internal.makeScoped(options))

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
  Layer.scoped(ControlPlane, Effect.flatMap(internal.withConfigToken(options), internal.makeScoped))
