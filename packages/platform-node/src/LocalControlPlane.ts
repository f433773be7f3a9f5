/**
 * The embedded default `ControlPlane`: real sandboxes on this machine, no account and no network.
 * Each sandbox is its own root directory and executor process on a free loopback port, isolated
 * with bubblewrap (read-only host root, private /tmp and home, own PID namespace) when available.
 * Without bubblewrap (`isolation: "none"`) a sandbox is a plain process of the current user:
 * that is NOT a security boundary.
 *
 * Lifecycle, locally: `deleteAfterDelay` deletes that long after creation. A local sandbox never
 * sleeps (there is nothing to save), but `idleTimeout` still marks when it would have fallen
 * asleep: with `deleteAfterInactivityDelay` set and a non-zero `idleTimeout`, the sandbox is deleted
 * after `idleTimeout + deleteAfterInactivityDelay` without executor traffic through `connect`
 * clients (a call in flight, such as an open stream, counts as traffic). Traffic to an exposed
 * port is not counted. The image, entrypoint, command, args, registry secret, mesh and
 * privileged options are recorded or ignored: commands run on the host's own binaries.
 *
 * @since 0.1.0
 */
import { ControlPlane, type ControlPlaneShape } from "@effect-koyeb/core/ControlPlane"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/localControlPlane.js"
import type { IsolationOption } from "./internal/localRuntime.js"

/**
 * Options of the local control plane.
 *
 * @since 0.1.0
 * @category models
 */
export interface LocalControlPlaneOptions {
  /** `"auto"` (default): bubblewrap when `bwrap` works here, else `"none"` with a warning. */
  readonly isolation?: IsolationOption | undefined
  /** Parent of the sandbox directories (default `<os tmpdir>/effect-koyeb`). */
  readonly baseDir?: string | undefined
}

/**
 * Builds a local control plane; closing the scope deletes every sandbox it created. `connect` uses
 * the `HttpClient` in the context when there is one, else an undici client of its own.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: LocalControlPlaneOptions) => Effect.Effect<ControlPlaneShape, never, Scope.Scope> = (
  options
) => internal.make(options)

/**
 * The local control plane as a layer; closing the layer's scope deletes every sandbox it created.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: LocalControlPlaneOptions = {}): Layer.Layer<ControlPlane> =>
  Layer.scoped(ControlPlane, make(options)).pipe(Layer.provide(NodeHttpClient.layerUndici))

/**
 * The former name of `LocalControlPlaneOptions`.
 *
 * @deprecated Use `LocalControlPlaneOptions`.
 * @since 0.1.0
 * @category models
 */
export type Options = LocalControlPlaneOptions
