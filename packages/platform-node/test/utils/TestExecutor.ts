/**
 * The executor that integration tests talk to: the stock Go executor when `EXECUTOR_URL` and
 * `EXECUTOR_SECRET` are set, else an in-process `ExecutorServer` on 127.0.0.1 with a random secret.
 */
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import * as ExecutorServer from "@effect-koyeb/platform-node/ExecutorServer"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"

/** Where the test executor is; `stock` is true for the real Go executor (skip tests of our extensions). */
export class TestExecutorEndpoint extends Context.Tag("test/TestExecutorEndpoint")<TestExecutorEndpoint, {
  readonly url: string
  readonly secret: Redacted.Redacted<string>
  readonly stock: boolean
}>() {}

/** The endpoint: the stock executor from the environment, or a scoped in-process server. */
export const layerEndpoint: Layer.Layer<TestExecutorEndpoint, ExecutorServer.ExecutorServerError> = Layer.scoped(
  TestExecutorEndpoint,
  Effect.suspend((): Effect.Effect<TestExecutorEndpoint["Type"], ExecutorServer.ExecutorServerError, Scope.Scope> => {
    const url = process.env.EXECUTOR_URL
    const secret = process.env.EXECUTOR_SECRET
    if (url !== undefined && url !== "" && secret !== undefined && secret !== "") {
      return Effect.succeed({ url, secret: Redacted.make(secret), stock: true })
    }
    const generated = Redacted.make(Crypto.randomBytes(24).toString("base64url"))
    return Effect.map(
      ExecutorServer.make({ secret: generated, killGracePeriod: "500 millis" }),
      (address) => ({ url: address.url, secret: generated, stock: false })
    )
  })
)

/** An `ExecutorClient` bound to the test executor over `http`, plus the endpoint itself. */
const clientOver = (
  http: Layer.Layer<HttpClient.HttpClient>
): Layer.Layer<ExecutorClient.ExecutorClient | TestExecutorEndpoint, ExecutorServer.ExecutorServerError> =>
  Layer.unwrapEffect(
    Effect.map(TestExecutorEndpoint, ({ secret, url }) => ExecutorClient.layer({ url, secret }))
  ).pipe(
    Layer.provide(http),
    Layer.provideMerge(layerEndpoint)
  )

/** An `ExecutorClient` bound to the test executor, plus the endpoint itself. */
export const layerClient: Layer.Layer<
  ExecutorClient.ExecutorClient | TestExecutorEndpoint,
  ExecutorServer.ExecutorServerError
> = clientOver(NodeHttpClient.layerUndici)

/** Like `layerClient`, counting in `counter.probes` the `/health` requests that reach the network. */
export const layerClientCountingProbes = (
  counter: { probes: number }
): Layer.Layer<ExecutorClient.ExecutorClient | TestExecutorEndpoint, ExecutorServer.ExecutorServerError> =>
  clientOver(
    Layer.effect(
      HttpClient.HttpClient,
      Effect.map(
        HttpClient.HttpClient,
        HttpClient.tapRequest((request) =>
          Effect.sync(() => {
            if (new URL(request.url).pathname.endsWith("/health")) counter.probes++
          })
        )
      )
    ).pipe(Layer.provide(NodeHttpClient.layerUndici))
  )

/**
 * `client` as Koyeb's Go executor presents itself: `/health` lists no capabilities, so services
 * take the stock protocol (`capabilities` is what they read; `health` is hidden too, for callers
 * that look at it).
 */
export const withoutCapabilities = (
  client: ExecutorClient.ExecutorClientShape
): ExecutorClient.ExecutorClientShape => ({
  ...client,
  health: Effect.map(client.health, ({ status }) => ({ status })),
  capabilities: Effect.succeed(new Set())
})

/** The `ExecutorClient` below, `withoutCapabilities`: services built on it take the stock protocol. */
export const hideCapabilities: Layer.Layer<ExecutorClient.ExecutorClient, never, ExecutorClient.ExecutorClient> = Layer
  .effect(ExecutorClient.ExecutorClient, Effect.map(ExecutorClient.ExecutorClient, withoutCapabilities))
