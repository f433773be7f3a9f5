/**
 * `Sandbox.make` and `Sandbox.fromId`: the sandbox comes from the `ControlPlane` (created, then
 * awaited, or found by id), and its handle binds the control plane's per-sandbox operations and
 * the `Executor`, `Filesystem` and `Processes` services built over its executor client (or those
 * the control plane supplies itself, see `sandboxServices`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import {
  ControlPlane,
  type ControlPlaneShape,
  type CreateError,
  type CreateOptions,
  type LifecycleOptions,
  type SandboxEndpoint,
  type WaitReadyOptions
} from "../ControlPlane.js"
import * as Executor from "../Executor.js"
import { ExecutorClient } from "../ExecutorClient.js"
import * as Filesystem from "../Filesystem.js"
import * as Processes from "../Processes.js"
import type { SandboxHandle } from "../Sandbox.js"
import { type ControlPlaneFailure, InvalidArgument } from "../SandboxError.js"
import { ExposedPort, type SandboxInfo } from "../SandboxSchema.js"
import { following } from "./followingClient.js"
import { isTcpPort } from "./ports.js"
import * as SafetyNet from "./safetyNet.js"
import { release } from "./sandboxRelease.js"
import { SuppliedServices } from "./sandboxServices.js"

/** `exposePort`'s check of its argument: an integer from 1 to 65535. */
export const checkPort = (port: number): Effect.Effect<void, InvalidArgument> =>
  isTcpPort(port)
    ? Effect.void
    : Effect.fail(new InvalidArgument({ argument: "port", detail: `must be an integer from 1 to 65535, got ${port}` }))

const sameEndpoint = (a: SandboxEndpoint, b: SandboxEndpoint) => a.url === b.url && a.routingKey === b.routingKey

/**
 * The handle of a sandbox the control plane knows, reached at `endpoint`. Its client follows the
 * sandbox: after `updateLifecycle` (which Koyeb may answer with a replacement deployment, with a
 * new routing key) the endpoint is resolved again and the calls go to the new one.
 */
const handleOf = (
  controlPlane: ControlPlaneShape,
  info: SandboxInfo,
  endpoint: SandboxEndpoint
): Effect.Effect<SandboxHandle> =>
  Effect.gen(function*() {
    let current = { endpoint, client: yield* controlPlane.connect(endpoint) }
    const client = following(current.client, () => current.client)
    const readdress = Effect.flatMap(controlPlane.get(info.id), (found) =>
      sameEndpoint(found.endpoint, current.endpoint)
        ? Effect.void
        : Effect.map(controlPlane.connect(found.endpoint), (connected) => {
          current = { endpoint: found.endpoint, client: connected }
        }))
    const supplied = yield* Effect.serviceOption(SuppliedServices).pipe(
      Effect.flatMap(Option.match({ onNone: () => Effect.succeedNone, onSome: (services) => services(endpoint) }))
    )
    const { executor, filesystem, processes } = Option.isSome(supplied)
      ? supplied.value
      : yield* Effect.all({ executor: Executor.make, filesystem: Filesystem.make, processes: Processes.make }).pipe(
        Effect.provideService(ExecutorClient, client)
      )
    const attributes = { "sandbox.id": info.id }
    const span = (name: string) => Effect.withSpan(`Sandbox.${name}`, { attributes })

    const exposePort = (port: number) =>
      Effect.gen(function*() {
        yield* checkPort(port)
        // The executor refuses a bind while another port is bound (409): release it first.
        yield* client.unbindPort
        yield* client.bindPort(String(port))
        const url = yield* controlPlane.exposedUrl(info.id)
        return new ExposedPort({ port, url })
      }).pipe(Effect.withSpan("Sandbox.exposePort", { attributes: { ...attributes, "sandbox.port": port } }))

    return {
      info,
      exposePort,
      unexposePort: client.unbindPort.pipe(span("unexposePort")),
      domain: controlPlane.domain(info.id).pipe(span("domain")),
      tcpProxy: controlPlane.tcpProxy(info.id).pipe(span("tcpProxy")),
      isHealthy: client.isHealthy.pipe(span("isHealthy")),
      waitReady: (options?: WaitReadyOptions) =>
        controlPlane.waitReady(info.id, options).pipe(Effect.asVoid, span("waitReady")),
      updateLifecycle: (options: LifecycleOptions) =>
        controlPlane.updateLifecycle(info.id, options).pipe(Effect.zipRight(readdress), span("updateLifecycle")),
      delete: controlPlane.delete(info).pipe(span("delete")),
      executor,
      filesystem,
      processes,
      client
    } satisfies SandboxHandle
  })

/**
 * `Sandbox.make`: created, then (unless `waitReady: false`) awaited; deleted with the scope (or
 * with the control plane, when it closes first), or at once when waiting fails.
 */
export const make = (
  options: CreateOptions = {}
): Effect.Effect<SandboxHandle, CreateError, ControlPlane | Scope.Scope> =>
  Effect.gen(function*() {
    const controlPlane = yield* ControlPlane
    // create stays interruptible (it cleans up after itself); once it returns, the finalizer is
    // registered before an interruption can be observed.
    const { provisioned, remove } = yield* Effect.uninterruptibleMask((restore) =>
      restore(controlPlane.create(SafetyNet.scopedOptions(options))).pipe(
        Effect.flatMap((provisioned) =>
          // Runs once, whichever comes first: a readiness failure, the scope's end, or the control
          // plane's close; dies with `SandboxLeaked` when the delete fails.
          Effect.map(release(controlPlane, provisioned.info), (remove) => ({ provisioned, remove }))
        ),
        Effect.tap(({ remove }) => Effect.addFinalizer(() => remove))
      )
    )
    const { info } = provisioned
    yield* Effect.annotateCurrentSpan("sandbox.id", info.id)
    const endpoint = options.waitReady === false
      ? provisioned.endpoint
      : yield* controlPlane.waitReady(info.id, { timeout: options.timeout, pollInterval: options.pollInterval }).pipe(
        Effect.onError(() => remove)
      )
    const handle = yield* handleOf(controlPlane, info, endpoint)
    yield* SafetyNet.keepAlive(options, handle.isHealthy)
    return handle
  }).pipe(Effect.withSpan("Sandbox.make"))

/** `Sandbox.fromId`. */
export const fromId = (id: string): Effect.Effect<SandboxHandle, ControlPlaneFailure, ControlPlane> =>
  Effect.gen(function*() {
    const controlPlane = yield* ControlPlane
    const { endpoint, info } = yield* controlPlane.get(id)
    return yield* handleOf(controlPlane, info, endpoint)
  }).pipe(Effect.withSpan("Sandbox.fromId", { attributes: { "sandbox.id": id } }))
