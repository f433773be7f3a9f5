/**
 * The executor's commands through `effect-koyeb-spawner` (posix_spawn) and through Node's spawn:
 * the same replies, the spawner really used, and what happens when it cannot run or is killed.
 * Then the spawner as a sandbox's init: its file operations (Node's errnos, paths resolved inside
 * the sandbox), host pids of the commands it starts in another pid namespace, inherited fds.
 */
import * as ExecutorServer from "@effect-koyeb/platform-node/ExecutorServer"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { spawnerBinary } from "../src/internal/executorCommand.js"
import * as ProcessGroups from "../src/internal/processGroups.js"
import * as Spawner from "../src/internal/spawner.js"
import { processesOf } from "./utils/hostProcesses.js"

const secret = "spawner-secret-0123456789"

interface RunReply {
  readonly stdout: string
  readonly stderr: string
  readonly code: number
  readonly error?: string
}

const run = (url: string, cmd: string, signal?: AbortSignal): Promise<RunReply> =>
  fetch(`${url}/run`, {
    method: "POST",
    headers: { authorization: `Bearer ${secret}` },
    body: JSON.stringify({ cmd }),
    ...(signal !== undefined ? { signal } : {})
  }).then((r) => r.json() as Promise<RunReply>)

const server = (spawner?: string | false) =>
  ExecutorServer.make({
    secret: Redacted.make(secret),
    killGracePeriod: "200 millis",
    ...(spawner !== undefined ? { spawner } : {})
  })

/** The program of the parent of the shell that runs a command. */
const parentProgram = (url: string) =>
  Effect.promise(() => run(url, "readlink /proc/$PPID/exe")).pipe(Effect.map((r) => r.stdout.trim()))

const node = Fs.realpathSync(process.execPath)

/** A spawner started here, closed with the scope. */
const started = Effect.acquireRelease(
  Effect.promise(async () => Spawner.start((await Effect.runPromise(spawnerBinary))!)),
  (s) => Effect.sync(() => s.close())
)

/**
 * A spawner started as `command … <spawner>` with `stdio` (its stdin and stdout first) and
 * attached; `pidOf` finds its pid. Closed with the scope, which waits for the process to end.
 */
const attached = (
  command: (binary: string) => ReadonlyArray<string>,
  stdio: ReadonlyArray<ChildProcess.IOType | number>,
  pidOf: (proc: ChildProcess.ChildProcess) => Promise<number>
) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const [file, ...args] = command((await Effect.runPromise(spawnerBinary))!)
      const proc = ChildProcess.spawn(file!, args, { stdio: ["pipe", "pipe", "inherit", ...stdio] })
      const exited = new Promise<void>((resolve) => proc.once("close", () => resolve()))
      const spawner = Spawner.attach({ input: proc.stdin!, output: proc.stdout!, pid: await pidOf(proc), exited })
      return { spawner, proc, exited }
    }),
    ({ exited, proc, spawner }) =>
      Effect.promise(async () => {
        spawner.close()
        const timer = setTimeout(() => proc.kill("SIGKILL"), 2_000)
        await exited
        clearTimeout(timer)
      })
  )

const sh = (script: string, inherit = false): Spawner.SpawnRequest => ({
  path: "/bin/sh",
  args: ["sh", "-c", script],
  cwd: "/",
  env: { PATH: "/usr/bin:/bin" },
  stdin: false,
  inherit
})

/** A command's stdout and how it ended. */
const result = (child: Spawner.CommandChild) =>
  new Promise<{ stdout: string; code: number | null; signal: string | null }>((resolve) => {
    let stdout = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.resume()
    child.once("close", (code, signal) => resolve({ stdout, code, signal }))
  })

/** `<syscall> <code>` of a failure, or "ok". */
const outcome = (promise: Promise<unknown>): Promise<string> =>
  promise.then(
    async (value) => {
      if (value instanceof Object && "close" in value) await (value as { close: () => Promise<void> }).close()
      return "ok"
    },
    (e: NodeJS.ErrnoException) => `${e.syscall} ${e.code}`
  )

const nodeOutcome = (f: () => unknown): Promise<string> => outcome(Promise.resolve().then(f))

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "spawner-files-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const { O_APPEND, O_CREAT, O_EXCL, O_RDONLY, O_TRUNC, O_WRONLY } = Fs.constants

const commands = [
  "echo out; echo err >&2",
  "printf 'no newline'",
  "exit 7",
  "kill -TERM $$",
  "cat </dev/stdin; echo stdin-is-null",
  "trap '' INT; kill -INT $$; echo ignored",
  "ps -o pgid= -p $$ | tr -d ' ' | grep -qx \"$$\" && echo own-group",
  "ls /nonexistent-dir-for-spawner-test",
  "echo \"$0\"",
  "env | grep -c SANDBOX_SECRET || true",
  "head -c 300000 /dev/zero | tr '\\0' x | wc -c"
]

describe("spawner", () => {
  it.scopedLive(
    "replies match Node's spawn, command by command, and the spawner starts them",
    () =>
      Effect.gen(function*() {
        const binary = yield* spawnerBinary
        assert.isDefined(binary, "the spawner is built on Linux with a C compiler")
        const viaSpawner = yield* server()
        const viaNode = yield* server(false)
        assert.strictEqual(yield* parentProgram(viaSpawner.url), Fs.realpathSync(binary!))
        assert.strictEqual(yield* parentProgram(viaNode.url), node)
        for (const cmd of commands) {
          const [a, b] = yield* Effect.promise(() => Promise.all([run(viaSpawner.url, cmd), run(viaNode.url, cmd)]))
          assert.deepStrictEqual(a, b, cmd)
        }
      }),
    30_000
  )

  it.scopedLive("a spawner that cannot run leaves the commands to Node's spawn", () =>
    Effect.gen(function*() {
      const notBinary = Path.join(Os.tmpdir(), `not-a-spawner-${Crypto.randomUUID()}`)
      Fs.writeFileSync(notBinary, "not an executable\n", { mode: 0o755 })
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(notBinary, { force: true })))
      for (const spawner of ["/nonexistent/effect-koyeb-spawner", notBinary]) {
        const { url } = yield* server(spawner)
        assert.deepStrictEqual(yield* Effect.promise(() => run(url, "echo fine")), {
          stdout: "fine\n",
          stderr: "",
          code: 0
        })
        assert.strictEqual(yield* parentProgram(url), node)
      }
    }), 30_000)

  it.scopedLive(
    "a spawner killed under a running command: its output still arrives, later commands use Node",
    () =>
      Effect.gen(function*() {
        const { url } = yield* server()
        const spawnerPid = Number(
          (yield* Effect.promise(() => run(url, "cut -d' ' -f4 /proc/$$/stat"))).stdout.trim()
        )
        assert.strictEqual(Fs.readlinkSync(`/proc/${spawnerPid}/exe`), Fs.realpathSync((yield* spawnerBinary)!))
        const pending = run(url, "sleep 0.4; echo still-here")
        yield* Effect.sleep("100 millis")
        process.kill(spawnerPid, "SIGKILL")
        const reply = yield* Effect.promise(() => pending)
        assert.strictEqual(reply.stdout, "still-here\n")
        // its exit status went with the spawner: reported as killed
        assert.strictEqual(reply.code, -1)
        assert.deepStrictEqual(yield* Effect.promise(() => run(url, "echo next")), {
          stdout: "next\n",
          stderr: "",
          code: 0
        })
        assert.strictEqual(yield* parentProgram(url), node)
      }),
    30_000
  )

  it.scopedLive(
    "a spawn interrupted before the spawner answered leaves no command behind",
    () =>
      Effect.gen(function*() {
        const spawner = yield* Effect.acquireRelease(
          Effect.promise(async () => Spawner.start((await Effect.runPromise(spawnerBinary))!)),
          (s) => Effect.sync(() => s.close())
        )
        const groups = ProcessGroups.make(Duration.millis(200), Effect.succeed(spawner))
        const marker = `spawner-interrupted-${Crypto.randomUUID()}`
        for (let i = 0; i < 5; i++) {
          // runFork runs up to the wait for the answer (the request is written), which needs a turn
          // of the event loop: the interruption comes first
          const fiber = Effect.runFork(
            groups.spawn({ cmd: `sleep 30 # ${marker}`, cwd: "/", env: { PATH: "/usr/bin:/bin" } })
          )
          yield* Fiber.interrupt(fiber)
        }
        let left = processesOf(marker)
        for (let i = 0; i < 40 && left.length > 0; i++) {
          yield* Effect.sleep("25 millis")
          left = processesOf(marker)
        }
        assert.deepStrictEqual(left, [])
      }),
    30_000
  )

  it.scopedLive(
    "an exit that came before anyone listened still reaches a later listener",
    () =>
      Effect.gen(function*() {
        const spawner = yield* Effect.acquireRelease(
          Effect.promise(async () => Spawner.start((await Effect.runPromise(spawnerBinary))!)),
          (s) => Effect.sync(() => s.close())
        )
        const child = yield* Effect.promise(() =>
          spawner.spawn({ path: "/bin/sh", args: ["sh", "-c", "exit 3"], cwd: "/", env: {}, stdin: false })
        )
        child.stdout.resume()
        child.stderr.resume()
        yield* Effect.sleep("200 millis")
        const [exit, close] = yield* Effect.promise(() =>
          Promise.all(
            ["exit", "close"].map((event) => new Promise((resolve) => child.once(event, (code) => resolve(code))))
          )
        )
        assert.deepStrictEqual([exit, close], [3, 3])
      }),
    30_000
  )

  it.scopedLive("requests dropped at any moment of a spawn leave no command behind", () =>
    Effect.gen(function*() {
      const { url } = yield* server()
      const marker = `spawner-drop-${Crypto.randomUUID()}`
      yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 40 }, async (_, i) => {
          const abort = new AbortController()
          setTimeout(() => abort.abort(), i % 20)
          await run(url, `sleep 30 # ${marker}`, abort.signal).catch(() => undefined)
        }))
      )
      // the executor notices each drop, then TERM and (after the grace period) KILL
      let left = processesOf(marker)
      for (let i = 0; i < 60 && left.length > 0; i++) {
        yield* Effect.sleep("50 millis")
        left = processesOf(marker)
      }
      assert.deepStrictEqual(left, [])
    }), 30_000)

  it.scopedLive(
    "file operations through the spawner fail as Node's fs does, and succeed",
    () =>
      Effect.gen(function*() {
        const { files } = yield* started
        const dir = yield* tempDir
        const at = (name: string) => Path.join(dir, name)
        Fs.writeFileSync(at("file"), "x")
        Fs.mkdirSync(at("full"))
        Fs.writeFileSync(at("full/inside"), "")
        const cases: ReadonlyArray<readonly [Promise<unknown>, () => unknown]> = [
          [files.open(at("missing"), O_RDONLY, 0), () => Fs.openSync(at("missing"), O_RDONLY)],
          [files.open(at("file"), O_WRONLY | O_CREAT | O_EXCL, 0o644), () => Fs.openSync(at("file"), "wx")],
          [files.open(at("full"), O_WRONLY, 0), () => Fs.openSync(at("full"), O_WRONLY)],
          [files.open(at("file/x"), O_RDONLY, 0), () => Fs.openSync(at("file/x"), O_RDONLY)],
          [files.stat(at("missing")), () => Fs.statSync(at("missing"))],
          [files.lstat(at("missing")), () => Fs.lstatSync(at("missing"))],
          [files.stat(at("file/x")), () => Fs.statSync(at("file/x"))],
          [files.mkdir(at("full"), 0o755), () => Fs.mkdirSync(at("full"))],
          [files.mkdir(at("file/x"), 0o755), () => Fs.mkdirSync(at("file/x"))],
          [files.mkdir(at("missing/x"), 0o755), () => Fs.mkdirSync(at("missing/x"))],
          [files.unlink(at("missing")), () => Fs.unlinkSync(at("missing"))],
          [files.unlink(at("full")), () => Fs.unlinkSync(at("full"))],
          [files.rmdir(at("full")), () => Fs.rmdirSync(at("full"))],
          [files.rmdir(at("file")), () => Fs.rmdirSync(at("file"))],
          [files.rmdir(at("missing")), () => Fs.rmdirSync(at("missing"))],
          [files.readdir(at("file")), () => Fs.readdirSync(at("file"))],
          [files.readdir(at("missing")), () => Fs.readdirSync(at("missing"))]
        ]
        for (const [viaSpawner, viaNode] of cases) {
          const [a, b] = yield* Effect.promise(() => Promise.all([outcome(viaSpawner), nodeOutcome(viaNode)]))
          assert.strictEqual(a, b)
          assert.notStrictEqual(a, "ok")
        }
        // as `rm -rf` and Node's rm (which names it unlink): missing is fine, a file as a directory is not
        assert.strictEqual(yield* Effect.promise(() => outcome(files.removeAll(at("file/x")))), "unlinkat ENOTDIR")
        assert.strictEqual(yield* Effect.promise(() => outcome(files.removeAll(at("missing")))), "ok")
        // a NUL byte never reaches the spawner (Node's fs refuses it too; Go's syscall layer says EINVAL)
        assert.strictEqual(yield* Effect.promise(() => outcome(files.stat(at("a\0b")))), "stat EINVAL")

        yield* Effect.promise(async () => {
          const written = await files.open(at("new"), O_WRONLY | O_CREAT | O_TRUNC, 0o600)
          await written.writeFile("hello")
          await written.close()
          const appended = await files.open(at("new"), O_WRONLY | O_APPEND, 0)
          await appended.write(" world")
          await appended.close()
          const read = await files.open(at("new"), O_RDONLY, 0)
          assert.strictEqual(await read.readFile("utf8"), "hello world")
          await read.close()
          assert.strictEqual(Fs.statSync(at("new")).mode & 0o777, 0o600)
          // a directory opens, and reading it fails as Node's does
          const directory = await files.open(at("full"), O_RDONLY, 0)
          assert.strictEqual(await outcome(directory.read(Buffer.alloc(1))), "read EISDIR")
          await directory.close()
          assert.deepStrictEqual(await files.stat(at("full")), { isDirectory: true })
          assert.deepStrictEqual(await files.stat(at("file")), { isDirectory: false })
          Fs.symlinkSync(at("full"), at("link"))
          assert.deepStrictEqual(await files.stat(at("link")), { isDirectory: true })
          assert.deepStrictEqual(await files.lstat(at("link")), { isDirectory: false })
          await files.mkdir(at("made"), 0o700)
          assert.isTrue(Fs.statSync(at("made")).isDirectory())
          await files.rmdir(at("made"))
          await files.unlink(at("new"))
          assert.deepStrictEqual((await files.readdir(dir)).sort(), ["file", "full", "link"])
          assert.deepStrictEqual(await files.readdir(at("link")), ["inside"])
        })
      }),
    30_000
  )

  it.scopedLive(
    "removeAll removes a tree as rm -rf does, and never follows a symlink out of it",
    () =>
      Effect.gen(function*() {
        const { files } = yield* started
        const dir = yield* tempDir
        const outside = Path.join(dir, "outside")
        const tree = Path.join(dir, "tree")
        Fs.mkdirSync(Path.join(outside, "kept"), { recursive: true })
        Fs.writeFileSync(Path.join(outside, "kept", "file"), "keep me")
        Fs.mkdirSync(Path.join(tree, "a", "b", "c"), { recursive: true })
        Fs.writeFileSync(Path.join(tree, "a", "b", "c", "file"), "")
        Fs.writeFileSync(Path.join(tree, "a", "file"), "")
        Fs.symlinkSync(outside, Path.join(tree, "a", "b", "to-outside"))
        Fs.symlinkSync(Path.join(outside, "kept"), Path.join(tree, "to-kept"))
        yield* Effect.promise(() => files.removeAll(tree))
        assert.isFalse(Fs.existsSync(tree))
        assert.strictEqual(Fs.readFileSync(Path.join(outside, "kept", "file"), "utf8"), "keep me")
        // missing: no failure; a symlink given itself: the link goes, not its target
        yield* Effect.promise(() => files.removeAll(tree))
        Fs.symlinkSync(outside, Path.join(dir, "link"))
        yield* Effect.promise(() => files.removeAll(Path.join(dir, "link")))
        assert.deepStrictEqual(Fs.readdirSync(dir), ["outside"])
        assert.isTrue(Fs.existsSync(Path.join(outside, "kept", "file")))
      }),
    30_000
  )

  it.scopedLive(
    "a command started with inherit gets the spawner's fds 3 and 4; without, it has none",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const file = Path.join(dir, "fd3")
        const fd3 = Fs.openSync(file, "w")
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.closeSync(fd3)))
        // fd 4: a socket to this process
        const { proc, spawner } = yield* attached((binary) => [binary], [fd3, "pipe"], async (p) => p.pid!)
        const fromFd4 = new Promise<string>((resolve) => {
          let text = ""
          proc.stdio[4]!.on("data", (chunk) => (text += chunk))
          proc.stdio[4]!.on("end", () => resolve(text))
        })
        const script =
          "readlink /proc/self/fd/3; test -e /proc/self/fd/4 && echo has-4; echo to-host >&4 2>/dev/null; :"
        const without = yield* Effect.promise(() => spawner.spawn(sh(script)).then(result))
        assert.deepStrictEqual(without, { stdout: "", code: 0, signal: null })
        const withFds = yield* Effect.promise(() => spawner.spawn(sh(script, true)).then(result))
        assert.deepStrictEqual(withFds, { stdout: `${file}\nhas-4\n`, code: 0, signal: null })
        spawner.close()
        assert.strictEqual(yield* Effect.promise(() => fromFd4), "to-host\n")
      }),
    30_000
  )

  it.scopedLive(
    "as a sandbox's pid 1 (bubblewrap): host pids, exits reported, paths resolved inside the sandbox",
    () =>
      Effect.gen(function*() {
        const binaryDir = Path.dirname((yield* spawnerBinary)!)
        // names in the sandbox's /tmp, without the mount point of the binary's directory when under /tmp
        const own = (names: ReadonlyArray<string>) =>
          names.filter((name) => !(binaryDir.startsWith("/tmp/") && binaryDir.split("/")[2] === name))
        const dir = yield* tempDir
        Fs.writeFileSync(Path.join(dir, "host-only"), "host")
        const { spawner } = yield* attached(
          (binary) => [
            "bwrap",
            "--unshare-pid",
            "--as-pid-1",
            "--info-fd",
            "3",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
            // the binary itself may be under /tmp (a checkout there)
            "--ro-bind",
            Path.dirname(binary),
            Path.dirname(binary),
            "--die-with-parent",
            binary
          ],
          ["pipe"],
          (proc) =>
            new Promise((resolve, reject) => {
              let info = ""
              proc.stdio[3]!.on("data", (chunk) => {
                info += chunk
                const pid = /"child-pid":\s*(\d+)/.exec(info)?.[1]
                if (pid !== undefined) resolve(Number(pid))
              })
              proc.once("close", (code) => reject(new Error(`bwrap exited ${code}`)))
            })
        )
        assert.notStrictEqual(
          Fs.readlinkSync(`/proc/${spawner.pid}/ns/pid`),
          Fs.readlinkSync("/proc/self/ns/pid"),
          "another pid namespace"
        )
        assert.strictEqual(Fs.readFileSync(`/proc/${spawner.pid}/status`, "latin1").match(/^NSpid:.*\t1$/m)?.length, 1)

        // the command's pid is its pid here: its NSpid ends with the pid it sees itself
        const child = yield* Effect.promise(() => spawner.spawn(sh("echo $$; exec sleep 5")))
        const ended = result(child)
        const nsPid = yield* Effect.promise(() =>
          new Promise<string>((resolve) => child.stdout.once("data", (chunk) => resolve(String(chunk).trim())))
        )
        const nspids = /^NSpid:\t(.*)$/m.exec(Fs.readFileSync(`/proc/${child.pid}/status`, "latin1"))![1]!.split("\t")
        assert.deepStrictEqual([nspids[0], nspids.at(-1)], [String(child.pid), nsPid])
        // `sh -c …` or, once exec'd, `sleep 5`
        assert.include(Fs.readFileSync(`/proc/${child.pid}/cmdline`, "latin1").replaceAll("\u0000", " "), "sleep 5 ")
        // its group is reachable from here, and its end is reported
        process.kill(-child.pid, "SIGTERM")
        assert.strictEqual((yield* Effect.promise(() => ended)).signal, "SIGTERM")
        // an orphan the spawner reaps as pid 1 is no one's business here; the next exit still arrives
        const [orphaned, exit3] = yield* Effect.promise(() =>
          Promise.all([spawner.spawn(sh("sleep 0.05 & exit 0")).then(result), spawner.spawn(sh("exit 3")).then(result)])
        )
        assert.deepStrictEqual([orphaned.code, exit3.code], [0, 3])

        // /tmp/l -> / inside: it leads to the sandbox's root, where the host's temp dir is not
        const made = yield* Effect.promise(() =>
          spawner.spawn(sh("ln -s / /tmp/l && echo sandbox > /tmp/only-here")).then(result)
        )
        assert.strictEqual(made.code, 0)
        const { files } = spawner
        yield* Effect.promise(async () => {
          const handle = await files.open("/tmp/l/tmp/only-here", O_RDONLY, 0)
          assert.strictEqual(await handle.readFile("utf8"), "sandbox\n")
          await handle.close()
          assert.strictEqual(await outcome(files.open(`/tmp/l${dir}/host-only`, O_RDONLY, 0)), "open ENOENT")
          assert.strictEqual(await outcome(files.open(Path.join(dir, "host-only"), O_RDONLY, 0)), "open ENOENT")
          assert.strictEqual(await outcome(files.stat(dir)), "stat ENOENT")
          assert.deepStrictEqual(await files.lstat("/tmp/l"), { isDirectory: false })
          assert.deepStrictEqual(await files.stat("/tmp/l"), { isDirectory: true })
          await files.mkdir("/tmp/l/tmp/d", 0o755)
          const written = await files.open("/tmp/d/f", O_WRONLY | O_CREAT, 0o644)
          await written.writeFile("in the sandbox")
          await written.close()
          assert.deepStrictEqual(own(await files.readdir("/tmp")).sort(), ["d", "l", "only-here"])
          await files.removeAll("/tmp/d")
          assert.deepStrictEqual(own(await files.readdir("/tmp/l/tmp")).sort(), ["l", "only-here"])
          assert.strictEqual(await outcome(files.rmdir("/tmp/l/etc")), "rmdir EROFS")
        })
        const listed = yield* Effect.promise(() => spawner.spawn(sh("ls /tmp")).then(result))
        assert.deepStrictEqual(own(listed.stdout.split("\n").filter((name) => name !== "")), ["l", "only-here"])
      }),
    30_000
  )
})
