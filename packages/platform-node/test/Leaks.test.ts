/**
 * No sandbox is leaked, whatever the order in which its scope and its control plane close:
 * `Effect.scoped` inside or outside `Effect.provide`, `Layer.provide`, `ManagedRuntime.dispose`
 * (with the sandbox made inside or outside a `runPromise(Effect.scoped(...))`), and the Promise
 * facade's dispose with its client disposed first or last. Each test runs its own emulator and
 * asserts that no app or service remains in it. A delete that keeps failing is not silent: the
 * close dies with `SandboxLeaked` (the facade rejects with it); a transient 5xx is retried.
 */
import { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import type { KoyebControlPlaneOptions } from "@effect-koyeb/core/KoyebControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import { isSandboxError, SandboxLeaked } from "@effect-koyeb/core/SandboxError"
import type { SandboxInfo } from "@effect-koyeb/core/SandboxSchema"
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import * as Sandboxes from "@effect-koyeb/platform-node/Sandboxes"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"

const TOKEN = Redacted.make("leaks-token-CANARY")
const fast = { pollInterval: "50 millis", timeout: "30 seconds" } as const
const TIMEOUT = 60_000

type Emulator = KoyebEmulator.KoyebEmulatorShape

/** Runs `f` against a fresh emulator of its own (closed afterwards). */
const withEmulator = <A, E>(f: (emulator: Emulator) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.flatMap(
      Layer.build(KoyebEmulator.layer({ token: TOKEN, isolation: "none" })),
      (context) => f(context.unsafeMap.get(KoyebEmulator.KoyebEmulator.key) as Emulator)
    )
  )

const koyebOptions = (emulator: Emulator): KoyebControlPlaneOptions => ({
  token: TOKEN,
  host: emulator.url,
  retry: { baseDelay: "10 millis" }
})

/** The Koyeb control plane of the emulator, over its own HTTP client (closed with the layer). */
const controlPlaneOf = (emulator: Emulator) => NodeSandbox.layer(koyebOptions(emulator))

/** Something done with the sandbox, so that it is really used before it is released. */
const use = (sandbox: Sandbox.SandboxHandle) =>
  Effect.map(sandbox.executor.run("echo used"), (result) => assert.strictEqual(result.stdout, "used\n"))

/** No app and no service is left now; the executor processes are gone soon after. */
const expectNoneLeft = (emulator: Emulator) =>
  Effect.gen(function*() {
    const state = yield* emulator.state
    assert.deepStrictEqual({ apps: state.apps.length, services: state.services.length }, { apps: 0, services: 0 })
    const executors = yield* emulator.state.pipe(
      Effect.map((s) => s.executors.length),
      Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (n) => n === 0, times: 500 })
    )
    assert.strictEqual(executors, 0, "executor processes")
  })

const deletes = (emulator: Emulator) =>
  Effect.map(emulator.requests, (all) => all.filter((r) => r.method === "DELETE").length)

/** The `SandboxLeaked` a failed exit died with, if any. */
const leakOf = (exit: Exit.Exit<unknown, unknown>): Option.Option<SandboxLeaked> =>
  Exit.isSuccess(exit)
    ? Option.none()
    : Chunk.findFirst(Cause.defects(exit.cause), (defect): defect is SandboxLeaked => defect instanceof SandboxLeaked)

describe("Leaks: every composition order deletes the sandbox (emulator)", () => {
  it.live("Effect.scoped inside Effect.provide", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        yield* Sandbox.make({ name: "scoped-inside", ...fast }).pipe(
          Effect.flatMap(use),
          Effect.scoped,
          Effect.provide(controlPlaneOf(emulator))
        )
        yield* expectNoneLeft(emulator)
        assert.strictEqual(yield* deletes(emulator), 1, "one DELETE")
      })
    ), TIMEOUT)

  it.live(
    "Effect.provide inside Effect.scoped: the control plane closes first and deletes it",
    () =>
      withEmulator((emulator) =>
        Effect.gen(function*() {
          const exit = yield* Sandbox.make({ name: "provide-inside", ...fast }).pipe(
            Effect.tap(use),
            Effect.provide(controlPlaneOf(emulator)),
            // The control plane has closed; the sandbox's scope has not.
            Effect.tap(() => expectNoneLeft(emulator)),
            Effect.scoped,
            Effect.exit
          )
          assert.isTrue(Exit.isSuccess(exit), String(exit))
          yield* expectNoneLeft(emulator)
          assert.strictEqual(yield* deletes(emulator), 1, "one DELETE, not one per closer")
        })
      ),
    TIMEOUT
  )

  it.live("Layer.provide(Sandbox.layer, NodeSandbox.layer)", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        yield* Effect.flatMap(Sandbox.Sandbox, (sandbox) => sandbox.isHealthy).pipe(
          Effect.map(assert.isTrue),
          Effect.provide(
            Sandbox.layer({ name: "layer-provide", ...fast }).pipe(Layer.provide(controlPlaneOf(emulator)))
          )
        )
        yield* expectNoneLeft(emulator)
      })
    ), TIMEOUT)

  it.live(
    "Effect.provide(Sandbox.layer) then Effect.provide(NodeSandbox.layer)",
    () =>
      withEmulator((emulator) =>
        Effect.gen(function*() {
          yield* Effect.flatMap(Sandbox.Sandbox, (sandbox) => sandbox.isHealthy).pipe(
            Effect.provide(Sandbox.layer({ name: "provide-twice", ...fast })),
            Effect.provide(controlPlaneOf(emulator))
          )
          yield* expectNoneLeft(emulator)
        })
      ),
    TIMEOUT
  )

  it.live(
    "ManagedRuntime: a sandbox made inside runPromise(Effect.scoped(...)), then dispose",
    () =>
      withEmulator((emulator) =>
        Effect.gen(function*() {
          const runtime = ManagedRuntime.make(controlPlaneOf(emulator))
          yield* Effect.promise(() =>
            runtime.runPromise(Effect.scoped(Effect.flatMap(Sandbox.make({ name: "runtime-inside", ...fast }), use)))
          )
          yield* expectNoneLeft(emulator)
          yield* Effect.promise(() => runtime.dispose())
          yield* expectNoneLeft(emulator)
        })
      ),
    TIMEOUT
  )

  it.live(
    "ManagedRuntime: a sandbox made outside any Effect.scoped, runtime disposed before its scope",
    () =>
      withEmulator((emulator) =>
        Effect.gen(function*() {
          const runtime = ManagedRuntime.make(controlPlaneOf(emulator))
          const scope = yield* Scope.make()
          yield* Effect.promise(() =>
            runtime.runPromise(
              Scope.extend(Effect.flatMap(Sandbox.make({ name: "runtime-outside", ...fast }), use), scope)
            )
          )
          assert.strictEqual((yield* emulator.state).services.length, 1)
          yield* Effect.promise(() => runtime.dispose())
          yield* expectNoneLeft(emulator)
          // The scope's own release finds the deletion done.
          assert.isTrue(Exit.isSuccess(yield* Effect.exit(Scope.close(scope, Exit.void))))
          assert.strictEqual(yield* deletes(emulator), 1)
        })
      ),
    TIMEOUT
  )

  it.live(
    "ManagedRuntime over Sandbox.layer: dispose deletes it",
    () =>
      withEmulator((emulator) =>
        Effect.gen(function*() {
          const runtime = ManagedRuntime.make(
            Sandbox.layer({ name: "runtime-layer", ...fast }).pipe(Layer.provide(controlPlaneOf(emulator)))
          )
          assert.isTrue(
            yield* Effect.promise(() => runtime.runPromise(Effect.flatMap(Sandbox.Sandbox, (s) => s.isHealthy)))
          )
          yield* Effect.promise(() => runtime.dispose())
          yield* expectNoneLeft(emulator)
        })
      ),
    TIMEOUT
  )

  it.live(
    "interrupted while holding the sandbox, the control plane provided inside the scope",
    () =>
      withEmulator((emulator) =>
        Effect.gen(function*() {
          const ready = yield* Deferred.make<void>()
          const fiber = yield* Sandbox.make({ name: "interrupted", ...fast }).pipe(
            Effect.tap(() => Deferred.succeed(ready, undefined)),
            Effect.zipRight(Effect.never),
            Effect.provide(controlPlaneOf(emulator)),
            Effect.scoped,
            Effect.fork
          )
          yield* Deferred.await(ready)
          yield* Fiber.interrupt(fiber)
          yield* expectNoneLeft(emulator)
        })
      ),
    TIMEOUT
  )

  it.live(
    "Sandbox.fromId never deletes, whichever closes first",
    () =>
      withEmulator((emulator) =>
        Effect.gen(function*() {
          const layer = controlPlaneOf(emulator)
          const created = yield* Effect.flatMap(ControlPlane, (cp) => cp.create({ name: "attached", ...fast })).pipe(
            Effect.provide(layer)
          )
          yield* Sandbox.fromId(created.info.id).pipe(Effect.provide(layer), Effect.scoped)
          yield* Sandbox.layerFromId(created.info.id).pipe(Layer.build, Effect.provide(layer), Effect.scoped)
          assert.strictEqual((yield* emulator.state).services.length, 1, "the attached sandbox is still there")
          assert.strictEqual(yield* deletes(emulator), 0)
          yield* Effect.flatMap(ControlPlane, (cp) => cp.delete(created.info)).pipe(Effect.provide(layer))
          yield* expectNoneLeft(emulator)
        })
      ),
    TIMEOUT
  )
})

describe("Leaks: the Promise facade (emulator)", () => {
  const clientOf = (emulator: Emulator) => Sandboxes.client({ backend: "koyeb", koyeb: koyebOptions(emulator) })

  it.live("await using a sandbox of a client disposed first", () =>
    withEmulator((emulator) =>
      Effect.gen(function*() {
        yield* Effect.promise(async () => {
          const client = clientOf(emulator)
          await using sandbox = await client.create({ name: "facade-client-first", ...fast })
          await sandbox.run("true")
          await client.dispose()
          assert.strictEqual((await Effect.runPromise(emulator.state)).services.length, 0)
        })
        yield* expectNoneLeft(emulator)
      })
    ), TIMEOUT)

  it.live(
    "await using a sandbox, then its client (the usual order)",
    () =>
      withEmulator((emulator) =>
        Effect.gen(function*() {
          yield* Effect.promise(async () => {
            await using client = clientOf(emulator)
            {
              await using sandbox = await client.create({ name: "facade-sandbox-first", ...fast })
              await sandbox.run("true")
            }
            assert.strictEqual((await Effect.runPromise(emulator.state)).services.length, 0)
          })
          yield* expectNoneLeft(emulator)
        })
      ),
    TIMEOUT
  )

  it.live(
    "Sandboxes.create: dispose deletes the sandbox and stops its runtime",
    () =>
      withEmulator((emulator) =>
        Effect.gen(function*() {
          yield* Effect.promise(async () => {
            await using sandbox = await Sandboxes.create({
              backend: "koyeb",
              koyeb: koyebOptions(emulator),
              name: "facade-create",
              ...fast
            })
            await sandbox.run("true")
          })
          yield* expectNoneLeft(emulator)
        })
      ),
    TIMEOUT
  )
})

describe("Leaks: a failed delete is not silent (emulator)", () => {
  const keepFailingDeletes = (emulator: Emulator) => emulator.failNext({ method: "DELETE", status: 503, times: 1_000 })

  /** Deletes the sandbox a failed delete left, so that the test leaves nothing behind. */
  const cleanUp = (emulator: Emulator, info: SandboxInfo) =>
    Effect.gen(function*() {
      yield* emulator.clearFaults
      yield* Effect.flatMap(ControlPlane, (cp) => cp.delete(info)).pipe(Effect.provide(controlPlaneOf(emulator)))
      yield* expectNoneLeft(emulator)
    })

  it.live(
    "a transient 5xx on DELETE is retried and the sandbox deleted",
    () =>
      withEmulator((emulator) =>
        Effect.gen(function*() {
          yield* Sandbox.make({ name: "transient", ...fast }).pipe(
            Effect.tap(() => emulator.failNext({ method: "DELETE", status: 503, times: 2 })),
            Effect.scoped,
            Effect.provide(controlPlaneOf(emulator))
          )
          yield* expectNoneLeft(emulator)
          assert.strictEqual(yield* deletes(emulator), 3, "two failed attempts, then the one that deleted")
        })
      ),
    TIMEOUT
  )

  it.live(
    "the scope's close dies with SandboxLeaked naming the sandbox",
    () =>
      withEmulator((emulator) =>
        Effect.gen(function*() {
          let info: SandboxInfo | undefined
          const exit = yield* Sandbox.make({ name: "leaky", ...fast }).pipe(
            Effect.tap((sandbox) => {
              info = sandbox.info
              return keepFailingDeletes(emulator)
            }),
            Effect.scoped,
            Effect.provide(controlPlaneOf(emulator)),
            Effect.exit
          )
          const leak = leakOf(exit)
          assert.isTrue(Option.isSome(leak), String(exit))
          const error = Option.getOrThrow(leak)
          assert.isTrue(isSandboxError(error))
          assert.strictEqual(error.id, info?.id)
          assert.strictEqual(error.name, "leaky")
          assert.include(error.message, error.id)
          assert.strictEqual(yield* deletes(emulator), 5, "the first attempt and 4 retries")
          assert.strictEqual((yield* emulator.state).services.length, 1)
          yield* cleanUp(emulator, info!)
        })
      ),
    TIMEOUT
  )

  it.live(
    "the control plane's close dies with SandboxLeaked when it closes first",
    () =>
      withEmulator((emulator) =>
        Effect.gen(function*() {
          const runtime = ManagedRuntime.make(controlPlaneOf(emulator))
          const scope = yield* Scope.make()
          const info = yield* Effect.promise(() =>
            runtime.runPromise(Scope.extend(Sandbox.make({ name: "leaky-runtime", ...fast }), scope))
          ).pipe(Effect.map((sandbox) => sandbox.info))
          yield* keepFailingDeletes(emulator)
          const disposed = yield* Effect.exit(runtime.disposeEffect)
          assert.strictEqual(Option.getOrThrow(leakOf(disposed)).id, info.id)
          // The sandbox's own release reports the same leak, without another DELETE.
          const before = yield* deletes(emulator)
          const closed = yield* Effect.exit(Scope.close(scope, Exit.void))
          assert.strictEqual(Option.getOrThrow(leakOf(closed)).id, info.id)
          assert.strictEqual(yield* deletes(emulator), before)
          yield* cleanUp(emulator, info)
        })
      ),
    TIMEOUT
  )

  it.live(
    "the facade's dispose rejects with a SandboxLeaked failure",
    () =>
      withEmulator((emulator) =>
        Effect.gen(function*() {
          const rejected = yield* Effect.promise(async () => {
            const client = Sandboxes.client({ backend: "koyeb", koyeb: koyebOptions(emulator) })
            try {
              const sandbox = await client.create({ name: "leaky-facade", ...fast })
              await Effect.runPromise(keepFailingDeletes(emulator))
              const error = await sandbox[Symbol.asyncDispose]().then(() => undefined, (e: unknown) => e)
              return { error, info: sandbox.info }
            } finally {
              await client.dispose().catch(() => undefined)
            }
          })
          assert.isTrue(Sandboxes.isSandboxFailure(rejected.error, "SandboxLeaked"), String(rejected.error))
          const failure = rejected.error as Sandboxes.SandboxFailureOf<"SandboxLeaked">
          assert.strictEqual(failure.id, rejected.info.id)
          yield* cleanUp(emulator, rejected.info)
        })
      ),
    TIMEOUT
  )
})
