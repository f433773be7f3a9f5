/**
 * The emulator's deployment lifecycle: PENDING → PROVISIONING → STARTING → HEALTHY (the executor
 * is up), replacement of the previous deployment, ERROR (a fault, a crash, a failed start),
 * cancellation, service deletion, the `delete_after_create` timer, sleep and wake: a healthy
 * service whose definition scales to zero goes to SLEEPING (its executor stopped, its sandbox
 * directory kept) after `deep_sleep_value` seconds without gateway traffic, and is deleted
 * `delete_after_sleep` seconds later unless a gateway request wakes it first: SLEEPING → STARTING
 * → HEALTHY, a new executor on the same directory (files kept, processes gone, as after Koyeb's
 * deep sleep). Each deployment's progression (or wake) is one fiber of a `FiberMap`, each
 * service's deletion timer and idle timer others; every time comes from `Clock`, so a `TestClock`
 * drives the whole lifecycle.
 *
 * @internal
 */
import { deepSleepSeconds, DefinitionView } from "@effect-koyeb/core/KoyebWire"
import { SandboxNotFound } from "@effect-koyeb/core/SandboxError"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as FiberMap from "effect/FiberMap"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import type { DeploymentFaultOptions } from "../../KoyebEmulator.js"
import {
  type IsolationOption,
  type LocalExecutorProcess,
  removeSandboxDir,
  type SpawnExecutor
} from "../localRuntime.js"
import { spawnOptions } from "./sandboxOptions.js"
import * as State from "./state.js"
import type { DeploymentRecord, ServiceRecord, Store } from "./state.js"
import type { ParsedDefinition } from "./validation.js"

/** What drives deployments. */
export interface Deployments {
  /** Creates a deployment of `service` (which must be stored) and starts its progression. */
  readonly start: (service: ServiceRecord, definition: ParsedDefinition, parentId: string) => Effect.Effect<void>
  /** Cancels the deployments of a service still on their way (neither active nor finished). */
  readonly cancelPending: (serviceId: string) => Effect.Effect<void>
  /** Deletes a service at once, then kills and forgets its deployments. */
  readonly deleteService: (serviceId: string) => Effect.Effect<void>
  /** (Re)arms the service's `delete_after_create` timer from its creation time. */
  readonly scheduleDeletion: (serviceId: string) => Effect.Effect<void>
  /** Drives a deployment (or a service's latest deployment) to ERROR now, killing its executor. */
  readonly fail: (id: string, message?: string) => Effect.Effect<void, SandboxNotFound>
  /**
   * The executor of a deployment, woken first when it sleeps (the wait is bounded by
   * `WAKE_TIMEOUT`); undefined when it has none (not started yet, stopped, failed, gone).
   */
  readonly wake: (deploymentId: string) => Effect.Effect<LocalExecutorProcess | undefined>
  /**
   * Counts a gateway exchange with a service as held traffic until the returned function is called
   * (idempotent): as on Koyeb, a held connection keeps the service awake.
   */
  readonly hold: (serviceId: string) => () => void
}

/** Longest wait of a gateway request for a sleeping sandbox to wake. */
const WAKE_TIMEOUT = Duration.seconds(30)

/** Options of `make`. */
export interface DeploymentsOptions {
  readonly store: Ref.Ref<Store>
  /** Time spent in each status before the next one. */
  readonly stepDelay: Duration.Duration
  readonly spawn: SpawnExecutor
  readonly isolation: IsolationOption | undefined
  readonly baseDir: string | undefined
  /** Takes the fault armed for the next deployment, if any. */
  readonly nextFault: Effect.Effect<DeploymentFaultOptions | undefined>
}

const emulatedFault = "Instance stopped unexpectedly (emulated fault)"

/** Seconds without traffic before a service of this definition sleeps (its `deep_sleep_value`); 0: never. */
const sleepAfterOf = (definition: ParsedDefinition): number =>
  Option.match(Schema.decodeUnknownOption(DefinitionView)(definition.raw), {
    onNone: () => 0,
    onSome: deepSleepSeconds
  })

/** Builds the lifecycle; closing the scope stops every progression, then kills every executor. */
export const make = Effect.fnUntraced(function*(options: DeploymentsOptions) {
  const { store } = options
  const emulatorScope = yield* Effect.scope
  // Finalizers run in reverse order: the fibers are interrupted first, then the executors are killed.
  const executors = yield* Scope.fork(emulatorScope, ExecutionStrategy.parallel)
  const progressions = yield* FiberMap.make<string>()
  const timers = yield* FiberMap.make<string>()
  const sleepers = yield* FiberMap.make<string>()
  // Wakes in progress by deployment id: the requests that arrive meanwhile wait for the same one.
  const wakes = new Map<string, Deferred.Deferred<void>>()
  // The loopback ports of each deployment's executor: a woken one listens on them again, so the
  // address of its TCP proxy does not change.
  const portsOf = new Map<string, { readonly api: number; readonly proxy: number }>()
  // Gateway exchanges in progress by service.
  const held = new Map<string, number>()
  const hold = (serviceId: string) => {
    held.set(serviceId, (held.get(serviceId) ?? 0) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (held.get(serviceId) ?? 1) - 1
      if (left > 0) held.set(serviceId, left)
      else held.delete(serviceId)
    }
  }

  const update = (f: (store: Store) => Store) => Ref.update(store, f)

  const touch = (id: string, status: string, stamp: (now: number) => Partial<DeploymentRecord> = () => ({})) =>
    Effect.flatMap(
      Clock.currentTimeMillis,
      (now) => update(State.updateDeployment(id, (d) => ({ ...d, status, updatedAt: now, ...stamp(now) })))
    )

  /** `state` keeps listing the executor until it is dead, so leak checks see dying sandboxes too. */
  const killExecutor = (id: string) =>
    Ref.modify(store, (s) => [
      s.deployments.get(id)?.scope,
      State.updateDeployment(id, (d) => ({ ...d, scope: undefined }))(s)
    ]).pipe(
      Effect.flatMap((scope) => scope === undefined ? Effect.void : Scope.close(scope, Exit.void)),
      Effect.ensuring(update(State.updateDeployment(id, (d) => ({ ...d, executor: undefined }))))
    )

  /** Stops a deployment's progression and kills its executor (never called from its own fiber). */
  const teardown = (id: string) => Effect.zipRight(FiberMap.remove(progressions, id), killExecutor(id))

  /** ERRORING while the executor is killed, then ERROR: a client that sees ERROR sees a dead sandbox. */
  const markFailed = (id: string, message: string) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      yield* update((s) => {
        const serviceId = s.deployments.get(id)?.serviceId ?? ""
        const failed = State.updateDeployment(id, (d) => ({
          ...d,
          status: "ERRORING",
          updatedAt: now,
          messages: [...d.messages, message]
        }))(s)
        return s.services.get(serviceId)?.latestDeploymentId === id
          ? State.updateService(serviceId, (service) => ({ ...service, status: "UNHEALTHY", updatedAt: now }))(failed)
          : failed
      })
      yield* killExecutor(id)
      yield* touch(id, "ERROR", (now) => ({ terminatedAt: now }))
    }).pipe(Effect.uninterruptible)

  /** Deletes a service from a fiber of its own (a timer must not wait for its own removal). */
  const deleteLater = (serviceId: string) => Effect.asVoid(Effect.forkIn(deleteService(serviceId), emulatorScope))

  /** Kills the executor and keeps its scope: the sandbox directory stays for the wake. */
  const stopExecutor = (id: string) =>
    Effect.flatMap(Ref.get(store), (s) => s.deployments.get(id)?.executor?.kill ?? Effect.void).pipe(
      Effect.ensuring(update(State.updateDeployment(id, (d) => ({ ...d, executor: undefined }))))
    )

  /**
   * SLEEPING: the executor is stopped (its files kept); the service is deleted `delete_after_sleep`
   * seconds later, if set and nothing wakes it first.
   */
  const fallAsleep = (serviceId: string, deploymentId: string) =>
    Effect.gen(function*() {
      yield* FiberMap.remove(progressions, deploymentId)
      yield* stopExecutor(deploymentId)
      yield* touch(deploymentId, "SLEEPING")
      const now = yield* Clock.currentTimeMillis
      yield* update(State.updateService(serviceId, (service) => ({ ...service, status: "SLEEPING", updatedAt: now })))
    }).pipe(
      Effect.uninterruptible,
      Effect.zipRight(Effect.suspend(() => {
        const seconds = Ref.get(store).pipe(
          Effect.map((s) => s.services.get(serviceId)?.lifeCycle.delete_after_sleep ?? 0)
        )
        return Effect.flatMap(
          seconds,
          (after) =>
            after > 0 ? Effect.zipRight(Effect.sleep(Duration.seconds(after)), deleteLater(serviceId)) : Effect.void
        )
      }))
    )

  /** Waits until the active deployment has had no traffic for `sleepAfter` seconds, then puts it to sleep. */
  const idleTimer = (serviceId: string, deploymentId: string, sleepAfter: number): Effect.Effect<void> =>
    Effect.gen(function*() {
      const s = yield* Ref.get(store)
      const service = s.services.get(serviceId)
      if (service?.activeDeploymentId !== deploymentId || s.deployments.get(deploymentId)?.status !== "HEALTHY") return
      const now = yield* Clock.currentTimeMillis
      if ((held.get(serviceId) ?? 0) > 0) {
        // Busy: the idle time counts from the last check that found an exchange open (at most 1 s old).
        yield* update(State.touchService(serviceId, now))
        return yield* Effect.zipRight(
          Effect.sleep(Duration.millis(Math.min(1_000, sleepAfter * 1000))),
          idleTimer(serviceId, deploymentId, sleepAfter)
        )
      }
      const remaining = service.lastActivityAt + sleepAfter * 1000 - now
      if (remaining > 0) {
        return yield* Effect.zipRight(
          Effect.sleep(Duration.millis(remaining)),
          idleTimer(serviceId, deploymentId, sleepAfter)
        )
      }
      yield* fallAsleep(serviceId, deploymentId)
    })

  /** The deployment a new one replaces is stopped first: once HEALTHY is visible, only the new sandbox runs. */
  const onHealthy = (d: DeploymentRecord) =>
    Effect.gen(function*() {
      const s = yield* Ref.get(store)
      const activeId = s.services.get(d.serviceId)?.activeDeploymentId ?? ""
      if (activeId !== "" && activeId !== d.id && s.deployments.has(activeId)) {
        yield* touch(activeId, "STOPPING")
        yield* teardown(activeId)
        yield* touch(activeId, "STOPPED", (now) => ({ terminatedAt: now }))
      }
      yield* touch(d.id, "HEALTHY", (now) => ({ succeededAt: now }))
      const now = yield* Clock.currentTimeMillis
      yield* update(State.updateService(d.serviceId, (service) => ({
        ...service,
        activeDeploymentId: d.id,
        status: "HEALTHY",
        updatedAt: now,
        lastActivityAt: now
      })))
      yield* armSleep(d)
    })

  /** Starts the idle timer of a deployment that just became HEALTHY, when its definition scales to zero. */
  const armSleep = (d: DeploymentRecord) => {
    const sleepAfter = sleepAfterOf(d.definition)
    return sleepAfter > 0
      ? FiberMap.run(sleepers, d.serviceId, idleTimer(d.serviceId, d.id, sleepAfter))
      : FiberMap.remove(sleepers, d.serviceId)
  }

  /**
   * Starts the executor of `d` in the deployment's scope, made on the first start: closing it kills
   * the executor, then removes the sandbox directory, which a sleep keeps for the next start.
   */
  const startExecutor = (d: DeploymentRecord) =>
    Effect.gen(function*() {
      const existing = (yield* Ref.get(store)).deployments.get(d.id)?.scope
      const scope = existing ?? (yield* Scope.fork(executors, ExecutionStrategy.sequential).pipe(
        Effect.tap((scope) =>
          Scope.addFinalizer(
            scope,
            Effect.zipRight(Effect.sync(() => portsOf.delete(d.id)), removeSandboxDir(d.id, options.baseDir))
          )
        ),
        Effect.tap((scope) => update(State.updateDeployment(d.id, (d) => ({ ...d, scope })))),
        Effect.uninterruptible
      ))
      // Templates are resolved at each start: a wake sees the secrets as they are then.
      return yield* spawnOptions(d.id, d.definition, yield* Ref.get(store), d.appId, options).pipe(
        Effect.flatMap((spawnOptions) =>
          options.spawn({ ...spawnOptions, keepDirectory: true, ports: portsOf.get(d.id) })
        ),
        Effect.tap((executor) =>
          Effect.sync(() => portsOf.set(d.id, { api: executor.port, proxy: executor.proxyPort }))
        ),
        Scope.extend(scope),
        Effect.either
      )
    })

  const progress = (d: DeploymentRecord, fault: DeploymentFaultOptions | undefined) =>
    Effect.gen(function*() {
      yield* Effect.sleep(options.stepDelay)
      yield* touch(d.id, "PROVISIONING", (now) => ({ allocatedAt: now }))
      yield* Effect.sleep(options.stepDelay)
      yield* touch(d.id, "STARTING", (now) => ({ startedAt: now }))
      if (fault !== undefined && fault.afterHealthy === undefined) {
        yield* Effect.sleep(options.stepDelay)
        yield* touch(d.id, "ERRORING")
        yield* Effect.sleep(options.stepDelay)
        return yield* markFailed(d.id, fault.message ?? "Instance failed to start (emulated fault)")
      }
      const started = yield* startExecutor(d)
      if (started._tag === "Left") {
        yield* touch(d.id, "ERRORING")
        return yield* markFailed(d.id, `Instance failed to start: ${started.left.detail}`)
      }
      const executor = started.right
      yield* update(State.updateDeployment(d.id, (d) => ({ ...d, executor })))
      yield* onHealthy(d)
      // The fiber lives as long as the deployment (teardown interrupts it before killing the
      // executor), so an executor that exits while it waits here has crashed.
      const afterHealthy = fault?.afterHealthy
      const outcome = yield* afterHealthy === undefined
        ? Effect.as(executor.exited, "crashed" as const)
        : Effect.raceFirst(
          Effect.as(executor.exited, "crashed" as const),
          Effect.as(Effect.sleep(afterHealthy), "fault" as const)
        )
      yield* markFailed(
        d.id,
        outcome === "crashed" ? "Instance exited unexpectedly" : fault?.message ?? emulatedFault
      )
    })

  /** The wake of a sleeping deployment (already STARTING): a new executor on its directory, then HEALTHY. */
  const wakeUp = (d: DeploymentRecord, woken: Deferred.Deferred<void>) => {
    // Lets the waiting requests go (on HEALTHY, or when the wake failed or was interrupted).
    const done = Effect.zipRight(
      Effect.sync(() => wakes.get(d.id) === woken && wakes.delete(d.id)),
      Deferred.succeed(woken, undefined)
    )
    return Effect.gen(function*() {
      yield* Effect.sleep(options.stepDelay)
      const started = yield* startExecutor(d)
      if (started._tag === "Left") return yield* markFailed(d.id, `Instance failed to wake: ${started.left.detail}`)
      const executor = started.right
      yield* update(State.updateDeployment(d.id, (d) => ({ ...d, executor })))
      yield* touch(d.id, "HEALTHY")
      const now = yield* Clock.currentTimeMillis
      yield* update(State.updateService(d.serviceId, (service) => ({
        ...service,
        status: "HEALTHY",
        updatedAt: now,
        lastActivityAt: now
      })))
      yield* armSleep(d)
      yield* done
      // As in `progress`: this fiber lives as long as the executor, so an exit seen here is a crash.
      yield* executor.exited
      yield* markFailed(d.id, "Instance exited unexpectedly")
    }).pipe(Effect.ensuring(done))
  }

  const wake = (deploymentId: string) =>
    Effect.gen(function*() {
      const woken = yield* Deferred.make<void>()
      const now = yield* Clock.currentTimeMillis
      const claimed = yield* Ref.modify(store, (s): [DeploymentRecord | undefined, Store] => {
        const d = s.deployments.get(deploymentId)
        if (d?.status !== "SLEEPING" || s.services.get(d.serviceId)?.activeDeploymentId !== d.id) return [undefined, s]
        // Registered in the same step as the claim, so a request arriving next waits for this wake.
        wakes.set(d.id, woken)
        return [
          d,
          State.updateService(d.serviceId, (service) => ({ ...service, status: "STARTING", updatedAt: now }))(
            State.updateDeployment(d.id, (d) => ({ ...d, status: "STARTING", updatedAt: now }))(s)
          )
        ]
      })
      if (claimed !== undefined) {
        // A wake cancels the pending `delete_after_sleep`.
        yield* FiberMap.remove(sleepers, claimed.serviceId)
        yield* FiberMap.run(progressions, claimed.id, wakeUp(claimed, woken))
      }
      const pending = wakes.get(deploymentId)
      if (pending !== undefined) yield* Effect.ignore(Effect.timeout(Deferred.await(pending), WAKE_TIMEOUT))
      return (yield* Ref.get(store)).deployments.get(deploymentId)?.executor
    })

  const start = (service: ServiceRecord, definition: ParsedDefinition, parentId: string) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const d: DeploymentRecord = {
        id: Crypto.randomUUID(),
        serviceId: service.id,
        appId: service.appId,
        parentId,
        definition,
        routingKey: Crypto.randomBytes(16).toString("hex"),
        createdAt: now,
        version: service.version,
        updatedAt: now,
        status: "PENDING",
        messages: [],
        allocatedAt: undefined,
        startedAt: undefined,
        succeededAt: undefined,
        terminatedAt: undefined,
        scope: undefined,
        executor: undefined
      }
      yield* update(State.addDeployment(d))
      yield* FiberMap.run(progressions, d.id, progress(d, yield* options.nextFault))
    })

  const cancelPending = (serviceId: string) =>
    Effect.gen(function*() {
      for (const { id } of State.deploymentsOf(yield* Ref.get(store), serviceId)) {
        const s = yield* Ref.get(store)
        const status = s.deployments.get(id)?.status
        if (id === s.services.get(serviceId)?.activeDeploymentId || status === undefined) continue
        if (State.terminalStatuses.has(status)) continue
        yield* teardown(id)
        yield* touch(id, "CANCELED", (now) => ({ terminatedAt: now }))
      }
    })

  const deleteService = (serviceId: string): Effect.Effect<void> =>
    Effect.gen(function*() {
      const owned = yield* Ref.modify(store, State.removeService(serviceId))
      if (owned === undefined) return
      yield* FiberMap.remove(timers, serviceId)
      yield* FiberMap.remove(sleepers, serviceId)
      for (const d of owned) {
        yield* teardown(d.id)
        yield* update(State.removeDeployments([d.id]))
      }
    }).pipe(Effect.uninterruptible)

  const scheduleDeletion = (serviceId: string) =>
    Effect.gen(function*() {
      yield* FiberMap.remove(timers, serviceId)
      const service = (yield* Ref.get(store)).services.get(serviceId)
      const seconds = service?.lifeCycle.delete_after_create ?? 0
      if (service === undefined || seconds <= 0) return
      const remaining = Math.max(0, service.createdAt + seconds * 1000 - (yield* Clock.currentTimeMillis))
      // The deletion runs in the emulator's scope: it removes this timer, which must not wait for itself.
      yield* FiberMap.run(
        timers,
        serviceId,
        Effect.zipRight(Effect.sleep(Duration.millis(remaining)), deleteLater(serviceId))
      )
    })

  const fail = (id: string, message?: string) =>
    Effect.gen(function*() {
      const s = yield* Ref.get(store)
      const d = s.deployments.get(id) ?? s.deployments.get(s.services.get(id)?.latestDeploymentId ?? "")
      if (d === undefined) return yield* new SandboxNotFound({ id })
      yield* FiberMap.remove(progressions, d.id)
      yield* markFailed(d.id, message ?? emulatedFault)
    })

  return { start, cancelPending, deleteService, scheduleDeletion, fail, wake, hold } satisfies Deployments
})
