/**
 * The local control plane: one executor process per sandbox (see `localRuntime`), the sandboxes
 * in a `Ref`, one lifecycle timer per sandbox in a `FiberMap`. Every time comes from `Clock`, so
 * a `TestClock` drives the deletion delays.
 *
 * @internal
 */
import {
  ControlPlane,
  type CreateOptions,
  type LifecycleOptions,
  type ProvisionedSandbox,
  type SandboxEndpoint,
  SandboxInfo,
  type WaitReadyOptions
} from "@effect-koyeb/core/ControlPlane"
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import { ControlPlaneError, InvalidArgument, SandboxNotFound, Timeout } from "@effect-koyeb/core/SandboxError"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import type { Options } from "../LocalControlPlane.js"
import { type Activity, idleMillis, makeActivity, trackClient } from "./activity.js"
import { healthy, type LocalExecutorProcess, type SpawnExecutor, spawnExecutor } from "./localRuntime.js"

interface Lifecycle {
  readonly idleTimeoutMillis: number
  readonly deleteAfterDelayMillis: number
  readonly deleteAfterInactivityDelayMillis: number
}

interface Entry {
  readonly info: SandboxInfo
  readonly process: LocalExecutorProcess
  readonly scope: Scope.CloseableScope
  readonly activity: Activity
  readonly enableTcpProxy: boolean
  readonly lifecycle: Lifecycle
}

const DEFAULT_IDLE_TIMEOUT = Duration.minutes(5)
const DEFAULT_WAIT_TIMEOUT = Duration.minutes(5)

const millis = (input: Duration.DurationInput | undefined, fallback = 0): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

const validate = (options: CreateOptions): Effect.Effect<void, InvalidArgument> => {
  for (const key of Object.keys(options.env ?? {})) {
    if (key === "SANDBOX_SECRET") {
      return Effect.fail(new InvalidArgument({ argument: "env", detail: "SANDBOX_SECRET is reserved" }))
    }
    if (key === "" || key.includes("=") || key.includes("\0")) {
      return Effect.fail(
        new InvalidArgument({ argument: "env", detail: `invalid variable name ${JSON.stringify(key)}` })
      )
    }
  }
  if (options.configFiles !== undefined && Object.keys(options.configFiles).length > 0) {
    return Effect.fail(
      new InvalidArgument({ argument: "configFiles", detail: "config files are not supported by the local backend" })
    )
  }
  return Effect.void
}

/**
 * When a sandbox is due for deletion: at `deleteAfterDelay` after its creation, or after
 * `idleTimeout + deleteAfterInactivityDelay` without traffic (checked every `tick`). Completes then;
 * never when neither applies.
 */
const due = (entry: Entry): Option.Option<Effect.Effect<void>> => {
  const { deleteAfterDelayMillis, deleteAfterInactivityDelayMillis, idleTimeoutMillis } = entry.lifecycle
  const inactivity = idleTimeoutMillis > 0 && deleteAfterInactivityDelayMillis > 0
    ? idleTimeoutMillis + deleteAfterInactivityDelayMillis
    : 0
  if (deleteAfterDelayMillis <= 0 && inactivity <= 0) return Option.none()
  const deadline = entry.info.createdAt.getTime() + deleteAfterDelayMillis
  const tick = Duration.millis(Math.min(1_000, Math.max(20, Math.floor(inactivity / 10))))
  const isDue = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    return (deleteAfterDelayMillis > 0 && now >= deadline) ||
      (inactivity > 0 && (yield* idleMillis(entry.activity)) >= inactivity)
  })
  // Checks every tick for inactivity, and never sleeps past the deadline.
  const checks = Schedule.spaced(inactivity > 0 ? tick : Duration.infinity).pipe(
    Schedule.modifyDelayEffect((_, delay) =>
      deleteAfterDelayMillis > 0
        ? Effect.map(
          Clock.currentTimeMillis,
          (now) => Duration.min(delay, Duration.millis(Math.max(0, deadline - now)))
        )
        : Effect.succeed(delay)
    )
  )
  return Option.some(Effect.asVoid(Effect.repeat(isDue, { schedule: checks, until: (yes) => yes })))
}

/** Builds a local control plane; closing the scope deletes every sandbox it created. */
export const make = Effect.fnUntraced(function*(options: Options = {}, spawn: SpawnExecutor = spawnExecutor) {
  const layerScope = yield* Effect.scope
  // The HTTP client of `connect`: the one provided, else one of its own (closed last).
  const httpClient = yield* Effect.serviceOption(HttpClient.HttpClient).pipe(
    Effect.flatMap(Option.match({
      onSome: Effect.succeed,
      onNone: () => Effect.map(Layer.build(NodeHttpClient.layerUndici), Context.get(HttpClient.HttpClient))
    }))
  )
  // Sandboxes are deleted in parallel when the layer's scope closes, after their timers are stopped.
  const sandboxesScope = yield* Scope.fork(layerScope, ExecutionStrategy.parallel)
  const timers = yield* FiberMap.make<string>()
  const sandboxes = yield* Ref.make<ReadonlyMap<string, Entry>>(new Map())

  const endpointOf = (entry: Entry): SandboxEndpoint => ({ url: entry.process.url, secret: entry.process.secret })
  const provisioned = (entry: Entry, ownsApp: boolean): ProvisionedSandbox => ({
    info: ownsApp === entry.info.ownsApp ? entry.info : new SandboxInfo({ ...entry.info, ownsApp }),
    endpoint: endpointOf(entry)
  })
  const lookup = (id: string) =>
    Effect.flatMap(Ref.get(sandboxes), (all) => {
      const entry = all.get(id)
      return entry === undefined ? Effect.fail(new SandboxNotFound({ id })) : Effect.succeed(entry)
    })

  const remove = (id: string): Effect.Effect<void> =>
    Ref.modify(sandboxes, (all): [Entry | undefined, ReadonlyMap<string, Entry>] => {
      const rest = new Map(all)
      rest.delete(id)
      return [all.get(id), rest]
    }).pipe(
      Effect.flatMap((entry) =>
        entry === undefined
          ? Effect.void
          : Effect.zipRight(FiberMap.remove(timers, id), Scope.close(entry.scope, Exit.void))
      ),
      Effect.uninterruptible
    )

  // One timer per sandbox, replaced on every lifecycle change; the deletion runs in the layer's
  // scope, since it stops the timer, which must not wait for itself.
  const schedule = (entry: Entry): Effect.Effect<void> =>
    Effect.gen(function*() {
      yield* FiberMap.remove(timers, entry.info.id)
      const timer = due(entry)
      if (Option.isSome(timer)) {
        yield* FiberMap.run(
          timers,
          entry.info.id,
          Effect.zipRight(timer.value, Effect.forkIn(remove(entry.info.id), layerScope))
        )
      }
    })

  const create = Effect.fn("LocalControlPlane.create")(function*(createOptions: CreateOptions) {
    yield* validate(createOptions)
    const id = Crypto.randomUUID()
    const secret = Redacted.make(Crypto.randomBytes(32).toString("base64url"))
    const scope = yield* Scope.fork(sandboxesScope, ExecutionStrategy.sequential)
    const executor = yield* spawn({
      id,
      secret,
      env: createOptions.env,
      isolation: options.isolation,
      baseDir: options.baseDir
    }).pipe(
      Scope.extend(scope),
      Effect.onError(() => Scope.close(scope, Exit.void)),
      Effect.catchTag("ExecutorStartError", (error) =>
        Effect.fail(
          new ControlPlaneError({
            reason: "Runtime",
            detail: error.detail,
            method: "POST",
            url: "local:/sandboxes",
            cause: error
          })
        ))
    )
    const info = new SandboxInfo({
      id,
      appId: createOptions.appId ?? Crypto.randomUUID(),
      name: createOptions.name ?? "quick-sandbox",
      region: "local",
      instanceType: createOptions.instanceType ?? "local",
      image: createOptions.image ?? "koyeb/sandbox",
      createdAt: new Date(yield* Clock.currentTimeMillis),
      ownsApp: createOptions.appId === undefined
    })
    const entry: Entry = {
      info,
      process: executor,
      scope,
      activity: yield* makeActivity,
      enableTcpProxy: createOptions.enableTcpProxy === true,
      lifecycle: {
        idleTimeoutMillis: millis(createOptions.idleTimeout, Duration.toMillis(DEFAULT_IDLE_TIMEOUT)),
        deleteAfterDelayMillis: millis(createOptions.deleteAfterDelay),
        deleteAfterInactivityDelayMillis: millis(createOptions.deleteAfterInactivityDelay)
      }
    }
    yield* Ref.update(sandboxes, (all) => new Map(all).set(id, entry))
    // A crashed executor leaves nothing behind either.
    // Interruptible even when create runs uninterruptibly (as in `acquireRelease`): closing the
    // sandbox scope interrupts this watcher before the executor is killed.
    yield* executor.exited.pipe(
      Effect.zipRight(Effect.forkIn(remove(id), layerScope)),
      Effect.interruptible,
      Effect.forkIn(scope)
    )
    yield* schedule(entry)
    yield* Effect.annotateCurrentSpan("sandbox.id", id)
    return provisioned(entry, info.ownsApp)
  })

  const waitReady = Effect.fn("LocalControlPlane.waitReady")(function*(id: string, waitOptions?: WaitReadyOptions) {
    const timeout = Duration.decode(waitOptions?.timeout ?? DEFAULT_WAIT_TIMEOUT)
    const pollMax = Duration.millis(millis(waitOptions?.pollInterval, 500))
    // Doubling from 100 ms (at most the poll interval), capped at the poll interval.
    const backoff: Schedule.Schedule<unknown, Entry> = Schedule.union(
      Schedule.exponential(Duration.min(pollMax, "100 millis")),
      Schedule.spaced(pollMax)
    )
    const entry = yield* lookup(id).pipe(
      Effect.repeat({ schedule: Schedule.passthrough(backoff), until: (entry) => healthy(entry.process.url) }),
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new Timeout({ operation: `waitReady(${id})`, timeoutMillis: Duration.toMillis(timeout) })
      })
    )
    return endpointOf(entry)
  })

  const updateLifecycle = Effect.fn("LocalControlPlane.updateLifecycle")(
    function*(id: string, lifecycle: LifecycleOptions) {
      const entry = yield* lookup(id)
      const updated: Entry = {
        ...entry,
        lifecycle: {
          ...entry.lifecycle,
          ...(lifecycle.deleteAfterDelay === undefined
            ? {}
            : { deleteAfterDelayMillis: millis(lifecycle.deleteAfterDelay) }),
          ...(lifecycle.deleteAfterInactivityDelay === undefined
            ? {}
            : { deleteAfterInactivityDelayMillis: millis(lifecycle.deleteAfterInactivityDelay) })
        }
      }
      yield* Ref.update(sandboxes, (all) => all.has(id) ? new Map(all).set(id, updated) : all)
      yield* schedule(updated)
    }
  )

  const connect = (endpoint: SandboxEndpoint): Effect.Effect<ExecutorClient.ExecutorClientShape> =>
    ExecutorClient.make(endpoint).pipe(
      Effect.provideService(HttpClient.HttpClient, httpClient),
      Effect.flatMap((client) =>
        Effect.map(Ref.get(sandboxes), (all) => {
          const entry = [...all.values()].find((e) => e.process.url === endpoint.url)
          return entry === undefined ? client : trackClient(client, entry.activity)
        })
      )
    )

  return ControlPlane.of({
    create,
    get: Effect.fn("LocalControlPlane.get")(function*(id: string) {
      return provisioned(yield* lookup(id), false)
    }),
    list: Effect.map(Ref.get(sandboxes), (all) => [...all.values()].map((entry) => entry.info)).pipe(
      Effect.withSpan("LocalControlPlane.list")
    ),
    delete: Effect.fn("LocalControlPlane.delete")(function*(info: SandboxInfo) {
      yield* remove(info.id)
    }),
    waitReady,
    domain: Effect.fn("LocalControlPlane.domain")(function*(id: string) {
      const entry = yield* lookup(id)
      return Option.some(`127.0.0.1:${entry.process.proxyPort}`)
    }),
    exposedUrl: Effect.fn("LocalControlPlane.exposedUrl")(function*(id: string) {
      const entry = yield* lookup(id)
      return `http://127.0.0.1:${entry.process.proxyPort}/`
    }),
    tcpProxy: Effect.fn("LocalControlPlane.tcpProxy")(function*(id: string) {
      const entry = yield* lookup(id)
      return entry.enableTcpProxy ? Option.some({ host: "127.0.0.1", port: entry.process.proxyPort }) : Option.none()
    }),
    connect,
    updateLifecycle
  })
})
