/**
 * Control-plane faults through the Koyeb emulator over real HTTP: 429 storms, 5xx bursts, an
 * unreachable or silent host, deployments that never become healthy or fail after HEALTHY, and a
 * sandbox deleted behind the SDK's back. Each fault must end in the promised typed error, in
 * bounded time (the `Effect.timeout`s are hang guards only), and leave nothing behind.
 */
import { ControlPlane, SandboxInfo } from "@effect-koyeb/core/ControlPlane"
import * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import type { ControlPlaneFailure } from "@effect-koyeb/core/SandboxError"
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

const TOKEN = Redacted.make("faults-token-CANARY")
const fast = { pollInterval: "50 millis", timeout: "60 seconds" } as const
// Hang guard: every fault here must end well within it.
const GUARD = "40 seconds"

/** An emulator (own base directory) with undici, and a Koyeb control plane over it. */
const environment = (baseDir: string, options: Partial<KoyebEmulator.KoyebEmulatorOptions>) => {
  const emulator = KoyebEmulator.layer({ token: TOKEN, isolation: "none", baseDir, ...options })
  const controlPlane = Layer.unwrapEffect(
    Effect.map(
      KoyebEmulator.KoyebEmulator,
      (e) => KoyebControlPlane.layer({ token: TOKEN, host: e.url, retry: { baseDelay: "10 millis" } })
    )
  )
  return controlPlane.pipe(Layer.provideMerge(emulator), Layer.provideMerge(NodeHttpClient.layerUndici))
}

type Env = ControlPlane | KoyebEmulator.KoyebEmulator | HttpClient.HttpClient

/** Runs `effect` against a fresh emulator; once it has stopped, no sandbox directory may remain. */
const run = <A, E>(effect: Effect.Effect<A, E, Env>, options: Partial<KoyebEmulator.KoyebEmulatorOptions> = {}) =>
  Effect.suspend(() => {
    const baseDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cp-faults-"))
    return effect.pipe(
      Effect.timeout(GUARD),
      Effect.provide(environment(baseDir, options)),
      Effect.scoped,
      Effect.tap(() => assert.deepStrictEqual(Fs.readdirSync(baseDir), [])),
      Effect.ensuring(Effect.sync(() => Fs.rmSync(baseDir, { recursive: true, force: true })))
    )
  })

/** A second control plane on the same emulator, with its own host / retry / timeout settings. */
const koyeb = (options: Partial<KoyebControlPlane.KoyebControlPlaneOptions>) =>
  Effect.flatMap(
    KoyebEmulator.KoyebEmulator,
    (emulator) =>
      KoyebControlPlane.make({ token: TOKEN, host: emulator.url, retry: { baseDelay: "10 millis" }, ...options })
  )

const emulator = KoyebEmulator.KoyebEmulator

/** Requests the emulator received for `method` and a path starting with `prefix`. */
const count = (method: string, prefix: string) =>
  Effect.map(
    Effect.flatMap(emulator, (e) => e.requests),
    (rs) => rs.filter((r) => r.method === method && r.path.startsWith(prefix)).length
  )

/** Waits (bounded) until the emulator holds no app, service or executor, then asserts it. */
const expectEmpty = Effect.gen(function*() {
  const e = yield* emulator
  const state = yield* e.state.pipe(
    Effect.repeat({
      schedule: Schedule.spaced("20 millis"),
      until: (s) => s.apps.length + s.services.length + s.executors.length === 0,
      times: 500
    }),
    Effect.zipRight(e.state)
  )
  assert.deepStrictEqual(
    { apps: state.apps.length, services: state.services.length, executors: state.executors.length },
    { apps: 0, services: 0, executors: 0 }
  )
})

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return !/^\d+ \(.*\) Z /s.test(Fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return false
  }
}

/** A loopback port nobody listens on (bound, then closed). */
const closedPort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

const someInfo = new SandboxInfo({
  id: "svc",
  appId: "app",
  name: "x",
  region: "na",
  instanceType: "micro",
  image: "koyeb/sandbox",
  createdAt: new Date(0),
  ownsApp: true
})

describe("ControlPlane faults (emulator)", () => {
  it.live("a 429 storm with Retry-After on GETs is slept through, then succeeds", () =>
    run(Effect.gen(function*() {
      const e = yield* emulator
      const cp = yield* ControlPlane
      const provisioned = yield* cp.create({ name: "storm" })
      yield* e.clearRequests
      yield* e.failNext({ status: 429, times: 2, method: "GET", path: "/v1/services/", retryAfter: "1 second" })
      const started = yield* Clock.currentTimeMillis
      const found = yield* cp.get(provisioned.info.id)
      const elapsed = (yield* Clock.currentTimeMillis) - started
      assert.strictEqual(found.info.id, provisioned.info.id)
      assert.strictEqual(yield* count("GET", "/v1/services/"), 3)
      // Retry-After (1 s, twice) is honoured instead of the 10 ms backoff.
      assert.isAtLeast(elapsed, 1_900)
      yield* cp.delete(provisioned.info)
      yield* expectEmpty
    })))

  it.live("a 429 storm beyond the retry budget ends in RateLimited with retryAfterMillis", () =>
    run(Effect.gen(function*() {
      const e = yield* emulator
      const cp = yield* koyeb({ retry: { times: 1, baseDelay: "10 millis" } })
      yield* e.failNext({ status: 429, times: 10, method: "GET", retryAfter: "1 second" })
      const error = yield* Effect.flip(cp.get("some-service"))
      assert.strictEqual(error._tag, "RateLimited")
      assert.strictEqual(error._tag === "RateLimited" && error.retryAfterMillis, 1_000)
      assert.strictEqual(error._tag === "RateLimited" && error.method, "GET")
      assert.strictEqual(yield* count("GET", "/v1/services/"), 2)

      // A Retry-After longer than the SDK sleeps through by itself comes back at once.
      yield* e.clearFaults
      yield* e.clearRequests
      yield* e.failNext({ status: 429, times: 10, method: "GET", retryAfter: "10 minutes" })
      const long = yield* Effect.flip(cp.list)
      assert.strictEqual(long._tag === "RateLimited" && long.retryAfterMillis, 600_000)
      assert.strictEqual(yield* count("GET", "/v1/services"), 1)

      // Without Retry-After: backoff, then RateLimited without retryAfterMillis.
      yield* e.clearFaults
      yield* e.failNext({ status: 429, times: 10, method: "GET" })
      const bare = yield* Effect.flip(cp.list)
      assert.strictEqual(bare._tag, "RateLimited")
      assert.isUndefined(bare._tag === "RateLimited" ? bare.retryAfterMillis : "not RateLimited")
      yield* e.clearFaults
    })))

  it.live("500/502/503 bursts on GET and DELETE are retried; beyond the budget they end in ApiError", () =>
    run(Effect.gen(function*() {
      const e = yield* emulator
      const cp = yield* ControlPlane
      const provisioned = yield* cp.create({ name: "bursts" })
      yield* e.clearRequests
      for (const status of [500, 502, 503]) yield* e.failNext({ status, method: "GET", path: "/v1/deployments/" })
      const found = yield* cp.get(provisioned.info.id)
      assert.strictEqual(found.info.id, provisioned.info.id)
      assert.strictEqual(yield* count("GET", "/v1/deployments/"), 4)

      const tight = yield* koyeb({ retry: { times: 2, baseDelay: "10 millis" } })
      yield* e.clearRequests
      yield* e.failNext({ status: 503, times: 10, method: "GET", path: "/v1/services/" })
      const error = yield* Effect.flip(tight.domain(provisioned.info.id))
      assert.strictEqual(error._tag === "ApiError" && error.status, 503)
      assert.strictEqual(error._tag === "ApiError" && error.method, "GET")
      assert.strictEqual(yield* count("GET", "/v1/services/"), 3)
      yield* e.clearFaults

      // A DELETE that fails beyond the budget leaves the sandbox; the next delete removes it.
      yield* e.clearRequests
      yield* e.failNext({ status: 502, times: 3, method: "DELETE" })
      const failedDelete = yield* Effect.flip(tight.delete(provisioned.info))
      assert.strictEqual(failedDelete._tag === "ApiError" && failedDelete.status, 502)
      assert.strictEqual((yield* e.state).services.length, 1)
      yield* e.failNext({ status: 500, times: 2, method: "DELETE" })
      yield* cp.delete(provisioned.info)
      assert.strictEqual(yield* count("DELETE", "/v1/apps/"), 3 + 3)
      yield* expectEmpty
    })))

  it.live("5xx on a POST is not retried: ApiError after one request, and no app is left", () =>
    run(Effect.gen(function*() {
      const e = yield* emulator
      for (const status of [500, 502, 503]) {
        yield* e.clearRequests
        yield* e.failNext({ status, method: "POST", path: "/v1/apps" })
        const error = yield* Effect.flip(Effect.scoped(Sandbox.make({ name: "nopost", ...fast })))
        assert.strictEqual(error._tag === "ApiError" && error.status, status)
        assert.strictEqual(error._tag === "ApiError" && error.method, "POST")
        assert.strictEqual(yield* count("POST", "/v1/apps"), 1)
        assert.strictEqual(yield* count("POST", "/v1/services"), 0)
      }
      yield* e.clearRequests
      yield* e.failNext({ status: 502, method: "POST", path: "/v1/services" })
      const error = yield* Effect.flip(Effect.scoped(Sandbox.make({ name: "nosvc", ...fast })))
      assert.strictEqual(error._tag === "ApiError" && error.status, 502)
      assert.strictEqual(yield* count("POST", "/v1/services"), 1)
      // The app created for it was rolled back before the error returned.
      assert.strictEqual(yield* count("DELETE", "/v1/apps/"), 1)
      assert.strictEqual((yield* e.state).apps.length, 0)
    })))

  it.live("an unreachable host ends in ControlPlaneError Transport within the retry budget", () =>
    run(Effect.gen(function*() {
      const port = yield* closedPort
      const cp = yield* koyeb({ host: `http://127.0.0.1:${port}`, retry: { times: 2, baseDelay: "10 millis" } })
      const attempts: ReadonlyArray<Effect.Effect<unknown, ControlPlaneFailure>> = [
        cp.get("abc"),
        cp.list,
        cp.delete(someInfo)
      ]
      for (const attempt of attempts) {
        const error = yield* Effect.flip(attempt)
        assert.strictEqual(error._tag, "ControlPlaneError")
        assert.strictEqual(error._tag === "ControlPlaneError" && error.reason, "Transport")
        assert.isTrue(error._tag === "ControlPlaneError" && error.url?.startsWith(`http://127.0.0.1:${port}/v1/`))
      }
      // Readiness treats transport failures as "not yet": it ends at its own bound.
      const waited = yield* Effect.flip(cp.waitReady("abc", { timeout: "500 millis", pollInterval: "50 millis" }))
      assert.strictEqual(waited._tag === "Timeout" && waited.timeoutMillis, 500)
      const created = yield* Effect.flip(cp.create({ name: "nohost" }))
      assert.strictEqual(created._tag === "ControlPlaneError" && created.reason, "Transport")
      assert.strictEqual(created._tag === "ControlPlaneError" && created.method, "POST")
      const made = yield* Effect.flip(
        Effect.scoped(Sandbox.make({ name: "nohost" })).pipe(
          Effect.provideService(ControlPlane, cp)
        )
      )
      assert.strictEqual(made._tag === "ControlPlaneError" && made.reason, "Transport")
    })))

  it.live("a host that never answers ends in ControlPlaneError Timeout after the per-request bound", () =>
    run(Effect.gen(function*() {
      const e = yield* emulator
      const cp = yield* koyeb({ requestTimeout: "200 millis", retry: { times: 1, baseDelay: "10 millis" } })
      yield* e.delay({ method: "GET", path: "/v1/services", duration: "3 seconds", times: 2 })
      const error = yield* Effect.flip(cp.list)
      assert.strictEqual(error._tag, "ControlPlaneError")
      assert.strictEqual(error._tag === "ControlPlaneError" && error.reason, "Timeout")
      assert.strictEqual(yield* count("GET", "/v1/services"), 2)
      yield* e.delay({ method: "POST", path: "/v1/apps", duration: "3 seconds", times: 1 })
      const post = yield* Effect.flip(cp.create({ name: "silent" }))
      assert.strictEqual(post._tag === "ControlPlaneError" && post.reason, "Timeout")
      assert.strictEqual(yield* count("POST", "/v1/apps"), 1)
      yield* e.clearFaults
    })))

  it.live("an app POST whose reply is lost (timeout) still creates the app: create finds it by name and deletes it", () =>
    run(Effect.gen(function*() {
      const e = yield* emulator
      const cp = yield* koyeb({ requestTimeout: "200 millis" })
      // The delay runs before the handler: the app is created after the client has given up.
      yield* e.delay({ method: "POST", path: "/v1/apps", duration: "700 millis", times: 1 })
      const error = yield* Effect.flip(cp.create({ name: "lost-reply" }))
      assert.strictEqual(error._tag, "ControlPlaneError")
      assert.strictEqual(error._tag === "ControlPlaneError" && error.reason, "Timeout")
      const lookups = (yield* e.requests).filter((r) => r.method === "GET" && r.path === "/v1/apps")
      assert.isAbove(lookups.length, 0)
      assert.match(String(lookups[0]!.query.name), /^sandbox-app-lost-reply-\d+-[0-9a-f]{8}$/)
      assert.strictEqual(yield* count("DELETE", "/v1/apps/"), 1)
      yield* expectEmpty
    })))

  it.live("a deployment that never becomes healthy: Timeout from Sandbox.make, and the sandbox is deleted", () =>
    run(
      Effect.gen(function*() {
        const e = yield* emulator
        const error = yield* Effect.flip(
          Effect.scoped(Sandbox.make({ name: "stuck", pollInterval: "50 millis", timeout: "700 millis" }))
        )
        assert.strictEqual(error._tag, "Timeout")
        assert.strictEqual(error._tag === "Timeout" && error.timeoutMillis, 700)
        // Deleted before the error returned: no polling.
        const state = yield* e.state
        assert.deepStrictEqual({ apps: state.apps.length, services: state.services.length }, { apps: 0, services: 0 })
        assert.isAtLeast(yield* count("DELETE", "/v1/apps/"), 1)
        yield* expectEmpty
      }),
      { stepDelay: "1 hour" }
    ))

  it.live("ERROR after HEALTHY: isHealthy turns false, waitReady fails with DeploymentFailed, executor calls fail typed", () =>
    run(Effect.gen(function*() {
      const e = yield* emulator
      yield* e.failNextDeployment({ afterHealthy: "2 seconds", message: "out of memory" })
      yield* Effect.gen(function*() {
        const sandbox = yield* Sandbox.make({ name: "dies", ...fast })
        const pids = (yield* e.state).executors.map((x) => x.pid)
        assert.strictEqual(pids.length, 1)
        assert.isTrue(yield* sandbox.isHealthy)
        yield* sandbox.isHealthy.pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (ok) => !ok, times: 400 })
        )
        assert.isFalse(yield* sandbox.isHealthy)
        const failed = yield* Effect.flip(sandbox.waitReady(fast))
        assert.strictEqual(failed._tag, "DeploymentFailed")
        assert.include(["ERRORING", "ERROR"], failed._tag === "DeploymentFailed" ? failed.status : "")
        assert.include(failed._tag === "DeploymentFailed" ? failed.detail ?? "" : "", "out of memory")
        const exec = yield* Effect.flip(sandbox.executor.run("true"))
        assert.strictEqual(exec._tag, "ExecutorError")
        assert.isFalse(pids.some(alive))
      }).pipe(Effect.scoped)
      yield* expectEmpty
    })))

  it.live("a sandbox deleted behind the SDK's back: SandboxNotFound from the control plane, ExecutorError from the executor", () =>
    run(Effect.gen(function*() {
      const e = yield* emulator
      yield* Effect.gen(function*() {
        const sandbox = yield* Sandbox.make({ name: "vanishes", ...fast })
        const pids = (yield* e.state).executors.map((x) => x.pid)
        const reply = yield* Effect.promise(() =>
          fetch(`${e.url}/v1/apps/${sandbox.info.appId}`, {
            method: "DELETE",
            headers: { authorization: `Bearer ${Redacted.value(TOKEN)}` }
          })
        )
        assert.strictEqual(reply.status, 200)
        const id = sandbox.info.id
        const notFound = (error: { readonly _tag: string }) => {
          assert.strictEqual(error._tag, "SandboxNotFound")
          assert.strictEqual((error as { id?: string }).id, id)
        }
        notFound(yield* Effect.flip(Sandbox.fromId(id)))
        notFound(yield* Effect.flip(sandbox.domain))
        notFound(yield* Effect.flip(sandbox.tcpProxy))
        notFound(yield* Effect.flip(sandbox.waitReady(fast)))
        notFound(yield* Effect.flip(sandbox.updateLifecycle({ deleteAfterDelay: "1 hour" })))
        assert.isFalse(yield* sandbox.isHealthy)
        for (
          const call of [
            sandbox.executor.run("true"),
            sandbox.filesystem.readFileString("/etc/hostname"),
            sandbox.filesystem.writeFile("/tmp/x", "x"),
            sandbox.processes.list,
            sandbox.exposePort(8080),
            sandbox.unexposePort
          ] as const
        ) {
          const error = yield* Effect.flip(call as Effect.Effect<unknown, { readonly _tag: string }>)
          assert.strictEqual(error._tag, "ExecutorError")
        }
        // Deleting what is already gone succeeds.
        yield* sandbox.delete
        assert.isFalse(pids.some(alive))
      }).pipe(Effect.scoped)
      yield* expectEmpty
    })))
})
