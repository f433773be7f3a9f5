/**
 * The provider interface behind `Sandbox`: creates, finds, waits for and deletes sandboxes, and
 * tells how to reach each sandbox's executor. Implemented by `KoyebControlPlane` (Koyeb REST API
 * over HttpClient), `LocalControlPlane` (this machine, in platform-node) and `Testing.layerMemory`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type { ExecutorShape } from "./Executor.js"
import type { ExecutorClientShape } from "./ExecutorClient.js"
import type { FilesystemShape } from "./Filesystem.js"
import * as sandboxEnv from "./internal/sandboxEnv.js"
import type { ProcessesShape } from "./Processes.js"
import type {
  ApiError,
  ControlPlaneError,
  ControlPlaneFailure,
  DeploymentFailed,
  InvalidArgument,
  RateLimited,
  Timeout,
  Unauthorized
} from "./SandboxError.js"
import type { SandboxInfo } from "./SandboxSchema.js"

export {
  /**
   * What is known about a sandbox. `id` is the Koyeb service id.
   *
   * @deprecated Use `SandboxSchema.SandboxInfo` (the same class).
   * @since 0.1.0
   * @category schemas
   */
  SandboxInfo
} from "./SandboxSchema.js"

/**
 * How to reach a sandbox's executor. The secret never leaves `Redacted`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SandboxEndpoint {
  /** Base URL of the executor API (for Koyeb: `<public_url>/koyeb-sandbox` or `https://<domain>/koyeb-sandbox`). */
  readonly url: string
  readonly secret: Redacted.Redacted<string>
  /** `X-Routing-Key` header value when the sandbox is reached through Koyeb's shared gateway. */
  readonly routingKey?: string | undefined
}

/**
 * A file written into the sandbox at start (Koyeb `config_files`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigFile {
  readonly content: string
  /** Octal permissions, default `"0644"`. */
  readonly permissions?: string | undefined
}

/**
 * Every option of the Python SDK's `Sandbox.create`, in camelCase, with durations as `Duration.DurationInput`.
 *
 * @since 0.1.0
 * @category models
 */
export interface CreateOptions {
  /** Service name (default `"quick-sandbox"`). */
  readonly name?: string | undefined
  /** Docker image (default `"koyeb/sandbox"`). */
  readonly image?: string | undefined
  /** Instance type (default `"micro"`). */
  readonly instanceType?: string | undefined
  /** Region (default `KOYEB_REGION`, else `"na"`). */
  readonly region?: string | undefined
  /**
   * Environment variables of the sandbox, checked by `checkEnv` (`SANDBOX_SECRET` is reserved;
   * Koyeb also takes only names of letters, digits and `_`, not starting with a digit). A value
   * may refer to a secret (`{{ secret.NAME }}`, see `Secrets.reference`) or to another variable
   * (`{{ VAR }}`), replaced when the sandbox starts.
   */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** Protocol of the exposed port route: `"http"` (default) or `"http2"`. */
  readonly exposedPortProtocol?: "http" | "http2" | undefined
  /** Publish the proxy port as raw TCP (`tcpProxy` then returns host and port). */
  readonly enableTcpProxy?: boolean | undefined
  readonly privileged?: boolean | undefined
  /** Name of a Koyeb secret holding registry credentials for a private image. */
  readonly registrySecret?: string | undefined
  /**
   * Sleep after this much time without inbound traffic (deep sleep: files kept, processes gone; the
   * next call wakes it); 0 keeps the sandbox always on. Default 5
   * minutes for `ControlPlane.create`; 2 minutes for the scoped constructors (`Sandbox.make`,
   * `Sandbox.layer`, the Promise facade's `create`), which keep their sandbox awake while their scope
   * is open with a `/health` request every third of this delay.
   */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** Use light sleep (snapshot) before deep sleep. */
  readonly enableLightSleep?: boolean | undefined
  /** Deep sleep delay when light sleep is enabled (default 3900 seconds). */
  readonly deepSleepDelay?: Duration.DurationInput | undefined
  /** Delete the sandbox this long after creation (0 / absent: never). */
  readonly deleteAfterDelay?: Duration.DurationInput | undefined
  /**
   * Delete the sandbox after it has slept this long (0: never). Default never for
   * `ControlPlane.create`; 1 minute for the scoped constructors, so that the sandbox of a program
   * that died without closing its scope (SIGKILL, a lost machine) is deleted about 3 minutes after
   * its last request.
   */
  readonly deleteAfterInactivityDelay?: Duration.DurationInput | undefined
  /** Create the sandbox in this existing app; the app is then never deleted by the SDK. */
  readonly appId?: string | undefined
  /** Koyeb service mesh: true → ENABLED, false → DISABLED, absent → AUTO. */
  readonly enableMesh?: boolean | undefined
  readonly entrypoint?: ReadonlyArray<string> | undefined
  readonly command?: string | undefined
  readonly args?: ReadonlyArray<string> | undefined
  /** Files written at start, by absolute path; contents may refer to secrets and variables like `env`. */
  readonly configFiles?: Readonly<Record<string, string | ConfigFile>> | undefined
  /** Wait until the sandbox is ready before returning (default true). */
  readonly waitReady?: boolean | undefined
  /** Bound on readiness (default 5 minutes). */
  readonly timeout?: Duration.DurationInput | undefined
  /** Longest pause between readiness polls (default 500 ms; polls start at 100 ms and double). */
  readonly pollInterval?: Duration.DurationInput | undefined
}

/**
 * Options of `waitReady`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WaitReadyOptions {
  readonly timeout?: Duration.DurationInput | undefined
  readonly pollInterval?: Duration.DurationInput | undefined
}

/**
 * Lifecycle settings that `updateLifecycle` changes; absent fields keep their current value.
 *
 * @since 0.1.0
 * @category models
 */
export interface LifecycleOptions {
  readonly deleteAfterDelay?: Duration.DurationInput | undefined
  readonly deleteAfterInactivityDelay?: Duration.DurationInput | undefined
}

/**
 * A sandbox as the control plane knows it, with the way to reach its executor.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProvisionedSandbox {
  readonly info: SandboxInfo
  readonly endpoint: SandboxEndpoint
}

/**
 * Failures of `create`.
 *
 * @since 0.1.0
 * @category errors
 */
export type CreateError = ControlPlaneFailure | InvalidArgument | Timeout | DeploymentFailed

/**
 * The command, file and process services of one sandbox.
 *
 * @since 0.1.0
 * @category models
 */
export interface SandboxServices {
  readonly executor: ExecutorShape
  readonly filesystem: FilesystemShape
  readonly processes: ProcessesShape
}

/**
 * The control-plane provider.
 *
 * @since 0.1.0
 * @category models
 */
export interface ControlPlaneShape {
  /** Creates the sandbox (and its app unless `appId` is given). Does not wait for readiness; on failure deletes what it created. */
  readonly create: (options: CreateOptions) => Effect.Effect<ProvisionedSandbox, ControlPlaneFailure | InvalidArgument>
  /** Finds a sandbox by service id, recovering its secret; `ownsApp` is false (attached sandboxes are never deleted implicitly). */
  readonly get: (id: string) => Effect.Effect<ProvisionedSandbox, ControlPlaneFailure>
  /** Lists the sandboxes visible to the credentials. */
  readonly list: Effect.Effect<ReadonlyArray<SandboxInfo>, ControlPlaneFailure>
  /** Deletes the app when `info.ownsApp`, else only the service. Succeeds if it is already gone. */
  readonly delete: (info: SandboxInfo) => Effect.Effect<void, ApiError | ControlPlaneError | Unauthorized | RateLimited>
  /**
   * Takes charge of a sandbox that `create` made for a scope (`Sandbox.make`, `Sandbox.layer`):
   * the returned effect deletes it, once however often it runs, and the control plane deletes it
   * itself when it closes first, while what `delete` needs (its HTTP client) is still open. Either
   * one dies with `SandboxLeaked` when the delete fails. Optional (since 0.2.0): without it,
   * `Sandbox.make` deletes through `delete` when its scope closes.
   */
  readonly adopt?: ((info: SandboxInfo) => Effect.Effect<Effect.Effect<void>>) | undefined
  /** Polls the deployment until HEALTHY and the executor answers `/health`, waking a sleeping sandbox; terminal statuses fail fast. */
  readonly waitReady: (
    id: string,
    options?: WaitReadyOptions
  ) => Effect.Effect<SandboxEndpoint, Timeout | DeploymentFailed | ControlPlaneFailure>
  /** The public host of the sandbox (app domain, or `<gateway host>/r/<routing key>/`), if any. */
  readonly domain: (id: string) => Effect.Effect<Option.Option<string>, ControlPlaneFailure>
  /** The URL at which the port bound with `/bind_port` is reachable from outside. */
  readonly exposedUrl: (id: string) => Effect.Effect<string, ControlPlaneFailure>
  /** Public TCP host and port of the proxy port, when `enableTcpProxy` was set. */
  readonly tcpProxy: (
    id: string
  ) => Effect.Effect<Option.Option<{ readonly host: string; readonly port: number }>, ControlPlaneFailure>
  /**
   * A client for the sandbox's executor, using the control plane's own HTTP stack (so no HttpClient
   * leaks into `Sandbox`'s requirements). A call on a sleeping sandbox wakes it (through the gateway,
   * or the local backend first), or fails with `ExecutorError` (status 503) when it cannot wake.
   */
  readonly connect: (endpoint: SandboxEndpoint) => Effect.Effect<ExecutorClientShape>
  /**
   * Changes the deletion delays, keeping the unspecified ones. When this makes a replacement
   * deployment (the emulator does; Koyeb may), returns once it is active (or failed): `get` then
   * gives the sandbox's new address.
   */
  readonly updateLifecycle: (
    id: string,
    options: LifecycleOptions
  ) => Effect.Effect<void, ControlPlaneFailure | InvalidArgument>
}

/**
 * The control-plane service.
 *
 * @since 0.1.0
 * @category tags
 */
export class ControlPlane extends Context.Tag("@effect-koyeb/core/ControlPlane")<ControlPlane, ControlPlaneShape>() {}

/**
 * The check of `CreateOptions.env` every control plane makes before creating anything, for
 * implementations of `ControlPlaneShape`: `SANDBOX_SECRET` is reserved, names are non-empty
 * without `=` or NUL, values are strings without NUL (`InvalidArgument` naming `env`).
 *
 * @since 0.2.0
 * @category validation
 */
export const checkEnv: (env: CreateOptions["env"]) => Effect.Effect<void, InvalidArgument> = sandboxEnv.check
