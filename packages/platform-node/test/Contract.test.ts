/**
 * One list of contract cases for `Executor`, `Filesystem` and `Processes`, run against
 * `Testing.layerMemory` and against the real services over a real executor (loopback HTTP), so the
 * memory kit cannot drift from the real error contract. Each case works in its own fresh directory.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Processes from "@effect-koyeb/core/Processes"
import * as Testing from "@effect-koyeb/core/Testing"
import { assert, describe, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as TestExecutor from "./utils/TestExecutor.js"

type Services = Executor.Executor | Filesystem.Filesystem | Processes.Processes

/** A fresh directory, removed when the case's scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.gen(function*() {
    const fs = yield* Filesystem.Filesystem
    const dir = `/tmp/contract-${globalThis.crypto.randomUUID()}`
    yield* fs.mkdir(dir)
    return dir
  }),
  (dir) => Effect.flatMap(Filesystem.Filesystem, (fs) => Effect.ignore(fs.rm(dir, { recursive: true, force: true })))
)

const reasonOf = (error: { readonly _tag: string; readonly reason?: string }) =>
  error._tag === "FilesystemError" ? `FilesystemError:${error.reason}` : error._tag

const contract = <E>(name: string, services: Layer.Layer<Services, E>) =>
  layer(services, { excludeTestServices: true, timeout: "60 seconds" })(name, (it) => {
    it.scoped("write and read text and bytes", () =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const dir = yield* tempDir
        yield* fs.writeFile(`${dir}/t.txt`, "héllo\nworld")
        assert.strictEqual(yield* fs.readFileString(`${dir}/t.txt`), "héllo\nworld")
        const bytes = new Uint8Array([0, 1, 2, 0xfe, 0xff, 0x0a, 0x25, 0x5c])
        yield* fs.writeFile(`${dir}/b.bin`, bytes)
        assert.deepStrictEqual(Array.from(yield* fs.readFile(`${dir}/b.bin`)), Array.from(bytes))
        yield* fs.appendFile(`${dir}/t.txt`, "!")
        assert.strictEqual(yield* fs.readFileString(`${dir}/t.txt`), "héllo\nworld!")
      }))

    it.scoped("missing file is FileNotFound; a directory is IsADirectory; listing a missing path is FileNotFound", () =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const dir = yield* tempDir
        const missing = yield* Effect.flip(fs.readFile(`${dir}/missing`))
        assert.strictEqual(missing._tag, "FileNotFound")
        assert.strictEqual(missing._tag === "FileNotFound" && missing.path, `${dir}/missing`)
        assert.strictEqual((yield* Effect.flip(fs.readFileString(`${dir}/missing`)))._tag, "FileNotFound")
        assert.strictEqual(reasonOf(yield* Effect.flip(fs.readFile(dir))), "FilesystemError:IsADirectory")
        assert.strictEqual(reasonOf(yield* Effect.flip(fs.readFileString(dir))), "FilesystemError:IsADirectory")
        assert.strictEqual((yield* Effect.flip(fs.list(`${dir}/missing`)))._tag, "FileNotFound")
        assert.strictEqual(reasonOf(yield* Effect.flip(fs.writeFile(`${dir}/no/parent`, "x"))), "FileNotFound")
        assert.strictEqual(reasonOf(yield* Effect.flip(fs.writeFile(dir, "x"))), "FilesystemError:IsADirectory")
        assert.strictEqual(reasonOf(yield* Effect.flip(fs.readFile(""))), "InvalidArgument")
      }))

    it.scoped("exclusive write on an existing file is FileExists and keeps the file", () =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const dir = yield* tempDir
        yield* fs.writeFile(`${dir}/x`, "original")
        for (const content of ["new", new Uint8Array([1, 2, 3])]) {
          const error = yield* Effect.flip(fs.writeFile(`${dir}/x`, content, { exclusive: true }))
          assert.strictEqual(error._tag === "FileExists" && error.path, `${dir}/x`)
        }
        assert.strictEqual(yield* fs.readFileString(`${dir}/x`), "original")
        yield* fs.writeFile(`${dir}/y`, "fresh", { exclusive: true })
        assert.strictEqual(yield* fs.readFileString(`${dir}/y`), "fresh")
      }))

    it.scoped("mkdir, list, exists, isFile, isDir", () =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const dir = yield* tempDir
        yield* fs.mkdir(`${dir}/a`)
        yield* fs.mkdir(`${dir}/a`)
        assert.strictEqual((yield* Effect.flip(fs.mkdir(`${dir}/a`, { exclusive: true })))._tag, "FileExists")
        assert.strictEqual((yield* Effect.flip(fs.mkdir(`${dir}/x/y`)))._tag, "FileNotFound")
        yield* fs.mkdir(`${dir}/x/y/z`, { recursive: true })
        yield* fs.writeFile(`${dir}/f`, "f")
        assert.strictEqual(reasonOf(yield* Effect.flip(fs.mkdir(`${dir}/f`))), "FilesystemError:NotADirectory")
        assert.strictEqual(reasonOf(yield* Effect.flip(fs.list(`${dir}/f`))), "FilesystemError:NotADirectory")
        yield* fs.writeFile(`${dir}/.hidden`, "")
        assert.deepStrictEqual(yield* fs.list(dir), [".hidden", "a", "f", "x"])
        assert.deepStrictEqual(yield* fs.list(`${dir}/a`), [])
        assert.deepStrictEqual(
          (yield* fs.listDetailed(dir)).map((e) => [e.name, e.type]),
          [[".hidden", "file"], ["a", "directory"], ["f", "file"], ["x", "directory"]]
        )
        assert.deepStrictEqual([
          yield* fs.exists(`${dir}/f`),
          yield* fs.isFile(`${dir}/f`),
          yield* fs.isDir(`${dir}/f`)
        ], [
          true,
          true,
          false
        ])
        assert.deepStrictEqual([yield* fs.exists(dir), yield* fs.isFile(dir), yield* fs.isDir(dir)], [
          true,
          false,
          true
        ])
        assert.deepStrictEqual(
          [yield* fs.exists(`${dir}/n`), yield* fs.isFile(`${dir}/n`), yield* fs.isDir(`${dir}/n`)],
          [false, false, false]
        )
        const stat = yield* fs.stat(`${dir}/f`)
        assert.deepStrictEqual([stat.name, stat.type, stat.size, stat.path], ["f", "file", 1, `${dir}/f`])
      }))

    it.scoped("rename, move and their errors", () =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const dir = yield* tempDir
        yield* fs.writeFile(`${dir}/a`, "a")
        yield* fs.writeFile(`${dir}/b`, "b")
        const exists = yield* Effect.flip(fs.move(`${dir}/a`, `${dir}/b`))
        assert.strictEqual(exists._tag === "FileExists" && exists.path, `${dir}/b`)
        yield* fs.move(`${dir}/a`, `${dir}/b`, { overwrite: true })
        assert.strictEqual(yield* fs.readFileString(`${dir}/b`), "a")
        yield* fs.rename(`${dir}/b`, `${dir}/c`)
        assert.deepStrictEqual(yield* fs.list(dir), ["c"])
        const missing = yield* Effect.flip(fs.move(`${dir}/nope`, `${dir}/z`))
        assert.strictEqual(missing._tag === "FileNotFound" && missing.path, `${dir}/nope`)
        const noParent = yield* Effect.flip(fs.move(`${dir}/c`, `${dir}/no/c`))
        assert.strictEqual(noParent._tag === "FileNotFound" && noParent.path, `${dir}/no/c`)
        yield* fs.mkdir(`${dir}/d1/sub`, { recursive: true })
        yield* fs.writeFile(`${dir}/d1/sub/g`, "g")
        yield* fs.mkdir(`${dir}/d2`)
        assert.strictEqual((yield* Effect.flip(fs.move(`${dir}/d1`, `${dir}/d2`)))._tag, "FileExists")
        assert.strictEqual(
          reasonOf(yield* Effect.flip(fs.move(`${dir}/c`, `${dir}/d2`, { overwrite: true }))),
          "FilesystemError:IsADirectory"
        )
        yield* fs.move(`${dir}/d1`, `${dir}/d3`)
        assert.strictEqual(yield* fs.readFileString(`${dir}/d3/sub/g`), "g")
        assert.deepStrictEqual(yield* fs.list(dir), ["c", "d2", "d3"])
      }))

    it.scoped("rm, deleteFile and deleteDir", () =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const dir = yield* tempDir
        yield* fs.writeFile(`${dir}/f`, "f")
        yield* fs.mkdir(`${dir}/d/e`, { recursive: true })
        assert.strictEqual(reasonOf(yield* Effect.flip(fs.rm(`${dir}/d`))), "FilesystemError:IsADirectory")
        assert.strictEqual(reasonOf(yield* Effect.flip(fs.deleteFile(`${dir}/d`))), "FilesystemError:IsADirectory")
        assert.strictEqual(reasonOf(yield* Effect.flip(fs.deleteDir(`${dir}/f`))), "FilesystemError:NotADirectory")
        yield* fs.rm(`${dir}/d`, { recursive: true })
        yield* fs.rm(`${dir}/f`)
        assert.strictEqual((yield* Effect.flip(fs.rm(`${dir}/f`)))._tag, "FileNotFound")
        assert.strictEqual((yield* Effect.flip(fs.deleteFile(`${dir}/f`)))._tag, "FileNotFound")
        assert.strictEqual((yield* Effect.flip(fs.deleteDir(`${dir}/d`)))._tag, "FileNotFound")
        yield* fs.rm(`${dir}/f`, { force: true })
        assert.deepStrictEqual(yield* fs.list(dir), [])
      }))

    it.scoped("echo gives its line with a newline, streamed as one chunk", () =>
      Effect.gen(function*() {
        const exec = yield* Executor.Executor
        const result = yield* exec.run("echo hi")
        assert.deepStrictEqual([result.stdout, result.stderr, result.exitCode, result.status], [
          "hi\n",
          "",
          0,
          "finished"
        ])
        const chunks = Chunk.toArray(yield* Stream.runCollect(exec.stream("echo hello world")))
        assert.deepStrictEqual(chunks.map((c) => [c.stream, c.data]), [["stdout", "hello world"]])
        assert.strictEqual((yield* Effect.flip(exec.run(" ")))._tag, "InvalidArgument")
      }))

    it.scoped("a non-zero exit is CommandError with the exit code (exec returns it)", () =>
      Effect.gen(function*() {
        const exec = yield* Executor.Executor
        const error = yield* Effect.flip(exec.run("exit 3"))
        assert.strictEqual(error._tag, "CommandError")
        assert.strictEqual(error._tag === "CommandError" && error.exitCode, 3)
        const result = yield* exec.exec("exit 4")
        assert.deepStrictEqual([result.exitCode, result.status, result.success], [4, "failed", false])
        const streamed = yield* Effect.flip(Stream.runDrain(exec.stream("exit 5")))
        assert.strictEqual(streamed._tag === "CommandError" && streamed.exitCode, 5)
      }))

    it.scoped("a launched process completes and its logs hold its output; unknown ids are ProcessNotFound", () =>
      Effect.gen(function*() {
        const processes = yield* Processes.Processes
        const process = yield* processes.launch("echo launched")
        assert.strictEqual((yield* process.wait({ pollInterval: "20 millis" })).status, "completed")
        const lines = Chunk.toArray(yield* Stream.runCollect(process.logs))
        assert.deepStrictEqual(lines.map((l) => [l.stream, l.data]), [["stdout", "launched"]])
        assert.strictEqual((yield* Effect.flip(process.kill()))._tag, "ProcessNotRunning")
        assert.strictEqual((yield* Effect.flip(processes.get("no-such-process")))._tag, "ProcessNotFound")
        const failed = yield* processes.launch("exit 2")
        assert.strictEqual((yield* failed.wait({ pollInterval: "20 millis" })).status, "failed")
      }))
  })

/** Answers `echo` and `exit N` as `sh -c` does, so the same cases pass on both backends. */
const shellLike: ReadonlyArray<Testing.CommandHandler> = [
  { match: /^echo( |$)/, reply: ({ command }) => ({ stdout: `${command.slice(5)}\n` }) },
  { match: /^exit \d+$/, reply: ({ command }) => ({ exitCode: Number(command.slice(5)) }) }
]

describe("contract", () => {
  contract("Testing.layerMemory", Testing.layerMemory({ commands: shellLike }))
  contract(
    "real services over a real executor",
    Layer.mergeAll(Executor.layer, Filesystem.layer, Processes.layer).pipe(Layer.provide(TestExecutor.layerClient))
  )
})
