import { ControlPlane, type ControlPlaneShape } from "@effect-koyeb/core/ControlPlane"
import type { ExecutorClientShape } from "@effect-koyeb/core/ExecutorClient"
import * as LocalControlPlane from "@effect-koyeb/platform-node/LocalControlPlane"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Url from "node:url"
import * as LocalBackend from "../src/internal/localControlPlane.js"
import { firstLine } from "./utils/childOutput.js"
import * as FakeExecutors from "./utils/fakeExecutor.js"
import { alive, processesOf } from "./utils/hostProcesses.js"
import { tempBase, withPlane } from "./utils/localPlane.js"

const isolations = ["none", "bubblewrap"] as const
type Isolation = (typeof isolations)[number]

// ---------------------------------------------------------------------------------------------
// Host-side process inspection (Linux /proc)

const psCommands = (): string => ChildProcess.execFileSync("ps", ["-e", "-o", "pid=,args="], { encoding: "utf8" })

/** Polls `check` every 50 ms, at most ~20 s, and returns its last answer. */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  check.pipe(
    Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (ok) => ok, times: 400 }),
    Effect.zipRight(check)
  )

/** Waits (bounded) until every pid is gone. */
const allGone = (pids: ReadonlyArray<number>) => eventually(Effect.sync(() => pids.every((pid) => !alive(pid))))

// ---------------------------------------------------------------------------------------------
// Helpers

const sh = (client: ExecutorClientShape, cmd: string) => client.run({ cmd })

/** Runs the fixture parent, lets it create a sandbox, makes it go away `how`, and checks its processes died. */
const parentGoneBy = (isolation: Isolation, how: "SIGKILL" | "SIGTERM" | "exit") =>
  Effect.gen(function*() {
    const baseDir = yield* tempBase
    const fixture = Url.fileURLToPath(new URL("./fixtures/killedParent.ts", import.meta.url))
    const child = ChildProcess.spawn(process.execPath, ["--import", "tsx", fixture, baseDir, isolation, how], {
      stdio: ["pipe", "pipe", "pipe"]
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
    const exited = Effect.async<{ code: number | null; signal: string | null }>((resume) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        return resume(Effect.succeed({ code: child.exitCode, signal: child.signalCode }))
      }
      child.once("exit", (code, signal) => resume(Effect.succeed({ code, signal })))
    })
    const line = yield* firstLine(child, "parent")
    const { id } = JSON.parse(line) as { id: string }
    const dir = Path.join(baseDir, id)
    const pids = processesOf(dir)
    assert.isAbove(pids.length, 0)
    child.stdin.write("go\n")
    const exit = yield* exited
    assert.deepStrictEqual(exit, how === "exit" ? { code: 0, signal: null } : { code: null, signal: how })
    assert.isTrue(yield* allGone(pids), `still alive: ${pids.filter(alive)}`)
    return { baseDir, dir }
  })

// ---------------------------------------------------------------------------------------------

describe("LocalControlPlane", () => {
  for (const isolation of isolations) {
    describe(`isolation: ${isolation}`, () => {
      it.scopedLive("create, run through connect, delete leaves no process and no directory", () =>
        withPlane(isolation, (cp, baseDir) =>
          Effect.gen(function*() {
            const { endpoint, info } = yield* cp.create({ name: "t", env: { GREETING: "hello world" } })
            assert.strictEqual(info.region, "local")
            assert.strictEqual(info.instanceType, "local")
            assert.isTrue(info.ownsApp)
            const dir = Path.join(baseDir, info.id)
            assert.isTrue(Fs.existsSync(dir))

            const ready = yield* cp.waitReady(info.id)
            assert.strictEqual(ready.url, endpoint.url)
            const client = yield* cp.connect(endpoint)
            assert.strictEqual((yield* client.health).status.length > 0, true)

            const result = yield* sh(client, `echo "$GREETING"; echo "\${SANDBOX_SECRET:-absent}"; pwd; echo "$HOME"`)
            assert.strictEqual(result.code, 0)
            const [greeting, secret, cwd, home] = result.stdout.trim().split("\n")
            assert.strictEqual(greeting, "hello world")
            assert.strictEqual(secret, "absent")
            assert.strictEqual(cwd, home)
            const env = yield* sh(client, "env")
            assert.notInclude(env.stdout, Redacted.value(endpoint.secret))
            // nor in the environment of any process a command can read, the executor's included
            const environs = yield* sh(client, "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'")
            assert.include(environs.stdout, "HOME=")
            assert.notInclude(environs.stdout, Redacted.value(endpoint.secret))

            assert.deepStrictEqual((yield* cp.list).map((s) => s.id), [info.id])
            const attached = yield* cp.get(info.id)
            assert.isFalse(attached.info.ownsApp)
            const proxyPort = new URL(yield* cp.exposedUrl(info.id)).port
            assert.notStrictEqual(proxyPort, new URL(endpoint.url).port)
            assert.deepStrictEqual(yield* cp.domain(info.id), Option.some(`127.0.0.1:${proxyPort}`))
            assert.deepStrictEqual(yield* cp.tcpProxy(info.id), Option.none())

            const pids = processesOf(dir)
            assert.isAbove(pids.length, 0)
            yield* cp.delete(info)
            assert.isTrue(yield* allGone(pids), `still alive: ${pids.filter(alive)}`)
            assert.isFalse(Fs.existsSync(dir))
            assert.deepStrictEqual(yield* cp.list, [])
            const missing = yield* Effect.flip(cp.get(info.id))
            assert.strictEqual(missing._tag, "SandboxNotFound")
            // idempotent
            yield* cp.delete(info)
          })))

      it.scopedLive("closing the scope by interruption leaves nothing", () =>
        Effect.gen(function*() {
          const created = yield* Deferred.make<{ dir: string; pids: Array<number> }>()
          const baseDir = yield* tempBase
          const fiber = yield* Effect.gen(function*() {
            const cp = yield* ControlPlane
            const { info } = yield* cp.create({})
            const dir = Path.join(baseDir, info.id)
            yield* Deferred.succeed(created, { dir, pids: processesOf(dir) })
            return yield* Effect.never
          }).pipe(Effect.provide(LocalControlPlane.layer({ isolation, baseDir })), Effect.fork)
          const { dir, pids } = yield* Deferred.await(created)
          assert.isAbove(pids.length, 0)
          yield* Fiber.interrupt(fiber)
          assert.isTrue(yield* allGone(pids), `still alive: ${pids.filter(alive)}`)
          assert.isFalse(Fs.existsSync(dir))
        }))

      it.scopedLive("deleteAfterDelay deletes the sandbox", () =>
        withPlane(isolation, (cp, baseDir) =>
          Effect.gen(function*() {
            const { info } = yield* cp.create({ deleteAfterDelay: "300 millis" })
            const dir = Path.join(baseDir, info.id)
            const pids = processesOf(dir)
            assert.isAbove(pids.length, 0)
            assert.isTrue(yield* eventually(Effect.map(cp.list, (list) => list.length === 0)))
            assert.isTrue(yield* allGone(pids))
            assert.isTrue(yield* eventually(Effect.sync(() => !Fs.existsSync(dir))))
          })))

      it.scopedLive("exposes the bound port through the executor's proxy", () =>
        withPlane(isolation, (cp) =>
          Effect.gen(function*() {
            const { endpoint, info } = yield* cp.create({ enableTcpProxy: true })
            const client = yield* cp.connect(endpoint)
            const server =
              `require("http").createServer((q, s) => s.end("hello from " + q.url)).listen(0, "127.0.0.1", function () { const fs = require("fs"); fs.writeFileSync("port.tmp", String(this.address().port)); fs.renameSync("port.tmp", "port.txt") })`
            yield* client.startProcess({ cmd: `node -e '${server}'` })
            const port = yield* client.readFile(`${(yield* sh(client, "pwd")).stdout.trim()}/port.txt`).pipe(
              Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 200 })
            )
            yield* client.bindPort(port)
            const url = yield* cp.exposedUrl(info.id)
            const body = yield* Effect.promise(() => fetch(`${url}path`).then((r) => r.text()))
            assert.strictEqual(body, "hello from /path")
            const tcp = yield* cp.tcpProxy(info.id)
            assert.deepStrictEqual(tcp, Option.some({ host: "127.0.0.1", port: Number(new URL(url).port) }))
          })))

      it.scopedLive("a SIGKILLed parent leaves no sandbox process, and its directory is swept later", () =>
        Effect.gen(function*() {
          const { baseDir, dir } = yield* parentGoneBy(isolation, "SIGKILL")
          // Nothing could remove the directory; the next program using the same base directory does.
          assert.isTrue(Fs.existsSync(dir))
          yield* Effect.flatMap(ControlPlane, (cp) => cp.create({})).pipe(
            Effect.provide(LocalControlPlane.layer({ isolation, baseDir }))
          )
          assert.isFalse(Fs.existsSync(dir))
        }))
    })
  }

  describe("lifecycle and options", () => {
    it.scopedLive("idleTimeout + deleteAfterInactivityDelay delete an idle sandbox, never a busy one", () =>
      withPlane("none", (cp) =>
        Effect.gen(function*() {
          const { endpoint, info } = yield* cp.create({
            idleTimeout: "150 millis",
            deleteAfterInactivityDelay: "150 millis"
          })
          const client = yield* cp.connect(endpoint)
          // In flight for longer than the inactivity bound: the sandbox must survive it.
          const busy = yield* client.run({ cmd: "sleep 1; echo done" })
          assert.strictEqual(busy.stdout, "done\n")
          assert.deepStrictEqual((yield* cp.list).map((s) => s.id), [info.id])
          assert.isTrue(yield* eventually(Effect.map(cp.list, (list) => list.length === 0)))
        })))

    it.scopedLive("idleTimeout 0 (always on) never deletes for inactivity", () =>
      withPlane("none", (cp) =>
        Effect.gen(function*() {
          const { info } = yield* cp.create({ idleTimeout: 0, deleteAfterInactivityDelay: "10 millis" })
          yield* Effect.sleep("300 millis")
          assert.deepStrictEqual((yield* cp.list).map((s) => s.id), [info.id])
        })))

    it.scopedLive("updateLifecycle sets a deletion delay; unknown ids are SandboxNotFound", () =>
      withPlane("none", (cp) =>
        Effect.gen(function*() {
          const { info } = yield* cp.create({ appId: "my-app", instanceType: "nano", image: "custom/image" })
          assert.strictEqual(info.appId, "my-app")
          assert.isFalse(info.ownsApp)
          assert.strictEqual(info.instanceType, "nano")
          assert.strictEqual(info.image, "custom/image")
          yield* cp.updateLifecycle(info.id, { deleteAfterDelay: "100 millis" })
          assert.isTrue(yield* eventually(Effect.map(cp.list, (list) => list.length === 0)))
          const error = yield* Effect.flip(cp.updateLifecycle(info.id, { deleteAfterDelay: "1 second" }))
          assert.strictEqual(error._tag, "SandboxNotFound")
          const waited = yield* Effect.flip(cp.waitReady(info.id))
          assert.strictEqual(waited._tag, "SandboxNotFound")
        })))

    it.scopedLive("the sandbox secret is reserved", () =>
      withPlane("none", (cp, baseDir) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(cp.create({ env: { SANDBOX_SECRET: "x" } }))
          assert.strictEqual(error._tag, "InvalidArgument")
          assert.deepStrictEqual(Fs.readdirSync(baseDir), [])
        })))
  })

  describe("lifecycle under a TestClock", () => {
    /** The sandbox ids once `expected`, letting other fibers run in between (at most 100 times); no time passes. */
    const listed = (cp: ControlPlaneShape, expected: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        let ids = (yield* cp.list).map((s) => s.id)
        for (let i = 0; i < 100 && ids.join() !== expected.join(); i++) {
          yield* Effect.yieldNow()
          ids = (yield* cp.list).map((s) => s.id)
        }
        return ids
      })

    it.scoped("deleteAfterDelay, inactivity and updateLifecycle deletions follow the clock", () =>
      Effect.gen(function*() {
        const executors = yield* FakeExecutors.make()
        const cp = yield* LocalBackend.make({}, executors.spawn)
        const delayed = (yield* cp.create({ deleteAfterDelay: "10 minutes", idleTimeout: 0 })).info.id
        const idle = (yield* cp.create({ idleTimeout: "1 minute", deleteAfterInactivityDelay: "1 minute" })).info.id
        const updated = (yield* cp.create({ idleTimeout: 0 })).info.id
        const kept = (yield* cp.create({ idleTimeout: 0, deleteAfterInactivityDelay: "1 second" })).info.id
        assert.strictEqual((yield* cp.get(idle)).info.createdAt.getTime(), 0)

        yield* TestClock.adjust("119 seconds")
        assert.deepStrictEqual(yield* listed(cp, []), [delayed, idle, updated, kept])
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(yield* listed(cp, [delayed, updated, kept]), [delayed, updated, kept])

        // counted from the creation, like Koyeb's delete_after_create
        yield* cp.updateLifecycle(updated, { deleteAfterDelay: "5 minutes" })
        yield* TestClock.adjust("179 seconds")
        assert.deepStrictEqual(yield* listed(cp, []), [delayed, updated, kept])
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(yield* listed(cp, [delayed, kept]), [delayed, kept])

        yield* TestClock.adjust("5 minutes")
        assert.deepStrictEqual(yield* listed(cp, [kept]), [kept])
        assert.deepStrictEqual(yield* executors.alive, [kept])
      }))
  })

  for (const how of ["SIGTERM", "exit"] as const) {
    it.scopedLive(`a parent that ends by ${how} without closing its scope leaves no process and no directory`, () =>
      Effect.gen(function*() {
        const { dir } = yield* parentGoneBy("none", how)
        assert.isFalse(Fs.existsSync(dir))
      }))
  }

  describe("isolation: bubblewrap", () => {
    it.scopedLive("private /tmp and home, read-only host root, own PID namespace", () =>
      withPlane("bubblewrap", (cp) =>
        Effect.gen(function*() {
          const { endpoint } = yield* cp.create({})
          const client = yield* cp.connect(endpoint)
          const marker = `ekl-private-${process.pid}-${Date.now()}`
          const written = yield* sh(
            client,
            `echo hi > /tmp/${marker} && cat /tmp/${marker} && echo "$HOME" > "$HOME/h" && cat "$HOME/h"`
          )
          assert.strictEqual(written.code, 0, written.stderr)
          assert.strictEqual(written.stdout, "hi\n/home/sandbox\n")
          assert.isFalse(Fs.existsSync(`/tmp/${marker}`))

          const readOnly = yield* sh(client, "touch /usr/ekl-x")
          assert.notStrictEqual(readOnly.code, 0)
          assert.include(readOnly.stderr, "Read-only")
          assert.isFalse(Fs.existsSync("/usr/ekl-x"))

          const ps = yield* sh(client, "ps -e -o pid=,comm=")
          const commands = ps.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/)[1])
          // Besides the executor's command spawner (`effect-koyeb-spawner`, `spawner-<hash>` in the dev loop).
          const sandboxCommands = [...new Set(commands)].filter((command) =>
            !/^(effect-koyeb-sp|spawner-)/.test(command!)
          )
          assert.includeMembers(["bwrap", "node", "sh", "ps"], sandboxCommands)
          assert.isBelow(commands.length, psCommands().trim().split("\n").length)
          assert.notInclude(ps.stdout, "vitest")
        })))
  })
})
