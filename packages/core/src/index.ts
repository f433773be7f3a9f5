/**
 * effect-koyeb core: the Effect-native SDK for Koyeb Sandboxes.
 *
 * @since 0.1.0
 */

/**
 * The control-plane provider interface.
 *
 * @since 0.1.0
 * @category exports
 */
export * as ControlPlane from "./ControlPlane.js"
/**
 * The executor wire client.
 *
 * @since 0.1.0
 * @category exports
 */
export * as ExecutorClient from "./ExecutorClient.js"
/**
 * The executor's wire protocol: the schemas of the JSON request bodies its endpoints accept.
 *
 * @since 0.2.0
 * @category exports
 */
export * as ExecutorWire from "./ExecutorWire.js"
/**
 * Background processes: launch, kill (whole tree), logs, wait.
 *
 * @since 0.1.0
 * @category exports
 */
export * as Processes from "./Processes.js"
/**
 * Every typed error.
 *
 * @since 0.1.0
 * @category exports
 */
export * as SandboxError from "./SandboxError.js"
/**
 * The public data types.
 *
 * @since 0.1.0
 * @category exports
 */
export * as SandboxSchema from "./SandboxSchema.js"
/**
 * Command construction: plain strings, argv arrays and the quoting `sh` template.
 *
 * @since 0.1.0
 * @category exports
 */
export * as Command from "./Command.js"
/**
 * Running commands in a sandbox: buffered or streamed, stopped as a group on interruption.
 *
 * @since 0.1.0
 * @category exports
 */
export * as Executor from "./Executor.js"
/**
 * The Koyeb REST API control plane (HttpClient): create, wait, get, list, delete sandboxes.
 *
 * @since 0.1.0
 * @category exports
 */
export * as KoyebControlPlane from "./KoyebControlPlane.js"
/**
 * The Koyeb REST API on the wire: reply schemas of apps, services and deployments, and the
 * constants of a sandbox service.
 *
 * @since 0.2.0
 * @category exports
 */
export * as KoyebWire from "./KoyebWire.js"
/**
 * One live sandbox: `Sandbox.make` / `layer` (deleted with their scope) and `fromId` (attached).
 *
 * @since 0.1.0
 * @category exports
 */
export * as Sandbox from "./Sandbox.js"
/**
 * Files and directories of a sandbox: byte-exact reads and writes, batches, listings, moves, upload/download.
 *
 * @since 0.1.0
 * @category exports
 */
export * as Filesystem from "./Filesystem.js"
/**
 * Test kit: an in-memory sandbox and control plane answering commands with your handlers.
 *
 * @since 0.1.0
 * @category exports
 */
export * as Testing from "./Testing.js"
/**
 * Koyeb secrets: create, list, reveal, delete; `{{ secret.NAME }}` references resolved at deploy time.
 *
 * @since 0.2.0
 * @category exports
 */
export * as Secrets from "./Secrets.js"
/**
 * Finding and removing the sandboxes effect-koyeb left behind: `collect` (the `gc` command) and `assertNone` (test teardown).
 *
 * @since 0.2.0
 * @category exports
 */
export * as Cleanup from "./Cleanup.js"
/**
 * A code interpreter: stateful Python and JavaScript contexts with streamed output and rich results.
 *
 * @since 0.2.0
 * @category exports
 */
export * as CodeInterpreter from "./CodeInterpreter.js"
