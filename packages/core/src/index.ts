/**
 * effect-koyeb core: the Effect-native SDK for Koyeb Sandboxes.
 *
 * @since 0.1.0
 */

/** The control-plane provider interface. */
export * as ControlPlane from "./ControlPlane.js"
/** The executor wire client. */
export * as ExecutorClient from "./ExecutorClient.js"
/** Every typed error. */
export * as SandboxError from "./SandboxError.js"
/** The public data types. */
export * as SandboxSchema from "./SandboxSchema.js"
