/**
 * The `CodeInterpreter` of the memory sandbox: each cell goes to the first handler whose `match`
 * fits its code (and language); no kernel runs.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type {
  CodeContext,
  CodeInterpreterShape,
  ContextOptions,
  ExecutionEvent,
  Language,
  RunOptions
} from "../CodeInterpreter.js"
import { Execution, ExecutionError, Result } from "../CodeInterpreter.js"
import { OutputChunk } from "../SandboxSchema.js"
import type { CellHandler, CellReply, ScriptedCell } from "../Testing.js"
import { randomToken } from "./shell.js"

const lines = (text: string | ReadonlyArray<string> | undefined): ReadonlyArray<string> =>
  text === undefined ? [] : typeof text === "string" ? text.replace(/\n$/, "").split("\n") : text

const toExecution = (reply: CellReply): Execution => {
  const results = (reply.results ?? []).map((result) => new Result({ isMain: false, ...result }))
  if (reply.value !== undefined) results.push(new Result({ isMain: true, text: reply.value }))
  const fields = { stdout: lines(reply.stdout), stderr: lines(reply.stderr), results }
  return new Execution(
    reply.error === undefined ? fields : {
      ...fields,
      error: new ExecutionError({ traceback: "", ...reply.error })
    }
  )
}

const events = (execution: Execution): ReadonlyArray<ExecutionEvent> => [
  ...execution.stdout.map((data) => new OutputChunk({ stream: "stdout", data })),
  ...execution.stderr.map((data) => new OutputChunk({ stream: "stderr", data })),
  ...execution.results,
  ...(execution.error === undefined ? [] : [execution.error])
]

/** The scripted interpreter answering with `handlers`. */
export const make = (handlers: ReadonlyArray<CellHandler>): CodeInterpreterShape => {
  const counts = new Map<string, number>()
  const answer = (cell: ScriptedCell) => {
    const handler = handlers.find((h) =>
      (h.language === undefined || h.language === cell.language) &&
      (typeof h.match === "string" ? h.match === cell.code : h.match.test(cell.code))
    )
    if (handler === undefined) {
      return Effect.succeed(toExecution({
        error: { name: "Unscripted", value: `no cell handler matches: ${cell.code}` }
      }))
    }
    const reply = typeof handler.reply === "function" ? handler.reply(cell) : Effect.succeed(handler.reply)
    return Effect.map(reply, toExecution)
  }
  const contextFor = (id: string, language: Language): CodeContext => {
    const run = (code: string) =>
      Effect.suspend(() => {
        const count = (counts.get(id) ?? 0) + 1
        counts.set(id, count)
        return answer({ code, language, contextId: id, count })
      })
    return {
      id,
      language,
      pid: 0,
      run,
      runStream: (code) =>
        Stream.flatMap(Stream.fromEffect(run(code)), (execution) => Stream.fromIterable(events(execution)))
    }
  }
  const defaults = {
    python: contextFor("default-python", "python"),
    javascript: contextFor("default-javascript", "javascript")
  }
  const contextOf = (options: RunOptions | undefined) => options?.context ?? defaults[options?.language ?? "python"]
  return {
    createContext: (options?: ContextOptions) =>
      Effect.sync(() => contextFor(randomToken().slice(0, 12), options?.language ?? "python")),
    run: (code, options) => contextOf(options).run(code),
    runStream: (code, options) => contextOf(options).runStream(code)
  }
}
