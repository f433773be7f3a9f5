/**
 * The executor's file operations (`GoFiles`) over each set of file operations (`FileOps`) they
 * can run on: the same Go semantics and the same `*PathError` texts whichever resolves the paths.
 * Every test works in a real temporary directory, removed by its scope.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Readable } from "node:stream"
import { spawnerBinary } from "../src/internal/executorCommand.js"
import * as GoFiles from "../src/internal/goFiles.js"
import * as Spawner from "../src/internal/spawner.js"

interface Variant {
  readonly name: string
  readonly ops: () => Effect.Effect<GoFiles.FileOps, never, Scope.Scope>
}

/** A spawner (`effect-koyeb-spawner`) on this host, stopped when the scope closes. */
const spawner = Effect.flatMap(spawnerBinary, (binary) => {
  assert.isDefined(binary, "the spawner is built on Linux with a C compiler")
  return Effect.acquireRelease(Effect.promise(() => Spawner.start(binary!)), (s) => Effect.sync(() => s.close()))
})

const variants: ReadonlyArray<Variant> = [
  { name: "this process's file system", ops: () => Effect.succeed(GoFiles.nodeFileOps) },
  { name: "a spawner", ops: () => Effect.map(spawner, (s) => s.files) }
]

/**
 * A temporary directory holding `file` (text `content`), the empty `dir` and `full` (holding
 * `inner`), removed when the scope closes.
 */
const fixture = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "go-files-"))
    Fs.writeFileSync(Path.join(dir, "file"), "content")
    Fs.mkdirSync(Path.join(dir, "dir"))
    Fs.mkdirSync(Path.join(dir, "full"))
    Fs.writeFileSync(Path.join(dir, "full", "inner"), "")
    return dir
  }),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 }))
)

/** The error text of `op`, or `ok`. */
const outcome = (op: Effect.Effect<unknown, GoFiles.FileError>): Effect.Effect<string> =>
  Effect.match(op, { onFailure: (error) => error.text, onSuccess: () => "ok" })

const body = () => Readable.from([Buffer.from("bytes")])

/** Operations that fail (or do nothing) and what Go's executor answers, run in the fixture. */
const errorTable: ReadonlyArray<
  readonly [string, (files: GoFiles.GoFiles) => Effect.Effect<unknown, GoFiles.FileError>]
> = [
  ["open missing: no such file or directory", (f) => f.readFile("missing")],
  ["open file/x: not a directory", (f) => f.readFile("file/x")],
  ["read dir: is a directory", (f) => f.readFile("dir")],
  ["open a\u0000b: invalid argument", (f) => f.readFile("a\u0000b")],
  ["open nodir/x: no such file or directory", (f) => f.writeFile("nodir/x", "a")],
  ["open file/x: not a directory", (f) => f.writeFile("file/x", "a")],
  ["open dir: is a directory", (f) => f.writeFile("dir", "a")],
  ["write /dev/full: no space left on device", (f) => f.writeFile("/dev/full", "a")],
  ["open missing: no such file or directory", (f) => f.readStream("missing")],
  ["read dir: is a directory", (f) => f.readStream("dir")],
  ["open nodir/x: no such file or directory", (f) => f.writeStream("nodir/x", body())],
  ["remove missing: no such file or directory", (f) => f.deleteFile("missing")],
  ["remove full: directory not empty", (f) => f.deleteFile("full")],
  ["remove file/x: not a directory", (f) => f.deleteFile("file/x")],
  ["mkdir file: not a directory", (f) => f.makeDir("file")],
  ["mkdir file: not a directory", (f) => f.makeDir("file/sub/deeper")],
  ["mkdir : no such file or directory", (f) => f.makeDir("")],
  ["RemoveAll .: invalid argument", (f) => f.deleteDir(".")],
  ["RemoveAll full/.: invalid argument", (f) => f.deleteDir("full/.")],
  ["unlinkat file/x: not a directory", (f) => f.deleteDir("file/x")],
  ["ok", (f) => f.deleteDir("")],
  ["ok", (f) => f.deleteDir("missing")],
  ["open missing: no such file or directory", (f) => f.listDir("missing")],
  ["readdirent file: not a directory", (f) => f.listDir("file")]
]

const modeOf = (path: string) => Fs.statSync(path).mode & 0o777

/** This process's descriptors of files under `dir`. */
const fdsUnder = (dir: string): Array<string> =>
  Fs.readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return Fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${dir}/`)
    } catch {
      return false
    }
  })

describe.each(variants)("GoFiles over $name", ({ ops }) => {
  const files = Effect.gen(function*() {
    const dir = yield* fixture
    return { dir, files: GoFiles.make(dir, yield* ops()) }
  })

  it.scoped("failures have Go's texts, and change nothing", () =>
    Effect.gen(function*() {
      const { dir, files: f } = yield* files
      const texts = yield* Effect.forEach(errorTable, ([, op]) => outcome(op(f)))
      assert.deepStrictEqual(texts, errorTable.map(([text]) => text))
      assert.deepStrictEqual(Fs.readdirSync(dir).sort(), ["dir", "file", "full"])
      assert.deepStrictEqual(Fs.readdirSync(Path.join(dir, "full")), ["inner"])
      assert.strictEqual(Fs.readFileSync(Path.join(dir, "file"), "utf8"), "content")
    }))

  it.scoped("writes, reads and removes as os.WriteFile, os.ReadFile, os.Remove and os.RemoveAll", () =>
    Effect.gen(function*() {
      const { dir, files: f } = yield* files
      const umask = process.umask()
      yield* f.writeFile("new.txt", "héllo, long text")
      assert.strictEqual(modeOf(Path.join(dir, "new.txt")), 0o644 & ~umask)
      yield* f.writeFile("new.txt", "short")
      assert.strictEqual(yield* f.readFile("new.txt"), "short")
      yield* f.writeFile(Path.join(dir, "dir", "absolute"), "")
      assert.strictEqual(yield* f.readFile("dir/absolute"), "")
      // an existing file keeps its mode
      Fs.chmodSync(Path.join(dir, "file"), 0o600)
      yield* f.writeFile("file", "replaced")
      assert.strictEqual(modeOf(Path.join(dir, "file")), 0o600)
      assert.strictEqual(yield* f.readFile("file"), "replaced")

      yield* f.deleteFile("new.txt")
      yield* f.deleteFile("dir/absolute")
      // os.Remove removes an empty directory too
      yield* f.deleteFile("dir")
      yield* f.deleteDir("full")
      assert.deepStrictEqual(Fs.readdirSync(dir), ["file"])
    }))

  it.scoped("makeDir is os.MkdirAll, listDir is os.ReadDir (names by UTF-8 bytes)", () =>
    Effect.gen(function*() {
      const { dir, files: f } = yield* files
      const umask = process.umask()
      yield* f.makeDir("a/b//c/")
      assert.isTrue(Fs.statSync(Path.join(dir, "a/b/c")).isDirectory())
      assert.strictEqual(modeOf(Path.join(dir, "a/b/c")), 0o755 & ~umask)
      yield* f.makeDir("a/b")
      yield* f.makeDir("dir/.")
      assert.deepStrictEqual(yield* f.listDir("dir"), [])

      // UTF-16 order would put the emoji (a surrogate pair) before the fullwidth letter
      const names = ["b", "😀", "a", "\uFF21", "é", "Z", "ä", ".hidden"]
      for (const name of names) Fs.writeFileSync(Path.join(dir, "dir", name), "")
      assert.deepStrictEqual(yield* f.listDir("dir"), [".hidden", "Z", "a", "b", "ä", "é", "\uFF21", "😀"])
      assert.deepStrictEqual(yield* f.listDir(Path.join(dir, "a")), ["b"])
    }))

  it.scoped("streams write and read the bytes with os.WriteFile's and os.ReadFile's opens", () =>
    Effect.gen(function*() {
      const { dir, files: f } = yield* files
      const bytes = Buffer.alloc(600 * 1024, "0123456789")
      yield* f.writeStream("big.bin", Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]))
      assert.strictEqual(modeOf(Path.join(dir, "big.bin")), 0o644 & ~process.umask())
      const stream = yield* f.readStream("big.bin")
      const read = yield* Effect.promise(() => stream.toArray())
      assert.isTrue(Buffer.concat(read).equals(bytes))
      yield* f.writeStream("big.bin", body())
      assert.strictEqual(yield* f.readFile("big.bin"), "bytes")
    }))

  it.scopedLive("interrupted operations leave no file open", () =>
    Effect.gen(function*() {
      const { dir, files: f } = yield* files
      const text = "x".repeat(256 * 1024)
      for (const delay of [0, 1, 2, 5, 10]) {
        const fiber = yield* Effect.fork(
          Effect.all(
            Array.from({ length: 10 }, (_, i) => [
              f.writeFile(`w${i}`, text),
              f.readFile("file"),
              f.listDir("full"),
              f.makeDir(`d${i}/e`)
            ]).flat(),
            { concurrency: "unbounded", discard: true }
          )
        )
        yield* Effect.sleep(delay)
        yield* Fiber.interrupt(fiber)
      }
      // the closes of interrupted operations finish in the background
      const open = yield* Effect.suspend(() => {
        const fds = fdsUnder(dir)
        return fds.length === 0 ? Effect.succeed(fds) : Effect.fail(fds)
      }).pipe(Effect.retry(Schedule.spaced(20).pipe(Schedule.upTo(2000))), Effect.merge)
      assert.deepStrictEqual(open, [])
    }), { timeout: 10_000 })
})
