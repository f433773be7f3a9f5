import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
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

describe("executor startup snapshot", () => {
  it.live("the local backend starts executors from a snapshot that serves /health", () =>
    Effect.gen(function*() {
      const start = yield* executorCommand
      assert.strictEqual(start.args[0], "--snapshot-blob")
      const blob = start.args[1]!
      assert.isTrue(Fs.existsSync(blob))
      assert.isTrue(start.visiblePaths.includes(Path.dirname(blob)))
      const output = yield* Effect.promise(() =>
        new Promise<string>((resolve) => {
          const child = ChildProcess.spawn(start.command, [
            ...start.args,
            "executor",
            "--port",
            "0",
            "--proxy-port",
            "0"
          ], {
            env: { PATH: process.env.PATH ?? "", SANDBOX_SECRET_STDIN: "1" },
            stdio: ["pipe", "pipe", "inherit"]
          })
          child.stdin.end("secret")
          child.stdout.setEncoding("utf8").once("data", (line: string) => {
            const url = String(JSON.parse(line.split("\n")[0]!).url)
            fetch(`${url}/health`).then((response) => response.text()).then(resolve, (e) => resolve(String(e)))
              .finally(() => child.kill("SIGKILL"))
          })
        })
      )
      assert.include(output, "ok")
    }), 60_000)

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
