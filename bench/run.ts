/**
 * `npm run bench`: the SDK's figures, each against a baseline measured in the same run on the same
 * machine, printed as a table and written to `bench/results/latest.json`.
 *
 *   npm run bench                  full sizes (a few minutes)
 *   npm run bench -- --quick       reduced sizes (CI: every figure, no thresholds)
 *   npm run bench -- --only a,b    only the figures whose key starts with a or b (keys: --list)
 *   npm run bench -- --out FILE    write the JSON elsewhere
 *
 * Layout: `options.ts` (the flags), `rows.ts` (a row and its goal), `world.ts` (the executor child
 * and the SDK runtime the figures run against), `figures/<topic>.ts` (the figures, each with its
 * method notes); this file lists the figures in run order, runs them and prints the table.
 *
 * Method:
 * - The executor server runs in a child process (the `effect-koyeb executor` CLI), as it does in a
 *   real sandbox: in-process it would share this process's event loop and CPU with the client and
 *   blur whatever is being measured. The SDK client and the raw `fetch` baselines both run here,
 *   against that same child, so a figure's ratio compares the two clients only.
 * - SDK and baseline runs alternate (A/B/B/A…) and figures report medians: the machine may be
 *   shared, so absolute numbers are noisy while same-run ratios are meaningful.
 * - Peak RSS is this process's RSS sampled every 5 ms during one operation, minus the RSS before it
 *   (after a forced GC).
 * - "Back to baseline" (the load figures): this process's heap and RSS and the executor child's
 *   RSS (`/proc/<pid>/status` VmRSS) after a forced GC in both (the child collects on SIGUSR2,
 *   a one-line preload of the bench) and a 1 s settle, before and after the load;
 *   the SDK column is after, the baseline column before, and the goal is growth ≤ 32 MiB.
 * - Sandboxes leaked: the sandboxes the control plane still lists after the sandbox figures
 *   (every sandbox they made was scoped, so the goal is 0).
 * - Throughput of the executor server itself is measured with a client that counts events
 *   without decoding them (a decoding client caps the rate at its own JSON parsing, ~1.7M
 *   lines/s here), against it and against a minimal stock-like server (`naiveServer.ts`, also a
 *   child process).
 * - Process exit code: 1 when a figure failed to run (never because a goal was missed).
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { binary } from "./figures/binary.js"
import { cliStartup, importTime } from "./figures/cli.js"
import { concurrent, sequential } from "./figures/concurrency.js"
import { command, density, idleSandboxes } from "./figures/cost.js"
import { manyFiles } from "./figures/files.js"
import { codeInterpreter } from "./figures/interpreter.js"
import { latency } from "./figures/latency.js"
import { ptyRoundTrip } from "./figures/pty.js"
import { sandboxMany, sandboxStart } from "./figures/sandboxes.js"
import { serverStreaming } from "./figures/server.js"
import { stdinThroughput } from "./figures/stdin.js"
import { outputStreams, streamBig, streamSeq } from "./figures/streams.js"
import { watchLatency } from "./figures/watch.js"
import * as H from "./harness.js"
import { list, only, outFile, quick, size } from "./options.js"
import type * as Raw from "./raw.js"
import type { Row } from "./rows.js"
import {
  children,
  type Figure,
  makeRuntime,
  type Runtime,
  startExecutor,
  startNaiveServer,
  workDir,
  type World
} from "./world.js"

// `binary` runs last: it writes and frees hundreds of MiB, and on disks mounted with online
// discard (this VM's) file creation then slows down tenfold for a while, which would leak into
// the small-file figures (`writefiles`, `sandboxes`) run after it.
const figures: ReadonlyArray<Figure> = [
  latency,
  command,
  concurrent,
  sequential,
  streamSeq,
  outputStreams,
  streamBig,
  manyFiles,
  serverStreaming,
  sandboxStart,
  sandboxMany,
  density,
  idleSandboxes,
  cliStartup,
  importTime,
  stdinThroughput,
  watchLatency,
  ptyRoundTrip,
  codeInterpreter,
  binary
]

// ---------------------------------------------------------------------------------------------
// Output

const format = (value: number, unit: string): string => {
  if (!Number.isFinite(value)) return String(value)
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2
  const text = value >= 1e6
    ? `${(value / 1e6).toFixed(2)}M`
    : value >= 1e4
    ? `${(value / 1e3).toFixed(1)}k`
    : value.toFixed(digits)
  return `${text} ${unit}`
}

const printTable = (rows: ReadonlyArray<Row>): void => {
  const lines = rows.map((r) =>
    r.error !== undefined
      ? [r.figure, "-", "-", "-", r.goal, `ERROR: ${r.error}`]
      : [
        r.figure,
        format(r.sdk, r.unit),
        format(r.baseline, r.unit),
        r.ratio === null ? "-" : `${r.ratio.toFixed(2)}×`,
        r.goal,
        r.pass === null ? "report" : r.pass ? "pass" : "MISS"
      ]
  )
  const header = ["figure", "SDK", "baseline", "ratio", "goal", "result"]
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  const render = (cells: ReadonlyArray<string>) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`
  console.log(render(header))
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`)
  for (const line of lines) console.log(render(line))
}

// ---------------------------------------------------------------------------------------------
// Main

// Interrupted: stop the children and remove the work directory (local sandboxes are removed by
// their control plane's exit hook).
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    for (const child of children) child.process.kill("SIGTERM")
    Fs.rmSync(workDir, { recursive: true, force: true })
    process.exit(signal === "SIGINT" ? 130 : 143)
  })
}

const main = async (): Promise<number> => {
  if (list) {
    for (const figure of figures) console.log(`${figure.key.padEnd(12)} ${figure.title}`)
    return 0
  }
  const selected = figures.filter((f) => only === undefined || only.some((prefix) => f.key.startsWith(prefix)))
  const started = Date.now()
  console.log(`effect-koyeb bench${quick ? " (--quick)" : ""}: ${selected.map((f) => f.key).join(", ")}`)
  console.log(
    `node ${process.version}, ${Os.cpus().length} CPUs, load ${Os.loadavg().map((l) => l.toFixed(1)).join(" ")}`
  )
  const rows: Array<Row> = []
  let runtime: Runtime | undefined
  try {
    const { endpoint: executor, pid: executorPid } = await startExecutor()
    let naive: Promise<Raw.Endpoint> | undefined
    runtime = makeRuntime(executor)
    const world: World = { executor, executorPid, naive: () => (naive ??= startNaiveServer()), runtime }
    await runtime.runtime()
    for (const figure of selected) {
      const t0 = H.now()
      process.stdout.write(`- ${figure.title}… `)
      try {
        const produced = await H.withDeadline(figure.key, size(180_000, 40_000), figure.run(world))
        rows.push(...produced)
        console.log(`${((H.now() - t0) / 1000).toFixed(1)} s`)
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error)
        console.log(`failed: ${message}`)
        rows.push({
          key: figure.key,
          figure: figure.title,
          unit: "",
          sdk: Number.NaN,
          baseline: Number.NaN,
          ratio: null,
          goal: "-",
          pass: false,
          error: message
        })
      }
    }
  } finally {
    await runtime?.dispose()
    await Promise.all(children.map((child) => child.close()))
    Fs.rmSync(workDir, { recursive: true, force: true })
  }
  console.log("")
  printTable(rows)
  const report = {
    date: new Date().toISOString(),
    quick,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: Os.cpus().length,
    loadavg: Os.loadavg(),
    seconds: (Date.now() - started) / 1000,
    rows
  }
  Fs.mkdirSync(Path.dirname(outFile), { recursive: true })
  Fs.writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`)
  console.log(
    `\n${rows.filter((r) => r.pass === false).length} missed; written to ${Path.relative(process.cwd(), outFile)} in ${
      report.seconds.toFixed(0)
    } s`
  )
  return rows.some((r) => r.error !== undefined) ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
