import { ControlPlane, type CreateOptions, SandboxInfo } from "@effect-koyeb/core/ControlPlane"
import * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import * as SandboxError from "@effect-koyeb/core/SandboxError"
import * as SandboxSchema from "@effect-koyeb/core/SandboxSchema"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Inspectable from "effect/Inspectable"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"

const TOKEN = "tok-CANARY-7f3a9"
const HOST = "https://api.test"
// `sandbox-app-<name>-<unix seconds>-<8 random hex>`; the TestClock starts at 0.
const appNamePattern = (name: string) => new RegExp(`^sandbox-app-${name}-0-[0-9a-f]{8}$`)
const DOMAIN = "sandbox-app-demo-org.koyeb.app"

interface Recorded {
  readonly method: string
  readonly url: URL
  readonly headers: Readonly<Record<string, string>>
  readonly body: any
}

type Reply = Response | "transport"
type Handler = (request: Recorded, fallback: () => Reply) => Reply | undefined

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } })

const koyebError = (status: number, code: string, message: string, extra: object = {}) =>
  json({ status, code, message, ...extra }, status)

const bodyOf = (request: HttpClientRequest.HttpClientRequest): unknown =>
  request.body._tag === "Uint8Array" ? JSON.parse(new TextDecoder().decode(request.body.body)) : undefined

interface FakeState {
  status: ReadonlyArray<string>
  gateway: boolean
  secret: string | undefined
  definition: Record<string, unknown>
  lifeCycle: Record<string, number>
}

/**
 * An in-memory Koyeb API (apps, services, deployments) plus the executor's `/health`, recording
 * every request. `handler` overrides replies (return undefined to fall through).
 */
const fakeKoyeb = (handler: Handler = () => undefined, init: Partial<FakeState> = {}) => {
  const requests: Array<Recorded> = []
  const state: FakeState = {
    status: ["HEALTHY"],
    gateway: false,
    secret: "s3cret-CANARY-b21",
    definition: {},
    lifeCycle: { delete_after_create: 600, delete_after_sleep: 60 },
    ...init
  }
  let deploymentPolls = 0
  // Apps the fake created, by id (ids are `app-1`, `app-2`, ...).
  const apps = new Map<string, string>()
  const definition = () => ({
    name: "demo",
    type: "SANDBOX",
    regions: ["fra"],
    instance_types: [{ type: "small" }],
    docker: { image: "ubuntu", privileged: false },
    env: [{ key: "A", value: "1" }, ...(state.secret ? [{ key: "SANDBOX_SECRET", value: state.secret }] : [])],
    ...state.definition
  })
  const defaultReply = (r: Recorded): Reply => {
    const path = r.url.pathname
    if (r.url.host !== new URL(HOST).host) {
      return path.endsWith("/health") ? json({ status: "ok" }) : new Response("not found", { status: 404 })
    }
    if (r.method === "POST" && path === "/v1/apps") {
      const id = `app-${apps.size + 1}`
      apps.set(id, r.body.name)
      return json({ app: { id, name: r.body.name, domains: [{ name: DOMAIN }] } })
    }
    if (r.method === "GET" && path === "/v1/apps") {
      const name = r.url.searchParams.get("name")
      const matching = Array.from(apps).filter(([, n]) => name === null || n === name)
      return json({ apps: matching.map(([id, n]) => ({ id, name: n })), limit: 100, offset: 0, count: matching.length })
    }
    if (r.method === "DELETE" && path.startsWith("/v1/apps/")) {
      apps.delete(path.split("/")[3]!)
      return json({})
    }
    if (r.method === "GET" && path === "/v1/apps/app-1") {
      return json({ app: { id: "app-1", domains: [{ name: DOMAIN }] } })
    }
    if (r.method === "GET" && path.startsWith("/v1/apps/")) {
      return json({ app: { id: path.split("/")[3], domains: [{ name: "other.koyeb.app" }] } })
    }
    if (r.method === "POST" && path === "/v1/services") {
      return json({
        service: {
          id: "svc-1",
          app_id: r.body.app_id,
          name: r.body.definition.name,
          created_at: "2026-01-02T03:04:05Z",
          latest_deployment_id: "dep-1",
          active_deployment_id: ""
        }
      })
    }
    if (r.method === "GET" && path === "/v1/services/svc-1") {
      return json({
        service: {
          id: "svc-1",
          app_id: "app-1",
          name: "demo",
          created_at: "2026-01-02T03:04:05Z",
          active_deployment_id: "",
          latest_deployment_id: "dep-1",
          life_cycle: state.lifeCycle
        }
      })
    }
    if (r.method === "GET" && path.startsWith("/v1/deployments/")) {
      const status = state.status[Math.min(deploymentPolls, state.status.length - 1)]
      deploymentPolls++
      return json({
        deployment: {
          id: path.split("/")[3],
          status,
          messages: status === "ERROR" ? ["image pull failed"] : [],
          metadata: {
            ...(state.gateway ? { sandbox: { public_url: "https://gw.koyeb.test/", routing_key: "rk-1" } } : {}),
            proxy_ports: [{ host: "01.proxy.koyeb.app", public_port: 20001, port: 3031, protocol: "tcp" }]
          },
          definition: definition()
        }
      })
    }
    if (r.method === "DELETE" || r.method === "PUT") return json({})
    return koyebError(404, "not_found", `no route ${r.method} ${path}`)
  }
  const client = HttpClient.make((request, url) =>
    Effect.suspend(() => {
      const recorded: Recorded = { method: request.method, url, headers: request.headers, body: bodyOf(request) }
      requests.push(recorded)
      const reply = handler(recorded, () => defaultReply(recorded)) ?? defaultReply(recorded)
      return reply === "transport"
        ? Effect.fail(
          new HttpClientError.RequestError({ request, reason: "Transport", cause: new Error("ECONNRESET") })
        )
        : Effect.succeed(HttpClientResponse.fromWeb(request, reply))
    })
  )
  const layer = (options: Partial<KoyebControlPlane.KoyebControlPlaneOptions> = {}) =>
    KoyebControlPlane.layer({
      token: Redacted.make(TOKEN),
      host: HOST,
      retry: { baseDelay: "1 millis" },
      ...options
    }).pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, client)))
  const api = (method: string, path: string) =>
    requests.filter((r) => r.method === method && r.url.host === new URL(HOST).host && r.url.pathname === path)
  return { requests, layer, state, api, apps }
}

const create = (options: CreateOptions = {}) => Effect.flatMap(ControlPlane, (cp) => cp.create(options))

const serviceBody = (fake: ReturnType<typeof fakeKoyeb>) => {
  const posts = fake.api("POST", "/v1/services")
  assert.strictEqual(posts.length, 1)
  return posts[0]!.body
}

const secretOf = (body: any): string => body.definition.env.find((e: any) => e.key === "SANDBOX_SECRET").value

/** Every way an error can be shown: none may contain a secret. */
const renderings = (e: unknown): ReadonlyArray<string> => [
  String(e),
  (e as Error).message,
  JSON.stringify(e),
  Inspectable.format(e),
  Inspectable.toStringUnknown(e),
  (e as Error).stack ?? ""
]

describe("KoyebControlPlane", () => {
  describe("create", () => {
    it.effect("sends the Python SDK's default app and service payloads", () => {
      const fake = fakeKoyeb()
      return Effect.gen(function*() {
        const sandbox = yield* create()
        const app = fake.api("POST", "/v1/apps")
        assert.strictEqual(app.length, 1)
        assert.deepStrictEqual(Object.keys(app[0]!.body).sort(), ["life_cycle", "name"])
        assert.match(app[0]!.body.name, appNamePattern("quick-sandbox"))
        assert.deepStrictEqual(app[0]!.body.life_cycle, { delete_when_empty: true })
        assert.strictEqual(app[0]!.headers["authorization"], `Bearer ${TOKEN}`)
        assert.strictEqual(app[0]!.headers["content-type"], "application/json")
        assert.strictEqual(app[0]!.headers["accept"], "application/json")
        const body = serviceBody(fake)
        const secret = secretOf(body)
        assert.match(secret, /^[A-Za-z0-9_-]{43}$/)
        assert.deepStrictEqual(body, {
          app_id: "app-1",
          definition: {
            name: "quick-sandbox",
            type: "SANDBOX",
            docker: { image: "koyeb/sandbox", privileged: false },
            env: [{ key: "SANDBOX_SECRET", value: secret }],
            instance_types: [{ type: "micro" }],
            regions: ["na"],
            ports: [{ port: 3030, protocol: "http" }, { port: 3031, protocol: "http" }],
            routes: [{ port: 3030, path: "/koyeb-sandbox/" }, { port: 3031, path: "/" }],
            scalings: [{ min: 0, max: 1, targets: [{ sleep_idle_delay: { deep_sleep_value: 300 } }] }],
            mesh: "DEPLOYMENT_MESH_AUTO"
          },
          life_cycle: { delete_after_create: 0, delete_after_sleep: 0 }
        })
        assert.deepStrictEqual(
          sandbox.info,
          new SandboxInfo({
            id: "svc-1",
            appId: "app-1",
            name: "quick-sandbox",
            region: "na",
            instanceType: "micro",
            image: "koyeb/sandbox",
            createdAt: new Date("2026-01-02T03:04:05Z"),
            ownsApp: true
          })
        )
        assert.strictEqual(sandbox.endpoint.url, `https://${DOMAIN}/koyeb-sandbox`)
        assert.strictEqual(Redacted.value(sandbox.endpoint.secret), secret)
        assert.strictEqual(sandbox.endpoint.routingKey, undefined)
        // Each sandbox gets its own secret.
        yield* create()
        assert.notStrictEqual(secretOf(fake.api("POST", "/v1/services")[1]!.body), secret)
      }).pipe(Effect.provide(fake.layer()), Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
    })

    it.effect("sends every option as the Python SDK does", () => {
      const fake = fakeKoyeb(() => undefined, { gateway: true })
      const env = { FOO: "bar", EMPTY: "" }
      return Effect.gen(function*() {
        const sandbox = yield* create({
          name: "demo",
          image: "ubuntu:24.04",
          instanceType: "small",
          region: "fra",
          env,
          exposedPortProtocol: "http2",
          enableTcpProxy: true,
          privileged: true,
          registrySecret: "regcred",
          idleTimeout: "10 minutes",
          enableLightSleep: true,
          deepSleepDelay: "2 hours",
          deleteAfterDelay: "1 hour",
          deleteAfterInactivityDelay: 1500,
          enableMesh: true,
          entrypoint: ["/bin/sh", "-c"],
          command: "sleep",
          args: ["infinity"],
          configFiles: { "/etc/a.conf": "a=1", "/run/b.sh": { content: "echo b", permissions: "0755" } }
        })
        assert.deepStrictEqual(env, { FOO: "bar", EMPTY: "" }, "the caller's env is not mutated")
        const body = serviceBody(fake)
        const secret = secretOf(body)
        assert.deepStrictEqual(body, {
          app_id: "app-1",
          definition: {
            name: "demo",
            type: "SANDBOX",
            docker: {
              image: "ubuntu:24.04",
              privileged: true,
              image_registry_secret: "regcred",
              entrypoint: ["/bin/sh", "-c"],
              command: "sleep",
              args: ["infinity"]
            },
            env: [{ key: "FOO", value: "bar" }, { key: "EMPTY", value: "" }, { key: "SANDBOX_SECRET", value: secret }],
            instance_types: [{ type: "small" }],
            regions: ["fra"],
            ports: [{ port: 3030, protocol: "http" }, { port: 3031, protocol: "http2" }],
            routes: [{ port: 3030, path: "/koyeb-sandbox/" }, { port: 3031, path: "/" }],
            proxy_ports: [{ port: 3031, protocol: "tcp" }],
            scalings: [{
              min: 0,
              max: 1,
              targets: [{ sleep_idle_delay: { light_sleep_value: 600, deep_sleep_value: 7200 } }]
            }],
            mesh: "DEPLOYMENT_MESH_ENABLED",
            config_files: [
              { path: "/etc/a.conf", content: "a=1", permissions: "0644" },
              { path: "/run/b.sh", content: "echo b", permissions: "0755" }
            ]
          },
          // 1500 ms rounds up: a non-zero delay never becomes 0 ("disabled").
          life_cycle: { delete_after_create: 3600, delete_after_sleep: 2 }
        })
        assert.match(fake.api("POST", "/v1/apps")[0]!.body.name, appNamePattern("demo"))
        // The gateway of the deployment is preferred over the app domain.
        assert.strictEqual(sandbox.endpoint.url, "https://gw.koyeb.test/koyeb-sandbox")
        assert.strictEqual(sandbox.endpoint.routingKey, "rk-1")
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("always-on, deep-sleep-only and mesh variants", () => {
      const fake = fakeKoyeb()
      return Effect.gen(function*() {
        yield* create({ idleTimeout: 0, enableMesh: false })
        yield* create({ idleTimeout: "90 seconds", deepSleepDelay: "1 hour" })
        const [alwaysOn, deepOnly] = fake.api("POST", "/v1/services").map((r) => r.body.definition)
        assert.deepStrictEqual(alwaysOn.scalings, [{ min: 1, max: 1 }])
        assert.strictEqual(alwaysOn.mesh, "DEPLOYMENT_MESH_DISABLED")
        assert.deepStrictEqual(deepOnly.scalings, [{
          min: 0,
          max: 1,
          targets: [{ sleep_idle_delay: { deep_sleep_value: 90 } }]
        }])
        assert.strictEqual(deepOnly.proxy_ports, undefined)
        assert.strictEqual(deepOnly.config_files, undefined)
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("region comes from the option, else KOYEB_REGION; host option wins over KOYEB_API_HOST", () => {
      const fake = fakeKoyeb()
      const envHost = ConfigProvider.fromMap(new Map([["KOYEB_API_HOST", "https://env.test"], ["KOYEB_REGION", "sin"]]))
      return Effect.gen(function*() {
        yield* create().pipe(Effect.provide(fake.layer()))
        assert.deepStrictEqual(serviceBody(fake).definition.regions, ["sin"])
        yield* create().pipe(Effect.provide(fake.layer({ region: "was" })))
        assert.deepStrictEqual(fake.api("POST", "/v1/services")[1]!.body.definition.regions, ["was"])
        // Without a host option the environment's host is used.
        const exit = yield* create().pipe(Effect.provide(fake.layer({ host: undefined })), Effect.exit)
        assert.isTrue(fake.requests.some((r) => r.url.origin === "https://env.test"))
        assert.isTrue(exit._tag === "Failure")
      }).pipe(Effect.withConfigProvider(envHost))
    })

    it.effect("uses https://app.koyeb.com when neither the option nor the environment gives a host", () => {
      const fake = fakeKoyeb((r) => r.method === "POST" ? koyebError(500, "x", "x") : undefined)
      return Effect.gen(function*() {
        yield* create().pipe(Effect.provide(fake.layer({ host: undefined })), Effect.exit)
        assert.strictEqual(fake.requests[0]!.url.href, "https://app.koyeb.com/v1/apps")
      }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
    })

    it.effect("rejects invalid options before any request", () => {
      const fake = fakeKoyeb()
      const invalid: ReadonlyArray<[CreateOptions, string]> = [
        [{ env: { SANDBOX_SECRET: "mine" } }, "env"],
        [{ env: { "BAD-KEY": "x" } }, "env"],
        [{ exposedPortProtocol: "tcp" as "http" }, "exposedPortProtocol"],
        [{ name: "Bad_Name" }, "name"],
        [{ name: "" }, "name"],
        [{ idleTimeout: -1 }, "idleTimeout"],
        [{ deleteAfterDelay: Number.NaN }, "deleteAfterDelay"],
        [{ deleteAfterInactivityDelay: "soon" as "1 second" }, "deleteAfterInactivityDelay"],
        [{ deepSleepDelay: Infinity }, "deepSleepDelay"],
        [{ configFiles: { "relative/path": "x" } }, "configFiles"],
        [{ configFiles: { "/x": { content: "x", permissions: "rwx" } } }, "configFiles"],
        [{ appId: "" }, "appId"]
      ]
      return Effect.gen(function*() {
        for (const [options, argument] of invalid) {
          const error = yield* Effect.flip(create(options))
          assert.strictEqual(error._tag, "InvalidArgument", JSON.stringify(options))
          assert.strictEqual(error._tag === "InvalidArgument" && error.argument, argument)
        }
        assert.strictEqual(fake.requests.length, 0)
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("deletes the app it created when service creation fails, and never retries the POST", () => {
      const fake = fakeKoyeb((r) =>
        r.method === "POST" && r.url.pathname === "/v1/services"
          ? koyebError(400, "invalid_argument", "validation error", {
            fields: [{ field: "definition.instance_types", description: "unknown instance type" }]
          })
          : undefined
      )
      return Effect.gen(function*() {
        const error = yield* Effect.flip(create({ instanceType: "huge" }))
        assert.strictEqual(error._tag, "ApiError")
        if (error._tag !== "ApiError") return
        assert.strictEqual(error.status, 400)
        assert.strictEqual(error.code, "invalid_argument")
        assert.include(error.detail, "validation error")
        assert.include(error.detail, "definition.instance_types: unknown instance type")
        assert.strictEqual(error.method, "POST")
        assert.strictEqual(error.url, `${HOST}/v1/services`)
        assert.strictEqual(fake.api("POST", "/v1/services").length, 1)
        assert.strictEqual(fake.api("DELETE", "/v1/apps/app-1").length, 1)
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("a 503 on a POST is not retried; the app is looked up by name a few times, nothing is deleted", () => {
      const fake = fakeKoyeb((r) => r.method === "POST" ? koyebError(503, "unavailable", "try later") : undefined)
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.flip(create()))
        yield* TestClock.adjust("1 minute")
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag === "ApiError" && error.status, 503)
        assert.strictEqual(fake.api("POST", "/v1/apps").length, 1)
        const lookups = fake.api("GET", "/v1/apps")
        assert.strictEqual(lookups.length, 4)
        const name = fake.api("POST", "/v1/apps")[0]!.body.name
        for (const lookup of lookups) assert.strictEqual(lookup.url.searchParams.get("name"), name)
        assert.strictEqual(fake.requests.length, 5)
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("an app POST answered 502 after the app was created: it is found by its unique name and deleted", () => {
      const fake = fakeKoyeb((r, fallback) =>
        r.method === "POST" && r.url.pathname === "/v1/apps"
          ? (fallback(), koyebError(502, "bad_gateway", "lost"))
          : undefined
      )
      return Effect.gen(function*() {
        const error = yield* Effect.flip(create({ name: "demo" }))
        assert.strictEqual(error._tag === "ApiError" && error.status, 502)
        assert.strictEqual(error._tag === "ApiError" && error.method, "POST")
        const name = fake.api("POST", "/v1/apps")[0]!.body.name
        assert.match(name, appNamePattern("demo"))
        assert.strictEqual(fake.api("GET", "/v1/apps")[0]!.url.searchParams.get("name"), name)
        assert.strictEqual(fake.api("DELETE", "/v1/apps/app-1").length, 1)
        assert.strictEqual(fake.apps.size, 0)
        assert.strictEqual(fake.api("POST", "/v1/services").length, 0)
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("an app POST that times out is created later: the repeated lookup finds and deletes it", () => {
      const fake = fakeKoyeb()
      let lookups = 0
      // The POST never answers (and, like a real client, can be abandoned by the request timeout);
      // the app appears on the server only by the third lookup.
      const client = HttpClient.make((request, url) =>
        request.method === "POST"
          ? Effect.interruptible(Effect.never)
          : Effect.suspend(() => {
            if (request.method === "GET" && url.pathname === "/v1/apps" && ++lookups === 3) {
              fake.apps.set("app-late", url.searchParams.get("name")!)
            }
            const listed = Array.from(fake.apps).filter(([, n]) => n === url.searchParams.get("name"))
            if (request.method === "DELETE") fake.apps.delete(url.pathname.split("/")[3]!)
            return Effect.succeed(HttpClientResponse.fromWeb(
              request,
              request.method === "GET" ? json({ apps: listed.map(([id, name]) => ({ id, name })) }) : json({})
            ))
          })
      )
      const layer = KoyebControlPlane.layer({ token: Redacted.make(TOKEN), host: HOST, requestTimeout: "2 seconds" })
        .pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, client)))
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.flip(create({ name: "late" })))
        yield* TestClock.adjust("1 minute")
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag, "ControlPlaneError")
        assert.strictEqual(error._tag === "ControlPlaneError" && error.reason, "Timeout")
        assert.strictEqual(lookups, 3)
        assert.strictEqual(fake.apps.size, 0)
      }).pipe(Effect.provide(layer))
    })

    it.effect("a long sandbox name is cut so that the app name stays a valid Koyeb name of at most 63 characters", () => {
      const fake = fakeKoyeb()
      const long = `a${"-b".repeat(31)}`
      return Effect.gen(function*() {
        yield* create({ name: long })
        yield* create({ name: long })
        const [name, other] = fake.api("POST", "/v1/apps").map((r): string => r.body.name)
        assert.isAtMost(name!.length, 63)
        // Cut at a dash, which is dropped: Koyeb names end with a letter or digit.
        assert.match(name!, /^sandbox-app-a(-b)*-0-[0-9a-f]{8}$/)
        assert.match(name!, /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/)
        // Unique per attempt even within the same second.
        assert.notStrictEqual(other, name)
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("in a supplied app: no app is created or deleted; a failed create deletes only its service", () => {
      const fake = fakeKoyeb((r) =>
        r.method === "GET" && r.url.pathname.startsWith("/v1/apps/")
          ? json({ app: { id: "mine", domains: [] } })
          : undefined
      )
      return Effect.gen(function*() {
        const error = yield* Effect.flip(create({ appId: "mine" }))
        // Neither a gateway nor an app domain: the service we made is removed, the app is not.
        assert.strictEqual(error._tag, "ControlPlaneError")
        assert.strictEqual(error._tag === "ControlPlaneError" && error.reason, "NoEndpoint")
        assert.strictEqual(fake.api("POST", "/v1/apps").length, 0)
        assert.strictEqual(serviceBody(fake).app_id, "mine")
        assert.strictEqual(fake.api("DELETE", "/v1/services/svc-1").length, 1)
        assert.isFalse(fake.requests.some((r) => r.method === "DELETE" && r.url.pathname.startsWith("/v1/apps/")))
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("a supplied app is never deleted by delete", () => {
      const fake = fakeKoyeb()
      return Effect.gen(function*() {
        const cp = yield* ControlPlane
        const sandbox = yield* cp.create({ appId: "mine" })
        assert.isFalse(sandbox.info.ownsApp)
        assert.strictEqual(sandbox.endpoint.url, "https://other.koyeb.app/koyeb-sandbox")
        yield* cp.delete(sandbox.info)
        assert.strictEqual(fake.api("DELETE", "/v1/services/svc-1").length, 1)
        assert.isFalse(fake.requests.some((r) => r.method === "DELETE" && r.url.pathname.startsWith("/v1/apps/")))
        const own = yield* cp.create({})
        yield* cp.delete(own.info)
        assert.strictEqual(fake.api("DELETE", "/v1/apps/app-1").length, 1)
      }).pipe(Effect.provide(fake.layer()))
    })
  })

  describe("HTTP policy", () => {
    const getService = Effect.flatMap(ControlPlane, (cp) => cp.get("svc-1"))

    it.effect("retries a 429 after its Retry-After delay", () => {
      let calls = 0
      const fake = fakeKoyeb((r) =>
        r.url.pathname === "/v1/services/svc-1" && calls++ === 0
          ? new Response("slow down", { status: 429, headers: { "retry-after": "3" } })
          : undefined
      )
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(getService)
        yield* TestClock.adjust("2999 millis")
        assert.strictEqual(fake.api("GET", "/v1/services/svc-1").length, 1)
        yield* TestClock.adjust("1 millis")
        const sandbox = yield* Fiber.join(fiber)
        assert.strictEqual(sandbox.info.id, "svc-1")
        assert.strictEqual(fake.api("GET", "/v1/services/svc-1").length, 2)
      }).pipe(Effect.provide(fake.layer({ retry: { baseDelay: "10 seconds" } })))
    })

    it.effect("retries 503 and transport failures of a GET, then succeeds", () => {
      let calls = 0
      const fake = fakeKoyeb((r) => {
        if (r.url.pathname !== "/v1/services/svc-1") return undefined
        calls++
        return calls === 1 ? koyebError(503, "unavailable", "busy") : calls === 2 ? "transport" : undefined
      })
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(getService)
        yield* TestClock.adjust("1 minute")
        const sandbox = yield* Fiber.join(fiber)
        assert.strictEqual(sandbox.info.region, "fra")
        assert.strictEqual(fake.api("GET", "/v1/services/svc-1").length, 3)
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("gives up after the configured number of retries", () => {
      const fake = fakeKoyeb((r) =>
        r.url.pathname === "/v1/services/svc-1" ? koyebError(502, "bad_gateway", "down") : undefined
      )
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.flip(getService))
        yield* TestClock.adjust("10 minutes")
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag === "ApiError" && error.status, 502)
        assert.strictEqual(fake.api("GET", "/v1/services/svc-1").length, 5)
        const fiber2 = yield* Effect.fork(
          Effect.flip(getService.pipe(Effect.provide(fake.layer({ retry: { times: 1 } }))))
        )
        yield* TestClock.adjust("10 minutes")
        yield* Fiber.join(fiber2)
        assert.strictEqual(fake.api("GET", "/v1/services/svc-1").length, 7)
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("a long Retry-After is not slept through: RateLimited with the delay", () => {
      const fake = fakeKoyeb(() => new Response("", { status: 429, headers: { "retry-after": "3600" } }))
      return Effect.gen(function*() {
        const error = yield* Effect.flip(getService)
        assert.strictEqual(error._tag, "RateLimited")
        assert.strictEqual(error._tag === "RateLimited" && error.retryAfterMillis, 3_600_000)
        assert.strictEqual(fake.requests.length, 1)
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("a Retry-After HTTP date is honoured", () => {
      let calls = 0
      const fake = fakeKoyeb((r) =>
        r.url.pathname === "/v1/services/svc-1" && calls++ === 0
          ? new Response("", { status: 429, headers: { "retry-after": new Date(5000).toUTCString() } })
          : undefined
      )
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(getService)
        yield* TestClock.adjust("4 seconds")
        assert.strictEqual(fake.api("GET", "/v1/services/svc-1").length, 1)
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(fiber)
        assert.strictEqual(fake.api("GET", "/v1/services/svc-1").length, 2)
      }).pipe(Effect.provide(fake.layer({ retry: { baseDelay: "1 minute" } })))
    })

    it.effect("each attempt is bounded by the request timeout", () => {
      const client = HttpClient.make(() => Effect.never)
      const layer = KoyebControlPlane.layer({
        token: Redacted.make(TOKEN),
        host: HOST,
        requestTimeout: "2 seconds",
        retry: { times: 0 }
      }).pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, client)))
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.flip(getService))
        yield* TestClock.adjust("2 seconds")
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag, "ControlPlaneError")
        assert.strictEqual(error._tag === "ControlPlaneError" && error.reason, "Timeout")
      }).pipe(Effect.provide(layer))
    })

    it.effect("maps 401/403 to Unauthorized, 404 to SandboxNotFound, and a 404 on delete to success", () => {
      let status = 401
      const fake = fakeKoyeb((r) =>
        r.url.host === "api.test" ? koyebError(status, "denied", "Token is invalid") : undefined
      )
      return Effect.gen(function*() {
        const cp = yield* ControlPlane
        const unauthorized = yield* Effect.flip(cp.get("svc-1"))
        assert.strictEqual(unauthorized._tag, "Unauthorized")
        assert.strictEqual(unauthorized._tag === "Unauthorized" && unauthorized.detail, "Token is invalid")
        status = 403
        assert.strictEqual((yield* Effect.flip(cp.list))._tag, "Unauthorized")
        status = 404
        const notFound = yield* Effect.flip(cp.get("svc-9"))
        assert.strictEqual(notFound._tag, "SandboxNotFound")
        assert.strictEqual(notFound._tag === "SandboxNotFound" && notFound.id, "svc-9")
        const info = new SandboxInfo({
          id: "svc-9",
          appId: "app-9",
          name: "x",
          region: "na",
          instanceType: "micro",
          image: "i",
          createdAt: new Date(0),
          ownsApp: true
        })
        yield* cp.delete(info)
        yield* cp.delete(new SandboxInfo({ ...info, ownsApp: false }))
        assert.strictEqual(fake.api("DELETE", "/v1/apps/app-9").length, 1)
        assert.strictEqual(fake.api("DELETE", "/v1/services/svc-9").length, 1)
        status = 400
        const bad = yield* Effect.flip(cp.get("svc-1"))
        assert.strictEqual(bad._tag === "ApiError" && bad.status, 400)
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("a reply that does not decode is an ApiError naming the path, not the values", () => {
      const fake = fakeKoyeb((r) =>
        r.url.pathname === "/v1/deployments/dep-1"
          ? json({ deployment: { status: 5, definition: { env: [{ key: "SANDBOX_SECRET", value: "leak-CANARY" }] } } })
          : undefined
      )
      return Effect.gen(function*() {
        const error = yield* Effect.flip(Effect.flatMap(ControlPlane, (cp) => cp.get("svc-1")))
        assert.strictEqual(error._tag === "ApiError" && error.code, "Decode")
        for (const text of renderings(error)) assert.notInclude(text, "leak-CANARY")
      }).pipe(Effect.provide(fake.layer()))
    })
  })

  describe("errors without a reply", () => {
    const getService = Effect.flatMap(ControlPlane, (cp) => cp.get("svc-1"))

    it.effect("a 503 with Retry-After is retried after that delay, not the backoff", () => {
      let calls = 0
      const fake = fakeKoyeb((r) =>
        r.url.pathname === "/v1/services/svc-1" && calls++ === 0
          ? new Response("busy", { status: 503, headers: { "retry-after": "2" } })
          : undefined
      )
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(getService)
        yield* TestClock.adjust("1999 millis")
        assert.strictEqual(fake.api("GET", "/v1/services/svc-1").length, 1)
        yield* TestClock.adjust("1 millis")
        yield* Fiber.join(fiber)
        assert.strictEqual(fake.api("GET", "/v1/services/svc-1").length, 2)
      }).pipe(Effect.provide(fake.layer({ retry: { baseDelay: "1 minute" } })))
    })

    it.effect("the request timeout bounds the reply's body too, and such a timeout is retried", () => {
      const stalled = () =>
        new Response(new ReadableStream({ start: (controller) => controller.enqueue(new TextEncoder().encode("{")) }), {
          status: 200,
          headers: { "content-type": "application/json" }
        })
      const fake = fakeKoyeb((r) => r.url.pathname === "/v1/services/svc-1" ? stalled() : undefined)
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.flip(getService))
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual(fake.api("GET", "/v1/services/svc-1").length, 1)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(fake.api("GET", "/v1/services/svc-1").length, 2)
        yield* TestClock.adjust("2 seconds")
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag, "ControlPlaneError")
        assert.strictEqual(error._tag === "ControlPlaneError" && error.reason, "Timeout")
        assert.strictEqual(fake.api("GET", "/v1/services/svc-1").length, 2)
      }).pipe(Effect.provide(fake.layer({ requestTimeout: "2 seconds", retry: { times: 1 } })))
    })

    it.effect("a request that cannot be built is a ControlPlaneError InvalidRequest, never sent nor retried", () => {
      const fake = fakeKoyeb()
      return Effect.gen(function*() {
        const error = yield* Effect.flip(getService)
        assert.strictEqual(error._tag, "ControlPlaneError")
        assert.strictEqual(error._tag === "ControlPlaneError" && error.reason, "InvalidRequest")
        assert.strictEqual(error._tag === "ControlPlaneError" && error.method, "GET")
        assert.strictEqual(fake.requests.length, 0)
      }).pipe(Effect.provide(fake.layer({ host: "not a url" })))
    })

    it.effect("transport failures end in ControlPlaneError Transport, naming the request, never the token", () => {
      const fake = fakeKoyeb(() => "transport")
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(Effect.flip(getService))
        yield* TestClock.adjust("1 minute")
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag, "ControlPlaneError")
        if (error._tag !== "ControlPlaneError") return
        assert.strictEqual(error.reason, "Transport")
        assert.strictEqual(error.method, "GET")
        assert.strictEqual(error.url, `${HOST}/v1/services/svc-1`)
        assert.strictEqual(error.message, `Control plane GET ${HOST}/v1/services/svc-1: Transport: ${error.detail}`)
        assert.strictEqual(fake.requests.length, 5)
        assert.isTrue(SandboxError.isSandboxError(error))
        for (const text of renderings(error)) assert.notInclude(text, TOKEN)
      }).pipe(Effect.provide(fake.layer()))
    })

    it("every error carries the TypeId; isSandboxError recognises them and nothing else", () => {
      const errors: ReadonlyArray<SandboxError.SandboxError> = [
        new SandboxError.FileNotFound({ path: "/x" }),
        new SandboxError.FileExists({ path: "/x" }),
        new SandboxError.FilesystemError({ path: "/x", reason: "Unknown", detail: "d" }),
        new SandboxError.Timeout({ operation: "op", timeoutMillis: 1 }),
        new SandboxError.CommandError({ command: "c", exitCode: 1, stdout: "", stderr: "" }),
        new SandboxError.ExecutorError({ reason: "Transport", endpoint: "/run", detail: "d" }),
        new SandboxError.Unauthorized({ detail: "d" }),
        new SandboxError.InvalidArgument({ argument: "a", detail: "d" }),
        new SandboxError.PortAlreadyBound({ port: "1", currentPort: "2" }),
        new SandboxError.ProcessNotFound({ id: "p" }),
        new SandboxError.ProcessNotRunning({ id: "p", status: "killed" }),
        new SandboxError.SandboxNotFound({ id: "s" }),
        new SandboxError.DeploymentFailed({ sandbox: "s", status: "ERROR" }),
        new SandboxError.RateLimited({ method: "GET", url: "u" }),
        new SandboxError.ApiError({ status: 500, code: "", detail: "d", method: "GET", url: "u" }),
        new SandboxError.ControlPlaneError({ reason: "Runtime", detail: "could not start" })
      ]
      for (const error of errors) {
        assert.strictEqual(error[SandboxError.TypeId], SandboxError.TypeId, error._tag)
        assert.isTrue(SandboxError.isSandboxError(error), error._tag)
      }
      assert.strictEqual(errors[15]!.message, "Control plane: Runtime: could not start")
      for (const other of [new Error("x"), { _tag: "ApiError" }, null, "ApiError"]) {
        assert.isFalse(SandboxError.isSandboxError(other))
      }
    })

    it("SandboxInfo of ControlPlane is SandboxSchema's", () => {
      assert.strictEqual(SandboxInfo, SandboxSchema.SandboxInfo)
    })
  })

  describe("waitReady", () => {
    it.live("polls unknown and transitional statuses until HEALTHY, then /health", () => {
      let services = 0
      let health = 0
      const fake = fakeKoyeb((r) => {
        if (r.url.pathname === "/v1/services/svc-1") {
          // The deployment changes between polls: it must be re-read each time.
          services++
          return json({
            service: { id: "svc-1", app_id: "app-1", active_deployment_id: "", latest_deployment_id: `dep-${services}` }
          })
        }
        if (r.url.pathname.endsWith("/health")) {
          return health++ < 2
            ? json({ status: "starting" })
            : json({ status: "OK" })
        }
        return undefined
      }, { status: ["PENDING", "PROVISIONING", "SOME_NEW_STATUS", "STARTING", "HEALTHY"], gateway: true })
      return Effect.gen(function*() {
        const endpoint = yield* Effect.flatMap(
          ControlPlane,
          (cp) => cp.waitReady("svc-1", { pollInterval: "2 millis" })
        )
        assert.strictEqual(endpoint.url, "https://gw.koyeb.test/koyeb-sandbox")
        assert.strictEqual(endpoint.routingKey, "rk-1")
        assert.strictEqual(Redacted.value(endpoint.secret), "s3cret-CANARY-b21")
        const deployments = fake.requests.filter((r) => r.url.pathname.startsWith("/v1/deployments/")).map((r) =>
          r.url.pathname
        )
        assert.deepStrictEqual(deployments.slice(0, 3), [
          "/v1/deployments/dep-1",
          "/v1/deployments/dep-2",
          "/v1/deployments/dep-3"
        ])
        const healthRequests = fake.requests.filter((r) => r.url.pathname.endsWith("/health"))
        assert.strictEqual(healthRequests.length, 3)
        assert.strictEqual(healthRequests[0]!.url.href, "https://gw.koyeb.test/koyeb-sandbox/health")
        assert.strictEqual(healthRequests[0]!.headers["x-routing-key"], "rk-1")
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("fails fast with DeploymentFailed on terminal statuses", () =>
      Effect.gen(function*() {
        for (const status of ["ERROR", "ERRORING", "CANCELED", "STOPPED"]) {
          const fake = fakeKoyeb(() => undefined, { status: ["PENDING", status] })
          const fiber = yield* Effect.fork(
            Effect.flip(Effect.flatMap(ControlPlane, (cp) => cp.waitReady("svc-1"))).pipe(Effect.provide(fake.layer()))
          )
          yield* TestClock.adjust("1 second")
          const error = yield* Fiber.join(fiber)
          assert.strictEqual(error._tag, "DeploymentFailed")
          assert.strictEqual(error._tag === "DeploymentFailed" && error.status, status)
          if (status === "ERROR") {
            assert.strictEqual(error._tag === "DeploymentFailed" && error.detail, "image pull failed")
          }
          assert.strictEqual(
            fake.requests.filter((r) => r.url.pathname.startsWith("/v1/deployments/")).length,
            2
          )
        }
      }))

    it.effect("times out with Timeout", () => {
      const fake = fakeKoyeb(() => undefined, { status: ["STARTING"] })
      return Effect.gen(function*() {
        const fiber = yield* Effect.fork(
          Effect.flip(Effect.flatMap(ControlPlane, (cp) => cp.waitReady("svc-1", { timeout: "30 seconds" })))
        )
        yield* TestClock.adjust("30 seconds")
        const error = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag, "Timeout")
        assert.strictEqual(error._tag === "Timeout" && error.timeoutMillis, 30_000)
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("a deleted sandbox fails with SandboxNotFound instead of waiting", () => {
      const fake = fakeKoyeb((r) =>
        r.url.pathname === "/v1/services/svc-1" ? koyebError(404, "not_found", "gone") : undefined
      )
      return Effect.gen(function*() {
        const error = yield* Effect.flip(Effect.flatMap(ControlPlane, (cp) => cp.waitReady("svc-1")))
        assert.strictEqual(error._tag, "SandboxNotFound")
      }).pipe(Effect.provide(fake.layer()))
    })
  })

  describe("other operations", () => {
    it.effect("get recovers the secret; a missing secret is a typed error", () => {
      const fake = fakeKoyeb()
      return Effect.gen(function*() {
        const cp = yield* ControlPlane
        const sandbox = yield* cp.get("svc-1")
        assert.strictEqual(Redacted.value(sandbox.endpoint.secret), "s3cret-CANARY-b21")
        assert.strictEqual(sandbox.endpoint.url, `https://${DOMAIN}/koyeb-sandbox`)
        assert.isFalse(sandbox.info.ownsApp)
        assert.deepStrictEqual(
          [sandbox.info.name, sandbox.info.region, sandbox.info.instanceType, sandbox.info.image],
          ["demo", "fra", "small", "ubuntu"]
        )
        fake.state.secret = undefined
        const error = yield* Effect.flip(cp.get("svc-1"))
        assert.strictEqual(error._tag, "ControlPlaneError")
        assert.strictEqual(error._tag === "ControlPlaneError" && error.reason, "NoSecret")
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("list pages through SANDBOX services", () => {
      const fake = fakeKoyeb((r) => {
        if (r.method !== "GET" || r.url.pathname !== "/v1/services") return undefined
        const offset = Number(r.url.searchParams.get("offset"))
        const count = offset === 0 ? 100 : 3
        return json({
          services: Array.from({ length: count }, (_, i) => ({
            id: `s-${offset + i}`,
            app_id: "app-1",
            name: `n${offset + i}`,
            latest_deployment_id: "dep-1"
          })),
          has_next: offset === 0
        })
      })
      return Effect.gen(function*() {
        const infos = yield* Effect.flatMap(ControlPlane, (cp) => cp.list)
        assert.strictEqual(infos.length, 103)
        assert.strictEqual(infos[102]!.id, "s-102")
        assert.strictEqual(infos[0]!.region, "fra")
        const pages = fake.api("GET", "/v1/services")
        assert.deepStrictEqual(pages.map((r) => r.url.searchParams.get("offset")), ["0", "100"])
        assert.strictEqual(pages[0]!.url.searchParams.get("types"), "SANDBOX")
        assert.strictEqual(pages[0]!.url.searchParams.get("limit"), "100")
      }).pipe(Effect.provide(fake.layer()))
    })

    it.effect("domain, exposedUrl and tcpProxy from the gateway or the app domain", () =>
      Effect.gen(function*() {
        const viaDomain = fakeKoyeb()
        const cp = yield* ControlPlane.pipe(Effect.provide(viaDomain.layer()))
        assert.deepStrictEqual(yield* cp.domain("svc-1"), Option.some(DOMAIN))
        assert.strictEqual(yield* cp.exposedUrl("svc-1"), `https://${DOMAIN}`)
        // No active deployment yet: no proxy.
        assert.deepStrictEqual(yield* cp.tcpProxy("svc-1"), Option.none())
        const viaGateway = fakeKoyeb((r) =>
          r.url.pathname === "/v1/services/svc-1"
            ? json({ service: { id: "svc-1", app_id: "app-1", active_deployment_id: "dep-1" } })
            : undefined, { gateway: true })
        const gw = yield* ControlPlane.pipe(Effect.provide(viaGateway.layer()))
        assert.deepStrictEqual(yield* gw.domain("svc-1"), Option.some("gw.koyeb.test/r/rk-1/"))
        assert.strictEqual(yield* gw.exposedUrl("svc-1"), "https://gw.koyeb.test/r/rk-1/")
        assert.deepStrictEqual(yield* gw.tcpProxy("svc-1"), Option.some({ host: "01.proxy.koyeb.app", port: 20001 }))
      }))

    it.effect("updateLifecycle sends the latest definition back with the merged life cycle", () => {
      const fake = fakeKoyeb()
      return Effect.gen(function*() {
        const cp = yield* ControlPlane
        yield* cp.updateLifecycle("svc-1", { deleteAfterDelay: "2 minutes" })
        const [put] = fake.api("PUT", "/v1/services/svc-1")
        assert.deepStrictEqual(put!.body.life_cycle, { delete_after_create: 120, delete_after_sleep: 60 })
        assert.strictEqual(put!.body.definition.docker.image, "ubuntu")
        assert.deepStrictEqual(put!.body.definition.env[0], { key: "A", value: "1" })
        yield* cp.updateLifecycle("svc-1", { deleteAfterInactivityDelay: 0 })
        assert.deepStrictEqual(fake.api("PUT", "/v1/services/svc-1")[1]!.body.life_cycle, {
          delete_after_create: 600,
          delete_after_sleep: 0
        })
        const invalid = yield* Effect.flip(cp.updateLifecycle("svc-1", { deleteAfterDelay: -5 }))
        assert.strictEqual(invalid._tag, "InvalidArgument")
        assert.strictEqual(fake.api("PUT", "/v1/services/svc-1").length, 2)
      }).pipe(Effect.provide(fake.layer()))
    })
  })

  it.effect("the token and the sandbox secret never appear in errors or logs", () => {
    const logs: Array<string> = []
    const logger = Logger.make(({ cause, message }) =>
      logs.push(`${Inspectable.format(message)} ${Inspectable.format(cause)}`)
    )
    let mode: "fail-service" | "fail-all" | "transport" = "fail-service"
    const fake = fakeKoyeb((r) => {
      if (mode === "transport") return "transport"
      if (mode === "fail-all") return koyebError(500, "internal", "boom")
      return r.method === "POST" && r.url.pathname === "/v1/services" ?
        koyebError(400, "bad", "bad definition") :
        r.method === "DELETE"
        ? koyebError(500, "internal", "cleanup failed")
        : undefined
    })
    return Effect.gen(function*() {
      const cp = yield* ControlPlane
      const errors: Array<unknown> = []
      errors.push(yield* Effect.flip(cp.create({})))
      const secret = secretOf(serviceBody(fake))
      mode = "fail-all"
      errors.push(yield* Effect.flip(cp.get("svc-1")))
      mode = "transport"
      errors.push(yield* Effect.flip(cp.list))
      assert.isAbove(logs.length, 0, "the failed cleanup is logged")
      for (const error of errors) {
        for (const text of [...renderings(error), ...logs]) {
          assert.notInclude(text, TOKEN)
          assert.notInclude(text, secret)
        }
      }
      const { endpoint } = yield* Effect.flatMap(ControlPlane, (fresh) => fresh.get("svc-1")).pipe(
        Effect.provide(fakeKoyeb().layer())
      )
      for (const text of [String(endpoint.secret), JSON.stringify(endpoint), Inspectable.format(endpoint)]) {
        assert.notInclude(text, "s3cret-CANARY-b21")
      }
    }).pipe(
      Effect.provide(fake.layer({ retry: { times: 0 } })),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
  })
})
