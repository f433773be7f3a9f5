import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { executorFlags } from "../src/internal/executorCodeCache.js"
import { executorCommand } from "../src/internal/executorCommand.js"
import { snapshotBlob } from "../src/internal/executorSnapshot.js"

/** A temporary directory removed by the scope. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-snapshot-test-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** Writes a snapshot entry into `dir`. */
const entry = (dir: string, source: string): string => {
  const file = Path.join(dir, "entry.cjs")
  Fs.writeFileSync(file, source)
  return file
}

/** The executor as the local backend starts it, in `cwd`, killed by the scope; its URL (secret "secret"). */
const startExecutor = (cwd: string) =>
  Effect.gen(function*() {
    const start = yield* executorCommand
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        ChildProcess.spawn(start.command, [...start.args, "executor", "--port", "0", "--proxy-port", "0"], {
          cwd,
          env: { PATH: process.env.PATH ?? "", SANDBOX_SECRET_STDIN: "1" },
          stdio: ["pipe", "pipe", "inherit"]
        })
      ),
      (child) => Effect.sync(() => child.kill("SIGKILL"))
    )
    child.stdin.end("secret")
    const line = yield* Effect.promise(() =>
      new Promise<string>((resolve) => child.stdout.setEncoding("utf8").once("data", resolve))
    )
    return String(JSON.parse(line.split("\n")[0]!).url)
  })

const call = (url: string, path: string, body?: unknown): Effect.Effect<string> =>
  Effect.promise(() =>
    fetch(`${url}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { authorization: "Bearer secret", "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    }).then((response) => response.text())
  )

describe("executor startup snapshot", () => {
  it.scoped("the local backend starts executors from a snapshot that serves /health", () =>
    Effect.gen(function*() {
      const start = yield* executorCommand
      // the executor's flags first: V8 refuses a blob built with other flags
      assert.deepStrictEqual(start.args.slice(0, executorFlags.length), executorFlags)
      assert.strictEqual(start.args[executorFlags.length], "--snapshot-blob")
      const blob = start.args[executorFlags.length + 1]!
      assert.isTrue(Fs.existsSync(blob))
      assert.isTrue(start.visiblePaths.includes(Path.dirname(blob)))
      const url = yield* startExecutor(yield* tempDir)
      assert.include(yield* call(url, "/health"), "ok")
    }), 60_000)

  // A blob built without node's code cache (withoutCodeCache) passed the warm-up, then failed
  // every file write from about the 700th request on (node 20.20: "kFd is not defined").
  it.scoped(
    "an executor from the snapshot still writes and reads files after a thousand requests",
    () =>
      Effect.gen(function*() {
        const url = yield* startExecutor(yield* tempDir)
        for (let i = 0; i < 1000; i++) yield* call(url, "/health")
        assert.strictEqual(
          yield* call(url, "/koyeb-sandbox/write_file", { path: "late.txt", content: "late" }),
          `{"success":true}\n`
        )
        assert.include(yield* call(url, "/koyeb-sandbox/read_file", { path: "late.txt" }), `"content":"late"`)
      }),
    60_000
  )

  it.scoped("an entry that fails to build leaves no blob", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = entry(dir, `throw new Error("no snapshot")\n`)
      assert.isUndefined(yield* Effect.promise(() => snapshotBlob(dir, file)))
      assert.deepStrictEqual(Fs.readdirSync(dir), ["entry.cjs"])
    }), 30_000)

  it.scoped("a snapshot that does not start an executor is not kept", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = entry(dir, `require("node:v8").startupSnapshot.setDeserializeMainFunction(() => process.exit(3))\n`)
      assert.isUndefined(yield* Effect.promise(() => snapshotBlob(dir, file)))
      assert.deepStrictEqual(Fs.readdirSync(dir), ["entry.cjs"])
    }), 30_000)
})
