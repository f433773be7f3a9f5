/**
 * The command, file and process services of a sandbox, when its control plane supplies them
 * itself instead of `Sandbox` building them over the executor client of `connect`: the memory
 * control plane of `Testing`, whose sandboxes speak no wire protocol. Provided next to that
 * `ControlPlane`, and read by `Sandbox.make` / `Sandbox.fromId`.
 *
 * @internal
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { SandboxEndpoint, SandboxServices } from "../ControlPlane.js"

/**
 * The services of the sandbox at `endpoint`, when it is one of the supplying control plane's (none
 * for another control plane's sandbox: `Sandbox` then builds them over `connect`).
 */
export class SuppliedServices extends Context.Tag("@effect-koyeb/core/internal/SuppliedServices")<
  SuppliedServices,
  (endpoint: SandboxEndpoint) => Effect.Effect<Option.Option<SandboxServices>>
>() {}
