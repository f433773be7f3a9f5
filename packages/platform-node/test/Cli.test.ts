import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { finish, spawnCli } from "./utils/cliBin.js"
import { descendants } from "./utils/faultServers.js"
import { openFiles, readProc } from "./utils/hostProcesses.js"

const TOKEN = "cli-token"

const spawn = (args: ReadonlyArray<string>, env: Record<string, string | undefined>) =>
  spawnCli(args, { KOYEB_API_TOKEN: undefined, KOYEB_API_HOST: undefined, ...env })

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
  it.effect(
    "create → exec (live, exit code) → cp in/out → logs → expose → list → delete",
    () =>
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
        const live = spawn(
          ["exec", id, "--", "echo first; while [ ! -e go.txt ]; do sleep 0.05; done; echo second"],
          env
        )
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
      }),
    { timeout: 240_000 }
  )

  it.effect(
    "--help for every command exits 0; usage errors exit 2; no token is explained",
    () =>
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
      }),
    { timeout: 180_000 }
  )

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

// ---------------------------------------------------------------------------------------------
// SIGTERM / SIGINT: every server and sandbox the CLI started stops within 2 seconds

/** The bound from signal to exit. */
const STOP_MILLIS = 2_000

interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** `performance.now()` when the child's `exit` event fired. */
  readonly at: number
}

/** A process, identified by pid and start time (so a recycled pid is never mistaken for it). */
interface Tracked {
  readonly pid: number
  readonly command: string
  readonly start: string
}

interface Running {
  readonly child: ChildProcess.ChildProcess
  readonly pid: number
  /** The child's own TMPDIR (the local backend puts its sandbox directories under it). */
  readonly tmpdir: string
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<Exited>
  /** Processes the release kills (SIGKILL) if a failed test left them alive. */
  readonly tracked: Array<Tracked>
}

/** Field 22 of `/proc/<pid>/stat` (start time in clock ticks); undefined when the process is gone or a zombie. */
const startTime = (pid: number): string | undefined => {
  const stat = readProc(String(pid), "stat")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return stat === "" || fields[0] === "Z" ? undefined : fields[19]
}

const track = (pid: number, command = ""): Tracked | undefined => {
  const start = startTime(pid)
  return start === undefined ? undefined : { pid, command, start }
}

/** Still the same live (not zombie) process. */
const isRunning = (p: Tracked): boolean => startTime(p.pid) === p.start

const killTracked = (p: Tracked): void => {
  if (!isRunning(p)) return
  try {
    process.kill(p.pid, "SIGKILL")
  } catch {
    // gone meanwhile
  }
}

/** A fresh temporary directory under the run's TMPDIR, removed with the scope. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-cli-signal-")))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/**
 * Starts the CLI with its own TMPDIR. The release SIGKILLs it and whatever it started if a failed
 * test left them running, then (in reverse order) the directory goes.
 */
const running = (args: ReadonlyArray<string>, env: Record<string, string | undefined> = {}) =>
  Effect.gen(function*() {
    const tmpdir = yield* tempDir
    return yield* Effect.acquireRelease(
      Effect.sync((): Running => {
        const child = spawn(args, { ...env, TMPDIR: tmpdir })
        let stdout = ""
        let stderr = ""
        child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d))
        child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d))
        const exited = new Promise<Exited>((resolve) =>
          child.once("exit", (code, signal) => resolve({ code, signal, at: performance.now() }))
        )
        return { child, pid: child.pid!, tmpdir, stdout: () => stdout, stderr: () => stderr, exited, tracked: [] }
      }),
      (run) =>
        Effect.promise(async () => {
          if (run.child.exitCode === null && run.child.signalCode === null) {
            for (const d of descendants(run.pid)) {
              const t = track(d.pid, d.command)
              if (t !== undefined) run.tracked.push(t)
            }
            run.child.kill("SIGKILL")
            await Promise.race([run.exited, new Promise((resolve) => setTimeout(resolve, 5_000))])
          }
          run.tracked.forEach(killTracked)
        })
    )
  })

/** Waits (bounded) for the first stdout line of `run` that `match`es; fails if the CLI exits first. */
const firstLine = (run: Running, match: (line: string) => boolean, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 90_000
    while (Date.now() < deadline) {
      const line = run.stdout().split("\n").slice(0, -1).find(match)
      if (line !== undefined) return line
      if (run.child.exitCode !== null || run.child.signalCode !== null) break
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.dieMessage(`no ${what} on stdout; stdout: ${run.stdout()}; stderr: ${run.stderr()}`)
  })

/** TCP ports in LISTEN state held by any of `pids` (/proc/net/tcp{,6} and the sockets among their descriptors). */
const listeningPorts = (pids: ReadonlyArray<number>): Array<number> => {
  const byInode = new Map<string, number>()
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = ""
    try {
      text = Fs.readFileSync(table, "utf8")
    } catch {
      continue // no IPv6
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/)
      if (fields.length > 9 && fields[3] === "0A") byInode.set(fields[9]!, parseInt(fields[1]!.split(":")[1]!, 16))
    }
  }
  const ports = new Set<number>()
  for (const pid of pids) {
    for (const { path } of openFiles(pid)) {
      const port = byInode.get(/^socket:\[(\d+)\]$/.exec(path)?.[1] ?? "")
      if (port !== undefined) ports.add(port)
    }
  }
  return [...ports].sort((a, b) => a - b)
}

/** What connecting to 127.0.0.1:`port` gives: an error code such as ECONNREFUSED, or "connected". */
const connectTo = (port: number) =>
  Effect.async<string>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    const done = (result: string) => {
      socket.destroy()
      resume(Effect.succeed(result))
    }
    socket.setTimeout(2_000, () => done("timeout"))
    socket.once("connect", () => done("connected"))
    socket.once("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message))
  })

/** The sandbox directories (entries of the local backend's base directory) under the CLI's TMPDIR. */
const sandboxDirs = (run: Running): Array<string> => {
  try {
    return Fs.readdirSync(Path.join(run.tmpdir, "effect-koyeb"))
  } catch {
    return []
  }
}

/**
 * Records every descendant of the CLI and every port it and they listen on (plus `extra` processes
 * and ports), sends `signal`, and checks: exit within 2 s, ports refused, processes gone, no sandbox
 * directory left. Returns the exit and how long it took.
 */
const stopsEverything = (
  run: Running,
  signal: "SIGTERM" | "SIGINT",
  extra: { readonly processes?: ReadonlyArray<Tracked>; readonly ports?: ReadonlyArray<number> } = {}
) =>
  Effect.gen(function*() {
    const processes = [
      ...descendants(run.pid).flatMap((d) => track(d.pid, d.command) ?? []),
      ...(extra.processes ?? [])
    ]
    run.tracked.push(...processes)
    const ports = [...new Set([...listeningPorts([run.pid, ...processes.map((p) => p.pid)]), ...(extra.ports ?? [])])]

    const sent = performance.now()
    run.child.kill(signal)
    const exit = yield* Effect.promise(() =>
      Promise.race([run.exited, new Promise<undefined>((resolve) => setTimeout(resolve, 10_000))])
    )
    assert.isDefined(exit, `no exit 10 s after ${signal}; stderr: ${run.stderr()}`)
    const millis = Math.round(exit!.at - sent)
    assert.isAtMost(millis, STOP_MILLIS, `${signal} → exit took ${millis} ms`)

    const refused = yield* Effect.forEach(ports, connectTo)
    assert.deepStrictEqual(
      refused.map((r, i) => [ports[i], r]),
      ports.map((port) => [port, "ECONNREFUSED"]),
      "every port is closed"
    )
    // the kernel may need a moment to reap what was SIGKILLed
    for (let i = 0; i < 50 && processes.some(isRunning); i++) yield* Effect.sleep("20 millis")
    assert.deepStrictEqual(processes.filter(isRunning), [], "every process is gone")
    assert.deepStrictEqual(sandboxDirs(run), [], "no sandbox directory is left")
    return { exit: exit!, millis, ports, processes }
  })

describe("effect-koyeb CLI: SIGTERM / SIGINT stop everything it started within 2 s", () => {
  it.scopedLive("executor", () =>
    Effect.gen(function*() {
      const secret = "signal-secret"
      const run = yield* running(["executor", "--port", "0", "--proxy-port", "0"], { SANDBOX_SECRET: secret })
      const event = JSON.parse(yield* firstLine(run, (l) => l.includes(`"listening"`), "listening line"))
      assert.deepStrictEqual(Object.keys(event), ["event", "url", "port", "proxyPort"])
      // a command of its own, so that the executor has something to stop
      const started = yield* Effect.promise(() =>
        fetch(`${event.url}/start_process`, {
          method: "POST",
          headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" },
          body: JSON.stringify({ cmd: "sleep 300" })
        }).then((r) => r.json() as Promise<{ pid: number }>)
      )
      assert.isAbove(started.pid, 0)
      assert.includeMembers(listeningPorts([run.pid]), [event.port, event.proxyPort])

      const { exit, millis, processes } = yield* stopsEverything(run, "SIGTERM", {
        ports: [event.port, event.proxyPort]
      })
      assert.include(processes.map((p) => p.pid), started.pid)
      assert.deepStrictEqual([exit.code, exit.signal], [130, null], run.stderr())
      console.log(`executor: SIGTERM → exit ${exit.code} in ${millis} ms`)
    }), { timeout: 120_000 })

  it.scopedLive("emulator, with a sandbox running commands", () =>
    Effect.gen(function*() {
      const run = yield* running(["emulator", "--port", "0", "--isolation", "none"])
      const event = JSON.parse(yield* firstLine(run, (l) => l.includes(`"listening"`), "listening line"))
      const port = Number(new URL(event.url).port)
      const env = { KOYEB_API_TOKEN: event.token, KOYEB_API_HOST: event.url, TMPDIR: run.tmpdir }
      const created = yield* cli(["create", "--name", "signal", "--json"], env)
      assert.strictEqual(created.code, 0, created.stderr)
      const id: string = JSON.parse(created.stdout).id
      // one command in the executor's tree, one that left it (reparented: not a descendant of the CLI)
      const detached = yield* cli(["exec", "-d", id, "--", "sleep 301"], env)
      assert.strictEqual(detached.code, 0, detached.stderr)
      const escaped = yield* cli(["exec", id, "--", "(sleep 302 >/dev/null 2>&1 & echo $! > escaped.pid)"], env)
      assert.strictEqual(escaped.code, 0, escaped.stderr)

      const dirs = sandboxDirs(run)
      assert.strictEqual(dirs.length, 1)
      const escapedPid = Number(
        Fs.readFileSync(Path.join(run.tmpdir, "effect-koyeb", dirs[0]!, "home", "escaped.pid"), "utf8")
      )
      const escapedProcess = track(escapedPid, "sleep 302")
      assert.isDefined(escapedProcess)
      assert.notInclude(descendants(run.pid).map((d) => d.pid), escapedPid)
      const tree = descendants(run.pid)
      assert.isTrue(tree.some((d) => d.command.startsWith("sleep 301")), JSON.stringify(tree))
      const ports = listeningPorts([run.pid, ...tree.map((d) => d.pid)])
      assert.include(ports, port)
      assert.isAtLeast(ports.length, 3, "the emulator's port and its executor's two")

      const { exit, millis } = yield* stopsEverything(run, "SIGTERM", { processes: [escapedProcess!], ports: [port] })
      assert.deepStrictEqual([exit.code, exit.signal], [130, null], run.stderr())
      console.log(`emulator: SIGTERM → exit ${exit.code} in ${millis} ms`)
    }), { timeout: 180_000 })

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it.scopedLive(`create --local (${signal})`, () =>
      Effect.gen(function*() {
        const run = yield* running(["create", "--local", "--name", "signal", "--json"])
        const info = JSON.parse(yield* firstLine(run, (l) => l.startsWith("{"), "sandbox info"))
        assert.strictEqual(info.name, "signal")
        // the "is running" line follows the info on stderr
        for (let i = 0; i < 100 && !run.stderr().includes("is running"); i++) yield* Effect.sleep("20 millis")
        assert.include(run.stderr(), `local sandbox ${info.id} is running`)
        assert.deepStrictEqual(sandboxDirs(run), [info.id])
        const tree = descendants(run.pid)
        // the sandbox's only process is its spawner; the CLI serves the sandbox's API and proxy
        assert.isTrue(tree.some((d) => d.command.includes("spawner")), JSON.stringify(tree))
        assert.isAtLeast(listeningPorts([run.pid, ...tree.map((d) => d.pid)]).length, 2, "the sandbox's two ports")

        const { exit, millis } = yield* stopsEverything(run, signal)
        assert.deepStrictEqual([exit.code, exit.signal], [130, null], run.stderr())
        console.log(`create --local: ${signal} → exit ${exit.code} in ${millis} ms`)
      }), { timeout: 120_000 })
  }
})
