/**
 * A batch of local sandboxes at once on a small machine: every one is created, used (a command,
 * a file written and read back) and deleted concurrently, each sees only its own files, and none
 * leaves a process or a directory behind. The bench runs the same at 1, 10, 50 and 100.
 */
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { descendantsOf } from "../src/internal/localProcesses.js"

const SANDBOXES = 30

/** Live (not zombie) descendants of this process. */
const liveDescendants = (): Array<number> =>
  descendantsOf(process.pid).filter((pid) => {
    try {
      return !/^\d+ \(.*\) Z/.test(Fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
    } catch {
      return false
    }
  })

describe("Density (local backend)", () => {
  it.live(`${SANDBOXES} sandboxes created, used and deleted at once; nothing left`, () =>
    Effect.gen(function*() {
      const baseDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ek-density-"))
      const before = new Set(liveDescendants())
      const ids = yield* Effect.forEach(
        Array.from({ length: SANDBOXES }, (_, i) => i),
        (i) =>
          Effect.scoped(Effect.gen(function*() {
            const sandbox = yield* Sandbox.make({ name: `density-${i}` })
            const result = yield* sandbox.executor.run(`echo ${i}`)
            assert.strictEqual(result.stdout, `${i}\n`)
            yield* sandbox.filesystem.writeFile(`own-${i}.txt`, `sandbox ${i}`)
            assert.strictEqual(yield* sandbox.filesystem.readFileString(`own-${i}.txt`), `sandbox ${i}`)
            // its home holds its own file only, whatever the others wrote meanwhile
            assert.strictEqual((yield* sandbox.executor.run("ls")).stdout, `own-${i}.txt\n`)
            return sandbox.info.id
          })),
        { concurrency: "unbounded" }
      ).pipe(Effect.provide(NodeSandbox.layerLocal({ baseDir })))
      assert.strictEqual(new Set(ids).size, SANDBOXES)
      // every deletion has returned: their directories are gone, and so are their processes
      // (an outbound helper's exit may still be on its way for a moment)
      assert.deepStrictEqual(Fs.readdirSync(baseDir), [])
      let left = liveDescendants().filter((pid) => !before.has(pid))
      for (let i = 0; i < 40 && left.length > 0; i++) {
        yield* Effect.sleep("50 millis")
        left = liveDescendants().filter((pid) => !before.has(pid))
      }
      assert.deepStrictEqual(left, [])
      Fs.rmdirSync(baseDir)
    }), { timeout: 60_000 })
})
