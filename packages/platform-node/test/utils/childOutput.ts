/**
 * Reading what a child process announces on its standard output.
 */
import * as Effect from "effect/Effect"
import type * as ChildProcess from "node:child_process"

/** The first line `child` writes on stdout; fails with its stderr if it exits first (`what` names it). */
export const firstLine = (child: ChildProcess.ChildProcess, what: string): Effect.Effect<string, Error> =>
  Effect.async<string, Error>((resume) => {
    let out = ""
    let err = ""
    child.stderr?.on("data", (c) => (err += c))
    child.stdout?.on("data", (c) => {
      out += c
      if (out.includes("\n")) resume(Effect.succeed(out.split("\n")[0]!))
    })
    child.on("exit", (code) => resume(Effect.fail(new Error(`${what} exited ${code}: ${err}`))))
  })
