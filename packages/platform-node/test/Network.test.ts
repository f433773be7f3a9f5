/**
 * One network per local sandbox (bubblewrap): two sandboxes serve the same port, each exposed
 * port serves its own sandbox, a sandbox reaches neither another sandbox's ports nor the host's
 * loopback, while the host reaches every executor. The only addresses used are loopback ones
 * (the host's, and each sandbox's own inside its namespace); no traffic leaves the machine.
 */
import { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as LocalControlPlane from "@effect-koyeb/platform-node/LocalControlPlane"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { alive, readProc } from "./utils/hostProcesses.js"

const bwrap = ChildProcess.spawnSync(
  "bwrap",
  ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net", "--unshare-pid", "true"],
  { timeout: 5_000 }
).status === 0

const onPath = (name: string) =>
  (process.env.PATH ?? "").split(Path.delimiter).some((dir) => dir !== "" && Fs.existsSync(Path.join(dir, name)))
/** What `auto` gives here: outbound traffic when a user-mode stack is installed. */
const expectedNetwork = onPath("slirp4netns") || onPath("pasta") ? "user-mode" : "private"

const tempBase = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ekn-test-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const local = (isolation: "bubblewrap" | "none", options: { readonly outbound?: boolean } = {}) =>
  Layer.unwrapScoped(Effect.map(tempBase, (baseDir) => LocalControlPlane.layer({ ...options, isolation, baseDir })))

const defaultRoute = (routes: string) => /^\S+\t00000000\t/m.test(routes)

/** An HTTP server on the host's loopback answering `body`, closed with the scope. */
const hostServer = (body: string) =>
  Effect.acquireRelease(
    Effect.async<Http.Server>((resume) => {
      const server = Http.createServer((_, response) => response.end(body))
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
  ).pipe(Effect.map((server) => (server.address() as Net.AddressInfo).port))

/** The user-mode network helpers running in the directory of sandbox `id`. */
const helpersOf = (id: string): Array<number> =>
  Fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).map(Number).filter((pid) => {
    try {
      // slirp4netns runs in the sandbox directory; pasta moves to / but names its pid file there.
      return /^(slirp4netns|pasta|passt)/.test(readProc(String(pid), "comm")) &&
        (readProc(String(pid), "cmdline").includes(id) || Fs.readlinkSync(`/proc/${pid}/cwd`).includes(id))
    } catch {
      return false
    }
  })

const get = (url: string) => Effect.promise(() => fetch(url).then((response) => response.text()))

/** A sandbox serving `body` on 127.0.0.1:8080, inside its own network. */
const serving = (body: string) =>
  Effect.gen(function*() {
    const sandbox = yield* Sandbox.make()
    const server = `require("http").createServer((q, r) => r.end(${JSON.stringify(body)})).listen(8080, "127.0.0.1")`
    yield* sandbox.processes.launchScoped(["node", "-e", server])
    yield* sandbox.processes.waitForPort(8080, { timeout: "20 seconds", pollInterval: "50 millis" })
    return sandbox
  })

/** `open` when a TCP connection to 127.0.0.1:`port` succeeds from inside the sandbox, else `closed`. */
const probe = (sandbox: Sandbox.SandboxHandle, port: number) =>
  sandbox.executor.run(`bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}' 2>/dev/null && echo open || echo closed`).pipe(
    Effect.map((result) => result.stdout.trim())
  )

describe.skipIf(!bwrap)("one network per local sandbox (bubblewrap)", () => {
  it.scopedLive(
    "two sandboxes serve 8080 each; exposed ports serve their own; nothing crosses",
    () =>
      Effect.gen(function*() {
        const hostPort = yield* hostServer("host")
        const [a, b] = yield* Effect.all([serving("from a"), serving("from b")], { concurrency: 2 })

        // Each command reads its own sandbox's 8080.
        assert.strictEqual(
          (yield* a.executor.run("node -e 'fetch(\"http://127.0.0.1:8080\").then(r => r.text()).then(console.log)'"))
            .stdout,
          "from a\n"
        )
        const [exposedA, exposedB] = [yield* a.exposePort(8080), yield* b.exposePort(8080)]
        assert.strictEqual(yield* get(exposedA.url), "from a")
        assert.strictEqual(yield* get(exposedB.url), "from b")

        // The host reaches both executors; a reaches neither b's executor, b's proxy, nor the host's server.
        const endpointB = (yield* (yield* ControlPlane).get(b.info.id)).endpoint
        assert.isTrue((yield* Effect.promise(() => fetch(`${endpointB.url}/health`))).ok)
        const apiPortB = Number(new URL(endpointB.url).port)
        const proxyPortB = Number(new URL(exposedB.url).port)
        for (const port of [apiPortB, proxyPortB, hostPort]) {
          assert.strictEqual(yield* probe(a, port), "closed", `port ${port}`)
        }
        // The probe itself works: a's own server is open.
        assert.strictEqual(yield* probe(a, 8080), "open")
      }).pipe(Effect.provide(local("bubblewrap"))),
    60_000
  )

  it.scopedLive(
    "the isolation and network are reported; the helper dies with the sandbox",
    () =>
      Effect.gen(function*() {
        const controlPlane = yield* ControlPlane
        const { info } = yield* controlPlane.create({})
        assert.deepStrictEqual({ ...info.isolation }, { mode: "bubblewrap", network: expectedNetwork })
        assert.deepStrictEqual((yield* controlPlane.list).map((listed) => listed.isolation?.network), [expectedNetwork])
        const client = yield* controlPlane.connect((yield* controlPlane.get(info.id)).endpoint)
        // Routes only (no traffic): a default route exactly when there is outbound networking.
        const routes = (yield* client.run({ cmd: "cat /proc/net/route" })).stdout
        assert.strictEqual(defaultRoute(routes), expectedNetwork === "user-mode", routes)
        const helpers = helpersOf(info.id)
        assert.strictEqual(helpers.length, expectedNetwork === "user-mode" ? 1 : 0)
        yield* controlPlane.delete(info)
        const gone = Effect.sync(() => helpers.every((pid) => !alive(pid)))
        assert.isTrue(
          yield* gone.pipe(
            Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (ok) => ok, times: 100 }),
            Effect.zipRight(gone)
          )
        )
      }).pipe(Effect.provide(local("bubblewrap"))),
    30_000
  )

  it.scopedLive.skipIf(expectedNetwork !== "user-mode")(
    "a sandbox whose bubblewrap dies on its own leaves no helper behind",
    () =>
      Effect.gen(function*() {
        const controlPlane = yield* ControlPlane
        const { info } = yield* controlPlane.create({})
        const helpers = helpersOf(info.id)
        assert.strictEqual(helpers.length, 1)
        // The sandbox's first process (this process's child), not its process group: the helper
        // outlives it unless the host stops it.
        const [outer] = Fs.readdirSync("/proc").filter((entry) =>
          /^\d+$/.test(entry) && readProc(entry, "comm").trim() === "bwrap" &&
          readProc(entry, "cmdline").includes(info.id) &&
          new RegExp(`^PPid:\\s+${process.pid}$`, "m").test(readProc(entry, "status"))
        )
        assert.isDefined(outer)
        process.kill(Number(outer), "SIGKILL")
        const done = Effect.zipWith(
          controlPlane.list,
          Effect.sync(() => helpers.every((pid) => !alive(pid))),
          (list, none) => list.length === 0 && none
        )
        assert.isTrue(
          yield* done.pipe(
            Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (ok) => ok, times: 100 }),
            Effect.zipRight(done)
          )
        )
      }).pipe(Effect.provide(local("bubblewrap"))),
    30_000
  )

  it.scopedLive("outbound: false keeps the sandbox offline: no default route, no helper", () =>
    Effect.gen(function*() {
      const controlPlane = yield* ControlPlane
      const { endpoint, info } = yield* controlPlane.create({})
      assert.deepStrictEqual({ ...info.isolation }, { mode: "bubblewrap", network: "private" })
      const client = yield* controlPlane.connect(endpoint)
      const routes = (yield* client.run({ cmd: "cat /proc/net/route" })).stdout
      assert.isFalse(defaultRoute(routes), routes)
      assert.deepStrictEqual(helpersOf(info.id), [])
    }).pipe(Effect.provide(local("bubblewrap", { outbound: false }))), 30_000)
})

describe("isolation none", () => {
  it.scopedLive("keeps the host's network and says so", () =>
    Effect.gen(function*() {
      const controlPlane = yield* ControlPlane
      const hostPort = yield* hostServer("host")
      const { endpoint, info } = yield* controlPlane.create({})
      assert.deepStrictEqual({ ...info.isolation }, { mode: "none", network: "shared" })
      const client = yield* controlPlane.connect(endpoint)
      const reply = yield* client.run({
        cmd: `node -e 'fetch("http://127.0.0.1:${hostPort}").then(r => r.text()).then(console.log)'`
      })
      assert.strictEqual(reply.stdout, "host\n")
    }).pipe(Effect.provide(local("none"))), 30_000)
})
