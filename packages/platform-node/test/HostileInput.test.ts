/**
 * Hostile and odd input against a real executor over loopback: arbitrary strings through `sh`, as
 * environment values and as file names; arbitrary bytes through every transfer path; arbitrary
 * chunk boundaries in SSE and in the server's line splitting; and the odd arguments (empty,
 * oversized, `..`, 255/256-byte names, missing env values, unwritable destinations) that must give
 * a typed failure, never a defect and never a success for a partial write.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Processes from "@effect-koyeb/core/Processes"
import * as ShellCommand from "@effect-koyeb/core/ShellCommand"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as fc from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { isUtf8 } from "node:buffer"
import * as GoJson from "../src/internal/goJson.js"
import * as LineSplitter from "../src/internal/lineSplitter.js"
import * as TestExecutor from "./utils/TestExecutor.js"

const Live = Layer.mergeAll(Executor.layer, Filesystem.layer, Processes.layer).pipe(
  Layer.provideMerge(TestExecutor.layerClient),
  Layer.provideMerge(NodeContext.layer)
)

const b64 = (data: string | Uint8Array) => Buffer.from(data).toString("base64")
/** What `Executor` returns for a command printing one line (or nothing). */
const oneLine = (line: string) => (line === "" ? "" : `${line}\n`)

const utf8Bytes = (s: string) => Buffer.byteLength(s, "utf8")

// NUL-free, well-formed strings: shell metacharacters, quotes, newlines, dashes, any code point
const special = fc.constantFrom(
  "'",
  "\"",
  "$",
  "`",
  "\\",
  "\n",
  "\r",
  "\t",
  " ",
  "-",
  "--",
  "*",
  "?",
  "[",
  "]",
  "~",
  ";",
  "|",
  "&",
  "!",
  "#",
  "(",
  ")",
  "{",
  "}",
  "<",
  ">",
  "=",
  "$(id)",
  "`id`",
  "${HOME}",
  "$'x'",
  "%s",
  "%",
  "\\n",
  "\\0",
  "é",
  "€",
  "😀",
  "\u200b",
  "\u00a0",
  "\x7f",
  "\x1b[0m",
  "\x01"
)
const noNul = (s: string) => s.replaceAll("\0", "0")
const hostile = fc.oneof(
  fc.string({ unit: special, maxLength: 24 }),
  fc.string({ unit: "grapheme", maxLength: 30 }),
  fc.string({ unit: "binary", maxLength: 30 }).map(noNul),
  fc.tuple(fc.constantFrom("-", "--", "-n", "-e", "--help"), fc.string({ unit: special, maxLength: 8 })).map(([a, b]) =>
    a + b
  )
)
// A file name: no "/", not "." or "..", 1 to 255 bytes
const fileName = hostile
  .map((s) => s.replaceAll("/", "_"))
  .filter((s) => s !== "" && s !== "." && s !== ".." && utf8Bytes(s) <= 255)

const tempDir = Effect.acquireRelease(
  Effect.flatMap(ExecutorClient.ExecutorClient, (client) => client.run({ cmd: "mktemp -d /tmp/hostile-XXXXXXXX" }))
    .pipe(
      Effect.map((reply) => reply.stdout.trim())
    ),
  (dir) =>
    Effect.flatMap(
      ExecutorClient.ExecutorClient,
      (client) => Effect.ignore(client.run({ cmd: ShellCommand.argv(["rm", "-rf", dir]).line }))
    )
)

/** Runs `effect`, asserting it fails (never dies, never succeeds); returns the typed error. */
const typedFailure = <A, E, R>(effect: Effect.Effect<A, E, R>, label: string) =>
  Effect.map(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) assert.fail(`${label}: succeeded`)
    const failure = Cause.failureOption(exit.cause)
    if (failure._tag === "None") assert.fail(`${label}: not a typed failure: ${Cause.pretty(exit.cause)}`)
    return failure.value as E
  })

const tagOf = (e: unknown) => (e as { readonly _tag: string })._tag

layer(Live, { excludeTestServices: true, timeout: "120 seconds" })("hostile input (real executor)", (it) => {
  it.effect.prop(
    "arbitrary strings through sh, argv and env come back byte-identical",
    [hostile, hostile],
    ([a, b]) =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const expected = oneLine(b64(a + b))
        const viaTemplate = yield* executor.run(
          ShellCommand.sh`printf '%s' ${a} ${ShellCommand.raw("")}${b} | base64 -w0`
        )
        assert.strictEqual(viaTemplate.stdout, expected)
        const viaArgv = yield* executor.run(
          ShellCommand.sh`${ShellCommand.argv(["printf", "%s%s", a, b])} | base64 -w0`
        )
        assert.strictEqual(viaArgv.stdout, expected)
        const viaEnv = yield* executor.run(`printf '%s%s' "$HOSTILE_A" "$HOSTILE_B" | base64 -w0`, {
          env: { HOSTILE_A: a, HOSTILE_B: b }
        })
        assert.strictEqual(viaEnv.stdout, expected)
        // as one argument of a program that parses options: a leading dash is still data after `--`
        const words = yield* executor.run(ShellCommand.sh`set -- ${[a, b]}; echo $#`)
        assert.strictEqual(words.stdout, "2\n")
      }),
    { fastCheck: { numRuns: 60 } }
  )

  it.effect.prop(
    "hostile file names work through writeFile, the text endpoint, list, stat, sh, cwd and rm",
    [fileName, fc.uint8Array({ maxLength: 200 })],
    ([name, bytes]) =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const executor = yield* Executor.Executor
        const dir = yield* tempDir
        const path = `${dir}/${name}`
        yield* fs.writeFile(path, bytes)
        assert.deepStrictEqual(yield* fs.list(dir), [name])
        assert.deepStrictEqual(yield* fs.readFile(path), bytes)
        const viaSh = yield* executor.run(ShellCommand.sh`cat -- ${path} | base64 -w0`)
        assert.strictEqual(viaSh.stdout, oneLine(b64(bytes)))
        const entry = yield* fs.stat(path)
        assert.strictEqual(entry.name, name)
        assert.strictEqual(entry.size, bytes.length)
        const listed = yield* fs.listDetailed(dir)
        assert.deepStrictEqual(listed.map((e) => e.name), [name])
        // the stock text endpoint, and the name relative to a cwd ("./": cat reads stdin for "-")
        yield* fs.writeFile(path, `text ${name}`)
        assert.strictEqual(yield* fs.readFileString(path), `text ${name}`)
        const viaCwd = yield* executor.run(ShellCommand.sh`cat -- ./${name} | base64 -w0`, { cwd: dir })
        assert.strictEqual(viaCwd.stdout, oneLine(b64(`text ${name}`)))
        if (utf8Bytes(name) <= 253) {
          yield* fs.mkdir(`${path}.d`)
          const pwd = yield* executor.run("pwd | base64 -w0", { cwd: `${path}.d` })
          assert.strictEqual(pwd.stdout, oneLine(b64(`${path}.d\n`)))
          yield* fs.deleteDir(`${path}.d`)
        }
        yield* fs.rm(path)
        assert.deepStrictEqual(yield* fs.list(dir), [])
      }).pipe(Effect.scoped),
    { fastCheck: { numRuns: 40 } }
  )

  it.effect.prop(
    "arbitrary bytes round-trip through writeFile/readFile/readStream/appendFile and upload/download",
    [fc.uint8Array({ maxLength: 3000 }), fc.uint8Array({ maxLength: 500 })],
    ([bytes, more]) =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const local = yield* FileSystem.FileSystem
        const dir = yield* tempDir
        const path = `${dir}/f`
        yield* fs.writeFile(path, bytes)
        assert.deepStrictEqual(yield* fs.readFile(path), bytes)
        const streamed = yield* Stream.runCollect(fs.readStream(path))
        assert.deepStrictEqual(Buffer.concat(Chunk.toReadonlyArray(streamed)), Buffer.from(bytes))
        yield* fs.appendFile(path, more)
        assert.deepStrictEqual(yield* fs.readFile(path), new Uint8Array(Buffer.concat([bytes, more])))
        yield* fs.writeFiles([{ path: `${dir}/g`, content: bytes }])
        assert.deepStrictEqual(yield* fs.readFile(`${dir}/g`), bytes)
        const localDir = yield* local.makeTempDirectoryScoped({ prefix: "hostile-" })
        yield* local.writeFile(`${localDir}/in`, bytes)
        yield* fs.upload(`${localDir}/in`, `${dir}/up`)
        yield* fs.download(`${dir}/up`, `${localDir}/out`)
        assert.deepStrictEqual(new Uint8Array(yield* local.readFile(`${localDir}/out`)), bytes)
      }).pipe(Effect.scoped),
    { fastCheck: { numRuns: 40 } }
  )

  it.effect.prop(
    "large arbitrary bytes (staged transfer) round-trip, also through writeStream with arbitrary chunking",
    [
      fc.integer({ min: 100_001, max: 400_000 }),
      fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 8 })
    ],
    ([size, cuts]) =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const dir = yield* tempDir
        const bytes = new Uint8Array(size)
        for (let i = 0; i < size; i++) bytes[i] = (i * 7919 + (i >> 8) * 31) & 0xff
        yield* fs.writeFile(`${dir}/big`, bytes)
        assert.isTrue(Buffer.from(yield* fs.readFile(`${dir}/big`)).equals(Buffer.from(bytes)))
        const pieces: Array<Uint8Array> = []
        let offset = 0
        for (let i = 0; offset < size; i++) {
          const n = cuts[i % cuts.length]!
          pieces.push(bytes.subarray(offset, offset + n))
          offset += n
        }
        yield* fs.writeStream(`${dir}/streamed`, Stream.fromIterable(pieces))
        assert.isTrue(Buffer.from(yield* fs.readFile(`${dir}/streamed`)).equals(Buffer.from(bytes)))
        // nothing staged is left next to the files
        assert.deepStrictEqual(yield* fs.list(dir), ["big", "streamed"])
      }).pipe(Effect.scoped),
    { fastCheck: { numRuns: 8 } }
  )

  it.effect.prop(
    "arbitrary output bytes arrive as the same lines the executor splits (UTF-8 never corrupted)",
    [
      fc.array(fc.oneof(fc.string({ unit: "binary", maxLength: 200 }), fc.string({ unit: special, maxLength: 50 })), {
        maxLength: 60
      }),
      fc.uint8Array({ maxLength: 64 })
    ],
    ([lines, junk]) =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const executor = yield* Executor.Executor
        const dir = yield* tempDir
        // text lines, then invalid UTF-8, without a final newline
        const bytes = Buffer.concat([Buffer.from(lines.map((l) => noNul(l).replaceAll("\n", " ")).join("\n")), junk])
        yield* fs.writeFile(`${dir}/out`, bytes)
        // the reference: split on \n, trailing CRs trimmed, each line decoded alone, as Go does
        const expected = splitReference(bytes)
        const streamed = yield* Stream.runCollect(executor.stream(ShellCommand.sh`cat -- ${dir}/out`))
        assert.deepStrictEqual(Chunk.toReadonlyArray(streamed).map((c) => c.data), expected)
      }).pipe(Effect.scoped),
    { fastCheck: { numRuns: 30 } }
  )

  describe("odd arguments give a typed failure, never a defect", () => {
    it.effect("empty, blank, NUL-carrying and oversized commands, for exec, stream and launch", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const processes = yield* Processes.Processes
        const huge = `echo ${"x".repeat(140 * 1024)}`
        const multiByteHuge = `echo ${"€".repeat(44 * 1024)}` // 44 Ki characters, 132 KiB
        for (const command of ["", " ", "\n\t ", "echo a\0b", huge, multiByteHuge, [] as Array<string>]) {
          const label = JSON.stringify(typeof command === "string" ? command.slice(0, 20) : command)
          const a = yield* typedFailure(executor.exec(command), `exec ${label}`)
          assert.strictEqual(tagOf(a), "InvalidArgument", label)
          const b = yield* typedFailure(Stream.runDrain(executor.streamEvents(command)), `stream ${label}`)
          assert.strictEqual(tagOf(b), "InvalidArgument", label)
          const c = yield* typedFailure(processes.launch(command), `launch ${label}`)
          assert.strictEqual(tagOf(c), "InvalidArgument", label)
        }
      }))

    it.effect("bad or missing env values, for exec and launch", () =>
      Effect.gen(function*() {
        const executor = yield* Executor.Executor
        const processes = yield* Processes.Processes
        const bad: ReadonlyArray<Record<string, unknown>> = [
          { A: undefined },
          { A: 1 },
          { A: null },
          { "": "x" },
          { "A=B": "x" },
          { "A\0": "x" },
          { A: "x\0y" },
          { A: "x".repeat(130 * 1024) }
        ]
        for (const env of bad) {
          const label = JSON.stringify(
            env,
            (_, v) => (typeof v === "string" && v.length > 20 ? `${v.length} chars` : v ?? "undefined")
          )
          const options = { env: env as Record<string, string> }
          const a = yield* typedFailure(executor.exec("true", options), `exec ${label}`)
          assert.strictEqual(tagOf(a), "InvalidArgument", label)
          const c = yield* typedFailure(processes.launch("true", options), `launch ${label}`)
          assert.strictEqual(tagOf(c), "InvalidArgument", label)
        }
      }))

    it.effect("invalid ports are InvalidArgument", () =>
      Effect.gen(function*() {
        const processes = yield* Processes.Processes
        for (const port of [0, -1, 65536, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
          const error = yield* typedFailure(processes.waitForPort(port, { timeout: "1 second" }), `port ${port}`)
          assert.strictEqual(tagOf(error), "InvalidArgument")
        }
      }))

    it.scoped("paths with `..`, relative paths and directories given as files", () =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const dir = yield* tempDir
        yield* fs.mkdir(`${dir}/sub`)
        yield* fs.writeFile(`${dir}/sub/../up.txt`, new Uint8Array([1, 2, 3]))
        assert.deepStrictEqual(yield* fs.readFile(`${dir}/up.txt`), new Uint8Array([1, 2, 3]))
        assert.deepStrictEqual(yield* fs.list(`${dir}/sub/..`), ["sub", "up.txt"])
        yield* fs.move(`${dir}/sub/../up.txt`, `${dir}/sub/./down.txt`)
        assert.deepStrictEqual(yield* fs.list(`${dir}/sub`), ["down.txt"])
        // a directory where a file is expected: every writer and reader refuses it
        for (const path of ["/", `${dir}/sub`, `${dir}/sub/`, `${dir}/sub/..`, `${dir}/sub/.`]) {
          for (
            const [name, op] of [
              ["writeFile bytes", fs.writeFile(path, new Uint8Array([1]))],
              ["writeFile text", fs.writeFile(path, "x")],
              ["writeFile large", fs.writeFile(path, new Uint8Array(200_000))],
              ["appendFile", fs.appendFile(path, "x")],
              ["writeStream", fs.writeStream(path, Stream.make(new Uint8Array([1])))],
              ["writeFiles", fs.writeFiles([{ path, content: "x" }])],
              ["readFile", fs.readFile(path)],
              ["deleteFile", fs.deleteFile(path)]
            ] as const
          ) {
            const error = yield* typedFailure(op as Effect.Effect<unknown, unknown>, `${name} ${path}`)
            assert.include(["FilesystemError", "FileExists", "FileNotFound"], tagOf(error), `${name} ${path}`)
          }
        }
        // a file used as a directory
        yield* fs.writeFile(`${dir}/file`, "x")
        const notDir = yield* typedFailure(fs.writeFile(`${dir}/file/child`, new Uint8Array([1])), "file as dir")
        assert.strictEqual((notDir as { readonly reason?: string }).reason, "NotADirectory")
        const listFile = yield* typedFailure(fs.list(`${dir}/file`), "list of a file")
        assert.strictEqual(tagOf(listFile), "FilesystemError")
        assert.deepStrictEqual(yield* fs.readFileString(`${dir}/file`), "x")
      }))

    it.scoped("names of 255 bytes work everywhere; 256 bytes is a clear InvalidPath error and writes nothing", () =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const dir = yield* tempDir
        const names255 = ["a".repeat(255), "€".repeat(85), `${"😀".repeat(63)}abc`, `-${"é".repeat(127)}`]
        for (const name of names255) {
          assert.strictEqual(utf8Bytes(name), 255)
          const path = `${dir}/${name}`
          yield* fs.writeFile(path, new Uint8Array([0, 1, 2]))
          yield* fs.writeFile(path, "text")
          yield* fs.writeFile(path, new Uint8Array(150_000).fill(7))
          assert.strictEqual((yield* fs.stat(path)).size, 150_000)
          assert.deepStrictEqual(yield* fs.list(dir), [name])
          yield* fs.move(path, `${dir}/short`)
          yield* fs.mkdir(path)
          assert.isTrue(yield* fs.isDir(path))
          yield* fs.deleteDir(path)
          yield* fs.rm(`${dir}/short`)
        }
        const names256 = ["a".repeat(256), `${"€".repeat(85)}x`]
        for (const name of names256) {
          const path = `${dir}/${name}`
          for (
            const [label, op] of [
              ["bytes", fs.writeFile(path, new Uint8Array([1]))],
              ["text", fs.writeFile(path, "text")],
              ["staged", fs.writeFile(path, new Uint8Array(150_000))],
              ["append", fs.appendFile(path, "x")],
              ["mkdir", fs.mkdir(path)],
              ["writeFiles", fs.writeFiles([{ path, content: "x" }])]
            ] as const
          ) {
            const error = yield* typedFailure(op as Effect.Effect<unknown, unknown>, `${label} 256`)
            assert.strictEqual(tagOf(error), "FilesystemError", label)
            assert.strictEqual((error as { reason: string }).reason, "InvalidPath", label)
            assert.match((error as { detail: string }).detail, /name too long/i, label)
          }
          yield* typedFailure(fs.readFile(path), "read 256")
          assert.isFalse(yield* fs.exists(path))
        }
        // nothing was written, not even a staging file
        assert.deepStrictEqual(yield* fs.list(dir), [])
      }))

    it.scoped("a write the disk refuses (/dev/full) is never reported as success", () =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const exists = yield* Effect.flatMap(ExecutorClient.ExecutorClient, (c) => c.run({ cmd: "test -c /dev/full" }))
        if (exists.code !== 0) return
        for (
          const [label, op] of [
            ["bytes", fs.writeFile("/dev/full", new Uint8Array([1, 2, 3]))],
            ["text", fs.writeFile("/dev/full", "text")],
            ["staged", fs.writeFile("/dev/full", new Uint8Array(300_000))],
            ["append", fs.appendFile("/dev/full", "x")],
            ["stream", fs.writeStream("/dev/full", Stream.make(new Uint8Array(10)))],
            ["writeFiles", fs.writeFiles([{ path: "/dev/full", content: "x" }])]
          ] as const
        ) {
          const error = yield* typedFailure(op as Effect.Effect<unknown, unknown>, label)
          assert.strictEqual(tagOf(error), "FilesystemError", label)
        }
      }))

    it.scoped("a failing source stream fails writeStream and leaves the destination and directory untouched", () =>
      Effect.gen(function*() {
        const fs = yield* Filesystem.Filesystem
        const dir = yield* tempDir
        yield* fs.writeFile(`${dir}/dest`, "old")
        const source = Stream.concat(
          Stream.make(new Uint8Array(4 * 1024 * 1024).fill(1), new Uint8Array(1024)),
          Stream.fail("source broke" as const)
        )
        const error = yield* typedFailure(fs.writeStream(`${dir}/dest`, source), "failing source")
        assert.strictEqual(error, "source broke")
        assert.strictEqual(yield* fs.readFileString(`${dir}/dest`), "old")
        assert.deepStrictEqual(yield* fs.list(dir), ["dest"])
        // a missing local file and a local directory are typed errors for upload
        const local = yield* FileSystem.FileSystem
        const localDir = yield* local.makeTempDirectoryScoped({ prefix: "hostile-" })
        assert.strictEqual(
          tagOf(yield* typedFailure(fs.upload(`${localDir}/missing`, `${dir}/x`), "upload missing")),
          "FileNotFound"
        )
        yield* typedFailure(fs.upload(localDir, `${dir}/x`), "upload dir")
        yield* typedFailure(fs.download(`${dir}/missing`, `${localDir}/x`), "download missing")
        assert.isFalse(yield* local.exists(`${localDir}/x`))
      }))
  })
})

/**
 * `bytes` decoded as Go's `encoding/json` writes them: one U+FFFD per byte `utf8.DecodeRune` finds
 * invalid. Checked a character at a time with the platform's validator: the shortest valid
 * sequence at a position is its character; none of up to 4 bytes means an invalid byte.
 */
const goDecode = (bytes: Uint8Array): string => {
  let out = ""
  let i = 0
  while (i < bytes.length) {
    let n = 1
    while (n <= 4 && i + n <= bytes.length && !isUtf8(bytes.subarray(i, i + n))) n++
    if (n <= 4 && i + n <= bytes.length) {
      out += Buffer.from(bytes.subarray(i, i + n)).toString("utf8")
      i += n
    } else {
      out += "\ufffd"
      i++
    }
  }
  return out
}

/** The executor's line split of `bytes`: on `\n`, trailing CRs removed, each line decoded alone as Go does. */
const splitReference = (bytes: Uint8Array): Array<string> => {
  const lines: Array<string> = []
  let start = 0
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length ? i > start : bytes[i] === 10) {
      lines.push(goDecode(bytes.subarray(start, i)).replace(/\r+$/, ""))
      start = i + 1
    }
  }
  return lines
}

/** Cuts `bytes` at the given positions (any order, duplicates and out-of-range ones ignored). */
const cutAt = (bytes: Uint8Array, positions: ReadonlyArray<number>): Array<Uint8Array> => {
  const cuts = [...new Set(positions.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Array<Uint8Array> = []
  let last = 0
  for (const cut of [...cuts, bytes.length]) {
    if (cut > last) out.push(bytes.subarray(last, cut))
    last = Math.max(last, cut)
  }
  return out
}

describe("arbitrary chunk boundaries", () => {
  it.prop(
    "the server's line splitter gives the same lines for any chunking of any bytes",
    [
      fc.uint8Array({ maxLength: 400 }).chain((b) => fc.tuple(fc.constant(b), fc.array(fc.nat(), { maxLength: 30 }))),
      fc.constantFrom(0x0a, 0x0d, 0xe2, 0x82, 0xac, 0xf0, 0x9f)
    ],
    ([[random, cuts], special]) => {
      // mix in newlines, CRs and UTF-8 lead/continuation bytes
      const bytes = random.map((b, i) => (i % 5 === 0 ? special : b))
      const splitter = LineSplitter.make({ maxLineBytes: 1 << 20, trim: "all" })
      const lines = cutAt(bytes, cuts).flatMap((chunk) => splitter.push(Buffer.from(chunk)))
      lines.push(...splitter.end())
      // invalid bytes are held as lone surrogates until written as JSON
      assert.deepStrictEqual(lines.map(GoJson.wellFormed), splitReference(bytes))
    },
    { fastCheck: { numRuns: 500 } }
  )

  const sseLine = fc.oneof(
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.string({ unit: special, maxLength: 20 }),
    fc.string({ unit: fc.constantFrom("\r", "\n", ":", " ", "data:", "event:", "€", "😀"), maxLength: 10 })
  )

  it.effect.prop(
    "SSE: any lines, any byte chunking, any line ending decode to the same events",
    [
      fc.array(fc.tuple(fc.boolean(), sseLine), { maxLength: 30 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      fc.constantFrom(
        "\n",
        "\r\n",
        "\r"
      ),
      fc.integer({ min: -1, max: 255 })
    ],
    ([lines, cuts, eol, code]) =>
      Effect.gen(function*() {
        const frame = (event: string, data: string) => `event: ${event}${eol}data: ${data}${eol}${eol}`
        const body = ": comment" + eol +
          lines.map(([err, data]) => frame("output", JSON.stringify({ data, stream: err ? "stderr" : "stdout" }))).join(
            ""
          ) +
          frame("complete", JSON.stringify({ code, error: code !== 0 }))
        const chunks = cutAt(new TextEncoder().encode(body), cuts)
        const client = yield* ExecutorClient.make({ url: "http://executor.test", secret: Redacted.make("s") }).pipe(
          Effect.provideService(
            HttpClient.HttpClient,
            HttpClient.make((request) =>
              Effect.sync(() =>
                HttpClientResponse.fromWeb(
                  request,
                  new Response(
                    new ReadableStream<Uint8Array>({
                      start(controller) {
                        for (const chunk of chunks) controller.enqueue(chunk)
                        controller.close()
                      }
                    }),
                    { status: 200, headers: { "content-type": "text/event-stream" } }
                  )
                )
              )
            )
          )
        )
        const events = yield* Stream.runCollect(client.runStreaming({ cmd: "x" }))
        assert.deepStrictEqual(Chunk.toReadonlyArray(events), [
          ...lines.map(([err, data]) => ({
            _tag: "Output" as const,
            stream: err ? "stderr" as const : "stdout" as const,
            data
          })),
          { _tag: "Complete" as const, code }
        ])
      }),
    { fastCheck: { numRuns: 300 } }
  )
})
