/**
 * The wire details where the executor follows Koyeb's Go executor byte for byte: invalid UTF-8 in
 * output (one U+FFFD per invalid byte, written `\ufffd`), and what a dropped `/run` connection
 * does. The end-to-end checks run against `TestExecutor` (the stock executor with `EXECUTOR_URL`).
 */
import { assert, describe, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import * as GoJson from "../src/internal/goJson.js"
import * as LineSplitter from "../src/internal/lineSplitter.js"
import { readProc } from "./utils/hostProcesses.js"
import * as TestExecutor from "./utils/TestExecutor.js"

const R = "\ufffd"

/** Byte sequences and the string Go's `encoding/json` gives for them (`utf8.DecodeRune`: an invalid byte has width 1). */
const table: ReadonlyArray<readonly [string, ReadonlyArray<number>, string]> = [
  ["ASCII", [0x61, 0x0a], "a\n"],
  ["truncated 3-byte sequence before a newline", [0xe0, 0xa0, 0x0a], `${R}${R}\n`],
  ["two invalid lead bytes", [0xff, 0xfe, 0x6f, 0x6b], `${R}${R}ok`],
  ["stray continuation byte", [0x80], R],
  ["lone lead byte at the end", [0xc2], R],
  ["lead byte then ASCII", [0xc3, 0x28], `${R}(`],
  ["truncated 3-byte sequence then ASCII", [0xe0, 0xa0, 0x41], `${R}${R}A`],
  ["truncated 4-byte sequence", [0xf0, 0x9f, 0x98], `${R}${R}${R}`],
  ["surrogate U+D800", [0xed, 0xa0, 0x80], `${R}${R}${R}`],
  ["surrogate U+DFFF", [0xed, 0xbf, 0xbf], `${R}${R}${R}`],
  ["overlong NUL", [0xc0, 0x80], `${R}${R}`],
  ["overlong 2-byte", [0xc1, 0xbf], `${R}${R}`],
  ["overlong 3-byte", [0xe0, 0x80, 0x80], `${R}${R}${R}`],
  ["overlong 4-byte", [0xf0, 0x80, 0x80, 0x80], `${R}${R}${R}${R}`],
  ["above U+10FFFF", [0xf4, 0x90, 0x80, 0x80], `${R}${R}${R}${R}`],
  ["lead byte F5", [0xf5, 0x80, 0x80, 0x80], `${R}${R}${R}${R}`],
  ["valid U+D7FF", [0xed, 0x9f, 0xbf], "\ud7ff"],
  ["valid U+E000", [0xee, 0x80, 0x80], "\ue000"],
  ["valid U+10FFFF", [0xf4, 0x8f, 0xbf, 0xbf], "\u{10ffff}"],
  ["valid emoji", [0xf0, 0x9f, 0x98, 0x80], "😀"],
  ["valid U+FFFD", [0xef, 0xbf, 0xbd], R],
  ["mixed", [0x61, 0xff, 0x62, 0xc3, 0xa9, 0xe2, 0x82], `a${R}bé${R}${R}`]
]

/** Go's JSON text of `bytes` as a string: `\ufffd` for each invalid byte, other characters as `JSON.stringify` writes them. */
const goJsonText = (bytes: ReadonlyArray<number>, expected: string): string => {
  // the replacement characters of invalid bytes are escapes; a valid U+FFFD in the input is raw
  const validFffd = bytes.length === 3 && bytes[0] === 0xef
  return validFffd ? JSON.stringify(expected) : JSON.stringify(expected).replace(/\ufffd/g, "\\ufffd")
}

describe("GoJson.fromBytes", () => {
  for (const [name, bytes, expected] of table) {
    it(`${name}: ${Buffer.from(bytes).toString("hex")}`, () => {
      const text = GoJson.fromBytes(Buffer.from(bytes))
      assert.strictEqual(GoJson.wellFormed(text), expected)
      assert.strictEqual(GoJson.string(text), goJsonText(bytes, expected))
      assert.deepStrictEqual(JSON.parse(GoJson.string(text)), expected)
    })
  }

  it("a range of a larger buffer", () => {
    const bytes = Buffer.from([0x41, 0xe0, 0xa0, 0x42, 0xc3, 0xa9])
    assert.strictEqual(GoJson.wellFormed(GoJson.fromBytes(bytes, 1, 4)), `${R}${R}B`)
    assert.strictEqual(GoJson.fromBytes(bytes, 3, 6), "Bé")
    // a sequence cut by the end of the range is invalid
    assert.strictEqual(GoJson.wellFormed(GoJson.fromBytes(bytes, 3, 5)), `B${R}`)
  })

  it("escapes: HTML characters, escaped backslashes kept, invalid bytes", () => {
    const text = GoJson.fromBytes(Buffer.concat([Buffer.from("<a&b>\\udcff\\\\"), Buffer.from([0xff])]))
    assert.strictEqual(GoJson.string(text), `"\\u003ca\\u0026b\\u003e\\\\udcff\\\\\\\\\\ufffd"`)
    assert.strictEqual(GoJson.string("\u2028\u2029"), `"\\u2028\\u2029"`)
    // a lone surrogate of any other origin is written the same way
    assert.strictEqual(GoJson.string("\ud800x"), `"\\ufffdx"`)
  })
})

describe("LineSplitter: Go's replacement per line", () => {
  const split = (chunks: ReadonlyArray<ReadonlyArray<number>>) => {
    const splitter = LineSplitter.make({ maxLineBytes: 1 << 20, trim: "all" })
    const lines = chunks.flatMap((chunk) => splitter.push(Buffer.from(chunk)))
    return [...lines, ...splitter.end()].map(GoJson.wellFormed)
  }

  it("a sequence split across two reads is kept", () => {
    assert.deepStrictEqual(split([[0x61, 0xe2, 0x82], [0xac, 0x0a]]), ["a€"])
    assert.deepStrictEqual(split([[0xf0], [0x9f], [0x98], [0x80]]), ["😀"])
  })

  it("a sequence cut by a newline or by the end of the stream is replaced byte by byte", () => {
    assert.deepStrictEqual(split([[0xe2, 0x82, 0x0a, 0xe2], [0x82]]), [`${R}${R}`, `${R}${R}`])
    assert.deepStrictEqual(split([[0xe0, 0xa0, 0x0a, 0xff, 0xfe, 0x6f, 0x6b, 0x0a]]), [`${R}${R}`, `${R}${R}ok`])
  })

  it("an over-long line is cut at a character boundary", () => {
    const splitter = LineSplitter.make({ maxLineBytes: 4, trim: "all" })
    const lines = [...splitter.push(Buffer.from([0x61, 0x62, 0x63, 0xe2, 0x82, 0xac, 0x0a])), ...splitter.end()]
    assert.deepStrictEqual(lines, ["abc", "€"])
  })
})

// The same rule as TestExecutor.layerEndpoint, needed synchronously by skipIf.
const stock = Boolean(process.env.EXECUTOR_URL && process.env.EXECUTOR_SECRET)

/** POSTs `body` to the test executor and returns the raw reply text. */
const post = (path: string, body: unknown) =>
  Effect.flatMap(TestExecutor.TestExecutorEndpoint, ({ secret, url }) =>
    Effect.promise(async () => {
      const response = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${Redacted.value(secret)}` },
        body: JSON.stringify(body)
      })
      return response.text()
    }))

const get = (path: string) =>
  Effect.flatMap(TestExecutor.TestExecutorEndpoint, ({ secret, url }) =>
    Effect.promise(async () => {
      const response = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${Redacted.value(secret)}` } })
      return response.text()
    }))

/** The `data` of each SSE event of `text` named `event`, as raw JSON text. */
const eventData = (text: string, event: string): Array<string> =>
  text.split("\n\n").filter((e) => e.startsWith(`event: ${event}\n`)).map((e) => e.slice(e.indexOf("data: ") + 6))

/** Invalid UTF-8 in two lines: a truncated sequence, then two invalid lead bytes. */
const invalidOutput = String.raw`printf '\340\240\n\377\376ok\n'`

layer(TestExecutor.layerClient, { excludeTestServices: true })("invalid UTF-8 on the wire, as Go writes it", (it) => {
  it.effect("/run: one \\ufffd escape per invalid byte", () =>
    Effect.gen(function*() {
      const text = yield* post("/run", { cmd: invalidOutput })
      assert.include(text, String.raw`"stdout":"\ufffd\ufffd\n\ufffd\ufffdok\n"`)
      assert.strictEqual(JSON.parse(text).stdout, `${R}${R}\n${R}${R}ok\n`)
    }))

  it.effect("a request body's invalid bytes reach the command as one U+FFFD each", () =>
    Effect.flatMap(TestExecutor.TestExecutorEndpoint, ({ secret, url }) =>
      Effect.promise(async () => {
        // `E0 A0` (a truncated sequence: one U+FFFD for WHATWG, two for Go) and `FF` inside the JSON string, then a valid astral character
        const body = Buffer.concat([
          Buffer.from(`{"cmd":"printf %s '`),
          Buffer.from([0xe0, 0xa0, 0x78, 0xff]),
          Buffer.from("𝓿"), // U+1D4FF: its low surrogate is the code unit invalid bytes decode to
          Buffer.from(`'"}`)
        ])
        const response = await fetch(`${url}/run`, {
          method: "POST",
          headers: { authorization: `Bearer ${Redacted.value(secret)}` },
          body
        })
        const reply = (await response.json()) as { stdout: string }
        assert.strictEqual(reply.stdout, `${R}${R}x${R}𝓿`)
      })))

  it.effect("/run_streaming: per line", () =>
    Effect.gen(function*() {
      const output = eventData(yield* post("/run_streaming", { cmd: invalidOutput }), "output")
      assert.deepStrictEqual(output.map((data) => JSON.parse(data).data), [`${R}${R}`, `${R}${R}ok`])
      assert.include(output[0], String.raw`"data":"\ufffd\ufffd"`)
      assert.include(output[1], String.raw`"data":"\ufffd\ufffdok"`)
    }))

  // The stock executor sometimes loses the whole output of a short-lived process.
  it.effect.skipIf(stock)("process logs: per line", () =>
    Effect.gen(function*() {
      const started = JSON.parse(yield* post("/start_process", { cmd: invalidOutput })) as { id: string }
      const logs = eventData(yield* get(`/process_logs_streaming?id=${started.id}`), "log")
      assert.deepStrictEqual(logs.map((data) => JSON.parse(data).data), [`${R}${R}`, `${R}${R}ok`])
      assert.include(logs[1], String.raw`"data":"\ufffd\ufffdok"`)
    }))

  it.effect("/read_file: the whole file", () =>
    Effect.gen(function*() {
      const path = `/tmp/effect-koyeb-gowire-${Crypto.randomUUID()}`
      yield* post("/run", { cmd: `${invalidOutput} > ${path}` })
      const text = yield* post("/read_file", { path }).pipe(Effect.ensuring(post("/delete_file", { path })))
      assert.include(text, String.raw`"content":"\ufffd\ufffd\n\ufffd\ufffdok\n"`)
    }))
})

/** Sends `cmd` to `path` with a raw HTTP client, waits until `started` holds, then drops the connection. */
const startThenDrop = (path: string, cmd: string, started: () => boolean) =>
  Effect.flatMap(TestExecutor.TestExecutorEndpoint, ({ secret, url }) =>
    Effect.async<void>((resume) => {
      const request = Http.request(`${url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${Redacted.value(secret)}` }
      })
      request.on("error", () => {})
      request.end(JSON.stringify({ cmd }))
      const poll = setInterval(() => {
        if (!started()) return
        clearInterval(poll)
        request.destroy()
        resume(Effect.void)
      }, 20)
      return Effect.sync(() => {
        clearInterval(poll)
        request.destroy()
      })
    }))

/** Whether process group `pgid` has a member that is not a zombie (an orphan's zombie may wait long for init). */
const groupAlive = (pgid: number): boolean =>
  Fs.readdirSync("/proc").some((entry) => {
    if (!/^\d+$/.test(entry)) return false
    const stat = readProc(entry, "stat")
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ", 3)
    return Number(pgrp) === pgid && state !== "Z" && state !== "X"
  })

layer(TestExecutor.layerClient, { excludeTestServices: true })("a dropped connection stops the command", (it) => {
  for (const path of ["/run", "/run_streaming"]) {
    it.scoped.skipIf(stock)(`${path}: the whole process group, TERM then KILL`, () =>
      Effect.gen(function*() {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-drop-"))),
          (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
        )
        const pidFile = Path.join(dir, "pid")
        const marker = Path.join(dir, "marker")
        // a silent command that ignores TERM, with a child that keeps writing
        const cmd =
          `trap '' TERM; (while :; do echo x >> ${marker}; sleep 0.02; done) & echo $$ > ${pidFile}.tmp; mv ${pidFile}.tmp ${pidFile}; wait`
        yield* startThenDrop(path, cmd, () => Fs.existsSync(pidFile) && Fs.existsSync(marker))
        const pgid = Number(Fs.readFileSync(pidFile, "utf8"))
        assert.isTrue(pgid > 0)
        yield* Effect.sync(() => groupAlive(pgid)).pipe(
          Effect.repeat({ schedule: Schedule.spaced("20 millis"), while: (alive) => alive }),
          Effect.timeout("5 seconds")
        )
        const size = Fs.statSync(marker).size
        yield* Effect.sleep("100 millis")
        assert.strictEqual(Fs.statSync(marker).size, size, "the marker stopped growing")
      }), 15_000)
  }
})
