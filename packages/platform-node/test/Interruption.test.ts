/**
 * Interruption at every step of a sandbox's life, on both backends (the local one, and Koyeb
 * through the emulator): create (app POST, service POST), readiness, a streaming exec with a
 * background descendant, a large binary transfer, and delete. Afterwards nothing may remain: no
 * app or service, no executor or sandbox process, no sandbox directory, no staging file. Timing
 * is driven by the emulator's delay switch, `Deferred`s and first output, not by sleeps.
 */
import { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { alive, processesOf } from "./utils/hostProcesses.js"

const TOKEN = Redacted.make("interrupt-token-CANARY")
const fast = { pollInterval: "50 millis", timeout: "60 seconds" } as const
// Hang guard only.
const GUARD = "50 seconds"

// ---------------------------------------------------------------------------------------------
// Host-side inspection (Linux /proc)

const psHas = (text: string): boolean =>
  ChildProcess.execFileSync("ps", ["-e", "-o", "args="], { encoding: "utf8" }).split("\n").some((l) => l.includes(text))

/** Polls `check` every 50 ms (at most ~20 s) and returns its last answer. */
const eventually = (check: () => boolean) =>
  Effect.sync(check).pipe(
    Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (ok) => ok, times: 400 }),
    Effect.zipRight(Effect.sync(check))
  )

const unique = (): number => 900_000 + Crypto.randomInt(90_000)

const stagingFiles = (dir: string) => Fs.readdirSync(dir).filter((name) => name.startsWith(".effect-koyeb-"))

// ---------------------------------------------------------------------------------------------
// Backends

/** What a test can see of its backend besides the `ControlPlane`. */
interface ProbeShape {
  readonly baseDir: string
  readonly emulator: Option.Option<KoyebEmulator.KoyebEmulatorHandle>
}
class Probe extends Context.Tag("Interruption/Probe")<Probe, ProbeShape>() {}

interface Backend {
  readonly name: string
  readonly layer: (baseDir: string) => Layer.Layer<ControlPlane | Probe, KoyebEmulator.KoyebEmulatorError>
}

const local: Backend = {
  name: "local backend",
  layer: (baseDir) =>
    Layer.merge(
      NodeSandbox.layerLocal({ isolation: "none", baseDir }),
      Layer.succeed(Probe, { baseDir, emulator: Option.none() })
    )
}

const koyeb: Backend = {
  name: "Koyeb backend (emulator)",
  layer: (baseDir) => {
    const controlPlane = Layer.unwrapEffect(
      Effect.map(
        KoyebEmulator.KoyebEmulator,
        (e) => KoyebControlPlane.layer({ token: TOKEN, host: e.url, retry: { baseDelay: "10 millis" } })
      )
    )
    const probe = Layer.effect(
      Probe,
      Effect.map(KoyebEmulator.KoyebEmulator, (e) => ({ baseDir, emulator: Option.some(e) }))
    )
    return Layer.merge(controlPlane, probe).pipe(
      Layer.provide(KoyebEmulator.layer({ token: TOKEN, isolation: "none", baseDir })),
      Layer.provide(NodeHttpClient.layerUndici)
    )
  }
}

/** Live executor pids: the emulator's own list plus every process under the base directory. */
const executorPids = Effect.map(Probe, (probe) => processesOf(probe.baseDir))

const emulatorOf = Effect.flatMap(Probe, (probe) => Effect.orDie(probe.emulator))

/** Nothing remains: no app, service or executor in the emulator, no process, no directory, no marker command. */
const expectNothingLeft = (seenPids: ReadonlyArray<number>, markers: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const probe = yield* Probe
    if (Option.isSome(probe.emulator)) {
      const emulator = probe.emulator.value
      const state = yield* emulator.state
      assert.deepStrictEqual(
        { apps: state.apps.length, services: state.services.length, executors: state.executors.length },
        { apps: 0, services: 0, executors: 0 },
        "emulator state"
      )
    } else {
      assert.deepStrictEqual(yield* Effect.flatMap(ControlPlane, (cp) => cp.list), [], "local sandboxes")
    }
    assert.isTrue(yield* eventually(() => !seenPids.some(alive)), `executor pids alive: ${seenPids.filter(alive)}`)
    assert.isTrue(yield* eventually(() => processesOf(probe.baseDir).length === 0), "processes under the base dir")
    assert.isTrue(yield* eventually(() => Fs.readdirSync(probe.baseDir).length === 0), "sandbox directories")
    for (const marker of markers) assert.isTrue(yield* eventually(() => !psHas(marker)), `process ${marker}`)
  })

/** Runs a test on a fresh backend whose sandboxes live in their own temp base directory. */
const run = <A, E>(backend: Backend, effect: Effect.Effect<A, E, ControlPlane | Probe>) =>
  Effect.suspend(() => {
    const baseDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "interrupt-"))
    return effect.pipe(
      Effect.timeout(GUARD),
      Effect.provide(backend.layer(baseDir)),
      Effect.ensuring(Effect.sync(() => Fs.rmSync(baseDir, { recursive: true, force: true })))
    )
  })

/** A sandbox held open by a forked scope; the returned effect closes it. */
const sandboxIn = (options: Parameters<typeof Sandbox.make>[0] = {}) =>
  Effect.gen(function*() {
    const made = yield* Deferred.make<Sandbox.SandboxHandle, unknown>()
    const release = yield* Deferred.make<void>()
    const fiber = yield* Sandbox.make({ ...fast, ...options }).pipe(
      Effect.flatMap((sandbox) => Deferred.succeed(made, sandbox)),
      Effect.zipRight(Deferred.await(release)),
      Effect.scoped,
      Effect.tapErrorCause((cause) => Deferred.failCause(made, cause)),
      Effect.fork
    )
    const sandbox = yield* Deferred.await(made)
    const end = Deferred.succeed(release, undefined)
    return { sandbox, fiber, end, close: Effect.zipRight(end, Fiber.join(fiber)) }
  })

/** The sandbox's home directory, as the host sees it (no isolation). */
const homeOf = (sandbox: Sandbox.SandboxHandle) =>
  Effect.map(sandbox.executor.run(`printf %s "$HOME"`), (r) => r.stdout.trim())

// ---------------------------------------------------------------------------------------------
// Steps common to both backends

const interruptStreamingExec = (backend: Backend) =>
  run(
    backend,
    Effect.gen(function*() {
      const marker = `sleep ${unique()}`
      const { close, sandbox } = yield* sandboxIn({ name: "streaming" })
      const pids = yield* executorPids
      const firstLine = yield* Deferred.make<void>()
      const fiber = yield* sandbox.executor.stream(`${marker} & echo started; wait`).pipe(
        Stream.runForEach(() => Deferred.succeed(firstLine, undefined)),
        Effect.fork
      )
      yield* Deferred.await(firstLine)
      assert.isTrue(psHas(marker), "the background child runs")
      yield* Fiber.interrupt(fiber)
      // The interrupted command's process group goes, background child included, while the sandbox lives on.
      assert.isTrue(yield* eventually(() => !psHas(marker)), "background descendant killed on interruption")
      assert.strictEqual((yield* sandbox.executor.run("echo alive")).stdout, "alive\n")
      yield* close
      yield* expectNothingLeft(pids, [marker])
    })
  )

// Both backends run our executor: a write is one `/write_file_bytes` upload straight into the
// destination (the `binary-files` extension); `Filesystem.test.ts` covers the stock staging.
const interruptWriteFile = (backend: Backend) =>
  run(
    backend,
    Effect.gen(function*() {
      const { close, sandbox } = yield* sandboxIn({ name: "writer" })
      const pids = yield* executorPids
      const home = yield* homeOf(sandbox)
      const size = 200 * 1024 * 1024
      const bytes = new Uint8Array(size)
      const fiber = yield* Effect.fork(sandbox.filesystem.writeFile(`${home}/big.bin`, bytes))
      // Interrupt once the upload has started landing.
      const landed = () => {
        try {
          return Fs.statSync(Path.join(home, "big.bin")).size > 0
        } catch {
          return false
        }
      }
      assert.isTrue(yield* eventually(landed), "the upload started")
      const exit = yield* Fiber.interrupt(fiber)
      assert.isTrue(Exit.isInterrupted(exit), "the write was cut short")
      assert.isBelow(Fs.statSync(Path.join(home, "big.bin")).size, size, "the upload stopped")
      // The sandbox still works, and holds no staging file.
      yield* sandbox.filesystem.writeFile(`${home}/small.bin`, new Uint8Array([1, 2, 3]))
      assert.deepStrictEqual(Fs.readFileSync(Path.join(home, "small.bin")), Buffer.from([1, 2, 3]))
      assert.deepStrictEqual(stagingFiles(home), [])
      yield* close
      yield* expectNothingLeft(pids)
    })
  )

// Both backends run our executor: bytes come through one `/read_file_bytes` stream (the
// `binary-files` extension), so no reading command exists; `Filesystem.test.ts` covers the stock one.
const interruptReadStream = (backend: Backend) =>
  run(
    backend,
    Effect.gen(function*() {
      const { close, sandbox } = yield* sandboxIn({ name: "reader" })
      const pids = yield* executorPids
      const home = yield* homeOf(sandbox)
      const name = `big-${unique()}.bin`
      const bytes = Crypto.randomBytes(32 * 1024 * 1024)
      Fs.writeFileSync(Path.join(home, name), bytes)
      const firstChunk = yield* Deferred.make<void>()
      // The consumer stops after the first chunk: the download is held by back-pressure.
      const fiber = yield* sandbox.filesystem.readStream(`${home}/${name}`).pipe(
        Stream.runForEach(() => Deferred.succeed(firstChunk, undefined).pipe(Effect.zipRight(Effect.never))),
        Effect.fork
      )
      yield* Deferred.await(firstChunk)
      assert.isFalse(psHas(name), "no reading command")
      assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(fiber)), "the read stream was interrupted")
      // readFile interrupted while its download is in flight.
      const whole = yield* Effect.fork(sandbox.filesystem.readFile(`${home}/${name}`))
      yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(whole)
      // The sandbox still serves reads, byte-exact.
      assert.isTrue(Buffer.from(yield* sandbox.filesystem.readFile(`${home}/${name}`)).equals(bytes))
      yield* close
      yield* expectNothingLeft(pids)
    })
  )

// ---------------------------------------------------------------------------------------------

describe("Interruption: local backend", () => {
  it.live("during create (the executor is starting)", () =>
    run(
      local,
      Effect.gen(function*() {
        const probe = yield* Probe
        const fiber = yield* Effect.fork(Effect.scoped(Sandbox.make({ name: "starting", ...fast })))
        assert.isTrue(yield* eventually(() => Fs.readdirSync(probe.baseDir).length > 0), "creation started")
        const pids = processesOf(probe.baseDir)
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual(
          yield* Effect.flatMap(ControlPlane, (cp) => cp.list),
          []
        )
        yield* expectNothingLeft(pids)
      })
    ))

  it.live("during readiness", () =>
    Effect.gen(function*() {
      const entered = yield* Deferred.make<string>()
      // Readiness is instant locally: hold it open after the real check, to interrupt inside it.
      const held = Layer.effect(
        ControlPlane,
        Effect.map(ControlPlane, (cp) => ({
          ...cp,
          waitReady: (id: string, options?: Parameters<typeof cp.waitReady>[1]) =>
            cp.waitReady(id, options).pipe(Effect.zipLeft(Deferred.succeed(entered, id)), Effect.zipLeft(Effect.never))
        }))
      )
      const backend: Backend = { name: local.name, layer: (baseDir) => Layer.provideMerge(held, local.layer(baseDir)) }
      yield* run(
        backend,
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(Effect.scoped(Sandbox.make({ name: "readiness", ...fast })))
          yield* Deferred.await(entered)
          const pids = yield* executorPids
          assert.isAbove(pids.length, 0)
          yield* Fiber.interrupt(fiber)
          assert.deepStrictEqual(
            yield* Effect.flatMap(ControlPlane, (cp) => cp.list),
            [],
            "deleted before the interruption completed"
          )
          yield* expectNothingLeft(pids)
        })
      )
    }))

  it.live("during a streaming exec with a background descendant", () => interruptStreamingExec(local))
  it.live("during a large binary writeFile", () => interruptWriteFile(local))
  it.live("during a large binary read", () => interruptReadStream(local))

  it.live("during delete (explicit, and the scope's release)", () =>
    run(
      local,
      Effect.gen(function*() {
        const cp = yield* ControlPlane
        const probe = yield* Probe
        for (const explicit of [true, false]) {
          const marker = `sleep ${unique()}`
          const { close, end, fiber, sandbox } = yield* sandboxIn({ name: "deleting" })
          // A process that ignores SIGTERM keeps the delete busy through its grace period.
          yield* sandbox.processes.launch(`trap '' TERM; ${marker}`)
          assert.isTrue(yield* eventually(() => psHas(marker)))
          const pids = yield* executorPids
          const deleting = explicit ? yield* Effect.fork(sandbox.delete) : fiber
          if (!explicit) yield* end
          // The sandbox leaves the list as its deletion starts.
          yield* Effect.repeat(cp.list, {
            schedule: Schedule.spaced("10 millis"),
            until: (l) => l.length === 0,
            times: 500
          })
          yield* Fiber.interrupt(deleting)
          // Deletion is not abandoned half-way: everything is gone once the interruption returns.
          assert.deepStrictEqual(processesOf(probe.baseDir), [])
          assert.isFalse(psHas(marker))
          if (explicit) yield* close
          yield* expectNothingLeft(pids, [marker])
        }
      })
    ))
})

describe("Interruption: Koyeb backend (emulator)", () => {
  it.live("during the app POST and during the service POST", () =>
    run(
      koyeb,
      Effect.gen(function*() {
        const emulator = yield* emulatorOf
        for (const path of ["/v1/apps", "/v1/services"]) {
          yield* emulator.clearRequests
          yield* emulator.delay({ method: "POST", path, duration: "1 second", times: 1 })
          const fiber = yield* Effect.fork(Effect.scoped(Sandbox.make({ name: "posting", ...fast })))
          // The request is recorded before the delay holds it.
          yield* Effect.repeat(emulator.requests, {
            schedule: Schedule.spaced("10 millis"),
            until: (rs) => rs.some((r) => r.method === "POST" && r.path === path),
            times: 500
          })
          yield* Fiber.interrupt(fiber)
          const state = yield* emulator.state
          assert.deepStrictEqual(
            { apps: state.apps.length, services: state.services.length },
            { apps: 0, services: 0 },
            path
          )
          const pids = (yield* emulator.state).executors.map((e) => e.pid)
          yield* expectNothingLeft(pids)
        }
      })
    ))

  it.live("during readiness (the executor health probe is held)", () =>
    run(
      koyeb,
      Effect.gen(function*() {
        const emulator = yield* emulatorOf
        yield* emulator.delay({ method: "GET", path: "/koyeb-sandbox/health", duration: "3 seconds", times: 1 })
        const fiber = yield* Effect.fork(Effect.scoped(Sandbox.make({ name: "readiness", ...fast })))
        yield* Effect.repeat(emulator.requests, {
          schedule: Schedule.spaced("10 millis"),
          until: (rs) => rs.some((r) => r.path === "/koyeb-sandbox/health"),
          times: 500
        })
        const pids = (yield* emulator.state).executors.map((e) => e.pid)
        assert.strictEqual(pids.length, 1, "the executor runs")
        yield* Fiber.interrupt(fiber)
        const state = yield* emulator.state
        assert.deepStrictEqual({ apps: state.apps.length, services: state.services.length }, { apps: 0, services: 0 })
        yield* expectNothingLeft(pids)
      })
    ))

  it.live("during a streaming exec with a background descendant", () => interruptStreamingExec(koyeb))
  it.live("during a large binary writeFile", () => interruptWriteFile(koyeb))
  it.live("during a large binary read", () => interruptReadStream(koyeb))

  it.live("during delete (explicit, and the scope's release)", () =>
    run(
      koyeb,
      Effect.gen(function*() {
        const emulator = yield* emulatorOf
        for (const explicit of [true, false]) {
          const { close, end, fiber, sandbox } = yield* sandboxIn({ name: "deleting" })
          const pids = (yield* emulator.state).executors.map((e) => e.pid)
          yield* emulator.clearRequests
          yield* emulator.delay({ method: "DELETE", path: "/v1/apps/", duration: "1 second", times: 1 })
          const deleting = explicit ? yield* Effect.fork(sandbox.delete) : fiber
          if (!explicit) yield* end
          yield* Effect.repeat(emulator.requests, {
            schedule: Schedule.spaced("10 millis"),
            until: (rs) => rs.some((r) => r.method === "DELETE"),
            times: 500
          })
          yield* Fiber.interrupt(deleting)
          if (explicit) {
            // An explicit delete cut short may not have reached the API: the scope's release finishes the job.
            yield* close
          } else {
            // The release is not abandoned: the sandbox is gone once the interruption returns.
            const state = yield* emulator.state
            assert.deepStrictEqual({ apps: state.apps.length, services: state.services.length }, {
              apps: 0,
              services: 0
            })
          }
          yield* expectNothingLeft(pids)
        }
      })
    ))
})
