/**
 * `Filesystem` against a real executor over loopback HTTP. Every test works in its own temporary
 * directory in the sandbox, removed afterwards. Byte exactness is checked both by reading back and
 * by hashing inside the sandbox (`sha256sum`), so a bug symmetric in write and read cannot hide.
 */
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as ExecutorServer from "@effect-koyeb/platform-node/ExecutorServer"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, layer } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { createHash, randomBytes } from "node:crypto"
import * as TestExecutor from "./utils/TestExecutor.js"

// The commands the service sent, to tell which protocol carried the bytes.
const commands: Array<string> = []
const Recording = Layer.effect(
  ExecutorClient.ExecutorClient,
  Effect.map(ExecutorClient.ExecutorClient, (client) => ({
    ...client,
    run: (request: ExecutorClient.CommandRequest) => {
      commands.push(request.cmd)
      return client.run(request)
    },
    runStreaming: (request: ExecutorClient.CommandRequest) => {
      commands.push(request.cmd)
      return client.runStreaming(request)
    }
  }))
)

const FilesystemLive = (stockProtocol: boolean) =>
  Filesystem.layer.pipe(
    // the stock protocol is what Koyeb's Go executor offers: no `/health` capabilities, no `binary-files` extension
    Layer.provide(stockProtocol ? Recording.pipe(Layer.provide(TestExecutor.hideCapabilities)) : Recording),
    Layer.provideMerge(TestExecutor.layerClient),
    Layer.provideMerge(NodeContext.layer)
  )

const sh = (cmd: string) => Effect.flatMap(ExecutorClient.ExecutorClient, (client) => client.run({ cmd }))

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`

/** A fresh directory in the sandbox, removed when the test's scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.map(sh("mktemp -d /tmp/fs-test-XXXXXXXX"), (reply) => {
    assert.strictEqual(reply.code, 0, reply.stderr)
    return reply.stdout.trim()
  }),
  (dir) => Effect.ignore(sh(`rm -rf ${quote(dir)}`))
)

/** Whether the executor itself advertises `binary-files` (another executor may not: ask, not assume). */
const binaryFiles = Effect.flatMap(
  ExecutorClient.ExecutorClient,
  (client) => Effect.map(client.capabilities, (capabilities) => capabilities.has("binary-files"))
)

/** A local temporary directory, removed when the test's scope closes. */
const localTempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "fs-test-" }))

/** Every byte value, then random bytes, `size` bytes in all. */
const binary = (size: number): Uint8Array => {
  const bytes = new Uint8Array(randomBytes(size))
  for (let i = 0; i < Math.min(256, size); i++) bytes[i] = i
  return bytes
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

const remoteSha256 = (path: string) =>
  Effect.map(sh(`sha256sum < ${quote(path)}`), (reply) => {
    assert.strictEqual(reply.code, 0, reply.stderr)
    return reply.stdout.split(" ")[0]
  })

const assertBytes = (actual: Uint8Array, expected: Uint8Array) => {
  assert.strictEqual(actual.length, expected.length)
  assert.strictEqual(sha256(actual), sha256(expected))
  assert.isTrue(Buffer.from(actual).equals(Buffer.from(expected)))
}

/** Names left in `dir` by staging (chunks of large writes). */
const stagingLeftovers = (dir: string) =>
  Effect.map(sh(`ls -A ${quote(dir)}`), (reply) => reply.stdout.split("\n").filter((n) => n.includes("effect-koyeb")))

const utf8 = new TextEncoder()

// names a shell or a tool could misread
const awkwardNames = [
  "plain.txt",
  "with space.txt",
  "it's \"quoted\".txt",
  "new\nline.txt",
  "-leading-dash",
  "--double",
  "ünïcødé ✓ 文件.txt",
  "$(touch pwned) `x` ;&|<>*?[].txt",
  "back\\slash %s %n"
]

// Every case runs on both protocols: with our executor's `binary-files` extension, and on the stock one.
for (const stockProtocol of [false, true]) {
  const protocol = stockProtocol ? "stock protocol" : "binary-files extension"
  layer(FilesystemLive(stockProtocol), { excludeTestServices: true, timeout: "120 seconds" })(
    `Filesystem (${protocol})`,
    (it) => {
      it.scoped("bytes travel through the extension when advertised, else through base64 commands", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          const extension = !stockProtocol && (yield* binaryFiles)
          for (const size of [1024, 200 * 1024, 5 * 1024 * 1024]) {
            const bytes = binary(size)
            commands.length = 0
            yield* fs.writeFile(`${dir}/f`, bytes)
            assertBytes(yield* fs.readFile(`${dir}/f`), bytes)
            const base64 = commands.filter((cmd) => cmd.includes("base64"))
            if (extension) assert.deepStrictEqual(base64, [], `${size} bytes`)
            else assert.isAbove(base64.length, 0, `${size} bytes`)
            // with the extension, a write and a read send no command at all
            if (extension) assert.deepStrictEqual(commands, [], `${size} bytes`)
          }
        }))

      it.scoped("binary files of every size round-trip byte-exactly", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          for (const size of [0, 1, 256, 1024, 100 * 1024, 1024 * 1024, 8 * 1024 * 1024]) {
            const bytes = binary(size)
            const path = `${dir}/bin-${size}`
            yield* fs.writeFile(path, bytes)
            assert.strictEqual(yield* remoteSha256(path), sha256(bytes), `sandbox copy of ${size} bytes`)
            assertBytes(yield* fs.readFile(path), bytes)
            assert.strictEqual((yield* fs.stat(path)).size, size)
          }
          assert.deepStrictEqual(yield* stagingLeftovers(dir), [])
        }), { timeout: 120_000 })

      it.scoped("bytes that are text but special to printf or the shell round-trip", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          const samples = [
            "\uFEFFbom first",
            "-starts with a dash",
            "%s %d %% \\n \\0 \\\\ ' \" $HOME `id` \t tab \r\n crlf",
            "nul\u0000inside and \u0001\u001f controls",
            "émoji 😀 and 文字",
            "\n\n"
          ]
          for (const [i, text] of samples.entries()) {
            const bytes = utf8.encode(text)
            yield* fs.writeFile(`${dir}/t${i}`, bytes)
            assert.strictEqual(yield* remoteSha256(`${dir}/t${i}`), sha256(bytes))
            assertBytes(yield* fs.readFile(`${dir}/t${i}`), bytes)
          }
        }))

      it.scoped("text: writeFile(string) and readFileString", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          const text = "héllo wörld ✓\nline 2\n"
          yield* fs.writeFile(`${dir}/a.txt`, text)
          assert.strictEqual(yield* fs.readFileString(`${dir}/a.txt`), text)
          assertBytes(yield* fs.readFile(`${dir}/a.txt`), utf8.encode(text))
          yield* fs.writeFile(`${dir}/empty.txt`, "")
          assert.strictEqual(yield* fs.readFileString(`${dir}/empty.txt`), "")
          // text of a few MB goes through /write_file in one request, larger text is staged
          for (const repeat of [200_000, 600_000]) {
            const large = "0123456789abcdé\n".repeat(repeat)
            yield* fs.writeFile(`${dir}/large.txt`, large)
            assert.strictEqual(yield* remoteSha256(`${dir}/large.txt`), sha256(utf8.encode(large)))
          }
          assert.deepStrictEqual(yield* stagingLeftovers(dir), [])
        }))

      it.scoped("awkward names work in every operation", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          for (const name of awkwardNames) {
            const path = `${dir}/${name}`
            const bytes = binary(300)
            yield* fs.writeFile(path, bytes)
            assertBytes(yield* fs.readFile(path), bytes)
            // staged (large) writes quote the staging names too
            const large = binary(150 * 1024)
            yield* fs.writeFile(path, large, { exclusive: false })
            assert.strictEqual(yield* remoteSha256(path), sha256(large))
            assert.isTrue(yield* fs.exists(path))
            assert.isTrue(yield* fs.isFile(path))
            yield* fs.move(path, `${path}.moved`)
            assert.isFalse(yield* fs.exists(path))
            yield* fs.mkdir(`${dir}/d ${name}`)
            assert.isTrue(yield* fs.isDir(`${dir}/d ${name}`))
          }
          const names = yield* fs.list(dir)
          assert.deepStrictEqual(
            [...names].sort(),
            awkwardNames.flatMap((n) => [`${n}.moved`, `d ${n}`]).sort()
          )
          const entries = yield* fs.listDetailed(dir)
          assert.deepStrictEqual(entries.map((e) => e.name).sort(), [...names].sort())
          for (const name of awkwardNames) {
            yield* fs.rm(`${dir}/${name}.moved`)
            yield* fs.deleteDir(`${dir}/d ${name}`)
          }
          assert.deepStrictEqual(yield* fs.list(dir), [])
          // nothing ran from the names
          assert.isFalse(yield* fs.exists("pwned"))
        }))

      it.scoped("relative paths starting with a dash are not options", () =>
        Effect.gen(function*() {
          // relative paths resolve against the executor's cwd: use a server of our own in a local temp dir
          const cwd = yield* localTempDir
          const secret = Redacted.make("relative-paths")
          const address = yield* ExecutorServer.make({ secret, cwd })
          const context = yield* Layer.build(Filesystem.layer.pipe(
            Layer.provide(ExecutorClient.layer({ url: address.url, secret })),
            Layer.provide(NodeHttpClient.layerUndici)
          ))
          const fs = Context.get(context, Filesystem.Filesystem)
          const local = yield* FileSystem.FileSystem
          yield* fs.mkdir("-r")
          yield* fs.mkdir("-p/-q", { recursive: true, exclusive: true })
          yield* fs.writeFile("-r/-f", binary(10))
          yield* fs.writeFile("-n", binary(200 * 1024))
          yield* fs.writeFiles([{ path: "-e", content: "e" }])
          yield* fs.appendFile("-e", "e")
          assert.isTrue(yield* fs.isFile("-r/-f"))
          assert.isTrue(yield* fs.isDir("-r"))
          assert.isTrue(yield* fs.exists("-n"))
          assert.strictEqual((yield* fs.readFile("-n")).length, 200 * 1024)
          assert.strictEqual((yield* fs.stat("-n")).size, 200 * 1024)
          assert.deepStrictEqual((yield* fs.listDetailed("-r")).map((e) => [e.name, e.path]), [["-f", "-r/-f"]])
          yield* fs.move("-e", "-m")
          assert.strictEqual(yield* fs.readFileString("-m"), "ee")
          yield* fs.deleteFile("-m")
          yield* fs.rm("-n")
          yield* fs.deleteDir("-p")
          yield* fs.rm("-r", { recursive: true })
          assert.deepStrictEqual(yield* local.readDirectory(cwd), [])
        }))

      it.scoped("writeFile: missing parent is FileNotFound, a directory is IsADirectory, exclusive is FileExists", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          for (const content of ["text", binary(10), binary(200 * 1024)]) {
            const missing = yield* Effect.flip(fs.writeFile(`${dir}/nope/f`, content))
            assert.strictEqual(missing._tag, "FileNotFound")
            const onDir = yield* Effect.flip(fs.writeFile(dir, content))
            assert.strictEqual(onDir._tag, "FilesystemError")
            assert.strictEqual(onDir._tag === "FilesystemError" && onDir.reason, "IsADirectory")
          }
          yield* fs.writeFile(`${dir}/x`, "original")
          for (const content of ["new", binary(10), binary(200 * 1024)]) {
            const exists = yield* Effect.flip(fs.writeFile(`${dir}/x`, content, { exclusive: true }))
            assert.strictEqual(exists._tag, "FileExists")
            assert.strictEqual(exists._tag === "FileExists" && exists.path, `${dir}/x`)
          }
          assert.strictEqual(yield* fs.readFileString(`${dir}/x`), "original")
          const fresh = binary(200 * 1024)
          yield* fs.writeFile(`${dir}/y`, fresh, { exclusive: true })
          assertBytes(yield* fs.readFile(`${dir}/y`), fresh)
          yield* fs.writeFile(`${dir}/z`, "text", { exclusive: true })
          assert.strictEqual(yield* fs.readFileString(`${dir}/z`), "text")
          assert.deepStrictEqual(yield* stagingLeftovers(dir), [])
        }))

      it.scoped("an interrupted large write leaves no staging file", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          // one chunk arrives, then the source stalls: the write is interrupted mid-upload
          const source = Stream.concat(Stream.succeed(binary(4 * 1024 * 1024)), Stream.never)
          const fiber = yield* Effect.fork(fs.writeStream(`${dir}/big`, source))
          yield* stagingLeftovers(dir).pipe(
            Effect.filterOrFail((names) => names.length > 0),
            Effect.retry(Schedule.spaced("20 millis"))
          )
          yield* Fiber.interrupt(fiber)
          assert.deepStrictEqual(yield* stagingLeftovers(dir), [])
        }))

      it.scoped("an interrupted read stops its reading command, or has none with the extension", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const extension = !stockProtocol && (yield* binaryFiles)
          const dir = yield* tempDir
          const name = `big-${randomBytes(6).toString("hex")}.bin`
          yield* fs.writeFile(`${dir}/${name}`, binary(24 * 1024 * 1024))
          // the sandbox's own process list, so that this also holds on a remote executor
          const reading = Effect.map(sh("ps -e -o args="), (reply) => reply.stdout.includes(name))
          const first = yield* Deferred.make<void>()
          // the consumer stops after the first chunk: a reading command is held by back-pressure
          const fiber = yield* fs.readStream(`${dir}/${name}`).pipe(
            Stream.runForEach(() => Effect.zipRight(Deferred.succeed(first, undefined), Effect.never)),
            Effect.fork
          )
          yield* Deferred.await(first)
          assert.strictEqual(
            yield* reading,
            !extension,
            "a reading command runs only on the stock protocol"
          )
          yield* Fiber.interrupt(fiber)
          yield* reading.pipe(
            Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (running) => !running, times: 100 })
          )
          assert.isFalse(yield* reading, "no reading command left")
        }))

      it.scoped("writeStream and appendFile", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          const parts = [binary(5), binary(3 * 1024 * 1024 + 7), binary(1), binary(2 * 1024 * 1024)]
          yield* fs.writeStream(`${dir}/s`, Stream.fromIterable(parts))
          assertBytes(yield* fs.readFile(`${dir}/s`), Buffer.concat(parts))
          yield* fs.writeStream(`${dir}/empty`, Stream.empty)
          assert.strictEqual((yield* fs.readFile(`${dir}/empty`)).length, 0)
          const failed = yield* Effect.flip(fs.writeStream(`${dir}/f`, Stream.fail("boom" as const)))
          assert.strictEqual(failed, "boom")
          yield* fs.appendFile(`${dir}/log`, "a\n")
          yield* fs.appendFile(`${dir}/log`, utf8.encode("b\n"))
          const big = binary(300 * 1024)
          yield* fs.appendFile(`${dir}/log`, big)
          assertBytes(yield* fs.readFile(`${dir}/log`), Buffer.concat([utf8.encode("a\nb\n"), big]))
          assert.deepStrictEqual(yield* stagingLeftovers(dir), [])
        }))

      it.scoped("readFile / readFileString errors", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          const missing = yield* Effect.flip(fs.readFile(`${dir}/missing`))
          assert.strictEqual(missing._tag, "FileNotFound")
          assert.strictEqual(missing._tag === "FileNotFound" && missing.path, `${dir}/missing`)
          const missingText = yield* Effect.flip(fs.readFileString(`${dir}/missing`))
          assert.strictEqual(missingText._tag, "FileNotFound")
          for (const error of [yield* Effect.flip(fs.readFile(dir)), yield* Effect.flip(fs.readFileString(dir))]) {
            assert.strictEqual(error._tag === "FilesystemError" && error.reason, "IsADirectory")
          }
        }))

      it.scoped("writeFiles writes 200 files of text and bytes in batches", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          const before = (yield* sh("ls -A /tmp")).stdout.split("\n").filter((n) => n.startsWith(".effect-koyeb-"))
          const files = Array.from({ length: 200 }, (_, i) => ({
            path: `${dir}/${awkwardNames[i % awkwardNames.length]}-${i}`,
            content: i % 3 === 0 ? `text ${i} ✓ %s \\ '\n` : binary(i * 37)
          }))
          // one file larger than a batch entry, and enough bytes for the script to be staged
          files.push({ path: `${dir}/large`, content: binary(600 * 1024) })
          yield* fs.writeFiles(files)
          const expected = files.map((file) =>
            sha256(typeof file.content === "string" ? utf8.encode(file.content) : file.content)
          )
          const hashes = yield* sh(files.map((file) => `sha256sum < ${quote(file.path)}`).join(" && "))
          assert.deepStrictEqual(hashes.stdout.trim().split("\n").map((line) => line.split(" ")[0]), expected)
          assert.strictEqual((yield* fs.list(dir)).length, files.length)
          // another client may be staging a transfer in /tmp right now (a shared executor): only a
          // name that stays counts
          const staged = Effect.map(
            sh("ls -A /tmp"),
            (reply) => reply.stdout.split("\n").filter((n) => n.startsWith(".effect-koyeb-") && !before.includes(n))
          )
          let left = yield* staged
          for (let i = 0; i < 20 && left.length > 0; i++) {
            left = yield* Effect.zipRight(Effect.sleep("100 millis"), staged)
          }
          assert.deepStrictEqual(left, [])
        }))

      it.scoped("writeFiles fails on the first file that cannot be written, naming it", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          const error = yield* Effect.flip(fs.writeFiles([
            { path: `${dir}/ok`, content: "ok" },
            { path: `${dir}/missing/f`, content: "x" },
            { path: `${dir}/after`, content: "x" }
          ]))
          assert.strictEqual(error._tag, "FileNotFound")
          assert.strictEqual(error._tag === "FileNotFound" && error.path, `${dir}/missing/f`)
          const onDir = yield* Effect.flip(
            fs.writeFiles([{ path: `${dir}/a`, content: "a" }, { path: dir, content: "x" }])
          )
          assert.strictEqual(onDir._tag === "FilesystemError" && onDir.reason, "IsADirectory")
          const invalid = yield* Effect.flip(fs.writeFiles([{ path: "", content: "x" }]))
          assert.strictEqual(invalid._tag, "InvalidArgument")
        }))

      it.scoped("mkdir", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          yield* fs.mkdir(`${dir}/a`)
          assert.isTrue(yield* fs.isDir(`${dir}/a`))
          yield* fs.mkdir(`${dir}/a`)
          const exists = yield* Effect.flip(fs.mkdir(`${dir}/a`, { exclusive: true }))
          assert.strictEqual(exists._tag, "FileExists")
          const existsRecursive = yield* Effect.flip(fs.mkdir(`${dir}/a`, { exclusive: true, recursive: true }))
          assert.strictEqual(existsRecursive._tag, "FileExists")
          const noParent = yield* Effect.flip(fs.mkdir(`${dir}/x/y`))
          assert.strictEqual(noParent._tag, "FileNotFound")
          yield* fs.mkdir(`${dir}/x/y/z`, { recursive: true })
          assert.isTrue(yield* fs.isDir(`${dir}/x/y/z`))
          yield* fs.mkdir(`${dir}/p/q`, { recursive: true, exclusive: true })
          assert.isTrue(yield* fs.isDir(`${dir}/p/q`))
          yield* fs.writeFile(`${dir}/file`, "f")
          const fileInWay = yield* Effect.flip(fs.mkdir(`${dir}/file`))
          assert.strictEqual(fileInWay._tag === "FilesystemError" && fileInWay.reason, "NotADirectory")
          const fileInWayRecursive = yield* Effect.flip(fs.mkdir(`${dir}/file/sub`, { recursive: true }))
          assert.strictEqual(
            fileInWayRecursive._tag === "FilesystemError" && fileInWayRecursive.reason,
            "NotADirectory"
          )
          const fileExclusive = yield* Effect.flip(fs.mkdir(`${dir}/file`, { exclusive: true }))
          assert.strictEqual(fileExclusive._tag, "FileExists")
        }))

      it.scoped("list, listDetailed and stat", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          yield* fs.writeFile(`${dir}/b.bin`, binary(1234))
          yield* fs.writeFile(`${dir}/.hidden`, "h")
          yield* fs.mkdir(`${dir}/a dir`)
          yield* sh(`chmod 640 ${quote(`${dir}/b.bin`)} && ln -s b.bin ${quote(`${dir}/link`)}`)
          assert.deepStrictEqual(yield* fs.list(dir), [".hidden", "a dir", "b.bin", "link"])
          const entries = yield* fs.listDetailed(dir)
          assert.deepStrictEqual(entries.map((e) => [e.name, e.type]), [
            [".hidden", "file"],
            ["a dir", "directory"],
            ["b.bin", "file"],
            ["link", "symlink"]
          ])
          const file = entries[2]!
          assert.strictEqual(file.path, `${dir}/b.bin`)
          assert.strictEqual(file.size, 1234)
          assert.strictEqual(file.mode, 0o640)
          assert.isTrue(Math.abs(file.modifiedAt.getTime() - Date.now()) < 60_000)
          assert.deepStrictEqual(yield* fs.listDetailed(`${dir}/a dir`), [])
          const stat = yield* fs.stat(`${dir}/link`)
          assert.deepStrictEqual([stat.name, stat.type, stat.size, stat.path], ["link", "file", 1234, `${dir}/link`])
          assert.strictEqual((yield* fs.stat(dir)).type, "directory")
          for (
            const error of [
              yield* Effect.flip(fs.list(`${dir}/none`)),
              yield* Effect.flip(fs.listDetailed(`${dir}/none`))
            ]
          ) {
            assert.strictEqual(error._tag, "FileNotFound")
          }
          assert.strictEqual((yield* Effect.flip(fs.stat(`${dir}/none`)))._tag, "FileNotFound")
          for (
            const error of [
              yield* Effect.flip(fs.list(`${dir}/b.bin`)),
              yield* Effect.flip(fs.listDetailed(`${dir}/b.bin`))
            ]
          ) {
            assert.strictEqual(error._tag === "FilesystemError" && error.reason, "NotADirectory")
          }
        }))

      it.scoped("deleteFile, deleteDir and rm", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          yield* fs.writeFile(`${dir}/f`, "f")
          yield* fs.mkdir(`${dir}/d/e`, { recursive: true })
          yield* fs.writeFile(`${dir}/d/e/g`, "g")
          const fileOnDir = yield* Effect.flip(fs.deleteFile(`${dir}/d`))
          assert.strictEqual(fileOnDir._tag === "FilesystemError" && fileOnDir.reason, "IsADirectory")
          yield* fs.deleteFile(`${dir}/f`)
          assert.isFalse(yield* fs.exists(`${dir}/f`))
          assert.strictEqual((yield* Effect.flip(fs.deleteFile(`${dir}/f`)))._tag, "FileNotFound")
          yield* fs.writeFile(`${dir}/f2`, "f")
          const dirOnFile = yield* Effect.flip(fs.deleteDir(`${dir}/f2`))
          assert.strictEqual(dirOnFile._tag === "FilesystemError" && dirOnFile.reason, "NotADirectory")
          yield* fs.deleteDir(`${dir}/d`)
          assert.isFalse(yield* fs.exists(`${dir}/d`))
          assert.strictEqual((yield* Effect.flip(fs.deleteDir(`${dir}/d`)))._tag, "FileNotFound")

          yield* fs.mkdir(`${dir}/r/s`, { recursive: true })
          const rmDir = yield* Effect.flip(fs.rm(`${dir}/r`))
          assert.strictEqual(rmDir._tag === "FilesystemError" && rmDir.reason, "IsADirectory")
          yield* fs.rm(`${dir}/r`, { recursive: true })
          assert.isFalse(yield* fs.exists(`${dir}/r`))
          yield* fs.rm(`${dir}/f2`)
          assert.strictEqual((yield* Effect.flip(fs.rm(`${dir}/f2`)))._tag, "FileNotFound")
          yield* fs.rm(`${dir}/f2`, { force: true })
        }))

      it.scoped("move and rename", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          yield* fs.writeFile(`${dir}/a`, "a")
          yield* fs.writeFile(`${dir}/b`, "b")
          const exists = yield* Effect.flip(fs.move(`${dir}/a`, `${dir}/b`))
          assert.strictEqual(exists._tag, "FileExists")
          assert.strictEqual(exists._tag === "FileExists" && exists.path, `${dir}/b`)
          assert.strictEqual(yield* fs.readFileString(`${dir}/b`), "b")
          assert.strictEqual((yield* Effect.flip(fs.rename(`${dir}/a`, `${dir}/b`)))._tag, "FileExists")
          yield* fs.move(`${dir}/a`, `${dir}/b`, { overwrite: true })
          assert.strictEqual(yield* fs.readFileString(`${dir}/b`), "a")
          assert.isFalse(yield* fs.exists(`${dir}/a`))
          yield* fs.rename(`${dir}/b`, `${dir}/c`)
          assert.strictEqual(yield* fs.readFileString(`${dir}/c`), "a")
          const missing = yield* Effect.flip(fs.move(`${dir}/nope`, `${dir}/x`))
          assert.strictEqual(missing._tag === "FileNotFound" && missing.path, `${dir}/nope`)
          const noParent = yield* Effect.flip(fs.move(`${dir}/c`, `${dir}/no/dir/c`))
          assert.strictEqual(noParent._tag === "FileNotFound" && noParent.path, `${dir}/no/dir/c`)
          // a directory is never moved *into* an existing directory
          yield* fs.mkdir(`${dir}/d1`)
          yield* fs.mkdir(`${dir}/d2`)
          assert.strictEqual((yield* Effect.flip(fs.move(`${dir}/d1`, `${dir}/d2`)))._tag, "FileExists")
          const fileOverDir = yield* Effect.flip(fs.move(`${dir}/c`, `${dir}/d2`, { overwrite: true }))
          assert.strictEqual(fileOverDir._tag === "FilesystemError" && fileOverDir.reason, "IsADirectory")
          yield* fs.move(`${dir}/d1`, `${dir}/d3`)
          assert.deepStrictEqual(yield* fs.list(dir), ["c", "d2", "d3"])
        }))

      it.scoped("exists, isFile, isDir", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          yield* fs.writeFile(`${dir}/f`, "f")
          assert.deepStrictEqual(
            [yield* fs.exists(`${dir}/f`), yield* fs.isFile(`${dir}/f`), yield* fs.isDir(`${dir}/f`)],
            [true, true, false]
          )
          assert.deepStrictEqual([yield* fs.exists(dir), yield* fs.isFile(dir), yield* fs.isDir(dir)], [
            true,
            false,
            true
          ])
          assert.deepStrictEqual(
            [yield* fs.exists(`${dir}/n`), yield* fs.isFile(`${dir}/n`), yield* fs.isDir(`${dir}/n`)],
            [false, false, false]
          )
        }))

      it.scoped("upload and download stream binary files", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const local = yield* FileSystem.FileSystem
          const dir = yield* tempDir
          const localDir = yield* localTempDir
          for (const size of [0, 1000, 5 * 1024 * 1024 + 1]) {
            const bytes = binary(size)
            yield* local.writeFile(`${localDir}/in-${size}`, bytes)
            yield* fs.upload(`${localDir}/in-${size}`, `${dir}/up-${size}`)
            assert.strictEqual(yield* remoteSha256(`${dir}/up-${size}`), sha256(bytes))
            yield* fs.download(`${dir}/up-${size}`, `${localDir}/out-${size}`)
            assertBytes(yield* local.readFile(`${localDir}/out-${size}`), bytes)
          }
          const exclusive = yield* Effect.flip(fs.upload(`${localDir}/in-1000`, `${dir}/up-1000`, { exclusive: true }))
          assert.strictEqual(exclusive._tag, "FileExists")
          const noLocal = yield* Effect.flip(fs.upload(`${localDir}/missing`, `${dir}/x`))
          assert.strictEqual(noLocal._tag === "FileNotFound" && noLocal.path, `${localDir}/missing`)
          const noRemote = yield* Effect.flip(fs.download(`${dir}/missing`, `${localDir}/out-missing`))
          assert.strictEqual(noRemote._tag === "FileNotFound" && noRemote.path, `${dir}/missing`)
          // the local side is untouched by a failed download
          assert.deepStrictEqual((yield* local.readDirectory(localDir)).filter((n) => n.startsWith("out-")).sort(), [
            "out-0",
            "out-1000",
            "out-5242881"
          ])
          const noLocalDir = yield* Effect.flip(fs.download(`${dir}/up-1000`, `${localDir}/no/dir/out`))
          assert.strictEqual(noLocalDir._tag, "FileNotFound")
        }))

      it.scoped("upload and download take the host file system from the caller, else from where the service was built", () =>
        Effect.gen(function*() {
          const client = yield* ExecutorClient.ExecutorClient
          const local = yield* FileSystem.FileSystem
          const dir = yield* tempDir
          const localDir = yield* localTempDir
          yield* local.writeFileString(`${localDir}/in`, "captured")
          const withoutContext = <A, E>(effect: Effect.Effect<A, E>) =>
            Effect.mapInputContext(effect, (_: Context.Context<never>) => Context.empty())
          // built where the host file system is, called where it is not
          const built = yield* Filesystem.make.pipe(Effect.provideService(ExecutorClient.ExecutorClient, client))
          yield* withoutContext(built.upload(`${localDir}/in`, `${dir}/up`))
          yield* withoutContext(built.download(`${dir}/up`, `${localDir}/out`))
          assert.strictEqual(yield* local.readFileString(`${localDir}/out`), "captured")
          // built without it: the caller's serves, and without one either the call dies
          const bare = yield* Filesystem.make.pipe(
            Effect.mapInputContext((_: Context.Context<never>) => Context.make(ExecutorClient.ExecutorClient, client))
          )
          yield* bare.download(`${dir}/up`, `${localDir}/again`)
          assert.strictEqual(yield* local.readFileString(`${localDir}/again`), "captured")
          for (const call of [bare.upload(`${localDir}/in`, `${dir}/x`), bare.download(`${dir}/up`, `${localDir}/x`)]) {
            const exit = yield* Effect.exit(withoutContext(call))
            assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
            assert.include(String(Cause.squash((exit as Exit.Failure<unknown, unknown>).cause)), "host's file system")
          }
          assert.isFalse(yield* local.exists(`${localDir}/x`))
        }))

      it.scoped("open: read, readString, write, append", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const dir = yield* tempDir
          const handle = yield* fs.open(`${dir}/h`)
          assert.strictEqual(handle.path, `${dir}/h`)
          assert.strictEqual((yield* Effect.flip(handle.read))._tag, "FileNotFound")
          yield* handle.write("first\n")
          yield* handle.append(new Uint8Array([0xff, 0x00, 0x0a]))
          yield* handle.append("last")
          assertBytes(
            yield* handle.read,
            Buffer.concat([utf8.encode("first\n"), Buffer.from([0xff, 0, 0x0a]), utf8.encode("last")])
          )
          assert.strictEqual(yield* handle.readString, "first\n\uFFFD\u0000\nlast")
        }))

      it.scoped("empty paths are InvalidArgument", () =>
        Effect.gen(function*() {
          const fs = yield* Filesystem.Filesystem
          const errors = [
            yield* Effect.flip(fs.writeFile("", "x")),
            yield* Effect.flip(fs.readFile("")),
            yield* Effect.flip(fs.readFileString("")),
            yield* Effect.flip(fs.mkdir("")),
            yield* Effect.flip(fs.list("")),
            yield* Effect.flip(fs.listDetailed("")),
            yield* Effect.flip(fs.stat("")),
            yield* Effect.flip(fs.deleteFile("")),
            yield* Effect.flip(fs.deleteDir("")),
            yield* Effect.flip(fs.move("", "x")),
            yield* Effect.flip(fs.rename("x", "")),
            yield* Effect.flip(fs.exists("")),
            yield* Effect.flip(fs.rm("")),
            yield* Effect.flip(fs.open("")),
            yield* Effect.flip(fs.upload("", "x")),
            yield* Effect.flip(fs.download("x", "")),
            yield* Effect.flip(fs.writeFile("a\u0000b", "x"))
          ]
          for (const error of errors) assert.strictEqual(error._tag, "InvalidArgument")
        }))
    }
  )
}
