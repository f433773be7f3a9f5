/**
 * A local emulator of the Koyeb REST API subset that sandboxes use (apps, services of type SANDBOX,
 * deployments), plus the sandbox gateway. Every service runs a real local executor process, so any
 * Koyeb client pointed at `KOYEB_API_HOST=<emulator url>` works against it with no account and no
 * network.
 *
 * - REST: `POST /v1/apps`, `GET /v1/apps` (`name`, `limit`, `offset`), `GET|DELETE /v1/apps/{id}`,
 *   `POST /v1/services` (`?dry_run=true` validates only), `GET /v1/services` (`app_id`, `name`, `types`, `statuses`, `limit`, `offset`),
 *   `GET|PUT|DELETE /v1/services/{id}`, `GET /v1/deployments/{id}`, `GET /v1/instances`
 *   (`app_id`, `service_id`, `deployment_id`, `statuses`), `GET /v1/instances/{id}`, with Koyeb's JSON shapes and
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
 * - With `tls: true` the API and the gateway are served over HTTPS with a certificate signed by a CA
 *   made at start with the `openssl` command line (`caPath`; removed with the scope), and app
 *   domains are `<app name>.koyeb.localhost:<port>` (the certificate covers `*.koyeb.localhost`,
 *   `localhost`, `127.0.0.1`, `::1`), so `https://<domain>/koyeb-sandbox/` — what Koyeb's JS SDK
 *   calls — reaches the emulator. `*.localhost` resolves to loopback in browsers, curl and
 *   systemd-resolved, but not through plain glibc: there, give the client a `lookup` that answers
 *   127.0.0.1, or add one `/etc/hosts` line per app (`127.0.0.1 <app name>.koyeb.localhost`).
 * - `metadata.proxy_ports` lists `{host: "127.0.0.1", public_port: <executor proxy port>, port: 3031,
 *   protocol: "tcp"}` when the definition asks for a TCP proxy on 3031.
 * - `life_cycle.delete_after_create` deletes the service after that many seconds; app
 *   `life_cycle.delete_when_empty` deletes the app with its last service. A service that may scale
 *   to zero (`scalings[].min` 0 with `targets[].sleep_idle_delay.deep_sleep_value`) goes to
 *   `SLEEPING` (service, deployment and its instance in `GET /v1/instances`; its executor is
 *   stopped, its files kept) after that many seconds without a request through the gateway, and
 *   `life_cycle.delete_after_sleep` deletes it that many seconds later. The next gateway request
 *   wakes it first (STARTING, then HEALTHY: a new executor on the same files, no process left, as
 *   after Koyeb's deep sleep) and waits for it, at most 30 seconds (then 503).
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
import type { SandboxNotFound } from "@effect-koyeb/core/SandboxError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/emulator/server.js"

/**
 * Options of `make` / `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface KoyebEmulatorOptions {
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
  /**
   * Serve the API and the gateway over HTTPS with a CA generated at start (needs the `openssl`
   * command line; `KoyebEmulatorError` when it is missing). Default false.
   */
  readonly tls?: boolean | undefined
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
 * @since 0.2.0
 * @category models
 */
export interface KoyebEmulatorShape {
  /** Base URL, e.g. `http://127.0.0.1:41234`: use it as `KOYEB_API_HOST`. It is also the sandbox gateway. */
  readonly url: string
  /** With `tls`: the path of the CA certificate (PEM) that clients must trust, e.g. with `NODE_EXTRA_CA_CERTS`. */
  readonly caPath?: string | undefined
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
 * @deprecated Use `KoyebEmulatorShape`.
 * @since 0.1.0
 * @category models
 */
export type KoyebEmulatorHandle = KoyebEmulatorShape

/**
 * The emulator as a service.
 *
 * @since 0.1.0
 * @category tags
 */
export class KoyebEmulator extends Context.Tag("@effect-koyeb/platform-node/KoyebEmulator")<
  KoyebEmulator,
  KoyebEmulatorShape
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

/**
 * Starts the emulator on `host:port` (default `127.0.0.1:0`). Closing the scope kills every sandbox
 * executor and stops the server.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: KoyebEmulatorOptions
) => Effect.Effect<KoyebEmulatorShape, KoyebEmulatorError, Scope.Scope> = Effect.fn("KoyebEmulator.make")(
  function*(options: KoyebEmulatorOptions) {
    return yield* internal.make(options).pipe(
      Effect.catchTags({
        ListenError: (error) => new KoyebEmulatorError({ detail: error.detail, cause: error.cause }),
        TlsError: (error) => new KoyebEmulatorError({ detail: error.detail, cause: error.cause })
      })
    )
  }
)

/**
 * The emulator as a layer; it stops (killing every sandbox) when the layer's scope closes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: KoyebEmulatorOptions): Layer.Layer<KoyebEmulator, KoyebEmulatorError> =>
  Layer.scoped(KoyebEmulator, make(options))

/**
 * The former name of `KoyebEmulatorOptions`.
 *
 * @deprecated Use `KoyebEmulatorOptions`.
 * @since 0.1.0
 * @category models
 */
export type Options = KoyebEmulatorOptions
