import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Module from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"

const TOKEN = "cli-token"
const bin = Path.join(import.meta.dirname, "../src/bin/effect-koyeb.ts")
const tsx = Url.pathToFileURL(Module.createRequire(import.meta.url).resolve("tsx")).href

interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const spawn = (args: ReadonlyArray<string>, env: Record<string, string | undefined>) =>
  ChildProcess.spawn(process.execPath, ["--import", tsx, bin, ...args], {
    env: { ...process.env, KOYEB_API_TOKEN: undefined, KOYEB_API_HOST: undefined, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })

const finish = (child: ChildProcess.ChildProcess): Promise<Finished> =>
  new Promise((resolve, reject) => {
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d) => (stdout += d))
    child.stderr!.on("data", (d) => (stderr += d))
    child.once("error", reject)
    child.once("close", (code) => resolve({ code, stdout, stderr }))
  })

/** Runs the CLI to completion. */
const cli = (args: ReadonlyArray<string>, env: Record<string, string | undefined> = {}) =>
  Effect.promise(() => finish(spawn(args, env)))

/** Waits (bounded) for `check` to hold, polling. */
const eventually = <A>(attempt: () => Effect.Effect<A>, check: (a: A) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const value = yield* attempt()
      if (check(value)) return value
      yield* Effect.sleep("100 millis")
    }
    return yield* Effect.dieMessage("condition not reached")
  })

const Emulator = KoyebEmulator.layer({ token: Redacted.make(TOKEN), isolation: "none", stepDelay: "5 millis" })

layer(Emulator, { excludeTestServices: true, timeout: "180 seconds" })("effect-koyeb CLI (emulator)", (it) => {
  it.effect("create → exec (live, exit code) → cp in/out → logs → expose → list → delete", () =>
    Effect.gen(function*() {
      const emulator = yield* KoyebEmulator.KoyebEmulator
      const env = { KOYEB_API_TOKEN: TOKEN, KOYEB_API_HOST: emulator.url }
      const run = (...args: ReadonlyArray<string>) => cli(args, env)

      const created = yield* run("create", "--name", "cli-e2e", "--env", "GREETING=hi", "--json")
      assert.strictEqual(created.code, 0, created.stderr)
      const info = JSON.parse(created.stdout)
      const id: string = info.id
      assert.strictEqual(info.name, "cli-e2e")

      // exit code and both streams
      const failed = yield* run("exec", id, "--", "echo \"$GREETING out\"; echo oops >&2; exit 7")
      assert.deepStrictEqual(failed, { code: 7, stdout: "hi out\n", stderr: "oops\n" })
      const argv = yield* run("exec", id, "--", "printf", "%s|", "a b", "$HOME")
      // Output is line based: a last line without its newline gets one.
      assert.deepStrictEqual([argv.code, argv.stdout], [0, "a b|$HOME|\n"])

      // output is live: the first line arrives while the command still waits for go.txt
      const live = spawn(["exec", id, "--", "echo first; while [ ! -e go.txt ]; do sleep 0.05; done; echo second"], env)
      const result = finish(live)
      yield* Effect.promise(() =>
        new Promise<void>((resolve) => live.stdout!.on("data", (d) => String(d).includes("first") && resolve()))
      )
      assert.isNull(live.exitCode)
      assert.strictEqual((yield* run("exec", id, "--", "touch go.txt")).code, 0)
      const done = yield* Effect.promise(() => result)
      assert.deepStrictEqual([done.code, done.stdout], [0, "first\nsecond\n"])

      // Ctrl-C stops the command in the sandbox (isolation "none": sandbox PIDs are host PIDs; a zombie has exited)
      const interrupted = spawn(["exec", id, "--", "sleep 300 & echo $! > sleep.pid; wait"], env)
      const interruptedResult = finish(interrupted)
      const sleepPid = yield* eventually(() => run("exec", id, "--", "cat sleep.pid"), (r) => r.code === 0)
      const stat = `/proc/${sleepPid.stdout.trim()}/stat`
      assert.isTrue(Fs.existsSync(stat))
      interrupted.kill("SIGINT")
      assert.strictEqual((yield* Effect.promise(() => interruptedResult)).code, 130)
      const running = () => Fs.existsSync(stat) && !/^\d+ \(.*\) Z/.test(Fs.readFileSync(stat, "utf8"))
      assert.isFalse(running())

      // cp in and out, byte for byte
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-cli-"))
      const bytes = Crypto.randomBytes(300_000)
      Fs.writeFileSync(Path.join(dir, "in.bin"), bytes)
      const up = yield* run("cp", Path.join(dir, "in.bin"), `${id}:data/in.bin`)
      assert.strictEqual(up.code, 1, "the parent directory must exist")
      assert.include(up.stderr, "data/in.bin")
      assert.strictEqual((yield* run("exec", id, "--", "mkdir data")).code, 0)
      assert.strictEqual((yield* run("cp", Path.join(dir, "in.bin"), `${id}:data/in.bin`)).code, 0)
      const sum = yield* run("exec", id, "--", "sha256sum", "data/in.bin")
      assert.strictEqual(sum.stdout.split(" ")[0], Crypto.createHash("sha256").update(bytes).digest("hex"))
      assert.strictEqual((yield* run("cp", `${id}:data/in.bin`, Path.join(dir, "out.bin"))).code, 0)
      assert.isTrue(Fs.readFileSync(Path.join(dir, "out.bin")).equals(bytes))
      Fs.rmSync(dir, { recursive: true, force: true })

      // a background process and its logs
      const launched = yield* run("exec", "--detach", id, "--", "echo l1; echo l2 >&2; echo l3")
      assert.strictEqual(launched.code, 0, launched.stderr)
      const logs = yield* run("logs", "--json", id, launched.stdout.trim())
      assert.strictEqual(logs.code, 0, logs.stderr)
      const lines = logs.stdout.trim().split("\n").map((line) => JSON.parse(line))
      assert.deepStrictEqual(lines.filter((l) => l.stream === "stdout").map((l) => l.data), ["l1", "l3"])
      assert.deepStrictEqual(lines.filter((l) => l.stream === "stderr").map((l) => l.data), ["l2"])

      // expose a server running in the sandbox
      const server = yield* run(
        "exec",
        "-d",
        id,
        "--",
        `node -e "require('http').createServer((q,s)=>s.end('hello '+q.url)).listen(0,'127.0.0.1',function(){require('fs').writeFileSync('port.txt',String(this.address().port))})"`
      )
      assert.strictEqual(server.code, 0, server.stderr)
      const port = yield* eventually(() => run("exec", id, "--", "cat port.txt"), (r) => r.code === 0)
      const exposed = yield* run("expose", "--json", id, port.stdout.trim())
      assert.strictEqual(exposed.code, 0, exposed.stderr)
      const { url } = JSON.parse(exposed.stdout)
      assert.isTrue(url.startsWith(emulator.url))
      const body = yield* Effect.promise(() => fetch(`${url}x`).then((r) => r.text()))
      assert.strictEqual(body, "hello /x")

      // list, then delete
      const listed = yield* run("list", "--json")
      assert.strictEqual(listed.code, 0, listed.stderr)
      assert.deepStrictEqual(JSON.parse(listed.stdout).map((s: { id: string }) => s.id), [id])
      const table = yield* run("list")
      assert.match(table.stdout, new RegExp(`^ID +NAME.*\\n${id} +cli-e2e `))
      assert.deepStrictEqual(yield* run("delete", id), { code: 0, stdout: `${id}\n`, stderr: "" })
      const after = yield* eventually(() => run("list", "--json"), (r) => r.stdout.trim() === "[]")
      assert.strictEqual(after.code, 0)

      const gone = yield* run("exec", "--json", id, "--", "true")
      assert.strictEqual(gone.code, 1)
      assert.deepInclude(JSON.parse(gone.stderr).error, { _tag: "SandboxNotFound", id })
    }), { timeout: 240_000 })

  it.effect("--help for every command exits 0; usage errors exit 2; no token is explained", () =>
    Effect.gen(function*() {
      const commands = [[], ["create"], ["list"], ["exec"], ["cp"], ["logs"], ["expose"], ["delete"], ["executor"], [
        "emulator"
      ]]
      const helps = yield* Effect.forEach(commands, (command) => cli([...command, "--help"]), { concurrency: 3 })
      for (const [i, help] of helps.entries()) {
        assert.strictEqual(help.code, 0, `${commands[i]!.join(" ")} --help: ${help.stderr}`)
        assert.include(help.stdout, "USAGE")
      }
      assert.include(helps[3]!.stdout, "<sandbox-id> <command>...")

      const usage = yield* Effect.all([cli(["exec"]), cli(["executor", "--port", "nope"]), cli(["frobnicate"])], {
        concurrency: 3
      })
      assert.deepStrictEqual(usage.map((u) => u.code), [2, 2, 2])

      const noToken = yield* cli(["list"])
      assert.strictEqual(noToken.code, 1)
      assert.include(noToken.stderr, "effect-koyeb emulator")
    }), { timeout: 180_000 })

  it.effect("emulator prints one listening line, with the token it generated", () =>
    Effect.gen(function*() {
      const child = spawn(["emulator", "--isolation", "none"], {})
      const line = yield* Effect.promise(() =>
        new Promise<string>((resolve) => {
          let out = ""
          child.stdout!.on("data", (d) => {
            out += d
            if (out.includes("\n")) resolve(out.split("\n")[0]!)
          })
        })
      )
      const event = JSON.parse(line)
      assert.deepStrictEqual(Object.keys(event), ["event", "url", "token"])
      const list = yield* cli(["list", "--json"], { KOYEB_API_TOKEN: event.token, KOYEB_API_HOST: event.url })
      child.kill("SIGTERM")
      yield* Effect.promise(() => new Promise((resolve) => child.once("close", resolve)))
      assert.deepStrictEqual([list.code, list.stdout], [0, "[]\n"])
    }), { timeout: 60_000 })
})
