/**
 * `effect-koyeb shell` and `exec -i` as a user runs them: the CLI in a real terminal (a tmux pane,
 * driven with `send-keys` and read with `capture-pane`) against a sandbox of the emulator.
 */
import * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { cliBin } from "./utils/cliBin.js"

const TOKEN = "shell-token"
const hasTmux = ChildProcess.spawnSync("tmux", ["-V"]).status === 0

const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`

/** The emulator, and Sandbox services on it (sandboxes deleted with the scope). */
const Emulated = Layer.unwrapEffect(
  Effect.map(KoyebEmulator.KoyebEmulator, (e) => KoyebControlPlane.layer({ token: Redacted.make(TOKEN), host: e.url }))
).pipe(
  Layer.provideMerge(KoyebEmulator.layer({ token: Redacted.make(TOKEN), isolation: "none", stepDelay: "5 millis" })),
  Layer.provide(NodeHttpClient.layerUndici)
)

/** A tmux server of its own (its socket in a temporary directory), killed with the scope. */
const tmux = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-tmux-"))
    const socket = Path.join(dir, "socket")
    const run = (...args: ReadonlyArray<string>) => {
      const result = ChildProcess.spawnSync("tmux", ["-S", socket, ...args], { encoding: "utf8" })
      if (result.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${result.stderr}`)
      return result.stdout
    }
    return { dir, run }
  }),
  ({ dir, run }) =>
    Effect.sync(() => {
      try {
        run("kill-server")
      } catch {
        // already gone
      }
      Fs.rmSync(dir, { recursive: true, force: true })
    })
)

const shellTest = "python3 in a sandbox's terminal: 6*7 is 42, Ctrl-C, resize, and the shell's exit code"

describe("effect-koyeb shell and exec -i", () => {
  if (!hasTmux) it.skip(`${shellTest} (skipped: tmux is not installed; CI needs \`apt-get install tmux\`)`)
  else {
    it.scopedLive(shellTest, () =>
      Effect.gen(function*() {
        const emulator = yield* KoyebEmulator.KoyebEmulator
        const sandbox = yield* Sandbox.make({ pollInterval: "50 millis", timeout: "60 seconds" })
        const { run } = yield* tmux
        const env = {
          KOYEB_API_TOKEN: TOKEN,
          KOYEB_API_HOST: emulator.url,
          NODE_OPTIONS: process.env.NODE_OPTIONS ?? "",
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "/"
        }
        const cli = [process.execPath, cliBin, "shell", sandbox.info.id].map(quote).join(" ")
        const vars = Object.entries(env).map(([k, v]) => `${k}=${quote(v)}`).join(" ")
        // the pane prints the CLI's exit code, then stays for capture-pane
        run(
          "-f",
          "/dev/null",
          "new-session",
          "-d",
          "-x",
          "100",
          "-y",
          "30",
          "-s",
          "t",
          `env -i ${vars} TERM=screen ${cli}; echo "EXIT=$?"; sleep 60`
        )
        const screen = () => run("capture-pane", "-p", "-t", "t")
        const keys = (...keys: ReadonlyArray<string>) => Effect.sync(() => run("send-keys", "-t", "t", ...keys))
        const until = (text: string | RegExp) =>
          Effect.gen(function*() {
            for (let i = 0; i < 300; i++) {
              const shown = screen()
              if (typeof text === "string" ? shown.includes(text) : text.test(shown)) return shown
              yield* Effect.sleep("100 millis")
            }
            return assert.fail(`${String(text)} not on the screen:\n${screen()}`)
          })

        // the remote terminal has the pane's size
        yield* until(/[#$] ?$/m)
        yield* keys("stty size", "Enter")
        yield* until("30 100")
        yield* keys("python3", "Enter")
        yield* until(/^>>> ?$/m)
        yield* keys("6*7", "Enter")
        yield* until(/^42$/m)
        // Ctrl-C is a byte for the remote terminal: python gets SIGINT, the CLI keeps running
        yield* keys("while True: pass", "Enter")
        yield* until(/^\.\.\. ?$/m)
        yield* keys("Enter")
        yield* Effect.sleep("500 millis")
        yield* keys("C-c")
        yield* until("KeyboardInterrupt")
        yield* keys("exit()", "Enter")
        yield* keys("echo back in the shell", "Enter")
        yield* until(/^back in the shell$/m)
        // a resize of the local terminal follows
        run("resize-window", "-t", "t", "-x", "120", "-y", "40")
        yield* Effect.sleep("300 millis")
        yield* keys("stty size", "Enter")
        yield* until("40 120")
        yield* keys("exit 5", "Enter")
        yield* until("EXIT=5")
      }).pipe(Effect.provide(Emulated)), 120_000)
  }

  it.scopedLive(
    "exec -i pipes the CLI's stdin in, output as it comes, and exits with the command's code",
    () =>
      Effect.gen(function*() {
        const emulator = yield* KoyebEmulator.KoyebEmulator
        const sandbox = yield* Sandbox.make({ pollInterval: "50 millis", timeout: "60 seconds" })
        const child = ChildProcess.spawn(process.execPath, [
          cliBin,
          "exec",
          "-i",
          sandbox.info.id,
          "--",
          "tr a-z A-Z; printf 'no newline'; exit 4"
        ], {
          env: { ...process.env, KOYEB_API_TOKEN: TOKEN, KOYEB_API_HOST: emulator.url, NO_COLOR: "1" },
          stdio: ["pipe", "pipe", "pipe"]
        })
        let stdout = ""
        let stderr = ""
        child.stdout.on("data", (d) => (stdout += d))
        child.stderr.on("data", (d) => (stderr += d))
        const code = new Promise<number | null>((resolve) => child.once("close", resolve))
        child.stdin.write("hello\n")
        child.stdin.end("world\n")
        assert.strictEqual(yield* Effect.promise(() => code), 4, stderr)
        // raw output: the last line keeps its missing newline
        assert.strictEqual(stdout, "HELLO\nWORLD\nno newline")
      }).pipe(Effect.provide(Emulated)),
    60_000
  )
})
