/**
 * `sandbox.codeInterpreter` of the Promise facade: the `CodeInterpreter` service as Promises,
 * built on first use; its default contexts, kernel files and created contexts live in the scope
 * the sandbox handle closes when it is released.
 *
 * @internal
 */
import * as CodeInterpreter from "@effect-koyeb/core/CodeInterpreter"
import { Executor } from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import type * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { PromiseCodeContext, PromiseCodeInterpreter } from "../../Sandboxes.js"
import { iterate, type Runtime } from "../promiseRuntime.js"
import { callWith, inOwnScope, type Services, split } from "./runtime.js"

const codeContext = (
  runtime: Runtime<Services>,
  scope: Scope.CloseableScope,
  context: CodeInterpreter.CodeContext
): PromiseCodeContext => {
  const close = () => Effect.runPromise(Scope.close(scope, Exit.void))
  return {
    id: context.id,
    language: context.language,
    pid: context.pid,
    run: (code, options) => callWith(runtime, options, (rest) => context.run(code, rest)),
    runStream: (code, options) => {
      const [rest, signal] = split(options)
      return iterate(runtime, context.runStream(code, rest), signal)
    },
    close,
    [Symbol.asyncDispose]: close
  }
}

/** The Promise facade over the code interpreter of `handle`, living in `scope`. */
export const make = (
  runtime: Runtime<Services>,
  handle: Sandbox.SandboxHandle,
  scope: Scope.CloseableScope
): PromiseCodeInterpreter => {
  const interpreter = Effect.runSync(Effect.cached(
    CodeInterpreter.make.pipe(
      Scope.extend(scope),
      Effect.provideService(Executor, handle.executor),
      Effect.provideService(Filesystem.Filesystem, handle.filesystem)
    )
  ))
  return {
    run: (code, options) => callWith(runtime, options, (rest) => Effect.flatMap(interpreter, (i) => i.run(code, rest))),
    runStream: (code, options) => {
      const [rest, signal] = split(options)
      return iterate(runtime, Stream.unwrap(Effect.map(interpreter, (i) => i.runStream(code, rest))), signal)
    },
    createContext: (options) =>
      callWith(runtime, options, (rest) =>
        inOwnScope(
          Effect.flatMap(interpreter, (i) => i.createContext(rest)),
          Scope.fork(scope, ExecutionStrategy.sequential)
        )).then(({ scope, value }) => codeContext(runtime, scope, value))
  }
}
