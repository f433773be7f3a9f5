/**
 * `Filesystem.watch` against a real executor over loopback: the `watch` extension (inotify in the
 * executor) and the stock polling fallback (capabilities hidden). Each test works in its own
 * directory made through the SDK, and changes files with commands in the sandbox.
 */
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import type { FileEvent } from "@effect-koyeb/core/SandboxSchema"
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as TestExecutor from "./utils/TestExecutor.js"

const Direct = Filesystem.layer.pipe(Layer.provideMerge(TestExecutor.layerClient))
const Stock = Filesystem.layer.pipe(
  Layer.provide(TestExecutor.hideCapabilities),
  Layer.provideMerge(TestExecutor.layerClient)
)

const sh = (cmd: string) =>
  Effect.flatMap(ExecutorClient.ExecutorClient, (client) => client.run({ cmd })).pipe(
    Effect.tap((reply) => reply.code === 0 ? Effect.void : Effect.dieMessage(`${cmd}: ${reply.stderr}`))
  )

/** A fresh directory in the sandbox, removed when the scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.gen(function*() {
    const dir = `/tmp/watch-${Crypto.randomUUID()}`
    yield* (yield* Filesystem.Filesystem).mkdir(dir)
    return dir
  }),
  (dir) => Effect.ignore(sh(`rm -rf '${dir}'`))
)

const pollInterval = "50 millis"

/** The events of a watch, read a few at a time. */
const watching = (path: string, recursive = false) =>
  Effect.gen(function*() {
    const fs = yield* Filesystem.Filesystem
    const pull = yield* Stream.toPull(yield* fs.watchScoped(path, { recursive, pollInterval }))
    const buffered: Array<FileEvent> = []
    /**
     * The next `n` events (fails after 5 seconds). `modify` events are skipped unless `modifies`:
     * inotify reports a write as a `create` then a `modify` when the two reach the executor apart.
     */
    const take = (n: number, modifies = false) =>
      Effect.gen(function*() {
        while (buffered.length < n) {
          const chunk = yield* pull.pipe(
            Effect.catchAll(Option.match({ onNone: () => Effect.dieMessage("the watch ended"), onSome: Effect.fail }))
          )
          buffered.push(...Chunk.toReadonlyArray(chunk).filter((event) => modifies || event.kind !== "modify"))
        }
        return buffered.splice(0, n).map((event) => ({ ...event }))
      }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`fewer than ${n} events`) }))
    /** Whether the watch ended (with nothing more) within `wait`. */
    const ended = pull.pipe(
      Effect.as(false),
      Effect.catchAll(Option.match({ onNone: () => Effect.succeed(true), onSome: Effect.fail })),
      Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("the watch did not end") })
    )
    return { take, ended }
  })

const event = (kind: FileEvent["kind"], path: string, directory: boolean, from?: string) =>
  from === undefined ? { kind, path, directory } : { kind, path, from, directory }

const suite = (name: string, live: typeof Direct, stock: boolean) =>
  layer(live, { timeout: "60 seconds", excludeTestServices: true })(name, (it) => {
    it.scoped("create, modify and delete of a file", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const events = yield* watching(dir)
        yield* sh(`echo one > ${dir}/a.txt`)
        assert.deepStrictEqual(yield* events.take(1), [event("create", `${dir}/a.txt`, false)])
        yield* sh(`echo two, longer >> ${dir}/a.txt`)
        assert.deepStrictEqual(yield* events.take(1, true), [event("modify", `${dir}/a.txt`, false)])
        yield* sh(`rm ${dir}/a.txt`)
        assert.deepStrictEqual(yield* events.take(1), [event("delete", `${dir}/a.txt`, false)])
      }))

    it.scoped("recursive: new directories are watched too", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const events = yield* watching(dir, true)
        yield* sh(`mkdir -p ${dir}/sub/deeper && echo x > ${dir}/sub/deeper/f`)
        const created = yield* events.take(3)
        assert.sameDeepMembers(created, [
          event("create", `${dir}/sub`, true),
          event("create", `${dir}/sub/deeper`, true),
          event("create", `${dir}/sub/deeper/f`, false)
        ])
        yield* sh(`echo y > ${dir}/sub/deeper/g`)
        assert.deepStrictEqual(yield* events.take(1), [event("create", `${dir}/sub/deeper/g`, false)])
      }))

    it.scoped("not recursive: changes below the directory's entries are not seen", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        yield* sh(`mkdir ${dir}/sub`)
        const events = yield* watching(dir)
        yield* sh(`echo x > ${dir}/sub/hidden && echo y > ${dir}/seen`)
        assert.deepStrictEqual(yield* events.take(1), [event("create", `${dir}/seen`, false)])
      }))

    it.scoped(stock ? "a rename is a delete and a create" : "a rename is one event", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        yield* sh(`echo x > ${dir}/old`)
        const events = yield* watching(dir)
        yield* sh(`mv ${dir}/old ${dir}/new`)
        // an executor without the extension (EXECUTOR_URL's stock one) is polled either way
        const polled = stock || !(yield* (yield* ExecutorClient.ExecutorClient).capabilities).has("watch")
        if (polled) {
          assert.deepStrictEqual(yield* events.take(2), [
            event("delete", `${dir}/old`, false),
            event("create", `${dir}/new`, false)
          ])
        } else {
          assert.deepStrictEqual(yield* events.take(1), [event("rename", `${dir}/new`, false, `${dir}/old`)])
        }
      }))

    it.scoped("the stream ends after the watched directory's delete", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        yield* sh(`echo x > ${dir}/f`)
        const events = yield* watching(dir)
        yield* sh(`rm -rf ${dir}`)
        assert.deepStrictEqual(yield* events.take(2), [
          event("delete", `${dir}/f`, false),
          event("delete", dir, true)
        ])
        assert.isTrue(yield* events.ended)
      }))

    it.scoped("a missing path and a file are typed errors", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const fs = yield* Filesystem.Filesystem
        const missing = yield* Effect.flip(fs.watchScoped(`${dir}/missing`, { pollInterval }))
        assert.strictEqual(missing._tag, "FileNotFound")
        yield* sh(`echo x > ${dir}/file`)
        const file = yield* Effect.flip(fs.watch(`${dir}/file`, { pollInterval }).pipe(Stream.runDrain))
        assert.strictEqual(file._tag, "FilesystemError")
        assert.strictEqual(file._tag === "FilesystemError" ? file.reason : "", "NotADirectory")
        const invalid = yield* Effect.flip(fs.watchScoped("", { pollInterval }))
        assert.strictEqual(invalid._tag, "InvalidArgument")
      }))
  })

suite("watch on the executor's extension", Direct, false)
suite("watch by polling on the stock executor", Stock, true)

/** The inotify watches this process holds (the in-process executor's are among them). */
const inotifyWatches = (): number => {
  let count = 0
  for (const fd of Fs.readdirSync("/proc/self/fdinfo")) {
    try {
      count += Fs.readFileSync(`/proc/self/fdinfo/${fd}`, "utf8").split("\n").filter((line) =>
        line.startsWith("inotify wd:")
      ).length
    } catch {
      // closed meanwhile
    }
  }
  return count
}

describe("the executor's watches", () => {
  layer(Direct, { timeout: "60 seconds", excludeTestServices: true })("are released", (it) => {
    it.scoped("recursive: a renamed directory is one rename, and stays watched", () =>
      Effect.gen(function*() {
        if (!(yield* (yield* ExecutorClient.ExecutorClient).capabilities).has("watch")) return
        const dir = yield* tempDir
        yield* sh(`mkdir -p ${dir}/a/inner`)
        const events = yield* watching(dir, true)
        yield* sh(`mv ${dir}/a ${dir}/b`)
        assert.deepStrictEqual(yield* events.take(1), [event("rename", `${dir}/b`, true, `${dir}/a`)])
        yield* sh(`echo x > ${dir}/b/inner/f`)
        assert.deepStrictEqual(yield* events.take(1), [event("create", `${dir}/b/inner/f`, false)])
      }))

    it.effect("closing the stream removes every inotify watch", () =>
      Effect.gen(function*() {
        const { stock } = yield* TestExecutor.TestExecutorEndpoint
        if (stock) return // the count is of this process's watches
        const before = inotifyWatches()
        yield* Effect.scoped(Effect.gen(function*() {
          const dir = yield* tempDir
          yield* sh(`mkdir -p ${dir}/a/b ${dir}/c`)
          const events = yield* watching(dir, true)
          assert.strictEqual(inotifyWatches(), before + 4)
          yield* sh(`echo x > ${dir}/a/b/f`)
          yield* events.take(1)
        }))
        // the executor sees the connection close a moment after the client drops it
        const after = yield* Effect.repeat(Effect.sync(inotifyWatches), {
          until: (n) => n === before,
          schedule: Schedule.spaced("20 millis")
        }).pipe(Effect.timeout("5 seconds"), Effect.orElseSucceed(inotifyWatches))
        assert.strictEqual(after, before)
      }))
  })
})

describe("through the emulator's gateway", () => {
  const token = Redacted.make("watch-token")
  it.live("events of the watch extension pass the gateway (routing key, bearer secret)", () =>
    Effect.suspend(() => {
      const baseDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "watch-"))
      const emulated = Layer.unwrapEffect(
        Effect.map(KoyebEmulator.KoyebEmulator, (e) => KoyebControlPlane.layer({ token, host: e.url }))
      ).pipe(
        Layer.provide(KoyebEmulator.layer({ token, isolation: "none", baseDir })),
        Layer.provide(NodeHttpClient.layerUndici)
      )
      return Effect.gen(function*() {
        const sandbox = yield* Sandbox.make({ pollInterval: "50 millis", timeout: "60 seconds" })
        const dir = `/tmp/watch-${Crypto.randomUUID()}`
        yield* sandbox.filesystem.mkdir(dir)
        const events = yield* Stream.toPull(yield* sandbox.filesystem.watchScoped(dir))
        // `touch` may add a `modify` (its times) after the `create`
        const next = events.pipe(
          Effect.map((chunk) => Chunk.toReadonlyArray(chunk).filter((e) => e.kind !== "modify").map((e) => ({ ...e }))),
          Effect.repeat({ until: (chunk) => chunk.length > 0 })
        )
        yield* sandbox.executor.run(`touch ${dir}/a`)
        assert.deepStrictEqual(yield* next, [event("create", `${dir}/a`, false)])
        yield* sandbox.executor.run(`mv ${dir}/a ${dir}/b`)
        assert.deepStrictEqual(yield* next, [event("rename", `${dir}/b`, false, `${dir}/a`)])
      }).pipe(
        Effect.scoped,
        Effect.timeout("50 seconds"),
        Effect.provide(emulated),
        Effect.ensuring(Effect.sync(() => Fs.rmSync(baseDir, { recursive: true, force: true })))
      )
    }), 60_000)
})
