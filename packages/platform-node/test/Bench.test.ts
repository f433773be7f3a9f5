/**
 * Keeps the benchmark suite (`bench/run.ts`) from rotting: runs it with `--quick` in a child
 * process and checks that every figure was produced, finite and without error. Speed is not
 * asserted (the figures' goals are judged by `npm run bench`, not here).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Module from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"

const root = Path.resolve(Path.dirname(Url.fileURLToPath(import.meta.url)), "../../..")
const tsx = Url.pathToFileURL(Module.createRequire(import.meta.url).resolve("tsx")).href

interface Row {
  readonly key: string
  readonly sdk: number
  readonly baseline: number
  readonly ratio: number | null
  readonly pass: boolean | null
  readonly error?: string
}

/** Every row `--quick` must produce (the binary sizes of `--quick` are 1 and 4 MiB). */
const expectedKeys = [
  "latency.median",
  "latency.p95",
  "command.median",
  "command.p95",
  "concurrent.total",
  "concurrent.heap",
  "concurrent.rss",
  "concurrent.server",
  "sequential.rate",
  "sequential.errors",
  "sequential.heap",
  "sequential.rss",
  "sequential.server",
  "stream.rate",
  "stream.rss",
  "outstreams.rate",
  "outstreams.errors",
  "outstreams.heap",
  "outstreams.rss",
  "outstreams.server",
  "bigstream.rss",
  "bigstream.rate",
  "writefiles.rate",
  "server.rate",
  "sandbox.first",
  "sandboxes.rate",
  "sandboxes.leaked",
  "density.idle",
  "density.1.time",
  "density.1.memory",
  "density.1.per",
  "density.5.time",
  "density.5.memory",
  "density.5.per",
  "density.10.time",
  "density.10.memory",
  "density.10.per",
  "density.leaked",
  "idle.cpu",
  "cli.startup",
  "import.time",
  "stdin.rate",
  "stdin.http",
  "stdin.rss",
  "watch.latency",
  "watch.poll",
  "pty.median",
  "pty.p95",
  "interpreter.python",
  "interpreter.javascript",
  "interpreter.output",
  "binary.write.1",
  "binary.read.1",
  "binary.rss.1",
  "binary.stock.write.1",
  "binary.stock.read.1",
  "binary.write.4",
  "binary.read.4",
  "binary.rss.4",
  "binary.stock.write.4",
  "binary.stock.read.4"
]

/** Runs `bench/run.ts --quick`; the child is killed if the test is interrupted. */
const runQuick = (out: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() =>
      ChildProcess.spawn(process.execPath, ["--import", tsx, "bench/run.ts", "--quick", "--out", out], {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"]
      })
    ),
    (child) =>
      Effect.async<{ readonly code: number | null; readonly output: string }>((resume) => {
        let output = ""
        child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
        child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
        child.once("close", (code) => resume(Effect.succeed({ code, output })))
      }),
    (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGTERM"))
  )

describe("bench --quick", () => {
  it.live("produces every figure, finite and error-free", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-bench-test-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const out = Path.join(dir, "quick.json")
      const { code, output } = yield* runQuick(out)
      assert.strictEqual(code, 0, output)
      const report = JSON.parse(Fs.readFileSync(out, "utf8")) as { quick: boolean; rows: ReadonlyArray<Row> }
      assert.isTrue(report.quick)
      assert.deepStrictEqual(report.rows.map((r) => r.key), expectedKeys, output)
      for (const row of report.rows) {
        assert.isUndefined(row.error, `${row.key}: ${row.error}`)
        assert.isTrue(Number.isFinite(row.sdk) && row.sdk >= 0, `${row.key}: SDK value ${row.sdk}`)
        assert.isTrue(Number.isFinite(row.baseline) && row.baseline >= 0, `${row.key}: baseline ${row.baseline}`)
        assert.isTrue(row.ratio === null || Number.isFinite(row.ratio), `${row.key}: ratio ${row.ratio}`)
      }
    }).pipe(Effect.scoped), 180_000)
})
