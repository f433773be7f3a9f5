/**
 * The embedded default `ControlPlane`: real sandboxes on this machine, no account and no network.
 * Each sandbox is its own root directory and executor process on a free loopback port, isolated
 * with bubblewrap (read-only host root, private /tmp and home, own PID namespace) when available.
 * Without bubblewrap (`isolation: "none"`) a sandbox is a plain process of the current user:
 * that is NOT a security boundary.
 *
 * Network: under bubblewrap each sandbox has a network namespace of its own, as on Koyeb. Its
 * commands see their own loopback: two sandboxes can both serve port 8080, `exposePort` reaches
 * the sandbox's own server, and a sandbox reaches neither another sandbox's ports nor the host's
 * loopback services. The executor's API and proxy sockets are bound on host loopback by this
 * process and handed to the executor, so the host reaches them. Outbound traffic goes through
 * `slirp4netns` (else `pasta`) when installed (`network: "user-mode"`, host loopback excluded);
 * without either, with `outbound: false`, or when the helper cannot join the namespace (seen as a
 * non-root user: bubblewrap's user namespace refuses it; a warning says so), the sandbox has no
 * outbound network (`network: "private"`). Without bubblewrap the sandbox shares the host's network (`"shared"`).
 * `SandboxInfo.isolation` reports the mode and the network of each sandbox.
 *
 * Lifecycle, locally, as on Koyeb: `deleteAfterDelay` deletes that long after creation. With a
 * non-zero `idleTimeout` (default 5 minutes) a sandbox sleeps after that long without executor
 * traffic through `connect` clients (a call in flight, such as an open stream, counts as traffic,
 * and so does a TCP connection held open to its exposed port): its executor and every process
 * stop, its files stay, and
 * `list` shows it `SLEEPING`. The next call through a `connect` client, or `waitReady`, wakes it:
 * a new executor on the same directory and the same loopback ports (endpoint and exposed URL
 * unchanged), the sandbox's own program started again; a sandbox that cannot wake fails the call
 * with `ExecutorError` (status 503), `waitReady` with `ControlPlaneError` (`Runtime`). With
 * `deleteAfterInactivityDelay` set, a sandbox is deleted that long after it fell asleep.
 *
 * Create options, locally (no image is pulled: everything runs on the host's own binaries):
 * - `entrypoint` / `command` / `args`: the sandbox's own program, with Docker semantics over an
 *   image without ENTRYPOINT or CMD: argv `[...entrypoint, command, ...args]`, no shell (use
 *   `command: "sh", args: ["-c", "…"]` for one). It starts beside the executor, in the same
 *   namespaces, before the sandbox is ready, with the sandbox's env, its home as cwd and stdin from
 *   /dev/null; its stdout and stderr are appended to `effect-koyeb-main.log` in the sandbox's tmp
 *   (`/tmp/effect-koyeb-main.log` under bubblewrap, `$TMPDIR/…` without). It stops with the
 *   sandbox; if it exits first, the sandbox stays up.
 * - `configFiles`: written with their permissions before anything starts. Under the sandbox's
 *   home (`/home/sandbox`) or `/tmp`: plain files in its directory. Elsewhere: created in the
 *   sandbox's own mount tree (a tmpfs over the parent directory that keeps the host's entries
 *   visible, read-only); the host's files are never touched. Without bubblewrap every path would
 *   be the host's own, so config files are refused (`InvalidArgument` naming `configFiles`).
 * - `instanceType`: Koyeb's memory for the type (nano 256 MiB, micro 512 MiB, small 1 GiB, medium
 *   2 GiB, large 4 GiB, xlarge 8 GiB, … 5xlarge 128 GiB; eco-* and free alike) and two tasks per
 *   MiB (at most 32768) as the process cap, applied through cgroups (v1, or delegated v2) below this
 *   process's own cgroup. `SandboxInfo.limits` says which apply; where the machine allows none,
 *   it says why and the sandbox runs unlimited (with a warning). No type, or `"local"`: no limits.
 *   Unknown types (GPU types included) are an `InvalidArgument` naming `instanceType`.
 * - `privileged`, `registrySecret`: recorded in `SandboxInfo`, no local effect. `image`: recorded.
 *   `region`: the sandbox runs here, so `SandboxInfo.region` is `"local"`.
 * - `enableTcpProxy`: `tcpProxy` returns the proxy's host loopback address. `exposedPortProtocol`:
 *   the exposed port is a plain TCP forward, so HTTP/1.1 and HTTP/2 (h2c) both pass unchanged.
 * - `enableLightSleep`, `deepSleepDelay`: a local sandbox has only one sleep (there is no snapshot to
 *   take), after `idleTimeout` without traffic, with or without light sleep. `enableMesh`: no local
 *   effect (local sandboxes share no mesh: their networks are separate).
 * - `env` values and config-file contents: `{{ secret.NAME }}` and `{{ VAR }}` are resolved at
 *   create as Koyeb does at deploy time (`Secrets`), the secrets read from the `Secrets` service the
 *   layer was built with (share one with your program:
 *   `LocalControlPlane.layer().pipe(Layer.provideMerge(Secrets.layerMemory))`). A reference that
 *   cannot be resolved, or a secret reference without a `Secrets` service, is an `InvalidArgument`
 *   naming `env` or `configFiles`.
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
  /**
   * Outbound traffic through `slirp4netns` or `pasta` when one is installed (default true); false:
   * a sandbox under bubblewrap reaches only its own loopback. No effect without bubblewrap.
   *
   * @since 0.2.0
   */
  readonly outbound?: boolean | undefined
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
