/**
 * The runtime of the Promise facade: one `ManagedRuntime` per backend, and the helpers every
 * facade method uses to run an effect under a call's `AbortSignal`.
 *
 * @internal
 */
import { type ControlPlane } from "@effect-koyeb/core/ControlPlane"
import { InvalidArgument } from "@effect-koyeb/core/SandboxError"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"
import * as NodeSandbox from "../../NodeSandbox.js"
import type { BackendOptions, CallOptions } from "../../Sandboxes.js"
import { run, type Runtime } from "../promiseRuntime.js"

/** The services a facade runtime provides. */
export type Services = ControlPlane | FileSystem.FileSystem

const controlPlaneLayer = (options: BackendOptions): Layer.Layer<ControlPlane, InvalidArgument> => {
  const layer = options.backend === "local"
    ? NodeSandbox.layerLocal(options.local)
    : options.backend === "koyeb"
    ? NodeSandbox.layerConfig(options.koyeb)
    : NodeSandbox.layerFromEnv
  return Layer.mapError(layer, (error) => new InvalidArgument({ argument: "configuration", detail: String(error) }))
}

/** A runtime over the backend the options choose. */
export const makeRuntime = (options: BackendOptions): Runtime<Services> =>
  ManagedRuntime.make(Layer.merge(controlPlaneLayer(options), NodeFileSystem.layer))

/** Runs a scoped effect in a scope of its own (closed if it fails): its value and the scope that releases it. */
export const inOwnScope = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  open: Effect.Effect<Scope.CloseableScope> = Scope.make()
): Effect.Effect<{ readonly scope: Scope.CloseableScope; readonly value: A }, E, Exclude<R, Scope.Scope>> =>
  Effect.flatMap(open, (scope) =>
    Scope.extend(effect, scope).pipe(
      Effect.onError(() => Scope.close(scope, Exit.void)),
      Effect.map((value) => ({ scope, value }))
    ))

/** A call's options without `signal`, and its `signal`. */
export const split = <O extends CallOptions>(options: O | undefined): [Omit<O, "signal">, AbortSignal | undefined] => {
  if (options === undefined) return [{} as Omit<O, "signal">, undefined]
  const { signal, ...rest } = options
  return [rest, signal]
}

/** Runs the effect made from a call's options (without `signal`), interrupted when its `signal` aborts. */
export const callWith = <O extends CallOptions, A, E>(
  runtime: Runtime<Services>,
  options: O | undefined,
  effect: (options: Omit<O, "signal">) => Effect.Effect<A, E, Services>
): Promise<A> => {
  const [rest, signal] = split(options)
  return run(runtime, effect(rest), signal)
}
