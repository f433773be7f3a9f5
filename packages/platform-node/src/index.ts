/**
 * effect-koyeb for Node.js: Koyeb and local backends, executor server, Koyeb emulator.
 *
 * @since 0.1.0
 */

/**
 * A sandbox executor server wire-compatible with Koyeb's, fixing the stock executor's bugs.
 *
 * @since 0.1.0
 * @category exports
 */
export * as ExecutorServer from "./ExecutorServer.js"
/**
 * An emulator of the Koyeb REST API subset and sandbox gateway, backed by local executors.
 *
 * @since 0.1.0
 * @category exports
 */
export * as KoyebEmulator from "./KoyebEmulator.js"
/**
 * The embedded default control plane: sandboxes on this machine, one executor process each.
 *
 * @since 0.1.0
 * @category exports
 */
export * as LocalControlPlane from "./LocalControlPlane.js"
/**
 * Ready `ControlPlane` layers for Node: Koyeb, local, or chosen from the environment.
 *
 * @since 0.1.0
 * @category exports
 */
export * as NodeSandbox from "./NodeSandbox.js"
/**
 * A Promise facade for programs without Effect: `await using sandbox = await Sandboxes.create()`, AbortSignals, async iterables.
 *
 * @since 0.1.0
 * @category exports
 */
export * as Sandboxes from "./Sandboxes.js"
