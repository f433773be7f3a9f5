import { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"

const TOKEN = Redacted.make("e2e-token-CANARY")

const Emulator = KoyebEmulator.layer({ token: TOKEN, isolation: "none" })

const ControlPlaneLive = Layer.unwrapEffect(
  Effect.map(
    KoyebEmulator.KoyebEmulator,
    (emulator) => KoyebControlPlane.layer({ token: TOKEN, host: emulator.url, retry: { baseDelay: "10 millis" } })
  )
)

const Env = ControlPlaneLive.pipe(
  Layer.provideMerge(Emulator),
  Layer.provideMerge(NodeHttpClient.layerUndici)
)

const fast = { pollInterval: "50 millis", timeout: "60 seconds" } as const

/** The emulator's state once `until` holds, or its state after 10 seconds. */
const stateWhen = (until: (state: KoyebEmulator.EmulatorState) => boolean) =>
  Effect.flatMap(KoyebEmulator.KoyebEmulator, (emulator) =>
    emulator.state.pipe(
      Effect.filterOrFail(until),
      Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("10 seconds"))),
      Effect.orElse(() => emulator.state)
    ))

/** Waits (bounded) until the emulator holds no app, no service and no executor. */
const expectEmpty = Effect.gen(function*() {
  const state = yield* stateWhen((s) => s.apps.length === 0 && s.services.length === 0 && s.executors.length === 0)
  assert.deepStrictEqual(
    { apps: state.apps.length, services: state.services.length, executors: state.executors.length },
    { apps: 0, services: 0, executors: 0 }
  )
})

/** A node HTTP server in the sandbox on a free port; resolves to the port. */
const httpServerCommand =
  `node -e "require('http').createServer((q,s)=>s.end('hello from '+q.url)).listen(0,'127.0.0.1',function(){console.log('PORT='+this.address().port)})"`

layer(Env, { excludeTestServices: true, timeout: "60 seconds" })("KoyebControlPlane end to end (emulator)", (it) => {
  it.scoped("create, exec, files, processes, exposed port, then delete on scope close", () =>
    Effect.gen(function*() {
      const emulator = yield* KoyebEmulator.KoyebEmulator
      yield* Effect.gen(function*() {
        const sandbox = yield* Sandbox.make({ name: "e2e", env: { GREETING: "hi" }, ...fast })
        assert.isTrue(sandbox.info.ownsApp)
        assert.isTrue(yield* sandbox.isHealthy)

        const result = yield* sandbox.executor.run("echo $GREETING; echo err >&2")
        assert.strictEqual(result.stdout, "hi\n")
        assert.strictEqual(result.stderr, "err\n")
        const bytes = new Uint8Array([0, 1, 2, 255, 254, 10, 13])
        yield* sandbox.filesystem.writeFile("/tmp/e2e.bin", bytes)
        assert.deepStrictEqual(yield* sandbox.filesystem.readFile("/tmp/e2e.bin"), bytes)

        const server = yield* sandbox.processes.launchScoped(httpServerCommand)
        const line = yield* server.waitForLog(/PORT=\d+/)
        const port = Number(line.data.slice("PORT=".length))
        for (const bad of [0, 65536, 1.5, Number.NaN]) {
          const error = yield* Effect.flip(sandbox.exposePort(bad))
          assert.strictEqual(error._tag, "InvalidArgument")
        }
        const exposed = yield* sandbox.exposePort(port)
        assert.strictEqual(exposed.port, port)
        assert.isTrue(exposed.url.startsWith(`${emulator.url}/r/`), exposed.url)
        const reply = yield* HttpClient.get(`${exposed.url}greet`).pipe(Effect.flatMap((r) => r.text))
        assert.strictEqual(reply, "hello from /greet")
        assert.deepStrictEqual(yield* sandbox.domain, Option.some(exposed.url.replace(/^http:\/\//, "")))
        yield* sandbox.unexposePort

        const state = yield* emulator.state
        assert.strictEqual(state.services.length, 1)
        assert.strictEqual(state.services[0]!.id, sandbox.info.id)
      }).pipe(Effect.scoped)
      yield* expectEmpty
    }))

  it.scoped("Sandbox.layer provides the services and deletes the sandbox with its scope", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const sandbox = yield* Sandbox.Sandbox
        const fs = yield* Filesystem.Filesystem
        const exec = yield* Executor.Executor
        yield* fs.writeFile("/tmp/layer.txt", "from the layer")
        const out = yield* exec.run("cat /tmp/layer.txt")
        assert.strictEqual(out.stdout, "from the layer\n")
        return sandbox.info.id
      })
      const id = yield* program.pipe(Effect.provide(Sandbox.layer({ name: "layered", ...fast })))
      assert.isString(id)
      yield* expectEmpty
    }))

  it.scoped("the scope closed by a failure leaves nothing behind", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.gen(function*() {
        const sandbox = yield* Sandbox.make({ name: "failing", ...fast })
        yield* sandbox.executor.run("true")
        return yield* Effect.fail("boom" as const)
      }).pipe(Effect.scoped, Effect.exit)
      assert.deepStrictEqual(exit, Exit.fail("boom" as const))
      yield* expectEmpty
    }))

  it.scoped("interruption during create or readiness deletes the sandbox before returning", () =>
    Effect.gen(function*() {
      const emulator = yield* KoyebEmulator.KoyebEmulator
      // create reads the deployment (endpoint lookup); readiness first reads the service: stall one of them.
      for (const path of ["/v1/deployments/", "/v1/services/"]) {
        yield* emulator.delay({ method: "GET", path, duration: "30 seconds" })
        const fiber = yield* Effect.fork(Effect.scoped(Sandbox.make({ name: "interrupted", ...fast })))
        yield* emulator.clearRequests
        const stalled = (yield* stateWhen((s) => s.services.length > 0)).services.length
        assert.strictEqual(stalled, 1)
        yield* Effect.sleep("100 millis")
        yield* Fiber.interrupt(fiber).pipe(Effect.ensuring(emulator.clearFaults))
        // Deleted before the interruption completed: no polling needed.
        const state = yield* emulator.state
        assert.deepStrictEqual(
          { apps: state.apps.length, services: state.services.length },
          { apps: 0, services: 0 },
          path
        )
        const requests = yield* emulator.requests
        assert.isTrue(requests.some((r) => r.method === "GET" && r.path.startsWith(path)), path)
        yield* expectEmpty
      }
    }))

  it.scoped("a failed deployment fails fast with DeploymentFailed and is deleted", () =>
    Effect.gen(function*() {
      const emulator = yield* KoyebEmulator.KoyebEmulator
      yield* emulator.failNextDeployment({ message: "image pull failed" })
      const error = yield* Effect.flip(Effect.scoped(Sandbox.make({ name: "broken", ...fast })))
      assert.strictEqual(error._tag, "DeploymentFailed")
      // The first terminal status seen ends the wait (the emulator passes through ERRORING).
      assert.include(["ERRORING", "ERROR"], error._tag === "DeploymentFailed" ? error.status : "")
      const state = yield* emulator.state
      assert.deepStrictEqual({ apps: state.apps.length, services: state.services.length }, { apps: 0, services: 0 })
    }))

  it.scoped("a failed service creation removes the app; retried GETs ride over 503s", () =>
    Effect.gen(function*() {
      const emulator = yield* KoyebEmulator.KoyebEmulator
      yield* emulator.failNext({ status: 500, method: "POST", path: "/v1/services" })
      const error = yield* Effect.flip(Effect.scoped(Sandbox.make({ name: "nosvc", ...fast })))
      assert.strictEqual(error._tag === "ApiError" && error.status, 500)
      assert.strictEqual((yield* emulator.state).apps.length, 0)

      yield* Effect.gen(function*() {
        const sandbox = yield* Sandbox.make({ name: "flaky", ...fast })
        yield* emulator.failNext({ status: 503, method: "GET", path: "/v1/services", times: 2 })
        const cp = yield* ControlPlane
        const found = yield* cp.get(sandbox.info.id)
        assert.strictEqual(found.info.id, sandbox.info.id)
      }).pipe(Effect.scoped)
      yield* expectEmpty
    }))

  it.scoped("fromId attaches without deleting; a supplied app is kept", () =>
    Effect.gen(function*() {
      const emulator = yield* KoyebEmulator.KoyebEmulator
      const reply = yield* HttpClientRequest.post(`${emulator.url}/v1/apps`).pipe(
        HttpClientRequest.bearerToken(TOKEN),
        HttpClientRequest.bodyUnsafeJson({ name: "my-own-app" }),
        HttpClient.execute,
        Effect.flatMap((r) => r.json)
      )
      const appId = (reply as { app: { id: string } }).app.id
      yield* Effect.gen(function*() {
        const sandbox = yield* Sandbox.make({ name: "inmyapp", appId, ...fast })
        assert.isFalse(sandbox.info.ownsApp)
        yield* sandbox.filesystem.writeFile("/tmp/marker", "kept")
        yield* Effect.gen(function*() {
          const attached = yield* Sandbox.fromId(sandbox.info.id)
          assert.strictEqual(yield* attached.filesystem.readFileString("/tmp/marker"), "kept")
          assert.isFalse(attached.info.ownsApp)
        }).pipe(Effect.scoped)
        assert.strictEqual((yield* emulator.state).services.length, 1, "fromId's scope does not delete")
      }).pipe(Effect.scoped)
      const state = yield* stateWhen((s) => s.services.length === 0)
      assert.deepStrictEqual(state.apps.map((a) => a.id), [appId])
      yield* HttpClientRequest.del(`${emulator.url}/v1/apps/${appId}`).pipe(
        HttpClientRequest.bearerToken(TOKEN),
        HttpClient.execute
      )
      yield* expectEmpty
    }))

  it.scoped("tcpProxy, list and updateLifecycle", () =>
    Effect.gen(function*() {
      const emulator = yield* KoyebEmulator.KoyebEmulator
      const cp = yield* ControlPlane
      yield* Effect.gen(function*() {
        const sandbox = yield* Sandbox.make({ name: "proxied", enableTcpProxy: true, ...fast })
        const proxy = yield* sandbox.tcpProxy
        assert.isTrue(Option.isSome(proxy))
        assert.strictEqual(Option.getOrThrow(proxy).host, "127.0.0.1")
        const listed = yield* cp.list
        assert.deepStrictEqual(listed.map((i) => i.id), [sandbox.info.id])
        assert.strictEqual(listed[0]!.name, "proxied")
        yield* emulator.clearRequests
        yield* sandbox.updateLifecycle({ deleteAfterDelay: "1 hour" })
        const put = (yield* emulator.requests).find((r) => r.method === "PUT")
        // Sandbox.make's safety net: deleted 60 s after sleeping unless told otherwise.
        assert.deepStrictEqual((put!.body as { life_cycle: unknown }).life_cycle, {
          delete_after_create: 3600,
          delete_after_sleep: 60
        })
      }).pipe(Effect.scoped)
      yield* expectEmpty
    }))
})
