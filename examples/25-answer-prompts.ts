/**
 * Answering an interactive installer, `npm init`-style: a setup script in the sandbox asks
 * questions (prompts without a newline, as `read -p` and most CLIs print them) and the program
 * answers each one through stdin as it appears, expect-style, pressing Enter to take a default.
 * The output is read as raw bytes, so a prompt is seen as soon as it is printed.
 *
 * On Koyeb's stock executor output arrives line by line: a prompt shows up only with the next
 * line there, so prefer tools' non-interactive flags (`npm init -y`) or feed all the answers at
 * once (`run(cmd, { stdin: "answers\n..." })`).
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Stream } from "effect"

// A small interactive setup script, like `npm init` without `-y`.
const setup = `#!/bin/sh
ask() { printf '%s: (%s) ' "$1" "$2"; read -r answer; eval "$3=\\"\${answer:-$2}\\""; }
ask "package name" "my-app" name
ask "version" "1.0.0" version
ask "description" "" description
ask "license" "ISC" license
printf 'About to write package.json. Is this OK? (yes) '
read -r ok
case "\${ok:-yes}" in y|yes) ;; *) echo "Aborted."; exit 1;; esac
printf '{"name":"%s","version":"%s","description":"%s","license":"%s"}\\n' \\
  "$name" "$version" "$description" "$license" > package.json
echo "Wrote package.json"
`

// What to answer to each prompt ("" takes the default).
const answers: ReadonlyArray<readonly [prompt: string, answer: string]> = [
  ["package name:", "sandbox-demo"],
  ["version:", ""],
  ["description:", "Answered by a program"],
  ["license:", "MIT"],
  ["Is this OK?", "yes"]
]

const program = Effect.gen(function*() {
  const executor = yield* Executor.Executor
  const fs = yield* Filesystem.Filesystem
  yield* fs.mkdir("/tmp/project", { recursive: true })
  yield* fs.writeFile("/tmp/project/setup.sh", setup)

  const installer = yield* executor.spawn("sh setup.sh", { cwd: "/tmp/project" })
  const decoder = new TextDecoder()
  let pending = ""
  yield* installer.output.pipe(
    Stream.runForEach((chunk) =>
      Effect.gen(function*() {
        pending += decoder.decode(chunk.data, { stream: true })
        // a prompt is the unfinished last line, once it ends with one we know
        const line = pending.slice(pending.lastIndexOf("\n") + 1)
        const match = answers.find(([prompt]) => line.includes(prompt) && line.endsWith(" "))
        if (match === undefined) return
        yield* Console.log(`${line.trim()} ${match[1] === "" ? "⏎ (default)" : match[1]}`)
        pending = ""
        yield* installer.stdin.write(`${match[1]}\n`)
      })
    )
  )
  if (pending.trim() !== "") yield* Console.log(pending.trim())
  yield* Console.log(`setup exited with ${(yield* installer.exit).exitCode}`)
  yield* Console.log(`package.json: ${(yield* fs.readFileString("/tmp/project/package.json")).trim()}`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(Sandbox.layer({ name: "example-prompts" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
