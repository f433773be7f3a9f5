/**
 * Go's errno texts, one table for the executor's files and watches (and its command starts):
 * the table itself, the file operations' `*PathError` texts for failures Node reports its own way
 * (a NUL byte in a path), and the 422 texts of `/watch` on our executor over loopback.
 */
import * as ExecutorServer from "@effect-koyeb/platform-node/ExecutorServer"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as GoErrors from "../src/internal/goErrors.js"
import * as GoFiles from "../src/internal/goFiles.js"

describe("GoErrors", () => {
  it("errno codes get Go's syscall texts; others a fallback", () => {
    assert.strictEqual(GoErrors.errnoText({ code: "E2BIG" }), "argument list too long")
    assert.strictEqual(GoErrors.errnoText({ code: "ELOOP" }), "too many levels of symbolic links")
    assert.strictEqual(GoErrors.errnoText({ code: "ENOEXEC" }), "exec format error")
    assert.strictEqual(GoErrors.errnoText({ code: "EWHATEVER" }), undefined)
    assert.strictEqual(GoErrors.errnoText(new Error("boom")), undefined)
    assert.strictEqual(GoErrors.errnoText({ code: "toString" }), undefined)
    assert.strictEqual(GoErrors.causeText({ code: "EWHATEVER" }), "ewhatever")
    assert.strictEqual(GoErrors.causeText(new Error("boom")), "input/output error")
    assert.strictEqual(GoErrors.pathError("open", "/x", { code: "ENOENT" }), "open /x: no such file or directory")
  })

  it.effect("a NUL byte in a path is Go's EINVAL for every file operation", () =>
    Effect.gen(function*() {
      const files = GoFiles.make(Os.tmpdir())
      const path = "a\u0000b"
      const texts = yield* Effect.forEach(
        [
          files.writeFile(path, "x"),
          files.readFile(path),
          files.listDir(path),
          files.makeDir(path),
          files.deleteFile(path)
        ],
        (op) => Effect.map(Effect.flip(op), (error) => error.text)
      )
      assert.deepStrictEqual(
        texts,
        ["open", "open", "open", "mkdir", "remove"].map((op) => `${op} ${path}: invalid argument`)
      )
    }))
})

describe("/watch errors on our executor", () => {
  it.scopedLive("a symlink loop and an overlong name are Go's texts", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "go-errors-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      Fs.symlinkSync("loop", Path.join(dir, "loop"))
      const secret = Redacted.make(Crypto.randomBytes(24).toString("base64url"))
      const { url } = yield* ExecutorServer.make({ secret })
      const watch = (path: string) =>
        Effect.promise(() =>
          fetch(`${url}/watch?${new URLSearchParams({ path })}`, {
            headers: { authorization: `Bearer ${Redacted.value(secret)}` }
          }).then(async (r) => [r.status, await r.json()] as const)
        )
      const loop = `${dir}/loop`
      assert.deepStrictEqual(yield* watch(loop), [422, { error: `stat ${loop}: too many levels of symbolic links` }])
      const long = `${dir}/${"x".repeat(300)}`
      assert.deepStrictEqual(yield* watch(long), [422, { error: `stat ${long}: file name too long` }])
    }))
})
