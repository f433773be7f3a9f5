import type { ControlPlaneShape, CreateOptions } from "@effect-koyeb/core/ControlPlane"
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { spawnExecutor } from "../src/internal/localRuntime.js"
import * as Start from "../src/internal/sandboxStart.js"
import { alive, readProc } from "./utils/hostProcesses.js"
import { tempBase, withPlane } from "./utils/localPlane.js"

// ---------------------------------------------------------------------------------------------
// Pure rules

const left = <A, E>(either: Either.Either<A, E>): E => {
  if (Either.isRight(either)) assert.fail(`expected a failure, got ${JSON.stringify(either.right)}`)
  return either.left
}
const right = <A, E>(either: Either.Either<A, E>): A => {
  if (Either.isLeft(either)) assert.fail(`expected a success, got ${String(either.left)}`)
  return either.right
}

/** A host made of `paths` (directories end with `/`, `a -> b` is a symbolic link). */
const fakeHost = (paths: ReadonlyArray<string>): Start.HostProbe => {
  const kinds = new Map<string, Start.HostKind>([["/", "directory"]])
  const links = new Map<string, string>()
  for (const spec of paths) {
    const [path, target] = spec.split(" -> ")
    if (target !== undefined) {
      kinds.set(path!, "symlink")
      links.set(path!, target)
    } else if (path!.endsWith("/")) kinds.set(path!.slice(0, -1), "directory")
    else kinds.set(path!, "file")
  }
  const realpath = (path: string): string => {
    const parts = path.split("/").filter((p) => p !== "")
    let current = "/"
    for (const part of parts) {
      const next = Path.posix.join(current, part)
      const link = links.get(next)
      current = link === undefined ? next : realpath(Path.posix.resolve(current, link))
    }
    return current
  }
  return {
    kind: (path) => kinds.get(path) ?? "missing",
    realpath,
    entries: (dir) =>
      [...kinds.entries()]
        .filter(([path]) => path !== dir && Path.posix.dirname(path) === dir)
        .map(([path, kind]) => ({ name: Path.posix.basename(path), kind, target: links.get(path) }))
  }
}

const layout: Start.SandboxLayout = {
  home: "/home/sandbox",
  hostHome: "/base/id/home",
  hostTmp: "/base/id/tmp",
  hidden: ["/home", "/root"]
}
const host = fakeHost([
  "/etc/",
  "/etc/hosts",
  "/etc/ssl/",
  "/etc/ssl/cert.pem",
  "/usr/",
  "/usr/bin/",
  "/bin -> usr/bin",
  "/opt/"
])
const spec = (path: string, mode = 0o644): Start.ConfigFileSpec => ({ path, content: `content of ${path}`, mode })

describe("sandboxStart", () => {
  it("mainCommand: Docker semantics, entrypoint ++ command ++ args, nothing through a shell", () => {
    assert.isUndefined(right(Start.mainCommand(undefined, undefined, undefined)))
    assert.isUndefined(right(Start.mainCommand([], undefined, [])))
    assert.deepStrictEqual(right(Start.mainCommand(undefined, "python3 -m http.server", undefined)), [
      "python3 -m http.server"
    ])
    assert.deepStrictEqual(right(Start.mainCommand(["tini", "--"], "node", ["server.js", "--port", "8080"])), [
      "tini",
      "--",
      "node",
      "server.js",
      "--port",
      "8080"
    ])
    assert.deepStrictEqual(right(Start.mainCommand(["sh", "-c"], undefined, ["echo hi"])), ["sh", "-c", "echo hi"])
    assert.deepStrictEqual(right(Start.mainCommand(undefined, undefined, ["sleep", "1"])), ["sleep", "1"])
    assert.strictEqual(left(Start.mainCommand(undefined, "", undefined)).argument, "command")
    assert.strictEqual(left(Start.mainCommand(["a\0b"], undefined, undefined)).argument, "entrypoint")
    assert.strictEqual(left(Start.mainCommand(undefined, "x", ["\0"])).argument, "args")
    assert.strictEqual(left(Start.mainCommand([""], "x", undefined)).argument, "entrypoint")
  })

  it("instanceLimits: Koyeb's memory per type, two tasks per MiB, no limits for local, unknown types refused", () => {
    assert.isUndefined(right(Start.instanceLimits(undefined)))
    assert.isUndefined(right(Start.instanceLimits("local")))
    assert.deepStrictEqual(right(Start.instanceLimits("nano")), {
      instanceType: "nano",
      memoryBytes: 256 * 1024 * 1024,
      processes: 512
    })
    assert.strictEqual(right(Start.instanceLimits("micro"))?.memoryBytes, 512 * 1024 * 1024)
    assert.strictEqual(right(Start.instanceLimits("eco-small"))?.memoryBytes, 1024 * 1024 * 1024)
    assert.strictEqual(right(Start.instanceLimits("5xlarge"))?.processes, 32768)
    for (const unknown of ["gpu-nvidia-l4", "huge", "toString", ""]) {
      const error = left(Start.instanceLimits(unknown))
      assert.strictEqual(error.argument, "instanceType")
      assert.include(error.detail, "nano")
    }
  })

  it("configFiles: absolute normalized paths, octal permissions (default 0644)", () => {
    assert.deepStrictEqual(
      right(
        Start.configFiles({ "/etc/a.conf": "a", "/b": { content: "b", permissions: "0600" }, "/c": { content: "" } })
      ),
      [
        { path: "/etc/a.conf", content: "a", mode: 0o644 },
        { path: "/b", content: "b", mode: 0o600 },
        { path: "/c", content: "", mode: 0o644 }
      ]
    )
    assert.strictEqual(right(Start.configFiles({ "/x": { content: "", permissions: "755" } }))[0]!.mode, 0o755)
    for (const path of ["relative", "/", "/a/../etc/passwd", "/a/./b", "/a//b", "/a/", "/a\0b"]) {
      const error = left(Start.configFiles({ [path]: "x" }))
      assert.strictEqual(error.argument, "configFiles")
      assert.include(error.detail, JSON.stringify(path))
    }
    for (const permissions of ["rw-r--r--", "0888", "644a", "", "07777"]) {
      assert.include(left(Start.configFiles({ "/x": { content: "", permissions } })).detail, "octal")
    }
  })

  it("planConfigFiles: own home and tmp on the host, the rest in the mount tree", () => {
    const plan = right(Start.planConfigFiles(
      [
        spec("/home/sandbox/app/config.json"),
        spec("/tmp/run.sh", 0o755),
        spec("/etc/app.conf", 0o600),
        spec("/etc/ssl/extra.pem"),
        spec("/etc/hosts"),
        spec("/app/deep/config.json"),
        spec("/root/.config/tool/x"),
        spec("/bin/tool")
      ],
      layout,
      host
    ))
    assert.deepStrictEqual(plan.hostFiles.map((f) => [f.path, f.mode]), [
      ["/base/id/home/app/config.json", 0o644],
      ["/base/id/tmp/run.sh", 0o755]
    ])
    // shallowest first, so a deeper tmpfs lands on the entry bound back into a shallower one
    assert.deepStrictEqual(plan.reopened, ["/", "/etc", "/etc/ssl", "/usr/bin"])
    assert.deepStrictEqual(plan.directories, ["/app", "/app/deep", "/root/.config", "/root/.config/tool"])
    assert.deepStrictEqual(plan.mounted.map((f) => f.path), [
      "/etc/app.conf",
      "/etc/ssl/extra.pem",
      "/etc/hosts",
      "/app/deep/config.json",
      "/root/.config/tool/x",
      "/usr/bin/tool"
    ])
  })

  it("planConfigFiles: kernel file systems, directories and files on the way are refused by path", () => {
    const refused = (path: string, detail: string) => {
      const error = left(Start.planConfigFiles([spec(path)], layout, fakeHost(["/etc/", "/etc/hosts", "/data/"])))
      assert.strictEqual(error.argument, "configFiles")
      assert.include(error.detail, JSON.stringify(path))
      assert.include(error.detail, detail)
    }
    refused("/proc/sys/x", "kernel")
    refused("/dev/x", "kernel")
    refused("/sys/x", "kernel")
    refused("/etc", "is a directory")
    refused("/etc/hosts/x", "not a directory")
    refused("/etc/hosts/a/b", "not a directory")
  })

  it("configFileArgs: tmpfs with the original entries bound back, files from descriptors with their permissions", () => {
    const plan = right(Start.planConfigFiles([spec("/etc/hosts", 0o600), spec("/bin/x", 0o4755)], layout, host))
    const { files, reopen } = Start.configFileArgs(plan, host, (i) => 10 + i)
    assert.deepStrictEqual(reopen, [
      "--tmpfs",
      "/etc",
      "--ro-bind",
      "/etc/ssl",
      "/etc/ssl",
      "--tmpfs",
      "/usr/bin"
    ])
    assert.deepStrictEqual(files, [
      "--perms",
      "0600",
      "--file",
      "10",
      "/etc/hosts",
      "--perms",
      "4755",
      "--file",
      "11",
      "/usr/bin/x"
    ])
    assert.deepStrictEqual(
      Start.reopenArgs(
        "/",
        [{ name: "bin", kind: "symlink", target: "usr/bin" }, { name: "usr", kind: "directory" }],
        new Set()
      ),
      ["--tmpfs", "/", "--symlink", "usr/bin", "/bin", "--ro-bind", "/usr", "/usr"]
    )
  })

  it("withMain: the program in the background without the executor's variables, then the executor", () => {
    const log = Path.join(Os.tmpdir(), `ek-main-${Crypto.randomUUID()}.log`)
    try {
      const argv = Start.withMain(
        ["sh", "-c", "echo \"[$0] ${HIDDEN:-unset} $KEPT\"; cat", "it's"],
        log,
        ["HIDDEN"],
        ["sh", "-c", "echo executor; wait"]
      )
      const out = ChildProcess.execFileSync(argv[0]!, argv.slice(1), {
        env: { PATH: process.env.PATH, HIDDEN: "secret", KEPT: "kept" },
        input: "stdin of the executor",
        encoding: "utf8"
      })
      assert.strictEqual(out, "executor\n")
      // the program is waited for by nobody: poll its log
      const deadline = Date.now() + 5_000
      while (!Fs.existsSync(log) || !Fs.readFileSync(log, "utf8").includes("\n")) {
        if (Date.now() > deadline) assert.fail("the program wrote nothing")
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10)
      }
      assert.strictEqual(Fs.readFileSync(log, "utf8"), "[it's] unset kept\n")
    } finally {
      Fs.rmSync(log, { force: true })
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Real local sandboxes

/** Host pids whose argv is exactly `argv`. */
const pidsRunning = (argv: ReadonlyArray<string>): Array<number> =>
  Fs.readdirSync("/proc").filter((entry) =>
    /^\d+$/.test(entry) && readProc(entry, "cmdline") === argv.join("\0") + "\0"
  )
    .map(Number)

/** A `sleep` nobody else runs: its argv finds the main program on the host. */
const uniqueSleep = () => ["sleep", `${3000 + Crypto.randomInt(100_000)}.${process.pid}`]

/** `check` until `ok` (polled every 50 ms, at most ~5 s), its last answer either way. */
const eventually = <A, E, R>(check: Effect.Effect<A, E, R>, ok: (a: A) => boolean) =>
  Effect.flatMap(Ref.make<A | undefined>(undefined), (last) =>
    check.pipe(
      Effect.tap((a) => Ref.set(last, a)),
      Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: ok, times: 100 }),
      Effect.zipRight(Ref.get(last)),
      Effect.map((a) => a!)
    ))

const runIn = (cp: ControlPlaneShape, endpoint: Parameters<ControlPlaneShape["connect"]>[0], cmd: string) =>
  Effect.flatMap(cp.connect(endpoint), (client) => client.run({ cmd }))

describe("local sandboxes: create options", () => {
  it.scopedLive(
    "bubblewrap: the main program runs before ready, with the sandbox's env and home, logs to /tmp, dies with the sandbox",
    () =>
      withPlane("bubblewrap", (cp) =>
        Effect.gen(function*() {
          const sleep = uniqueSleep()
          const { endpoint, info } = yield* cp.create({
            env: { GREETING: "hello" },
            command: "sh",
            args: [
              "-c",
              `echo "$GREETING $HOME $PWD" > started.txt; cat > stdin.txt; echo to-out; echo to-err >&2; exec ${
                sleep.join(" ")
              }`
            ]
          })
          // started before the executor listened, so running once create returns
          assert.lengthOf(pidsRunning(sleep), 1)
          const started = yield* eventually(runIn(cp, endpoint, "cat started.txt stdin.txt"), (r) => r.stdout !== "")
          assert.strictEqual(started.stdout, "hello /home/sandbox /home/sandbox\n")
          const log = yield* eventually(
            runIn(cp, endpoint, "cat /tmp/effect-koyeb-main.log"),
            (r) => r.stdout.includes("to-err")
          )
          assert.strictEqual(log.stdout, "to-out\nto-err\n")
          const environ = yield* runIn(cp, endpoint, "cat /proc/$(pgrep -x sleep)/environ | tr '\\0' '\\n'")
          assert.include(environ.stdout, "GREETING=hello")
          assert.notInclude(environ.stdout, "SANDBOX_SECRET")
          assert.notInclude(environ.stdout, Redacted.value(endpoint.secret))
          const [pid] = pidsRunning(sleep)
          yield* cp.delete(info)
          assert.isFalse(alive(pid!))
        })),
    { timeout: 30_000 }
  )

  it.scopedLive(
    "none: entrypoint ++ command ++ args as argv, cwd the home, stopped by delete; options recorded in info",
    () =>
      withPlane("none", (cp, baseDir) =>
        Effect.gen(function*() {
          const sleep = uniqueSleep()
          const { endpoint, info } = yield* cp.create({
            entrypoint: ["sh", "-c"],
            command: `printf '%s|' "$0" "$1" "$PWD" > argv.txt; exec ${sleep.join(" ")}`,
            args: ["zero", "one two"],
            instanceType: "micro",
            privileged: true,
            registrySecret: "my-registry"
          })
          // recorded, with the limits that apply (or why none do)
          assert.strictEqual(info.instanceType, "micro")
          assert.isTrue(info.privileged)
          assert.strictEqual(info.registrySecret, "my-registry")
          const limits = info.limits!
          assert.isTrue(limits.memoryBytes === 512 * 1024 * 1024 || limits.detail !== undefined)
          assert.strictEqual((yield* cp.get(info.id)).info.limits, limits)
          assert.lengthOf(pidsRunning(sleep), 1)
          const argv = yield* eventually(runIn(cp, endpoint, "cat argv.txt"), (r) => r.stdout !== "")
          assert.strictEqual(argv.stdout, `zero|one two|${Path.join(baseDir, info.id, "home")}|`)
          const [pid] = pidsRunning(sleep)
          yield* cp.delete(info)
          assert.isFalse(alive(pid!))
        })),
    { timeout: 30_000 }
  )

  it.scopedLive(
    "bubblewrap: config files with their permissions, in home, /tmp and elsewhere, before the main program starts; the host untouched",
    () =>
      withPlane("bubblewrap", (cp) =>
        Effect.gen(function*() {
          const etcCount = Fs.readdirSync("/etc").length
          const { endpoint } = yield* cp.create({
            command: "sh",
            args: ["-c", "cat /etc/effect-koyeb-test.conf > seen-by-main.txt"],
            configFiles: {
              "/etc/effect-koyeb-test.conf": { content: "key=value\n", permissions: "0600" },
              "/home/sandbox/app/config.json": "{\"a\":1}",
              "/tmp/effect-koyeb-test/run.sh": { content: "echo ran", permissions: "0755" },
              "/effect-koyeb-test/deep/file.txt": { content: "deep", permissions: "0640" }
            }
          })
          const stat = yield* runIn(
            cp,
            endpoint,
            "stat -c '%a %n' /etc/effect-koyeb-test.conf app/config.json /tmp/effect-koyeb-test/run.sh /effect-koyeb-test/deep/file.txt; " +
              "cat /etc/effect-koyeb-test.conf app/config.json /effect-koyeb-test/deep/file.txt; echo; sh /tmp/effect-koyeb-test/run.sh; " +
              "ls -A /etc | wc -l; test -r /etc/passwd && echo passwd-readable"
          )
          assert.strictEqual(stat.code, 0, stat.stderr)
          assert.strictEqual(
            stat.stdout,
            [
              "600 /etc/effect-koyeb-test.conf",
              "644 app/config.json",
              "755 /tmp/effect-koyeb-test/run.sh",
              "640 /effect-koyeb-test/deep/file.txt",
              "key=value",
              "{\"a\":1}deep",
              "ran",
              String(etcCount + 1),
              "passwd-readable",
              ""
            ].join("\n")
          )
          const seen = yield* eventually(runIn(cp, endpoint, "cat seen-by-main.txt"), (r) => r.stdout !== "")
          assert.strictEqual(seen.stdout, "key=value\n")
          // A sandbox's own: writable, and nothing on the host.
          const write = yield* runIn(
            cp,
            endpoint,
            "echo more >> /etc/effect-koyeb-test.conf && cat /etc/effect-koyeb-test.conf"
          )
          assert.strictEqual(write.stdout, "key=value\nmore\n")
          assert.isFalse(Fs.existsSync("/etc/effect-koyeb-test.conf"))
          assert.isFalse(Fs.existsSync("/effect-koyeb-test"))
          assert.strictEqual(Fs.readdirSync("/etc").length, etcCount)
        })),
    { timeout: 30_000 }
  )

  it.scopedLive(
    "none: config files are refused by path; bad options fail with InvalidArgument before any sandbox exists",
    () =>
      withPlane("none", (cp, baseDir) =>
        Effect.gen(function*() {
          const refused = (options: CreateOptions) => Effect.flip(cp.create(options))
          const noIsolation = yield* refused({ configFiles: { "/home/sandbox/a.conf": "x" } })
          assert.strictEqual(noIsolation._tag, "InvalidArgument")
          if (noIsolation._tag !== "InvalidArgument") return
          assert.strictEqual(noIsolation.argument, "configFiles")
          assert.include(noIsolation.detail, "/home/sandbox/a.conf")
          assert.include(noIsolation.detail, "bubblewrap")
          for (
            const [options, argument] of [
              [{ instanceType: "gpu-nvidia-a100" }, "instanceType"],
              [{ configFiles: { "etc/x": "x" } }, "configFiles"],
              [{ configFiles: { "/x": { content: "x", permissions: "rw" } } }, "configFiles"],
              [{ command: "" }, "command"]
            ] as const
          ) {
            const error = yield* refused(options)
            assert.strictEqual(error._tag, "InvalidArgument")
            if (error._tag === "InvalidArgument") assert.strictEqual(error.argument, argument)
          }
          assert.lengthOf(yield* cp.list, 0)
          assert.deepStrictEqual(Fs.readdirSync(baseDir), [])
        })),
    { timeout: 30_000 }
  )

  it.scopedLive(
    "limits: applied through cgroups where this process may, else reported; the cgroups go with the sandbox",
    () =>
      Effect.gen(function*() {
        const baseDir = yield* tempBase
        const limits = right(Start.instanceLimits("nano"))!
        const secret = Redacted.make(Crypto.randomBytes(24).toString("base64url"))
        const proc = yield* spawnExecutor({ id: Crypto.randomUUID(), secret, isolation: "bubblewrap", baseDir, limits })
        const applied = proc.limits!
        assert.strictEqual(applied.instanceType, "nano")
        if (applied.memoryBytes === undefined || applied.processes === undefined) {
          // This machine gives no cgroup: say so, and run unlimited.
          assert.isString(applied.detail)
          return
        }
        assert.strictEqual(applied.memoryBytes, 256 * 1024 * 1024)
        assert.strictEqual(applied.processes, 512)
        const cgroups = readProc(String(proc.pid), "cgroup").split("\n").filter((line) =>
          line.includes("effect-koyeb-")
        )
        assert.isAbove(cgroups.length, 0)
        // A command that needs more than the instance's memory is killed, as on Koyeb.
        const client = yield* ExecutorClient.make({ url: proc.url, secret })
        const small = yield* client.run({ cmd: "python3 -c 'x = bytearray(32 * 1024 * 1024); print(len(x))'" })
        assert.strictEqual(small.stdout, "33554432\n")
        const big = yield* client.run({ cmd: "python3 -c 'x = bytearray(400 * 1024 * 1024); print(len(x))'" })
        assert.notStrictEqual(big.code, 0)
        const dirs = cgroups.map((line) => line.split(":")[2]!)
        yield* proc.kill
        for (const dir of dirs) {
          const gone = Fs.readdirSync("/sys/fs/cgroup").every((controller) =>
            !Fs.existsSync(Path.join("/sys/fs/cgroup", controller, dir))
          )
          assert.isTrue(gone, dir)
        }
      }).pipe(Effect.provide(NodeHttpClient.layerUndici)),
    { timeout: 30_000 }
  )
})
