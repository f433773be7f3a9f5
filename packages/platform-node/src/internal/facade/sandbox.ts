/**
 * Obtaining sandboxes in the Promise facade: creating one in a scope of its own (deleted when the
 * handle is released) or attaching to one, on a runtime that `after` may stop with the handle.
 *
 * @internal
 */
import * as Cleanup from "@effect-koyeb/core/Cleanup"
import { ControlPlane, type SandboxInfo } from "@effect-koyeb/core/ControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { BackendOptions, CallOptions, SandboxesCreateOptions } from "../../Sandboxes.js"
import { dispose, run, runDetached, type Runtime } from "../promiseRuntime.js"
import { makeRuntime, type Services, split } from "./runtime.js"

/** A sandbox's handle and what releasing it does. */
export interface Acquired {
  readonly handle: Sandbox.SandboxHandle
  readonly release: () => Promise<void>
}

/** Creates a sandbox whose release deletes it, then runs `after`; `after` also runs when the creation fails. */
export const create = async (
  runtime: Runtime<Services>,
  options: SandboxesCreateOptions | undefined,
  after: () => Promise<void>
): Promise<Acquired> => {
  const [createOptions, signal] = split(options)
  const scope = Effect.runSync(Scope.make())
  // Not through the runtime: the client may have been disposed first (and deleted the sandbox).
  const close = () => runDetached(Scope.close(scope, Exit.void))
  try {
    const handle = await run(runtime, Scope.extend(Sandbox.make(createOptions), scope), signal)
    return { handle, release: () => close().finally(after) }
  } catch (error) {
    await close().finally(after)
    throw error
  }
}

/** Attaches to a sandbox; its release (and a failure to attach) only runs `after`. */
export const fromId = async (
  runtime: Runtime<Services>,
  id: string,
  options: CallOptions | undefined,
  after: () => Promise<void>
): Promise<Acquired> => {
  try {
    return { handle: await run(runtime, Sandbox.fromId(id), options?.signal), release: after }
  } catch (error) {
    await after()
    throw error
  }
}

/** The sandboxes the runtime's control plane lists. */
export const list = (
  runtime: Runtime<Services>,
  options: CallOptions | undefined
): Promise<ReadonlyArray<SandboxInfo>> =>
  run(runtime, Effect.flatMap(ControlPlane, (controlPlane) => controlPlane.list), options?.signal)

/** The sandboxes of a backend, listed on a runtime of its own. */
export const listBackend = async (options: CallOptions & BackendOptions): Promise<ReadonlyArray<SandboxInfo>> => {
  const runtime = makeRuntime(options)
  try {
    return await list(runtime, options)
  } finally {
    await dispose(runtime)
  }
}

/** Runs `Cleanup.assertNone` on a runtime of its own. */
export const assertNoLeftovers = async (
  options: Cleanup.AssertNoneOptions & CallOptions & BackendOptions
): Promise<void> => {
  const runtime = makeRuntime(options)
  try {
    await run(runtime, Cleanup.assertNone({ olderThan: options.olderThan }), options.signal)
  } finally {
    await dispose(runtime)
  }
}
