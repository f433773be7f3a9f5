/**
 * `sandbox.spawn` of the Promise facade: a running command with stdin, raw output, exit, signals
 * and terminal size as Promises, stopped when closed.
 *
 * @internal
 */
import type { ExecutorShape, RunningCommand } from "@effect-koyeb/core/Executor"
import type * as ShellCommand from "@effect-koyeb/core/ShellCommand"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { PromiseRunningCommand, SpawnCommandOptions } from "../../Sandboxes.js"
import { iterate, run, runDetached, type Runtime } from "../promiseRuntime.js"
import { inOwnScope, type Services, split } from "./runtime.js"

const runningCommand = (
  runtime: Runtime<Services>,
  scope: Scope.CloseableScope,
  running: RunningCommand
): PromiseRunningCommand => {
  let closed: Promise<void> | undefined
  const close = () => (closed ??= runDetached(Scope.close(scope, Exit.void)))
  return {
    stdin: {
      write: (data, options) => run(runtime, running.stdin.write(data), options?.signal),
      end: (options) => run(runtime, running.stdin.end, options?.signal)
    },
    output: iterate(runtime, running.output),
    wait: (options) => run(runtime, running.exit, options?.signal),
    kill: (signal = "SIGTERM", options) => run(runtime, running.signal(signal), options?.signal),
    resize: (cols, rows, options) => run(runtime, running.resize(cols, rows), options?.signal),
    close,
    [Symbol.asyncDispose]: close
  }
}

/** Starts `command` in a scope of its own, released by the running command's `close`. */
export const spawn = (
  runtime: Runtime<Services>,
  executor: ExecutorShape,
  command: ShellCommand.Input,
  options: SpawnCommandOptions | undefined
): Promise<PromiseRunningCommand> => {
  const [rest, signal] = split(options)
  return run(runtime, inOwnScope(executor.spawn(command, rest)), signal).then(({ scope, value }) =>
    runningCommand(runtime, scope, value)
  )
}
