import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as EmulatorServer from "../src/internal/emulator/server.js"
import * as FakeExecutors from "./utils/fakeExecutor.js"
import { settled } from "./utils/settled.js"

const TOKEN = "test-token"
const SECRET = "sandbox-secret-0123456789"

const start = (options?: Partial<KoyebEmulator.KoyebEmulatorOptions>) =>
  KoyebEmulator.make({ token: Redacted.make(TOKEN), stepDelay: "5 millis", isolation: "none", ...options })

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: any
  readonly text: string
}

const request = (
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown } = {}
): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const response = await fetch(url, {
      method: init.method ?? "GET",
      headers: init.headers ?? {},
      ...(init.body === undefined
        ? {}
        : { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) })
    })
    const text = await response.text()
    let body: unknown = undefined
    try {
      body = JSON.parse(text)
    } catch {
      body = undefined
    }
    return { status: response.status, headers: response.headers, body, text }
  })

const api = (emu: KoyebEmulator.KoyebEmulatorShape, method: string, path: string, body?: unknown, token = TOKEN) =>
  request(`${emu.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body
  })

const definition = (overrides: Record<string, unknown> = {}) => ({
  name: "demo",
  type: "SANDBOX",
  routes: [{ port: 3030, path: "/koyeb-sandbox/" }, { port: 3031, path: "/" }],
  ports: [{ port: 3030, protocol: "http" }, { port: 3031, protocol: "http" }],
  env: [{ key: "GREETING", value: "hello from env" }, { key: "SANDBOX_SECRET", value: SECRET }],
  regions: ["na"],
  scalings: [{ min: 0, max: 1, targets: [{ sleep_idle_delay: { deep_sleep_value: 300 } }] }],
  instance_types: [{ type: "micro" }],
  docker: { image: "koyeb/sandbox", privileged: false },
  ...overrides
})

/** POST /v1/apps then POST /v1/services; returns the ids. */
const createSandbox = (
  emu: KoyebEmulator.KoyebEmulatorShape,
  options: { deleteWhenEmpty?: boolean; definition?: Record<string, unknown>; lifeCycle?: unknown } = {}
) =>
  Effect.gen(function*() {
    const app = yield* api(emu, "POST", "/v1/apps", {
      name: `sandbox-app-${Math.random().toString(36).slice(2, 10)}`,
      life_cycle: { delete_when_empty: options.deleteWhenEmpty ?? true }
    })
    assert.strictEqual(app.status, 200, app.text)
    const service = yield* api(emu, "POST", "/v1/services", {
      app_id: app.body.app.id,
      definition: options.definition ?? definition(),
      life_cycle: options.lifeCycle ?? { delete_after_create: 0, delete_after_sleep: 0 }
    })
    assert.strictEqual(service.status, 200, service.text)
    return { appId: app.body.app.id as string, serviceId: service.body.service.id as string }
  })

/** Polls the deployment until it reaches `target` (or a terminal status); returns every distinct status seen. */
const watchDeployment = (emu: KoyebEmulator.KoyebEmulatorShape, deploymentId: string, target = "HEALTHY") =>
  Effect.gen(function*() {
    const seen: Array<string> = []
    for (let i = 0; i < 6000; i++) {
      const reply = yield* api(emu, "GET", `/v1/deployments/${deploymentId}`)
      const status = reply.body.deployment.status as string
      if (seen[seen.length - 1] !== status) seen.push(status)
      if (status === target || (status === "ERROR" && target !== "ERROR")) {
        return { seen, deployment: reply.body.deployment }
      }
      yield* Effect.sleep("5 millis")
    }
    return assert.fail(`deployment ${deploymentId} never reached ${target}; saw ${seen.join(" → ")}`)
  })

const latestDeployment = (emu: KoyebEmulator.KoyebEmulatorShape, serviceId: string) =>
  Effect.map(api(emu, "GET", `/v1/services/${serviceId}`), (r) => r.body.service.latest_deployment_id as string)

const healthySandbox = (emu: KoyebEmulator.KoyebEmulatorShape, options?: Parameters<typeof createSandbox>[1]) =>
  Effect.gen(function*() {
    const ids = yield* createSandbox(emu, options)
    const { deployment } = yield* watchDeployment(emu, yield* latestDeployment(emu, ids.serviceId))
    return { ...ids, deployment, routingKey: deployment.metadata.sandbox.routing_key as string }
  })

const gateway = (
  emu: KoyebEmulator.KoyebEmulatorShape,
  routingKey: string,
  endpoint: string,
  body?: unknown,
  secret = SECRET
) =>
  request(`${emu.url}/koyeb-sandbox/${endpoint}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${secret}`, "x-routing-key": routingKey, "content-type": "application/json" },
    body
  })

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const freePort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
)

describe("KoyebEmulator", () => {
  it.scopedLive("rejects missing or wrong API tokens with Koyeb's 401 body", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      const none = yield* request(`${emu.url}/v1/apps/x`)
      assert.strictEqual(none.status, 401)
      assert.deepStrictEqual(none.body, {
        status: 401,
        code: "UNAUTHENTICATED",
        message: "Invalid or missing API token"
      })
      const wrong = yield* api(emu, "POST", "/v1/apps", { name: "a" }, "not-the-token")
      assert.strictEqual(wrong.status, 401)
      assert.strictEqual(wrong.body.code, "UNAUTHENTICATED")
      const lowercase = yield* request(`${emu.url}/v1/apps/x`, { headers: { authorization: `bearer ${TOKEN}` } })
      assert.strictEqual(lowercase.status, 401)
      const admin = yield* request(`${emu.url}/_emulator/state`)
      assert.strictEqual(admin.status, 401)
      assert.strictEqual((yield* emu.state).apps.length, 0)
    }))

  it.scopedLive("creates an app and a service whose deployment goes PENDING → PROVISIONING → STARTING → HEALTHY", () =>
    Effect.gen(function*() {
      const emu = yield* start({ stepDelay: "150 millis" })
      const app = yield* api(emu, "POST", "/v1/apps", {
        name: "sandbox-app-demo-1",
        life_cycle: { delete_when_empty: true }
      })
      assert.strictEqual(app.status, 200)
      assert.strictEqual(app.body.app.name, "sandbox-app-demo-1")
      assert.deepStrictEqual(app.body.app.life_cycle, { delete_when_empty: true })
      assert.strictEqual(app.body.app.domains[0].type, "AUTOASSIGNED")
      assert.strictEqual(app.body.app.domains[0].name, "sandbox-app-demo-1-local.koyeb.app")

      const service = yield* api(emu, "POST", "/v1/services", {
        app_id: app.body.app.id,
        definition: definition(),
        life_cycle: { delete_after_create: 0, delete_after_sleep: "0" }
      })
      assert.strictEqual(service.status, 200, service.text)
      const s = service.body.service
      assert.strictEqual(s.type, "SANDBOX")
      assert.strictEqual(s.app_id, app.body.app.id)
      assert.strictEqual(s.name, "demo")
      assert.strictEqual(s.active_deployment_id, "")
      assert.isString(s.latest_deployment_id)
      assert.deepStrictEqual(s.life_cycle, { delete_after_create: 0, delete_after_sleep: 0 })

      const { deployment, seen } = yield* watchDeployment(emu, s.latest_deployment_id)
      assert.deepStrictEqual(seen, ["PENDING", "PROVISIONING", "STARTING", "HEALTHY"])
      assert.strictEqual(deployment.service_id, s.id)
      assert.strictEqual(deployment.app_id, app.body.app.id)
      assert.strictEqual(deployment.metadata.sandbox.public_url, emu.url)
      assert.match(deployment.metadata.sandbox.routing_key, /^[0-9a-f]{32}$/)
      assert.deepStrictEqual(deployment.metadata.proxy_ports, [])
      assert.deepStrictEqual(deployment.definition, definition())

      const after = yield* api(emu, "GET", `/v1/services/${s.id}`)
      assert.strictEqual(after.body.service.status, "HEALTHY")
      assert.strictEqual(after.body.service.active_deployment_id, s.latest_deployment_id)
      const state = yield* emu.state
      assert.strictEqual(state.executors.length, 1)
      assert.isTrue(alive(state.executors[0]!.pid))

      const recorded = (yield* emu.requests).filter((r) => r.method === "POST" && r.path === "/v1/services")
      assert.strictEqual(recorded.length, 1)
      assert.strictEqual(recorded[0]!.body && (recorded[0]!.body as any).app_id, app.body.app.id)
      assert.deepStrictEqual((recorded[0]!.body as any).definition.env, definition().env)
      assert.strictEqual(recorded[0]!.headers["content-type"], "application/json")
      assert.isUndefined(recorded[0]!.headers.authorization)
    }))

  it.scopedLive("forwards /koyeb-sandbox/<endpoint> by X-Routing-Key to the executor, prefix stripped", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      const { routingKey } = yield* healthySandbox(emu)
      const health = yield* gateway(emu, routingKey, "health")
      assert.strictEqual(health.status, 200)
      assert.strictEqual(health.body.status, "ok")

      const run = yield* gateway(emu, routingKey, "run", { cmd: "echo \"$GREETING\"; pwd >&2; exit 3" })
      assert.strictEqual(run.status, 200, run.text)
      assert.strictEqual(run.body.stdout, "hello from env\n")
      assert.strictEqual(run.body.code, 3)

      const wrongSecret = yield* gateway(emu, routingKey, "run", { cmd: "true" }, "nope")
      assert.strictEqual(wrongSecret.status, 401)
      assert.strictEqual(wrongSecret.text, "Unauthorized\n")

      const unknown = yield* gateway(emu, "0".repeat(32), "health")
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.body.code, "NOT_FOUND")
      const missing = yield* request(`${emu.url}/koyeb-sandbox/health`)
      assert.strictEqual(missing.status, 404)

      const recorded = (yield* emu.requests).filter((r) => r.path === "/koyeb-sandbox/run")
      assert.strictEqual(recorded[0]!.headers["x-routing-key"], routingKey)
      assert.isUndefined(recorded[0]!.headers.authorization)
    }))

  it.scopedLive("streams SSE through the gateway without buffering", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      const { routingKey } = yield* healthySandbox(emu)
      const response = yield* Effect.promise(() =>
        fetch(`${emu.url}/koyeb-sandbox/run_streaming`, {
          method: "POST",
          headers: { authorization: `Bearer ${SECRET}`, "x-routing-key": routingKey },
          body: JSON.stringify({ cmd: "echo first; while [ ! -f \"$HOME/go\" ]; do sleep 0.02; done; echo second" })
        })
      )
      assert.strictEqual(response.status, 200)
      assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/)
      const reader = response.body!.getReader()
      const decoder = new TextDecoder()
      let received = ""
      // The command blocks until the file exists: "first" can only arrive here if it is not buffered.
      while (!received.includes("first")) {
        const chunk = yield* Effect.promise(() => reader.read())
        assert.isFalse(chunk.done, `stream ended early: ${received}`)
        received += decoder.decode(chunk.value, { stream: true })
      }
      assert.notInclude(received, "complete")
      const touch = yield* gateway(emu, routingKey, "run", { cmd: "touch \"$HOME/go\"" })
      assert.strictEqual(touch.body.code, 0)
      for (;;) {
        const chunk = yield* Effect.promise(() => reader.read())
        if (chunk.done) break
        received += decoder.decode(chunk.value, { stream: true })
      }
      assert.include(received, "second")
      assert.match(received, /event: complete/)
    }))

  it.scopedLive("a client leaving an SSE stream is seen by the executor through the gateway", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      const { routingKey } = yield* healthySandbox(emu)
      const controller = new AbortController()
      const response = yield* Effect.promise(() =>
        fetch(`${emu.url}/koyeb-sandbox/run_streaming`, {
          method: "POST",
          headers: { authorization: `Bearer ${SECRET}`, "x-routing-key": routingKey },
          body: JSON.stringify({ cmd: "echo $$; exec sleep 600" }),
          signal: controller.signal
        })
      )
      const reader = response.body!.getReader()
      let received = ""
      const decoder = new TextDecoder()
      let match: RegExpExecArray | null = null
      while ((match = /"data":"(\d+)"/.exec(received)) === null) {
        const chunk = yield* Effect.promise(() => reader.read())
        assert.isFalse(chunk.done, received)
        received += decoder.decode(chunk.value, { stream: true })
      }
      const pid = Number(match[1])
      const running = yield* gateway(emu, routingKey, "run", { cmd: `kill -0 ${pid} && echo alive` })
      assert.strictEqual(running.body.stdout, "alive\n")
      controller.abort()
      let stdout = "alive\n"
      for (let i = 0; i < 400 && stdout === "alive\n"; i++) {
        yield* Effect.sleep("25 millis")
        stdout =
          (yield* gateway(emu, routingKey, "run", { cmd: `kill -0 ${pid} 2>/dev/null && echo alive` })).body.stdout
      }
      assert.strictEqual(stdout, "")
    }))

  it.scopedLive("raw bodies, query strings and streamed replies pass the gateway; a body refused early is dropped", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      const { routingKey } = yield* healthySandbox(emu)
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "emulator-bin-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      const headers = { authorization: `Bearer ${SECRET}`, "x-routing-key": routingKey }
      const url = (endpoint: string, path: string) =>
        `${emu.url}/koyeb-sandbox/${endpoint}?path=${encodeURIComponent(path)}`
      const bytes = Crypto.randomBytes(5 * 1024 * 1024 + 1)
      const path = Path.join(dir, "a b+ü&#?%")
      const written = yield* Effect.promise(() =>
        fetch(url("write_file_bytes", path), { method: "POST", headers, body: bytes }).then((r) => r.text())
      )
      assert.strictEqual(written, `{"success":true}\n`)
      assert.isTrue(Fs.readFileSync(path).equals(bytes))
      const read = yield* Effect.promise(() =>
        fetch(url("read_file_bytes", path), { headers }).then(async (r) => Buffer.from(await r.arrayBuffer()))
      )
      assert.isTrue(read.equals(bytes))
      // the executor replies before the body is sent whole; the client's request still completes
      // and its connection carries the next request
      const agent = yield* Effect.acquireRelease(
        Effect.sync(() => new Http.Agent({ keepAlive: true, maxSockets: 1 })),
        (agent) => Effect.sync(() => agent.destroy())
      )
      const post = (path: string, write: (request: Http.ClientRequest) => void) =>
        Effect.promise(() =>
          new Promise<{ text: string; reused: boolean; request: Http.ClientRequest }>((resolve, reject) => {
            const request = Http.request(
              url("write_file_bytes", path),
              { method: "POST", agent, headers },
              (response) => {
                let text = ""
                response.setEncoding("utf8")
                response.on("data", (d) => text += d)
                response.on("end", () => resolve({ text, reused: request.reusedSocket, request }))
              }
            )
            request.on("error", reject)
            write(request)
          })
        )
      const orphan = Path.join(dir, "no/f")
      const freed = new Promise<void>((resolve) => agent.once("free", () => resolve()))
      const refused = yield* post(orphan, (r) => r.write(Buffer.alloc(8 * 1024 * 1024)))
      assert.strictEqual(refused.text, `{"error":"open ${orphan}: no such file or directory","success":false}\n`)
      refused.request.end(Buffer.alloc(8 * 1024 * 1024))
      // the client frees the connection once its request is sent whole
      yield* Effect.promise(() => freed)
      const next = yield* post(path, (r) => r.end("next"))
      assert.strictEqual(next.text, `{"success":true}\n`)
      assert.isTrue(next.reused)
    }))

  it.scopedLive("answers unknown ids and paths with Koyeb's 404 body", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      for (
        const [method, path] of [
          ["GET", "/v1/apps/nope"],
          ["DELETE", "/v1/apps/nope"],
          ["GET", "/v1/services/nope"],
          ["PUT", "/v1/services/nope"],
          ["DELETE", "/v1/services/nope"],
          ["GET", "/v1/deployments/nope"],
          ["GET", "/v1/nothing-here"]
        ] as const
      ) {
        const reply = yield* api(emu, method, path, method === "PUT" ? { definition: definition() } : undefined)
        assert.strictEqual(reply.status, 404, `${method} ${path}`)
        assert.strictEqual(reply.body.status, 404)
        assert.strictEqual(reply.body.code, "NOT_FOUND")
        assert.isString(reply.body.message)
      }
      const service = yield* api(emu, "POST", "/v1/services", { app_id: "no-such-app", definition: definition() })
      assert.strictEqual(service.status, 404)
      assert.strictEqual(service.body.message, "App not found")
    }))

  it.scopedLive("rejects a bad definition with 400 INVALID_ARGUMENT and the offending fields", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      const app = yield* api(emu, "POST", "/v1/apps", { name: "ok-app" })
      const reply = yield* api(emu, "POST", "/v1/services", {
        app_id: app.body.app.id,
        definition: definition({
          type: "WEB",
          docker: { image: "" },
          env: [{ key: "A", value: "1" }],
          ports: [{ port: 70000, protocol: "http" }, { port: 3030, protocol: "udp" }]
        }),
        life_cycle: { delete_after_create: -1 }
      })
      assert.strictEqual(reply.status, 400)
      assert.strictEqual(reply.body.status, 400)
      assert.strictEqual(reply.body.code, "INVALID_ARGUMENT")
      const fields = (reply.body.fields as Array<{ field: string; description: string }>).map((f) => f.field)
      assert.deepStrictEqual(fields.sort(), [
        "definition.docker.image",
        "definition.env",
        "definition.ports[0].port",
        "definition.ports[1].protocol",
        "definition.routes[1].port",
        "definition.type",
        "life_cycle.delete_after_create"
      ])
      for (const f of reply.body.fields) assert.isString(f.description)

      const badApp = yield* api(emu, "POST", "/v1/apps", { name: "Not Valid!" })
      assert.strictEqual(badApp.status, 400)
      assert.deepStrictEqual(badApp.body.fields.map((f: any) => f.field), ["name"])
      const notJson = yield* api(emu, "POST", "/v1/services", "{oops")
      assert.strictEqual(notJson.status, 400)
      assert.strictEqual(notJson.body.code, "INVALID_ARGUMENT")
      const state = yield* emu.state
      assert.strictEqual(state.services.length, 0)
    }))

  it.scopedLive("dry_run validates without creating anything", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      // The JS SDK validates with a hard-coded app id that does not exist.
      const body = { app_id: "74140198-4d29-4a1e-bdc9-5cc2b355ccd0", definition: definition() }
      const ok = yield* api(emu, "POST", "/v1/services?dry_run=true", body)
      assert.strictEqual(ok.status, 200, ok.text)
      assert.strictEqual(ok.body.service.name, "demo")
      const bad = yield* api(emu, "POST", "/v1/services?dry_run=true", { ...body, definition: definition({ env: [] }) })
      assert.strictEqual(bad.status, 400)
      assert.deepStrictEqual(bad.body.fields.map((f: any) => f.field), ["definition.env"])
      const state = yield* emu.state
      assert.deepStrictEqual([state.services.length, state.deployments.length, state.executors.length], [0, 0, 0])
      const recorded = yield* emu.requests
      assert.deepStrictEqual(recorded.map((r) => r.query), [{ dry_run: "true" }, { dry_run: "true" }])
    }))

  it.scopedLive("deleting the last service kills its executor and deletes a delete_when_empty app", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      const sandbox = yield* healthySandbox(emu)
      const [executor] = (yield* emu.state).executors
      assert.isTrue(alive(executor!.pid))
      const deleted = yield* api(emu, "DELETE", `/v1/services/${sandbox.serviceId}`)
      assert.strictEqual(deleted.status, 200)
      assert.deepStrictEqual(deleted.body, {})
      assert.isFalse(alive(executor!.pid))
      assert.strictEqual((yield* api(emu, "GET", `/v1/services/${sandbox.serviceId}`)).status, 404)
      assert.strictEqual((yield* api(emu, "GET", `/v1/apps/${sandbox.appId}`)).status, 404)
      assert.strictEqual((yield* gateway(emu, sandbox.routingKey, "health")).status, 404)

      // Without delete_when_empty the app stays; deleting the app takes its services along.
      const kept = yield* healthySandbox(emu, { deleteWhenEmpty: false })
      yield* api(emu, "DELETE", `/v1/services/${kept.serviceId}`)
      assert.strictEqual((yield* api(emu, "GET", `/v1/apps/${kept.appId}`)).status, 200)
      const service = yield* api(emu, "POST", "/v1/services", { app_id: kept.appId, definition: definition() })
      const pid = (yield* emu.state).executors.length // may still be starting: delete must handle that too
      assert.isAtMost(pid, 1)
      assert.strictEqual((yield* api(emu, "DELETE", `/v1/apps/${kept.appId}`)).status, 200)
      assert.strictEqual((yield* api(emu, "GET", `/v1/services/${service.body.service.id}`)).status, 404)
      const state = yield* emu.state
      assert.deepStrictEqual([state.apps.length, state.services.length, state.executors.length], [0, 0, 0])
    }))

  it.scopedLive("lists services with app_id, types, limit and offset", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      const a = yield* createSandbox(emu)
      const b = yield* createSandbox(emu)
      const all = yield* api(emu, "GET", "/v1/services?types=SANDBOX&limit=1&offset=0")
      assert.strictEqual(all.body.count, 2)
      assert.strictEqual(all.body.limit, 1)
      assert.strictEqual(all.body.services.length, 1)
      assert.isTrue(all.body.has_next)
      const second = yield* api(emu, "GET", "/v1/services?limit=1&offset=1")
      assert.notStrictEqual(second.body.services[0].id, all.body.services[0].id)
      const byApp = yield* api(emu, "GET", `/v1/services?app_id=${b.appId}`)
      assert.deepStrictEqual(byApp.body.services.map((s: any) => s.id), [b.serviceId])
      const web = yield* api(emu, "GET", "/v1/services?types=WEB")
      assert.strictEqual(web.body.count, 0)
      assert.notStrictEqual(a.serviceId, b.serviceId)
    }))

  it.scopedLive("PUT redeploys with the new definition, merges life_cycle and stops the old deployment", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      const sandbox = yield* healthySandbox(emu)
      const oldPid = (yield* emu.state).executors[0]!.pid
      const newDefinition = definition({
        env: [{ key: "GREETING", value: "v2" }, { key: "SANDBOX_SECRET", value: SECRET }]
      })
      const put = yield* api(emu, "PUT", `/v1/services/${sandbox.serviceId}`, {
        definition: newDefinition,
        life_cycle: { delete_after_sleep: 600 }
      })
      assert.strictEqual(put.status, 200, put.text)
      assert.deepStrictEqual(put.body.service.life_cycle, { delete_after_create: 0, delete_after_sleep: 600 })
      const latest = put.body.service.latest_deployment_id
      assert.notStrictEqual(latest, sandbox.deployment.id)
      const { deployment } = yield* watchDeployment(emu, latest)
      assert.strictEqual(deployment.parent_id, sandbox.deployment.id)
      const old = yield* api(emu, "GET", `/v1/deployments/${sandbox.deployment.id}`)
      assert.strictEqual(old.body.deployment.status, "STOPPED")
      assert.isFalse(alive(oldPid))
      const run = yield* gateway(emu, deployment.metadata.sandbox.routing_key, "run", { cmd: "echo $GREETING" })
      assert.strictEqual(run.body.stdout, "v2\n")

      const saveOnly = yield* api(emu, "PUT", `/v1/services/${sandbox.serviceId}`, {
        definition: newDefinition,
        life_cycle: { delete_after_create: 3600 },
        save_only: true
      })
      assert.strictEqual(saveOnly.body.service.latest_deployment_id, latest)
      assert.deepStrictEqual(saveOnly.body.service.life_cycle, { delete_after_create: 3600, delete_after_sleep: 600 })
      assert.strictEqual((yield* emu.state).executors.length, 1)
    }))

  it.scopedLive("fault switches: fail the next calls with a status and Retry-After, and delay calls", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      yield* emu.failNext({ status: 429, times: 2, method: "POST", path: "/v1/apps", retryAfter: "1500 millis" })
      for (let i = 0; i < 2; i++) {
        const limited = yield* api(emu, "POST", "/v1/apps", { name: "retry-me" })
        assert.strictEqual(limited.status, 429)
        assert.strictEqual(limited.headers.get("retry-after"), "2")
        assert.deepStrictEqual(limited.body, {
          status: 429,
          code: "RESOURCE_EXHAUSTED",
          message: "Emulated failure (429)"
        })
      }
      assert.strictEqual((yield* api(emu, "POST", "/v1/apps", { name: "retry-me" })).status, 200)
      assert.strictEqual((yield* emu.requests).filter((r) => r.path === "/v1/apps").length, 3)

      // Over HTTP: the admin endpoint, matching any path under /v1/services.
      const armed = yield* api(emu, "POST", "/_emulator/faults/fail", { status: 503, path: "/v1/services", times: 1 })
      assert.strictEqual(armed.status, 200)
      assert.strictEqual((yield* api(emu, "GET", "/v1/apps/unrelated")).status, 404)
      const unavailable = yield* api(emu, "GET", "/v1/services/x")
      assert.strictEqual(unavailable.status, 503)
      assert.strictEqual(unavailable.body.code, "UNAVAILABLE")
      assert.strictEqual((yield* api(emu, "GET", "/v1/services/x")).status, 404)

      // A delayed call finishes after one sent later.
      yield* emu.delay({ duration: "300 millis", path: "/v1/deployments", times: 1 })
      const order: Array<string> = []
      const slow = yield* api(emu, "GET", "/v1/deployments/slow").pipe(
        Effect.tap(() => Effect.sync(() => order.push("slow"))),
        Effect.fork
      )
      yield* Effect.sleep("50 millis")
      yield* api(emu, "GET", "/v1/services/fast").pipe(Effect.tap(() => Effect.sync(() => order.push("fast"))))
      yield* slow.await
      assert.deepStrictEqual(order, ["fast", "slow"])

      yield* emu.failNext({ status: 500, times: 5 })
      yield* emu.clearFaults
      assert.strictEqual((yield* api(emu, "GET", "/v1/services/x")).status, 404)
    }))

  it.scopedLive("drives deployments to ERROR: next deployment, after HEALTHY, and on demand", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      yield* emu.failNextDeployment({ message: "boom" })
      const failing = yield* createSandbox(emu)
      const failed = yield* watchDeployment(emu, yield* latestDeployment(emu, failing.serviceId), "ERROR")
      assert.deepStrictEqual(failed.deployment.messages, ["boom"])
      assert.strictEqual((yield* emu.state).executors.length, 0)
      assert.strictEqual(
        (yield* gateway(emu, failed.deployment.metadata.sandbox.routing_key, "health")).status,
        503
      )
      assert.strictEqual((yield* api(emu, "GET", `/v1/services/${failing.serviceId}`)).body.service.status, "UNHEALTHY")

      yield* api(emu, "POST", "/_emulator/faults/fail-next-deployment", { after_healthy_millis: 300 })
      const flaky = yield* createSandbox(emu)
      const flakyDeployment = yield* latestDeployment(emu, flaky.serviceId)
      const healthyFirst = yield* watchDeployment(emu, flakyDeployment)
      assert.strictEqual(healthyFirst.deployment.status, "HEALTHY")
      const pid = (yield* emu.state).executors.find((e) => e.serviceId === flaky.serviceId)!.pid
      yield* watchDeployment(emu, flakyDeployment, "ERROR")
      assert.isFalse(alive(pid))

      const steady = yield* healthySandbox(emu)
      const steadyPid = (yield* emu.state).executors.find((e) => e.serviceId === steady.serviceId)!.pid
      yield* emu.failDeployment(steady.serviceId, "gone")
      const after = yield* api(emu, "GET", `/v1/deployments/${steady.deployment.id}`)
      assert.strictEqual(after.body.deployment.status, "ERROR")
      assert.deepStrictEqual(after.body.deployment.messages, ["gone"])
      assert.isFalse(alive(steadyPid))
      const unknown = yield* emu.failDeployment("nope").pipe(Effect.flip)
      assert.strictEqual(unknown._tag, "SandboxNotFound")
    }))

  it.scopedLive("a deployment whose executor dies on its own goes to ERROR", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      const sandbox = yield* healthySandbox(emu)
      const pid = (yield* emu.state).executors[0]!.pid
      process.kill(pid, "SIGKILL")
      const { deployment } = yield* watchDeployment(emu, sandbox.deployment.id, "ERROR")
      assert.deepStrictEqual(deployment.messages, ["Instance exited unexpectedly"])
      assert.strictEqual((yield* emu.state).executors.length, 0)
      assert.strictEqual((yield* gateway(emu, sandbox.routingKey, "health")).status, 503)
    }))

  it.scopedLive("forwards /r/<routing_key>/<path> to the port bound in the sandbox", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      const sandbox = yield* healthySandbox(emu, {
        definition: definition({ proxy_ports: [{ port: 3031, protocol: "tcp" }] })
      })
      const port = yield* freePort
      const server =
        `require("http").createServer((q, s) => s.end("echo " + q.method + " " + q.url)).listen(${port}, "127.0.0.1")`
      const started = yield* gateway(emu, sandbox.routingKey, "start_process", { cmd: `node -e '${server}'` })
      assert.strictEqual(started.status, 201, started.text)
      const bound = yield* gateway(emu, sandbox.routingKey, "bind_port", { port: String(port) })
      assert.strictEqual(bound.status, 200, bound.text)
      let reply = yield* request(`${emu.url}/r/${sandbox.routingKey}/hello/world?x=1`)
      for (let i = 0; i < 200 && reply.status !== 200; i++) {
        yield* Effect.sleep("25 millis")
        reply = yield* request(`${emu.url}/r/${sandbox.routingKey}/hello/world?x=1`)
      }
      assert.strictEqual(reply.text, "echo GET /hello/world?x=1")
      assert.strictEqual((yield* request(`${emu.url}/r/${sandbox.routingKey}/`)).text, "echo GET /")

      const deployment = yield* api(emu, "GET", `/v1/deployments/${sandbox.deployment.id}`)
      const executor = (yield* emu.state).executors[0]!
      assert.deepStrictEqual(deployment.body.deployment.metadata.proxy_ports, [
        { host: "127.0.0.1", public_port: executor.proxyPort, port: 3031, protocol: "tcp" }
      ])

      // The app domain routes like Koyeb's edge when it is sent as Host.
      const app = yield* api(emu, "GET", `/v1/apps/${sandbox.appId}`)
      const viaDomain = yield* Effect.promise(() =>
        new Promise<string>((resolve, reject) => {
          Http.get(`${emu.url}/koyeb-sandbox/health`, { headers: { host: app.body.app.domains[0].name } }, (res) => {
            let text = ""
            res.setEncoding("utf8").on("data", (c) => (text += c)).on("end", () => resolve(text))
          }).on("error", reject)
        })
      )
      assert.strictEqual(JSON.parse(viaDomain).status, "ok")
      assert.strictEqual((yield* request(`${emu.url}/r/${"f".repeat(32)}/`)).status, 404)
    }))

  it.scopedLive("deletes a service after life_cycle.delete_after_create seconds", () =>
    Effect.gen(function*() {
      const emu = yield* start()
      const sandbox = yield* createSandbox(emu, { lifeCycle: { delete_after_create: 1 } })
      yield* watchDeployment(emu, yield* latestDeployment(emu, sandbox.serviceId))
      const pid = (yield* emu.state).executors[0]!.pid
      let status = 200
      for (let i = 0; i < 400 && status === 200; i++) {
        yield* Effect.sleep("25 millis")
        status = (yield* api(emu, "GET", `/v1/services/${sandbox.serviceId}`)).status
      }
      assert.strictEqual(status, 404)
      assert.strictEqual((yield* api(emu, "GET", `/v1/apps/${sandbox.appId}`)).status, 404)
      for (let i = 0; i < 400 && (yield* emu.state).executors.length > 0; i++) yield* Effect.sleep("25 millis")
      assert.deepStrictEqual(yield* emu.state, { apps: [], services: [], deployments: [], executors: [] })
      assert.isFalse(alive(pid))
    }))

  it.live("closing the emulator's scope kills every executor and stops the server", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const emu = yield* start().pipe(Scope.extend(scope))
      yield* healthySandbox(emu)
      yield* healthySandbox(emu)
      yield* createSandbox(emu) // still starting when the scope closes
      const pids = (yield* emu.state).executors.map((e) => e.pid)
      assert.strictEqual(pids.length, 2)
      assert.isTrue(pids.every(alive))
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(pids.filter(alive), [])
      const refused = yield* Effect.tryPromise(() => fetch(`${emu.url}/v1/apps/x`)).pipe(Effect.flip)
      assert.isDefined(refused)
    }))

  it.scopedLive("layer provides the handle through the KoyebEmulator tag", () =>
    Effect.gen(function*() {
      const emu = yield* KoyebEmulator.KoyebEmulator
      assert.match(emu.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.strictEqual((yield* api(emu, "POST", "/v1/apps", { name: "via-layer" })).status, 200)
    }).pipe(Effect.provide(KoyebEmulator.layer({ token: Redacted.make(TOKEN) }))))
})

describe("KoyebEmulator under a TestClock", () => {
  it.scoped("drives a deployment PENDING → PROVISIONING → STARTING → HEALTHY, then deletes it after delete_after_create", () =>
    Effect.gen(function*() {
      const executors = yield* FakeExecutors.make({ gated: true })
      const emu = yield* EmulatorServer.make({ token: Redacted.make(TOKEN), stepDelay: "10 seconds" }, executors.spawn)
      const app = yield* api(emu, "POST", "/v1/apps", { name: "clocked", life_cycle: { delete_when_empty: true } })
      assert.strictEqual(app.body.app.created_at, "1970-01-01T00:00:00.000Z")
      const service = yield* api(emu, "POST", "/v1/services", {
        app_id: app.body.app.id,
        definition: definition(),
        life_cycle: { delete_after_create: 60 }
      })
      assert.strictEqual(service.status, 200, service.text)
      const serviceId = service.body.service.id as string
      const deploymentId = service.body.service.latest_deployment_id as string
      const deployment = Effect.map(api(emu, "GET", `/v1/deployments/${deploymentId}`), (r) => r.body.deployment)
      const reaches = (status: string) => settled(deployment, (d) => d.status === status)

      assert.strictEqual((yield* deployment).status, "PENDING")
      yield* TestClock.adjust("10 seconds")
      const provisioning = yield* reaches("PROVISIONING")
      assert.strictEqual(provisioning.allocated_at, "1970-01-01T00:00:10.000Z")
      yield* TestClock.adjust("10 seconds")
      const starting = yield* reaches("STARTING")
      assert.strictEqual(starting.started_at, "1970-01-01T00:00:20.000Z")
      assert.isNull(starting.succeeded_at)
      yield* executors.open
      const healthy = yield* reaches("HEALTHY")
      assert.strictEqual(healthy.succeeded_at, "1970-01-01T00:00:20.000Z")
      assert.strictEqual((yield* api(emu, "GET", `/v1/services/${serviceId}`)).body.service.status, "HEALTHY")
      assert.deepStrictEqual(yield* executors.alive, [deploymentId])

      yield* TestClock.adjust("39 seconds")
      assert.strictEqual((yield* api(emu, "GET", `/v1/services/${serviceId}`)).status, 200)
      yield* TestClock.adjust("1 second")
      const gone = yield* settled(api(emu, "GET", `/v1/services/${serviceId}`), (r) => r.status === 404)
      assert.strictEqual(gone.status, 404)
      assert.strictEqual((yield* api(emu, "GET", `/v1/apps/${app.body.app.id}`)).status, 404)
      const state = yield* settled(emu.state, (s) => s.deployments.length === 0)
      assert.deepStrictEqual(state, { apps: [], services: [], deployments: [], executors: [] })
      assert.deepStrictEqual(yield* executors.alive, [])
    }))
})
