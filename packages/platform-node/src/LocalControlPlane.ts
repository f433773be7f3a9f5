/**
 * The embedded default `ControlPlane`: real sandboxes on this machine, no account and no network.
 * Each sandbox is its own root directory and executor process on a free loopback port, isolated
 * with bubblewrap (read-only host root, private /tmp and home, own PID namespace) when available.
 * Without bubblewrap (`isolation: "none"`) a sandbox is a plain process of the current user:
 * that is NOT a security boundary.
 *
 * Lifecycle, locally: `deleteAfterDelay` deletes that long after creation. A local sandbox never
 * sleeps (there is nothing to save), but `idleTimeout` still marks when it would have fallen
 * asleep: with `deleteAfterInactivityDelay` set and a non-zero `idleTimeout`, the sandbox is deleted
 * after `idleTimeout + deleteAfterInactivityDelay` without executor traffic through `connect`
 * clients (a call in flight, such as an open stream, counts as traffic). Traffic to an exposed
 * port is not counted. The image, entrypoint, command, args, registry secret, mesh and
 * privileged options are recorded or ignored: commands run on the host's own binaries.
 *
 * @since 0.1.0
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
import type { DeploymentFailed } from "@effect-koyeb/core/SandboxError"
import { ApiError, InvalidArgument, SandboxNotFound, Timeout } from "@effect-koyeb/core/SandboxError"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import { type Activity, idleMillis, makeActivity, trackClient } from "./internal/activity.js"
import { healthy, type IsolationOption, type LocalExecutorProcess, spawnExecutor } from "./internal/localRuntime.js"

/**
 * Options of the local control plane.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `"auto"` (default): bubblewrap when `bwrap` works here, else `"none"` with a warning. */
  readonly isolation?: IsolationOption | undefined
  /** Parent of the sandbox directories (default `<os tmpdir>/effect-koyeb`). */
  readonly baseDir?: string | undefined
}

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
  lifecycle: Lifecycle
  timer: Fiber.RuntimeFiber<void> | undefined
}

const DEFAULT_IDLE_TIMEOUT = Duration.minutes(5)
const DEFAULT_WAIT_TIMEOUT = Duration.minutes(5)

const millis = (input: Duration.DurationInput | undefined, fallback = 0): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

const notFound = (id: string) => new SandboxNotFound({ id })

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
 * Builds a local control plane; closing the scope deletes every sandbox it created.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const layerScope = yield* Effect.scope
  // Sandboxes are deleted in parallel when the layer's scope closes.
  const sandboxesScope = yield* Scope.fork(layerScope, ExecutionStrategy.parallel)
  const httpClient = yield* HttpClient.HttpClient
  const sandboxes = new Map<string, Entry>()

  const endpointOf = (entry: Entry): SandboxEndpoint => ({ url: entry.process.url, secret: entry.process.secret })
  const provisioned = (entry: Entry, ownsApp: boolean): ProvisionedSandbox => ({
    info: ownsApp === entry.info.ownsApp ? entry.info : new SandboxInfo({ ...entry.info, ownsApp }),
    endpoint: endpointOf(entry)
  })
  const lookup = (id: string) => {
    const entry = sandboxes.get(id)
    return entry === undefined ? Effect.fail(notFound(id)) : Effect.succeed(entry)
  }

  const remove = (id: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      const entry = sandboxes.get(id)
      if (entry === undefined) return Effect.void
      sandboxes.delete(id)
      const timer = entry.timer
      entry.timer = undefined
      return Effect.zipRight(
        timer === undefined ? Effect.void : Fiber.interrupt(timer),
        Scope.close(entry.scope, Exit.void)
      )
    }).pipe(Effect.uninterruptible)

  // One timer fiber per sandbox, restarted on every lifecycle change; deletion runs in the layer
  // scope so that the timer is not interrupting itself.
  const schedule = (entry: Entry): Effect.Effect<void> =>
    Effect.gen(function*() {
      if (entry.timer !== undefined) yield* Fiber.interrupt(entry.timer)
      entry.timer = undefined
      const { deleteAfterDelayMillis, deleteAfterInactivityDelayMillis, idleTimeoutMillis } = entry.lifecycle
      const inactivity = idleTimeoutMillis > 0 && deleteAfterInactivityDelayMillis > 0
        ? idleTimeoutMillis + deleteAfterInactivityDelayMillis
        : 0
      if (deleteAfterDelayMillis <= 0 && inactivity <= 0) return
      const deadline = entry.info.createdAt.getTime() + deleteAfterDelayMillis
      const tick = Duration.millis(Math.min(1_000, Math.max(20, Math.floor(inactivity / 10))))
      const loop: Effect.Effect<void> = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (deleteAfterDelayMillis > 0 && now >= deadline) return
        if (inactivity > 0 && idleMillis(entry.activity) >= inactivity) return
        const untilDeadline = deleteAfterDelayMillis > 0 ? deadline - now : Infinity
        yield* Effect.sleep(
          inactivity > 0 ? Duration.min(tick, Duration.millis(untilDeadline)) : Duration.millis(untilDeadline)
        )
        return yield* loop
      })
      entry.timer = yield* loop.pipe(
        Effect.zipRight(Effect.forkIn(remove(entry.info.id), layerScope)),
        Effect.asVoid,
        Effect.forkIn(layerScope)
      )
    })

  const create = Effect.fn("LocalControlPlane.create")(function*(createOptions: CreateOptions) {
    yield* validate(createOptions)
    const id = Crypto.randomUUID()
    const secret = Redacted.make(Crypto.randomBytes(32).toString("base64url"))
    const scope = yield* Scope.fork(sandboxesScope, ExecutionStrategy.sequential)
    const executor = yield* spawnExecutor({
      id,
      secret,
      env: createOptions.env,
      isolation: options.isolation,
      baseDir: options.baseDir
    }).pipe(
      Scope.extend(scope),
      Effect.onError(() => Scope.close(scope, Exit.void)),
      Effect.catchTag("DeploymentFailed", (error) =>
        Effect.fail(
          new ApiError({
            status: 500,
            code: "LOCAL_EXECUTOR_FAILED",
            detail: error.detail ?? error.message,
            method: "POST",
            url: "local:/sandboxes"
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
      activity: makeActivity(),
      enableTcpProxy: createOptions.enableTcpProxy === true,
      lifecycle: {
        idleTimeoutMillis: millis(createOptions.idleTimeout, Duration.toMillis(DEFAULT_IDLE_TIMEOUT)),
        deleteAfterDelayMillis: millis(createOptions.deleteAfterDelay),
        deleteAfterInactivityDelayMillis: millis(createOptions.deleteAfterInactivityDelay)
      },
      timer: undefined
    }
    sandboxes.set(id, entry)
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
    const pollMax = millis(waitOptions?.pollInterval, 500)
    const poll = (delay: number): Effect.Effect<SandboxEndpoint, DeploymentFailed | SandboxNotFound> =>
      Effect.gen(function*() {
        const entry = yield* lookup(id)
        if (yield* healthy(entry.process.url)) return endpointOf(entry)
        yield* Effect.sleep(Duration.millis(delay))
        return yield* poll(Math.min(delay * 2, pollMax))
      })
    return yield* poll(Math.min(100, pollMax)).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new Timeout({ operation: `waitReady(${id})`, timeoutMillis: Duration.toMillis(timeout) })
      })
    )
  })

  const updateLifecycle = Effect.fn("LocalControlPlane.updateLifecycle")(
    function*(id: string, lifecycle: LifecycleOptions) {
      const entry = yield* lookup(id)
      entry.lifecycle = {
        ...entry.lifecycle,
        ...(lifecycle.deleteAfterDelay === undefined
          ? {}
          : { deleteAfterDelayMillis: millis(lifecycle.deleteAfterDelay) }),
        ...(lifecycle.deleteAfterInactivityDelay === undefined
          ? {}
          : { deleteAfterInactivityDelayMillis: millis(lifecycle.deleteAfterInactivityDelay) })
      }
      yield* schedule(entry)
    }
  )

  const connect = (endpoint: SandboxEndpoint): Effect.Effect<ExecutorClient.ExecutorClientShape> =>
    ExecutorClient.make(endpoint).pipe(
      Effect.provideService(HttpClient.HttpClient, httpClient),
      Effect.map((client) => {
        const entry = [...sandboxes.values()].find((e) => e.process.url === endpoint.url)
        return entry === undefined ? client : trackClient(client, entry.activity)
      })
    )

  return ControlPlane.of({
    create,
    get: Effect.fn("LocalControlPlane.get")(function*(id: string) {
      return provisioned(yield* lookup(id), false)
    }),
    list: Effect.sync(() => [...sandboxes.values()].map((entry) => entry.info)).pipe(
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

/**
 * The local control plane as a layer; closing the layer's scope deletes every sandbox it created.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<ControlPlane> =>
  Layer.scoped(ControlPlane, make(options)).pipe(Layer.provide(NodeHttpClient.layerUndici))
