/**
 * The local control plane: one executor process per sandbox (see `localRuntime`), the sandboxes
 * in a `Ref`, one lifecycle timer and one sleep timer per sandbox in `FiberMap`s. Every time comes
 * from `Clock`, so a `TestClock` drives the deletion delays. As on Koyeb, a sandbox with an idle
 * timeout sleeps after that long without calls (its executor stopped, its files kept) and the next
 * call through its `connect` client (or `waitReady`) wakes it: a new executor on the same directory
 * and the same loopback ports, so its endpoint and exposed URL do not change.
 *
 * @internal
 */
import {
  checkEnv,
  ControlPlane,
  type CreateOptions,
  type LifecycleOptions,
  type ProvisionedSandbox,
  type SandboxEndpoint,
  SandboxInfo,
  type WaitReadyOptions
} from "@effect-koyeb/core/ControlPlane"
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import type { InvalidArgument } from "@effect-koyeb/core/SandboxError"
import { ControlPlaneError, ExecutorError, SandboxNotFound, Timeout } from "@effect-koyeb/core/SandboxError"
import { SandboxIsolation, SandboxLimits } from "@effect-koyeb/core/SandboxSchema"
import * as Secrets from "@effect-koyeb/core/Secrets"
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
import {
  type Activity,
  connected,
  idleMillis,
  makeActivity,
  touch,
  trackClient,
  untilActive,
  untilIdleFor
} from "./activity.js"
import {
  type ExecutorStartError,
  type LocalExecutorProcess,
  planConfigFiles,
  removeSandboxDir,
  resolveIsolation,
  type SpawnExecutor,
  spawnExecutor
} from "./localRuntime.js"
import { resolveTemplates } from "./localSecrets.js"
import type { AppliedLimits } from "./sandboxLimits.js"
import { configFiles, instanceLimits, mainCommand } from "./sandboxStart.js"

interface Lifecycle {
  readonly idleTimeoutMillis: number
  readonly deleteAfterDelayMillis: number
  readonly deleteAfterInactivityDelayMillis: number
}

/** Whether a sandbox runs or sleeps; one per sandbox, shared by every copy of its entry. */
interface Power {
  /** The executor running now, or the last one while asleep. */
  current: LocalExecutorProcess
  asleep: boolean
  /** The current executor answered `/health` when it started (see `spawnExecutor`) and has not exited since. */
  running: boolean
  /** Serialises falling asleep and waking. */
  readonly lock: Effect.Semaphore
  /** Starts a new executor on the sandbox's directory and ports, in the sandbox's scope. */
  readonly respawn: Effect.Effect<LocalExecutorProcess, ExecutorStartError | InvalidArgument>
}

interface Entry {
  readonly info: SandboxInfo
  /** The first executor: its URL, ports and secret stay the sandbox's across sleeps. */
  readonly process: LocalExecutorProcess
  readonly power: Power
  readonly scope: Scope.CloseableScope
  readonly activity: Activity
  readonly enableTcpProxy: boolean
  readonly lifecycle: Lifecycle
}

const DEFAULT_IDLE_TIMEOUT = Duration.minutes(5)
const DEFAULT_WAIT_TIMEOUT = Duration.minutes(5)

const millis = (input: Duration.DurationInput | undefined, fallback = 0): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

const sandboxLimits = (applied: AppliedLimits): SandboxLimits =>
  new SandboxLimits({
    ...(applied.memoryBytes === undefined ? {} : { memoryBytes: applied.memoryBytes }),
    ...(applied.processes === undefined ? {} : { processes: applied.processes }),
    ...(applied.detail === undefined ? {} : { detail: applied.detail })
  })

/**
 * When a sandbox is due for deletion: at `deleteAfterDelay` after its creation, or after
 * `idleTimeout + deleteAfterInactivityDelay` without traffic. Completes then; never when neither
 * applies. Waits for the deadlines (no polling).
 */
const due = (entry: Entry): Option.Option<Effect.Effect<void>> => {
  const { deleteAfterDelayMillis, deleteAfterInactivityDelayMillis, idleTimeoutMillis } = entry.lifecycle
  const inactivity = idleTimeoutMillis > 0 && deleteAfterInactivityDelayMillis > 0
    ? idleTimeoutMillis + deleteAfterInactivityDelayMillis
    : 0
  if (deleteAfterDelayMillis <= 0 && inactivity <= 0) return Option.none()
  const deadline = entry.info.createdAt.getTime() + deleteAfterDelayMillis
  const afterDelay = deleteAfterDelayMillis > 0
    ? Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sleep(Math.max(0, deadline - now)))
    : Effect.never
  const afterInactivity = inactivity > 0 ? untilIdleFor(entry.activity, inactivity) : Effect.never
  return Option.some(Effect.race(afterDelay, afterInactivity))
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
  // Where `{{ secret.NAME }}` references are read, when the layer was built with a `Secrets` service.
  const secretsService = yield* Effect.serviceOption(Secrets.Secrets)
  // Sandboxes are deleted in parallel when the layer's scope closes, after their timers are stopped.
  const sandboxesScope = yield* Scope.fork(layerScope, ExecutionStrategy.parallel)
  const timers = yield* FiberMap.make<string>()
  const sleepers = yield* FiberMap.make<string>()
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
          : Effect.zipRight(
            Effect.zipRight(FiberMap.remove(timers, id), FiberMap.remove(sleepers, id)),
            Scope.close(entry.scope, Exit.void)
          )
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
    yield* checkEnv(createOptions.env)
    const main = yield* mainCommand(createOptions.entrypoint, createOptions.command, createOptions.args)
    const limits = yield* instanceLimits(createOptions.instanceType)
    const templates = yield* resolveTemplates(
      createOptions.env ?? {},
      yield* configFiles(createOptions.configFiles),
      createOptions.name ?? "quick-sandbox",
      secretsService
    )
    const files = templates.files
    const id = Crypto.randomUUID()
    const secret = Redacted.make(Crypto.randomBytes(32).toString("base64url"))
    const scope = yield* Scope.fork(sandboxesScope, ExecutionStrategy.sequential)
    // Closed last: the directory outlives each executor (a sleep keeps it), not the sandbox.
    yield* Scope.addFinalizer(scope, removeSandboxDir(id, options.baseDir))
    // `ports`: where a waking sandbox listens again.
    const startExecutor = (ports?: { readonly api: number; readonly proxy: number }) =>
      Effect.gen(function*() {
        const isolation = yield* resolveIsolation(options.isolation ?? "auto")
        const plan = yield* planConfigFiles(files, isolation, id, options.baseDir)
        return yield* spawn({
          id,
          secret,
          env: templates.env,
          isolation,
          outbound: options.outbound,
          baseDir: options.baseDir,
          main,
          configFiles: plan,
          limits,
          keepDirectory: true,
          ports
        })
      }).pipe(Scope.extend(scope))
    const executor = yield* startExecutor().pipe(
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
      ownsApp: createOptions.appId === undefined,
      isolation: new SandboxIsolation({ mode: executor.isolation, network: executor.network }),
      ...(executor.limits === undefined ? {} : { limits: sandboxLimits(executor.limits) }),
      // Recorded only: no image is pulled, and no process here is more privileged than the others.
      ...(createOptions.privileged === undefined ? {} : { privileged: createOptions.privileged }),
      ...(createOptions.registrySecret === undefined ? {} : { registrySecret: createOptions.registrySecret })
    })
    const power: Power = {
      current: executor,
      asleep: false,
      running: true,
      lock: yield* Effect.makeSemaphore(1),
      respawn: startExecutor({ api: executor.port, proxy: executor.proxyPort })
    }
    const entry: Entry = {
      info,
      process: executor,
      power,
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
    yield* watch(entry, executor)
    yield* schedule(entry)
    yield* FiberMap.run(sleepers, id, sleepTimer(entry))
    yield* Effect.annotateCurrentSpan("sandbox.id", id)
    return provisioned(entry, info.ownsApp)
  })

  /**
   * A crashed executor leaves nothing behind either; one stopped by a sleep is expected. Interruptible
   * even when create runs uninterruptibly (as in `acquireRelease`): closing the sandbox scope
   * interrupts this watcher before the executor is killed.
   */
  const watch = (entry: Entry, executor: LocalExecutorProcess) =>
    executor.exited.pipe(
      Effect.zipRight(Effect.suspend(() => {
        if (entry.power.current !== executor) return Effect.void
        entry.power.running = false
        return entry.power.asleep ? Effect.void : Effect.forkIn(remove(entry.info.id), layerScope)
      })),
      Effect.interruptible,
      Effect.forkIn(entry.scope),
      Effect.asVoid
    )

  /**
   * Stops the executor when the sandbox has been idle for its idle timeout, keeping the files (its
   * processes end, as in Koyeb's deep sleep). Checked under the lock: a call that began meanwhile
   * keeps it awake, or waits for the lock and wakes it.
   */
  const fallAsleep = (entry: Entry) =>
    entry.power.lock.withPermits(1)(Effect.flatMap(idleMillis(entry.activity), (idleFor) => {
      if (entry.power.asleep || idleFor < entry.lifecycle.idleTimeoutMillis) return Effect.void
      entry.power.asleep = true
      return entry.power.current.kill
    }))

  /** Wakes a sleeping sandbox: a new executor on its directory and ports. */
  const wake = (entry: Entry): Effect.Effect<void, ExecutorStartError | InvalidArgument> =>
    entry.power.lock.withPermits(1)(Effect.suspend(() => {
      if (!entry.power.asleep) return Effect.void
      return entry.power.respawn.pipe(
        Effect.tap((executor) =>
          Effect.suspend(() => {
            entry.power.current = executor
            entry.power.asleep = false
            entry.power.running = true
            return watch(entry, executor)
          })
        ),
        // Waking is traffic: the idle timer counts from now, not from the last call before the sleep.
        Effect.zipLeft(touch(entry.activity)),
        Effect.asVoid
      )
    }))

  /**
   * Puts the sandbox to sleep after `idleTimeout` without calls or a connection open to its exposed
   * port (looked at when the timeout is reached), then waits for the call that wakes it: no polling.
   */
  const sleepTimer = (entry: Entry): Effect.Effect<void> => {
    const idle = entry.lifecycle.idleTimeoutMillis
    if (idle <= 0) return Effect.void
    const busy = () => !entry.power.asleep && connected(entry.process.proxyPort)
    return Effect.forever(
      untilIdleFor(entry.activity, idle, busy).pipe(
        Effect.zipRight(fallAsleep(entry)),
        Effect.zipRight(Effect.suspend(() => entry.power.asleep ? untilActive(entry.activity) : Effect.void))
      )
    )
  }

  const wakeFailed = (id: string) => (error: ExecutorStartError | InvalidArgument) =>
    new ControlPlaneError({
      reason: "Runtime",
      detail: `the sandbox could not wake: ${error.detail}`,
      method: "POST",
      url: `local:/sandboxes/${id}`,
      cause: error
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
      // A sleeping sandbox is woken, as a request through Koyeb's gateway does.
      Effect.tap((entry) => Effect.mapError(wake(entry), wakeFailed(id))),
      // Its executor answered /health when it started: no request while it still runs.
      Effect.repeat({ schedule: Schedule.passthrough(backoff), until: (entry) => entry.power.running }),
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
          // Every call wakes a sleeping sandbox first; one that cannot wake answers like Koyeb's gateway: 503.
          return entry === undefined ? client : trackClient(
            client,
            entry.activity,
            Effect.mapError(wake(entry), (error) =>
              new ExecutorError({
                reason: "Status",
                status: 503,
                endpoint: endpoint.url,
                detail: `the sandbox could not wake: ${error.detail}`,
                cause: error
              }))
          )
        })
      )
    )

  return ControlPlane.of({
    create,
    get: Effect.fn("LocalControlPlane.get")(function*(id: string) {
      return provisioned(yield* lookup(id), false)
    }),
    list: Effect.map(
      Ref.get(sandboxes),
      (all) =>
        [...all.values()].map((entry) =>
          new SandboxInfo({ ...entry.info, status: entry.power.asleep ? "SLEEPING" : "HEALTHY" })
        )
    ).pipe(
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
