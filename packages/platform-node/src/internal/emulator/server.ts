/**
 * The Koyeb emulator assembled: the HTTP (or, with `tls`, HTTPS) server, the edge (request log,
 * fault switches, bearer token), the REST routes, the gateway and the admin routes over one store.
 *
 * @internal
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import * as Https from "node:https"
import type { KoyebEmulatorShape, Options } from "../../KoyebEmulator.js"
import { safeEqual } from "../executor/auth.js"
import { type SpawnExecutor, spawnExecutor } from "../localRuntime.js"
import * as Deployments from "./deployments.js"
import * as Faults from "./faults.js"
import * as Gateway from "./gateway.js"
import { json, notFound, rawUrl } from "./http.js"
import * as Instances from "./instances.js"
import { errorBody } from "./render.js"
import * as Routes from "./routes.js"
import * as State from "./state.js"
import * as Tls from "./tls.js"

/** The server could not listen (mapped to `KoyebEmulatorError` by the public constructor). */
export class ListenError
  extends Data.TaggedError("ListenError")<{ readonly detail: string; readonly cause?: unknown }>
{}

/** Starts the emulator; `spawn` starts the executor of each deployment, `openssl` makes the TLS material. */
export const make = Effect.fnUntraced(function*(
  options: Options,
  spawn: SpawnExecutor = spawnExecutor,
  openssl = "openssl"
) {
  const token = Redacted.value(options.token)
  const host = options.host ?? "127.0.0.1"

  const tls = options.tls === true ? yield* Tls.make(host, openssl) : undefined
  // An HTTPS server emits the same events as an HTTP one: NodeHttpServer serves either.
  const nodeServer = tls === undefined
    ? Http.createServer()
    : Https.createServer({ key: tls.key, cert: tls.cert }) as unknown as Http.Server
  const server = yield* NodeHttpServer.make(() => nodeServer, { host, port: options.port ?? 0 }).pipe(
    Effect.mapError((cause) => new ListenError({ detail: `cannot listen: ${String(cause.cause)}`, cause }))
  )
  // Runs after every sandbox is killed (finalizers run in reverse) and before server.close waits for connections.
  yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer.closeAllConnections()))
  const address = server.address._tag === "TcpAddress" ? server.address : undefined
  if (address === undefined) return yield* new ListenError({ detail: "not listening on TCP" })
  const hostname = address.hostname === "0.0.0.0" || address.hostname === "::" ? "127.0.0.1" : address.hostname
  const url = `${tls === undefined ? "http" : "https"}://${
    hostname.includes(":") ? `[${hostname}]` : hostname
  }:${address.port}`
  // With TLS, app domains resolve to loopback (`*.localhost`) and carry the port, so that
  // `https://<domain>/koyeb-sandbox/` (Koyeb's JS SDK) reaches this server.
  const appDomain = tls === undefined
    ? (name: string) => `${name}-local.koyeb.app`
    : (name: string) => `${name}.${Tls.APP_DOMAIN_SUFFIX}${address.port === 443 ? "" : `:${address.port}`}`

  const store = yield* Ref.make(State.empty)
  const faults = yield* Faults.make
  const deployments = yield* Deployments.make({
    store,
    stepDelay: Duration.decode(options.stepDelay ?? "25 millis"),
    spawn,
    isolation: options.isolation,
    baseDir: options.baseDir,
    nextFault: faults.nextDeploymentFault
  })

  const emulator: KoyebEmulatorShape = {
    url,
    ...(tls === undefined ? {} : { caPath: tls.caPath }),
    requests: faults.requests,
    clearRequests: faults.clearRequests,
    failNext: (o) => Effect.withSpan(faults.failNext(o), "KoyebEmulator.failNext"),
    delay: (o) => Effect.withSpan(faults.delay(o), "KoyebEmulator.delay"),
    failNextDeployment: (o) => Effect.withSpan(faults.failNextDeployment(o), "KoyebEmulator.failNextDeployment"),
    failDeployment: (id, message) => Effect.withSpan(deployments.fail(id, message), "KoyebEmulator.failDeployment"),
    clearFaults: faults.clearFaults,
    state: Effect.map(Ref.get(store), State.snapshot)
  }

  const gateway = Gateway.make(store, deployments)
  const organizationId = Crypto.randomUUID()
  const router = Routes.make({
    store,
    deployments,
    organizationId,
    publicUrl: options.publicUrl ?? url,
    appDomain
  }).pipe(
    HttpRouter.concat(Instances.routes(store, organizationId)),
    HttpRouter.all("/koyeb-sandbox/*", gateway.executor),
    HttpRouter.all("/r/:key", gateway.exposed),
    HttpRouter.all("/r/:key/*", gateway.exposed),
    HttpRouter.concat(Faults.adminRoutes(emulator))
  )
  const routed = (yield* HttpRouter.toHttpApp(router)).pipe(
    Effect.catchTag(
      "RouteNotFound",
      () =>
        Effect.flatMap(
          rawUrl,
          (path) => path.startsWith("/v1/") ? Effect.succeed(notFound("Not Found")) : gateway.byDomain
        )
    )
  )

  const app = Effect.gen(function*() {
    const failed = yield* faults.edge
    if (Option.isSome(failed)) return failed.value
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = new URL(yield* rawUrl, "http://emulator").pathname
    if (path === "/v1" || path.startsWith("/v1/") || Faults.isAdmin(path)) {
      const auth = request.headers.authorization ?? ""
      if (!auth.startsWith("Bearer ") || !safeEqual(auth.slice("Bearer ".length), token)) {
        return json(errorBody(401, "UNAUTHENTICATED", "Invalid or missing API token"), 401)
      }
    }
    return yield* routed
  })

  yield* server.serve(app)
  return emulator
})
