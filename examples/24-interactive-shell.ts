/**
 * An interactive shell on a terminal, driven by a program: `spawn` with `pty` gives the command a
 * pseudo-terminal (`isatty` is true, line editing and job control work), and everything it
 * prints, echo included, arrives on `stdout` with the terminal's `\r\n` line ends. The program
 * types commands, reads the screen until the prompt comes back, resizes the terminal (the shell
 * gets `SIGWINCH`), and interrupts a running command with Ctrl-C as a user would: by writing the
 * byte `\x03`.
 *
 * `effect-koyeb shell <sandbox-id>` does the same for a person, from their own terminal.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Chunk, Console, Effect, Layer, Option, Stream } from "effect"

// A prompt no command prints, so that its return is unambiguous.
const prompt = "sandbox$ "

const program = Effect.gen(function*() {
  const executor = yield* Executor.Executor
  const shell = yield* executor.spawn("sh", { pty: { cols: 100, rows: 30 }, env: { PS1: prompt } })
  const output = yield* Stream.toPull(shell.output)
  const decoder = new TextDecoder()
  let screen = ""

  /** Everything printed until the prompt comes back, without the echo of the typed line. */
  const untilPrompt = Effect.gen(function*() {
    while (!screen.endsWith(prompt)) {
      const chunk = yield* output.pipe(
        Effect.catchAll(Option.match({
          onNone: () => Effect.fail(new Error(`the shell exited; screen: ${screen}`)),
          onSome: Effect.fail
        }))
      )
      for (const piece of Chunk.toReadonlyArray(chunk)) screen += decoder.decode(piece.data, { stream: true })
    }
    const lines = screen.slice(0, -prompt.length).split("\r\n")
    screen = ""
    return lines.slice(1).join("\n").trimEnd()
  })

  const type = (line: string) =>
    Effect.gen(function*() {
      yield* shell.stdin.write(`${line}\n`)
      const printed = yield* untilPrompt
      yield* Console.log(`${prompt}${line}${printed === "" ? "" : `\n${printed}`}`)
    })

  yield* untilPrompt
  yield* type("tty; stty size")
  yield* type("[ -t 1 ] && echo 'stdout is a terminal'")
  yield* shell.resize(132, 43)
  yield* type("stty size")
  // Ctrl-C: the terminal turns the byte into SIGINT for the foreground command only.
  yield* shell.stdin.write("sleep 30\n")
  yield* Effect.sleep("300 millis")
  yield* shell.stdin.write("\x03")
  yield* untilPrompt
  yield* Console.log(`${prompt}sleep 30\n^C (interrupted; the shell lives on)`)
  yield* shell.stdin.write("exit 3\n")
  yield* Console.log(`${prompt}exit 3\nshell exited with ${(yield* shell.exit).exitCode}`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(Sandbox.layer({ name: "example-shell" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
