/**
 * effect-koyeb core: the Effect-native SDK for Koyeb Sandboxes.
 *
 * @since 0.1.0
 */

/** The control-plane provider interface. */
export * as ControlPlane from "./ControlPlane.js"
/** The executor wire client. */
export * as ExecutorClient from "./ExecutorClient.js"
/** Background processes: launch, kill (whole tree), logs, wait. */
export * as Processes from "./Processes.js"
/** Every typed error. */
export * as SandboxError from "./SandboxError.js"
/** The public data types. */
export * as SandboxSchema from "./SandboxSchema.js"
/** Command construction: plain strings, argv arrays and the quoting `sh` template. */
export * as Command from "./Command.js"
/** Running commands in a sandbox: buffered or streamed, stopped as a group on interruption. */
export * as Executor from "./Executor.js"
/** The Koyeb REST API control plane (HttpClient): create, wait, get, list, delete sandboxes. */
export * as KoyebControlPlane from "./KoyebControlPlane.js"
/** One live sandbox: `Sandbox.make` / `layer` (deleted with their scope) and `fromId` (attached). */
export * as Sandbox from "./Sandbox.js"
/** Files and directories of a sandbox: byte-exact reads and writes, batches, listings, moves, upload/download. */
export * as Filesystem from "./Filesystem.js"
/** Test kit: an in-memory sandbox and control plane answering commands with your handlers. */
export * as Testing from "./Testing.js"
