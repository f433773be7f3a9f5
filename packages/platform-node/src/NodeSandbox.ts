/**
 * Ready-made `ControlPlane` layers for Node.js: Koyeb over undici, the local embedded backend,
 * and the environment-driven choice between them. Provide one of them under `Sandbox.layer`.
 *
 * @since 0.1.0
 */
import type { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as LocalControlPlane from "./LocalControlPlane.js"

/**
 * Sandboxes on Koyeb, with the given token (and optional host, region, retry settings).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: KoyebControlPlane.KoyebControlPlaneOptions): Layer.Layer<ControlPlane> =>
  KoyebControlPlane.layer(options).pipe(Layer.provide(NodeHttpClient.layerUndici))

/**
 * Sandboxes on Koyeb configured from `KOYEB_API_TOKEN`, `KOYEB_API_HOST` and `KOYEB_REGION`; options win.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Partial<KoyebControlPlane.KoyebControlPlaneOptions> = {}
): Layer.Layer<ControlPlane, ConfigError.ConfigError> =>
  KoyebControlPlane.layerConfig(options).pipe(Layer.provide(NodeHttpClient.layerUndici))

/**
 * Sandboxes on this machine (the embedded default); closing the layer deletes them all.
 *
 * @example
 * ```ts
 * import * as Sandbox from "@effect-koyeb/core/Sandbox"
 * import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const sandbox = yield* Sandbox.make({ name: "local-demo" })
 *   const { stdout } = yield* sandbox.executor.run("echo hello from $(uname -s)")
 *   yield* Effect.log(stdout)
 * })
 *
 * // Sandboxes on this machine, no Koyeb account needed (isolated with bubblewrap when `bwrap` works);
 * // closing the layer deletes any sandbox still alive. Run it with `NodeRuntime.runMain(main)`.
 * const main = program.pipe(Effect.scoped, Effect.provide(NodeSandbox.layerLocal({ isolation: "auto" })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLocal = (options: LocalControlPlane.LocalControlPlaneOptions = {}): Layer.Layer<ControlPlane> =>
  LocalControlPlane.layer(options)

/**
 * Koyeb when `KOYEB_API_TOKEN` is set (and not empty), else the local backend with default options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv: Layer.Layer<ControlPlane, ConfigError.ConfigError> = Layer.unwrapEffect(
  Config.option(Config.redacted("KOYEB_API_TOKEN")).pipe(
    Effect.map(Option.filter((token) => Redacted.value(token).trim() !== "")),
    Effect.map(Option.match({
      onNone: () => layerLocal(),
      onSome: (token) => layerConfig({ token })
    }))
  )
)
