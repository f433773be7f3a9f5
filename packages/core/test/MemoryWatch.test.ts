/**
 * `Filesystem.watch` on the memory twin of `Testing.layerMemory`: every commit of the tree is
 * diffed, so events are exact (nothing merged) and a move is one `rename`.
 */
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import type { FileEvent } from "@effect-koyeb/core/SandboxSchema"
import * as Testing from "@effect-koyeb/core/Testing"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

const plain = (events: Chunk.Chunk<FileEvent>): ReadonlyArray<Partial<FileEvent>> =>
  Chunk.toReadonlyArray(events).map((event) => ({ ...event }))

describe("Filesystem.watch on Testing.layerMemory", () => {
  it.scoped("create, modify, rename and delete, in order", () =>
    Effect.gen(function*() {
      const fs = yield* Filesystem.Filesystem
      const events = yield* fs.watchScoped("/app")
      yield* fs.writeFile("/app/a.txt", "one")
      yield* fs.appendFile("/app/a.txt", "two")
      yield* fs.rename("/app/a.txt", "/app/b.txt")
      yield* fs.deleteFile("/app/b.txt")
      assert.deepStrictEqual(plain(yield* Stream.runCollect(Stream.take(events, 4))), [
        { kind: "create", path: "/app/a.txt", directory: false },
        { kind: "modify", path: "/app/a.txt", directory: false },
        { kind: "rename", path: "/app/b.txt", from: "/app/a.txt", directory: false },
        { kind: "delete", path: "/app/b.txt", directory: false }
      ])
    }).pipe(Effect.provide(Testing.layerMemory({ files: { "/app/keep": "" } }))))

  it.scoped("recursive or not; a moved directory is one rename; the stream ends with the directory", () =>
    Effect.gen(function*() {
      const fs = yield* Filesystem.Filesystem
      const shallow = yield* fs.watchScoped("/app")
      const deep = yield* fs.watchScoped("/app", { recursive: true })
      yield* fs.mkdir("/app/d/e", { recursive: true })
      yield* fs.writeFile("/app/d/e/f", "x")
      yield* fs.move("/app/d", "/app/g")
      yield* fs.rm("/app", { recursive: true })
      assert.deepStrictEqual(plain(yield* Stream.runCollect(deep)), [
        { kind: "create", path: "/app/d", directory: true },
        { kind: "create", path: "/app/d/e", directory: true },
        { kind: "create", path: "/app/d/e/f", directory: false },
        { kind: "rename", path: "/app/g", from: "/app/d", directory: true },
        { kind: "delete", path: "/app/g/e/f", directory: false },
        { kind: "delete", path: "/app/g/e", directory: true },
        { kind: "delete", path: "/app/g", directory: true },
        { kind: "delete", path: "/app/keep", directory: false },
        { kind: "delete", path: "/app", directory: true }
      ])
      assert.deepStrictEqual(plain(yield* Stream.runCollect(shallow)), [
        { kind: "create", path: "/app/d", directory: true },
        { kind: "rename", path: "/app/g", from: "/app/d", directory: true },
        { kind: "delete", path: "/app/g", directory: true },
        { kind: "delete", path: "/app/keep", directory: false },
        { kind: "delete", path: "/app", directory: true }
      ])
    }).pipe(Effect.provide(Testing.layerMemory({ files: { "/app/keep": "" } }))))

  it.effect("a missing path, a file and an empty path are typed errors", () =>
    Effect.gen(function*() {
      const fs = yield* Filesystem.Filesystem
      assert.strictEqual((yield* Effect.flip(fs.watch("/nope").pipe(Stream.runDrain)))._tag, "FileNotFound")
      const file = yield* Effect.flip(fs.watch("/app/keep").pipe(Stream.runDrain))
      assert.strictEqual(file._tag === "FilesystemError" ? file.reason : file._tag, "NotADirectory")
      assert.strictEqual((yield* Effect.flip(fs.watch("").pipe(Stream.runDrain)))._tag, "InvalidArgument")
    }).pipe(Effect.provide(Testing.layerMemory({ files: { "/app/keep": "" } }))))
})
