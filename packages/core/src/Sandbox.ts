/**
 * One live sandbox: its info, port exposure, domain, TCP proxy, health, lifecycle and deletion,
 * plus constructors that create it (deleted when their scope closes) or attach to an existing one
 * (never deleted implicitly). Commands, files and processes are the `Executor`, `Filesystem` and
 * `Processes` services built for the same sandbox.
 *
 * A sandbox with an `idleTimeout` sleeps after that long without traffic (deep sleep: its files
 * stay, its processes are gone). A call wakes it: every operation here and on its services, and
 * `waitReady`, reach a sleeping sandbox after it woke (through the gateway on Koyeb and in the
 * emulator; locally the control plane's client wakes it first); one that cannot wake fails with a
 * typed error (`ExecutorError` with status 503 from a call).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { ControlPlane, CreateError, CreateOptions, LifecycleOptions, WaitReadyOptions } from "./ControlPlane.js"
import * as Executor from "./Executor.js"
import type { ExecutorClientShape } from "./ExecutorClient.js"
import * as Filesystem from "./Filesystem.js"
import * as internal from "./internal/sandbox.js"
import * as Processes from "./Processes.js"
import type {
  ApiError,
  ControlPlaneError,
  ControlPlaneFailure,
  DeploymentFailed,
  ExecutorFailure,
  InvalidArgument,
  PortAlreadyBound,
  RateLimited,
  Timeout,
  Unauthorized
} from "./SandboxError.js"
import type { ExposedPort, SandboxInfo } from "./SandboxSchema.js"

/**
 * The operations of one live sandbox.
 *
 * @since 0.1.0
 * @category models
 */
export interface SandboxShape {
  /** What the control plane knows about the sandbox (`id` is the Koyeb service id). */
  readonly info: SandboxInfo
  /** Forwards the sandbox's public port to `port` (1–65535), replacing any previous binding; returns its public URL. */
  readonly exposePort: (
    port: number
  ) => Effect.Effect<ExposedPort, InvalidArgument | PortAlreadyBound | ExecutorFailure | ControlPlaneFailure>
  /** Stops forwarding the public port. */
  readonly unexposePort: Effect.Effect<void, ExecutorFailure>
  /** The public host of the sandbox, if it has one yet. */
  readonly domain: Effect.Effect<Option.Option<string>, ControlPlaneFailure>
  /** The public TCP address of the proxy port, when created with `enableTcpProxy`. */
  readonly tcpProxy: Effect.Effect<Option.Option<{ readonly host: string; readonly port: number }>, ControlPlaneFailure>
  /** True when the executor answers `/health` as healthy; never fails. */
  readonly isHealthy: Effect.Effect<boolean>
  /** Waits until the deployment is healthy and the executor answers, waking a sleeping sandbox; terminal deployment statuses fail fast. */
  readonly waitReady: (
    options?: WaitReadyOptions
  ) => Effect.Effect<void, Timeout | DeploymentFailed | ControlPlaneFailure>
  /**
   * Changes the deletion delays; unspecified ones keep their current value. When the control plane
   * answers with a replacement deployment (the emulator does; Koyeb may), it returns once that one is
   * active, and the handle follows the sandbox to its new address.
   */
  readonly updateLifecycle: (options: LifecycleOptions) => Effect.Effect<void, ControlPlaneFailure | InvalidArgument>
  /** Deletes the sandbox now (its app too when the SDK created it). Succeeds if it is already gone. */
  readonly delete: Effect.Effect<void, ApiError | ControlPlaneError | Unauthorized | RateLimited>
}

/**
 * The current sandbox (provided by `Sandbox.layer` / `Sandbox.layerFromId`).
 *
 * @since 0.1.0
 * @category tags
 */
export class Sandbox extends Context.Tag("@effect-koyeb/core/Sandbox")<Sandbox, SandboxShape>() {}

/**
 * A sandbox with its command, file and process services, for programs that use several sandboxes at once.
 *
 * @since 0.1.0
 * @category models
 */
export interface SandboxHandle extends SandboxShape {
  readonly executor: Executor.ExecutorShape
  readonly filesystem: Context.Tag.Service<typeof Filesystem.Filesystem>
  readonly processes: Context.Tag.Service<typeof Processes.Processes>
  /** The executor wire client, for endpoints the services do not cover. */
  readonly client: ExecutorClientShape
}

/**
 * Creates a sandbox for the current scope and, unless `waitReady: false`, waits until it is
 * ready. The sandbox is deleted when the scope closes, and also before the error returns when
 * waiting fails or is interrupted.
 *
 * @example
 * ```ts
 * import * as Sandbox from "@effect-koyeb/core/Sandbox"
 * import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   // Created here; deleted when the scope closes, also on failure or interruption.
 *   const sandbox = yield* Sandbox.make({ name: "demo", env: { GREETING: "hello" } })
 *   yield* sandbox.filesystem.writeFile("/tmp/data.bin", new Uint8Array([0, 255, 128]))
 *   const { stdout } = yield* sandbox.executor.run("sha256sum /tmp/data.bin")
 *   return stdout
 * })
 *
 * // Koyeb when KOYEB_API_TOKEN is set, else sandboxes on this machine.
 * // Run it with `NodeRuntime.runMain(main)` (from @effect/platform-node).
 * const main = program.pipe(Effect.scoped, Effect.provide(NodeSandbox.layerFromEnv))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: CreateOptions
) => Effect.Effect<SandboxHandle, CreateError, ControlPlane | Scope.Scope> = internal.make

/**
 * Attaches to an existing sandbox by id. It is never deleted implicitly (only by an explicit `delete`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromId: (id: string) => Effect.Effect<SandboxHandle, ControlPlaneFailure, ControlPlane> = internal.fromId

const contextOf = (handle: SandboxHandle) =>
  Context.make(Sandbox, handle).pipe(
    Context.add(Executor.Executor, handle.executor),
    Context.add(Filesystem.Filesystem, handle.filesystem),
    Context.add(Processes.Processes, handle.processes)
  )

/**
 * Creates a sandbox when the layer is built and deletes it when the layer's scope closes.
 *
 * @example
 * ```ts
 * import * as Executor from "@effect-koyeb/core/Executor"
 * import * as Filesystem from "@effect-koyeb/core/Filesystem"
 * import * as Sandbox from "@effect-koyeb/core/Sandbox"
 * import * as Testing from "@effect-koyeb/core/Testing"
 * import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
 * import { Effect, Layer } from "effect"
 *
 * // Needs the services, not a sandbox handle.
 * const program = Effect.gen(function*() {
 *   const fs = yield* Filesystem.Filesystem
 *   const executor = yield* Executor.Executor
 *   yield* fs.writeFile("/tmp/job.sh", "echo $((6 * 7))")
 *   return (yield* executor.run("sh /tmp/job.sh")).stdout
 * })
 *
 * // One sandbox for the whole program, deleted when the layer is released.
 * const SandboxLive = Sandbox.layer({ name: "worker" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))
 * const main = program.pipe(Effect.provide(SandboxLive))
 *
 * // The same program in a test, against an in-memory control plane.
 * const SandboxTest = Sandbox.layer().pipe(
 *   Layer.provide(Testing.layerControlPlaneMemory({ commands: [{ match: "sh /tmp/job.sh", reply: { stdout: "42" } }] }))
 * )
 * Effect.runPromise(program.pipe(Effect.provide(SandboxTest))).then(console.log) // "42\n"
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: CreateOptions = {}
): Layer.Layer<Sandbox | Executor.Executor | Filesystem.Filesystem | Processes.Processes, CreateError, ControlPlane> =>
  Layer.scopedContext(Effect.map(make(options), contextOf))

/**
 * Attaches to an existing sandbox; closing the layer leaves the sandbox running.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromId = (
  id: string
): Layer.Layer<
  Sandbox | Executor.Executor | Filesystem.Filesystem | Processes.Processes,
  ControlPlaneFailure,
  ControlPlane
> => Layer.effectContext(Effect.map(fromId(id), contextOf))
