/**
 * Ready-made `ControlPlane` layers for Node.js: Koyeb over undici, the local embedded backend,
 * and the environment-driven choice between them. Provide one of them under `Sandbox.layer`.
 * `layerFromEnv` also provides the `Secrets` that goes with its choice.
 *
 * @since 0.1.0
 */
import type { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import * as Secrets from "@effect-koyeb/core/Secrets"
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
 * Koyeb when `KOYEB_API_TOKEN` is set (and not empty), else the local backend with default options;
 * with the `Secrets` of the same place: Koyeb's secrets API, or an in-memory store that the local
 * backend resolves `{{ secret.NAME }}` references against.
 *
 * @example
 * ```ts
 * import * as Sandbox from "@effect-koyeb/core/Sandbox"
 * import * as Secrets from "@effect-koyeb/core/Secrets"
 * import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
 * import { Effect, Redacted } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const secrets = yield* Secrets.Secrets
 *   yield* secrets.create({ name: "api-key", value: Redacted.make("k-123") })
 *   const sandbox = yield* Sandbox.make({ name: "with-secret", env: { API_KEY: Secrets.reference("api-key") } })
 *   yield* sandbox.executor.run("test -n \"$API_KEY\"")
 * })
 *
 * const main = program.pipe(Effect.scoped, Effect.provide(NodeSandbox.layerFromEnv))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv: Layer.Layer<ControlPlane | Secrets.Secrets, ConfigError.ConfigError> = Layer.unwrapEffect(
  Config.option(Config.redacted("KOYEB_API_TOKEN")).pipe(
    Effect.map(Option.filter((token) => Redacted.value(token).trim() !== "")),
    Effect.map(Option.match({
      // The local control plane reads the `Secrets` it is built with; the program shares that store.
      onNone: () => layerLocal().pipe(Layer.provideMerge(Secrets.layerMemory)),
      onSome: (token) =>
        Layer.merge(
          layerConfig({ token }),
          Secrets.layerKoyebConfig({ token }).pipe(Layer.provide(NodeHttpClient.layerUndici))
        )
    }))
  )
)
