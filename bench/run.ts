/**
 * `npm run bench`: the SDK's figures, each against a baseline measured in the same run on the same
 * machine, printed as a table and written to `bench/results/latest.json`.
 *
 *   npm run bench                  full sizes (a few minutes)
 *   npm run bench -- --quick       reduced sizes (CI: every figure, no thresholds)
 *   npm run bench -- --only a,b    only the figures whose key starts with a or b (keys: --list)
 *   npm run bench -- --out FILE    write the JSON elsewhere
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
import * as CodeInterpreter from "@effect-koyeb/core/CodeInterpreter"
import { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as Executor from "@effect-koyeb/core/Executor"
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { executorCommand } from "../packages/platform-node/src/internal/executorCommand.js"
import { descendantsOf } from "../packages/platform-node/src/internal/localProcesses.js"
import * as Density from "./density.js"
import * as H from "./harness.js"
import * as ProcessCost from "./processCost.js"
import * as Raw from "./raw.js"

// ---------------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i === -1 ? undefined : argv[i + 1]
}
const quick = argv.includes("--quick")
const only = flag("--only")?.split(",").filter((s) => s !== "")
const outFile = Path.resolve(flag("--out") ?? Path.join(H.root, "bench", "results", "latest.json"))

/** Full and `--quick` sizes. */
const size = <A>(full: A, reduced: A): A => (quick ? reduced : full)

// ---------------------------------------------------------------------------------------------
// Rows

/** How a row's goal is judged: on the ratio SDK / baseline, on the SDK value alone, or not at all. */
type Goal =
  | { readonly kind: "ratioAtMost"; readonly value: number }
  | { readonly kind: "ratioAtLeast"; readonly value: number }
  | { readonly kind: "valueAtMost"; readonly value: number }
  | { readonly kind: "growthAtMost"; readonly value: number }
  | { readonly kind: "report" }

/** One line of the table and of the JSON. */
interface Row {
  readonly key: string
  readonly figure: string
  readonly unit: string
  readonly sdk: number
  readonly baseline: number
  /** SDK / baseline; null when the baseline is 0. */
  readonly ratio: number | null
  readonly goal: string
  /** null: report only. */
  readonly pass: boolean | null
  readonly detail?: string | undefined
  readonly error?: string | undefined
}

const goalText = (goal: Goal, unit: string): string => {
  switch (goal.kind) {
    case "ratioAtMost":
      return `≤ ${goal.value}×`
    case "ratioAtLeast":
      return `≥ ${goal.value}×`
    case "valueAtMost":
      return `≤ ${goal.value} ${unit}`
    case "growthAtMost":
      return `≤ +${goal.value} ${unit}`
    case "report":
      return "report"
  }
}

const row = (
  key: string,
  figure: string,
  unit: string,
  sdk: number,
  baseline: number,
  goal: Goal,
  options: { readonly detail?: string; readonly extraPass?: boolean } = {}
): Row => {
  const ratio = baseline === 0 ? null : sdk / baseline
  const judged = goal.kind === "report"
    ? null
    : goal.kind === "valueAtMost"
    ? sdk <= goal.value
    : goal.kind === "growthAtMost"
    ? sdk - baseline <= goal.value
    : ratio !== null && (goal.kind === "ratioAtMost" ? ratio <= goal.value : ratio >= goal.value)
  return {
    key,
    figure,
    unit,
    sdk,
    baseline,
    ratio,
    goal: goalText(goal, unit),
    pass: judged === null ? null : judged && (options.extraPass ?? true),
    detail: options.detail
  }
}

// ---------------------------------------------------------------------------------------------
// The world: executor child, naive server child, SDK runtime

const secret = Crypto.randomBytes(24).toString("base64url")
const workDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-bench-"))
const children: Array<H.Child> = []

const startExecutor = async (): Promise<{ readonly endpoint: Raw.Endpoint; readonly pid: number }> => {
  const child = await H.spawnAnnounced(
    [
      ...H.gcOnSignalArgs,
      ...H.tsxArgs("packages/platform-node/src/bin/effect-koyeb.ts", "executor", "--port", "0", "--proxy-port", "0")
    ],
    {
      cwd: workDir,
      env: { ...process.env, SANDBOX_SECRET: secret, EFFECT_KOYEB_PARENT_PID: String(process.pid) }
    }
  )
  children.push(child)
  return { endpoint: { url: String(child.announcement.url), secret }, pid: child.process.pid! }
}

const startNaiveServer = async (): Promise<Raw.Endpoint> => {
  const child = await H.spawnAnnounced(H.tsxArgs("bench/naiveServer.ts"), {
    cwd: workDir,
    env: { ...process.env, SANDBOX_SECRET: secret }
  })
  children.push(child)
  return { url: String(child.announcement.url), secret }
}

const makeRuntime = (endpoint: Raw.Endpoint) =>
  ManagedRuntime.make(
    Layer.mergeAll(Executor.layer, Filesystem.layer).pipe(
      Layer.provideMerge(ExecutorClient.layer({ url: endpoint.url, secret: Redacted.make(endpoint.secret) })),
      Layer.provide(NodeHttpClient.layerUndici),
      Layer.merge(NodeSandbox.layerLocal())
    )
  )

type Runtime = ReturnType<typeof makeRuntime>

interface World {
  readonly executor: Raw.Endpoint
  /** The executor child's process id, for its RSS. */
  readonly executorPid: number
  readonly naive: () => Promise<Raw.Endpoint>
  readonly runtime: Runtime
}

/** Runs an SDK effect on the bench runtime. */
const sdk = <A, E>(world: World, effect: Effect.Effect<A, E, ManagedRuntime.ManagedRuntime.Context<Runtime>>) =>
  world.runtime.runPromise(effect)

const run = (cmd: string) => Effect.flatMap(Executor.Executor, (executor) => executor.run(cmd))

/** Allowed growth of settled memory across a load figure. */
const memoryToleranceMiB = 32

/** Rows `<key>.heap`, `<key>.rss`, `<key>.server`: settled memory after (SDK column) vs before (baseline column). */
const memoryRows = (
  key: string,
  load: string,
  before: H.MemorySnapshot,
  after: H.MemorySnapshot,
  between: string
): Array<Row> => {
  const goal: Goal = { kind: "growthAtMost", value: memoryToleranceMiB }
  const detail =
    `after vs before ${between}; forced GC in both processes + 1 s settle; growth ${memoryToleranceMiB} MiB at most`
  return [
    row(
      `${key}.heap`,
      `${load}: SDK heap back to baseline`,
      "MiB",
      H.mib(after.heapUsed),
      H.mib(before.heapUsed),
      goal,
      { detail }
    ),
    row(`${key}.rss`, `${load}: SDK RSS back to baseline`, "MiB", H.mib(after.rss), H.mib(before.rss), goal, {
      detail
    }),
    row(
      `${key}.server`,
      `${load}: executor RSS back to baseline`,
      "MiB",
      H.mib(after.childRss),
      H.mib(before.childRss),
      goal,
      {
        detail: `${detail}; VmRSS of the executor child`
      }
    )
  ]
}

// ---------------------------------------------------------------------------------------------
// Figures

interface Figure {
  readonly key: string
  readonly title: string
  readonly run: (world: World) => Promise<Array<Row>>
}

const latency: Figure = {
  key: "latency",
  title: `run("true") latency, keep-alive`,
  run: async (world) => {
    const iterations = size(300, 40)
    const sdkRun = () => sdk(world, run("true"))
    const rawRun = () => Raw.runText(world.executor, "true")
    for (let i = 0; i < 20; i++) {
      await sdkRun()
      await rawRun()
    }
    const sdkTimes: Array<number> = []
    const rawTimes: Array<number> = []
    for (let i = 0; i < iterations; i++) {
      const first = i % 2 === 0
      if (first) sdkTimes.push((await H.timed(sdkRun)).millis)
      rawTimes.push((await H.timed(rawRun)).millis)
      if (!first) sdkTimes.push((await H.timed(sdkRun)).millis)
    }
    const detail = `${iterations} calls each, interleaved; baseline: fetch POST /run_streaming, whole body read`
    return [
      row("latency.median", `run("true") median latency`, "ms", H.median(sdkTimes), H.median(rawTimes), {
        kind: "ratioAtMost",
        value: 1.25
      }, { detail }),
      row("latency.p95", `run("true") p95 latency`, "ms", H.quantile(sdkTimes, 0.95), H.quantile(rawTimes, 0.95), {
        kind: "ratioAtMost",
        value: 1.25
      }, { detail })
    ]
  }
}

/**
 * One command's cost against the floor of spawning it: `/run "true"` with a raw client against a
 * bare node child's `spawn("true")` (pipes drained until `close`), interleaved in the same run.
 */
const command: Figure = {
  key: "command",
  title: `executor /run("true") vs spawn("true") floor`,
  run: async () => {
    const iterations = size(300, 40)
    // the executor as a local sandbox starts it (its bundle; tsx's loader thread would slow every fork)
    const { args } = await Effect.runPromise(executorCommand)
    const executor = await H.spawnAnnounced([...args, "executor", "--port", "0"], {
      cwd: workDir,
      env: { ...userEnv, SANDBOX_SECRET: secret }
    })
    const endpoint: Raw.Endpoint = { url: String(executor.announcement.url), secret }
    const floor = ProcessCost.spawnFloor()
    try {
      const rawRun = async () => {
        const t0 = H.now()
        const { code } = await Raw.run(endpoint, "true")
        if (code !== 0) throw new Error(`/run "true": code ${code}`)
        return H.now() - t0
      }
      for (let i = 0; i < 20; i++) {
        await rawRun()
        await floor.spawnOnce()
      }
      const { a: runs, b: spawns } = await H.interleave(iterations, rawRun, floor.spawnOnce)
      const detail = `${iterations} each, interleaved; executor bundle: fetch POST /run {"cmd":"true"}, JSON read; ` +
        `baseline: child_process.spawn("true") in a bare node child, stdout/stderr piped, until close`
      return [
        row("command.median", `/run("true") median vs spawn floor`, "ms", H.median(runs), H.median(spawns), {
          kind: "ratioAtMost",
          value: 1
        }, { detail }),
        row("command.p95", `/run("true") p95 vs spawn floor`, "ms", H.quantile(runs, 0.95), H.quantile(spawns, 0.95), {
          kind: "ratioAtMost",
          value: 1
        }, { detail })
      ]
    } finally {
      floor.close()
      await executor.close()
    }
  }
}

/**
 * Idle local sandboxes: the CPU time, over a quiet window, of every process that exists because
 * of them (their descendants of this process) plus this process's own CPU beyond an equal window
 * without them (the control plane runs here), as % of a core per sandbox.
 */
const idleSandboxes: Figure = {
  key: "idle",
  title: "idle local sandboxes, CPU",
  run: async (world) => {
    const n = size(10, 3)
    const windowMillis = size(10_000, 3_000)
    const existing = new Set(descendantsOf(process.pid))
    // warm-up: the executor bundle and its code cache are found (or built) on first use
    await sdk(world, sandboxOnce(false))
    await new Promise((resolve) => setTimeout(resolve, 500))
    const hostIdle = await ProcessCost.cpuOver([process.pid], windowMillis)
    const scope = await Effect.runPromise(Scope.make())
    try {
      await sdk(
        world,
        Effect.forEach(
          Array.from({ length: n }),
          () =>
            Effect.flatMap(Sandbox.make(), (handle) => handle.executor.run("true")).pipe(
              Scope.extend(scope)
            ),
          { concurrency: "unbounded" }
        )
      )
      // settle: start-up work is not idle time (V8's memory reducer collects a few times in the
      // ~20 s after the last allocation, then a sandbox is quiet)
      await new Promise((resolve) => setTimeout(resolve, size(20_000, 1000)))
      const pids = descendantsOf(process.pid).filter((pid) => !existing.has(pid))
      const hostBefore = ProcessCost.cpuNanos(process.pid)
      const sandboxes = await ProcessCost.cpuOver(pids, windowMillis)
      const host = (ProcessCost.cpuNanos(process.pid) - hostBefore) / 1e6
      const percent = (millis: number) => (millis / windowMillis / n) * 100
      const total = sandboxes + Math.max(0, host - hostIdle)
      return [
        row("idle.cpu", `${n} idle local sandboxes: CPU per sandbox`, "% core", percent(total), percent(hostIdle), {
          kind: "valueAtMost",
          value: 0.05
        }, {
          detail: `${(windowMillis / 1000).toFixed(0)} s window after ${
            size(20, 1)
          } s of settling; ${pids.length} processes (${sandboxes.toFixed(1)} ms) + this process ${
            host.toFixed(1)
          } ms vs ${
            hostIdle.toFixed(1)
          } ms without sandboxes (baseline column, per sandbox); /proc/<pid>/task/*/schedstat`
        })
      ]
    } finally {
      await sdk(world, Scope.close(scope, Exit.void))
    }
  }
}

const concurrent: Figure = {
  key: "concurrent",
  title: "concurrent run calls on one sandbox",
  run: async (world) => {
    const n = size(200, 50)
    const rounds = size(5, 1)
    let sdkErrors = 0
    let rawErrors = 0
    const sdkRound = async () => {
      const results = await sdk(
        world,
        Effect.forEach(Array.from({ length: n }), () => Effect.either(run("true")), { concurrency: "unbounded" })
      )
      sdkErrors += results.filter(Either.isLeft).length
    }
    const rawRound = async () => {
      const results = await Promise.allSettled(Array.from({ length: n }, () => Raw.runText(world.executor, "true")))
      rawErrors += results.filter((r) => r.status === "rejected" || r.value !== 0).length
    }
    await sdkRound()
    await rawRound()
    sdkErrors = rawErrors = 0
    const before = await H.settledMemory(world.executorPid)
    const { a, b } = await H.interleave(rounds, () => H.timed(sdkRound), () => H.timed(rawRound))
    const after = await H.settledMemory(world.executorPid)
    return [
      row(
        "concurrent.total",
        `${n} concurrent run("true"), total time`,
        "ms",
        H.median(a.map((r) => r.millis)),
        H.median(b.map((r) => r.millis)),
        { kind: "ratioAtMost", value: 1.3 },
        {
          detail: `median of ${rounds}; errors: SDK ${sdkErrors}, baseline ${rawErrors}`,
          extraPass: sdkErrors === 0
        }
      ),
      ...memoryRows(
        "concurrent",
        `${n} concurrent run("true")`,
        before,
        after,
        `${rounds} SDK and ${rounds} baseline rounds`
      )
    ]
  }
}

const sequential: Figure = {
  key: "sequential",
  title: "sequential run calls on one sandbox",
  run: async (world) => {
    const n = size(1000, 100)
    const sdkRun = () => sdk(world, Effect.forEach(Array.from({ length: n }), () => Effect.either(run("true"))))
    const rawRun = async () => {
      let errors = 0
      for (let i = 0; i < n; i++) {
        errors += await Raw.runText(world.executor, "true").then((code) => (code === 0 ? 0 : 1), () => 1)
      }
      return errors
    }
    // warm-up
    for (let i = 0; i < 20; i++) {
      await sdk(world, run("true"))
      await Raw.runText(world.executor, "true")
    }
    const before = await H.settledMemory(world.executorPid)
    const a = await H.timed(sdkRun)
    const after = await H.settledMemory(world.executorPid)
    const b = await H.timed(rawRun)
    const sdkErrors = a.value.filter(Either.isLeft).length
    const rawErrors = b.value
    const load = `${n} sequential run("true")`
    return [
      row("sequential.rate", `${load} on one sandbox`, "commands/s", (n / a.millis) * 1000, (n / b.millis) * 1000, {
        kind: "report"
      }, { detail: `one round each; baseline: fetch POST /run_streaming one after another` }),
      row("sequential.errors", `${load}, errors`, "errors", sdkErrors, rawErrors, { kind: "valueAtMost", value: 0 }),
      ...memoryRows("sequential", load, before, after, "the SDK's commands only")
    ]
  }
}

/** Lines/s and RSS growth of the SDK's `stream` and of fetch + SSE split on the same command. */
const streamBoth = async (world: World, cmd: string, rounds: number, expectLines: number) => {
  const sdkLines = (cmd: string) =>
    sdk(world, Effect.flatMap(Executor.Executor, (executor) => Stream.runCount(executor.stream(cmd))))
  const rawLines = async (cmd: string) => {
    let lines = 0
    await Raw.runLines(world.executor, cmd, () => {
      lines++
    })
    return lines
  }
  // warm-up, so that both paths are compiled by the JIT before they are timed
  await sdkLines("seq 1 50000")
  await rawLines("seq 1 50000")
  const sdkOnce = () => H.withPeakRss(() => sdkLines(cmd))
  const rawOnce = () => H.withPeakRss(() => rawLines(cmd))
  const { a, b } = await H.interleave(rounds, sdkOnce, rawOnce)
  for (const r of [...a, ...b]) {
    if (r.value !== expectLines) throw new Error(`expected ${expectLines} lines, got ${r.value}`)
  }
  return {
    sdkRate: H.median(a.map((r) => (expectLines / r.millis) * 1000)),
    rawRate: H.median(b.map((r) => (expectLines / r.millis) * 1000)),
    sdkRss: H.mib(Math.max(...a.map((r) => r.rssGrowth))),
    rawRss: H.mib(Math.max(...b.map((r) => r.rssGrowth)))
  }
}

const streamSeq: Figure = {
  key: "stream",
  title: "stream of seq",
  run: async (world) => {
    const n = size(1_000_000, 100_000)
    const rounds = size(3, 1)
    const r = await streamBoth(world, `seq 1 ${n}`, rounds, n)
    const detail = `median of ${rounds}; baseline: fetch + minimal SSE split + JSON.parse per event`
    return [
      row("stream.rate", `stream(seq 1 ${n}) throughput`, "lines/s", r.sdkRate, r.rawRate, {
        kind: "ratioAtLeast",
        value: 0.8
      }, { detail }),
      row("stream.rss", `stream(seq 1 ${n}) peak RSS growth`, "MiB", r.sdkRss, r.rawRss, {
        kind: "valueAtMost",
        value: 64
      }, { detail: "max over rounds" })
    ]
  }
}

const outputStreams: Figure = {
  key: "outstreams",
  title: "concurrent output streams on one sandbox",
  run: async (world) => {
    const n = size(50, 10)
    const lines = 20_000
    const cmd = `seq 1 ${lines}`
    const sdkRound = (streams: number) =>
      sdk(
        world,
        Effect.flatMap(Executor.Executor, (executor) =>
          Effect.forEach(Array.from({ length: streams }), () =>
            Effect.either(Stream.runCount(executor.stream(cmd))), {
            concurrency: "unbounded"
          }))
      ).then((results) => ({
        lines: results.reduce((sum, r) =>
          sum + (Either.isRight(r) ? r.right : 0), 0),
        errors: results.filter((r) => Either.isLeft(r) || r.right !== lines).length
      }))
    const rawRound = (streams: number) =>
      Promise.allSettled(Array.from({ length: streams }, async () => {
        let count = 0
        const code = await Raw.runLines(world.executor, cmd, () => {
          count++
        })
        if (code !== 0) throw new Error(`exit code ${code}`)
        return count
      })).then((results) => ({
        lines: results.reduce((sum, r) => sum + (r.status === "fulfilled" ? r.value : 0), 0),
        errors: results.filter((r) => r.status === "rejected" || r.value !== lines).length
      }))
    // warm-up
    await sdkRound(2)
    await rawRound(2)
    const before = await H.settledMemory(world.executorPid)
    const a = await H.timed(() => sdkRound(n))
    const after = await H.settledMemory(world.executorPid)
    const b = await H.timed(() => rawRound(n))
    const load = `${n} concurrent stream(${cmd})`
    return [
      row(
        "outstreams.rate",
        `${load}, all lines`,
        "lines/s",
        (a.value.lines / a.millis) * 1000,
        (b.value.lines / b.millis) * 1000,
        {
          kind: "report"
        },
        {
          detail: `one round each; lines counted: SDK ${a.value.lines}, baseline ${b.value.lines} of ${
            n * lines
          }; baseline: fetch + minimal SSE split + JSON.parse per event`
        }
      ),
      row("outstreams.errors", `${load}, errors (failed or short streams)`, "errors", a.value.errors, b.value.errors, {
        kind: "valueAtMost",
        value: 0
      }),
      ...memoryRows("outstreams", load, before, after, "the SDK's streams only")
    ]
  }
}

const streamBig: Figure = {
  key: "bigstream",
  title: "large output through stream",
  run: async (world) => {
    const mb = size(100, 10)
    // 1000 characters + newline per line; a quarter of the volume first, to tell accumulation
    // (growth that follows the volume) from garbage not yet collected (a constant)
    const cmd = (lines: number) => `yes "$(head -c 1000 /dev/zero | tr '\\0' x)" | head -n ${lines}`
    const small = await streamBoth(world, cmd(mb * 250), 1, mb * 250)
    const r = await streamBoth(world, cmd(mb * 1000), 1, mb * 1000)
    const mbps = (rate: number) => (rate * 1001) / 1e6
    const limit = small.sdkRss + 16
    return [
      row("bigstream.rss", `${mb} MB of output through stream, peak RSS growth`, "MiB", r.sdkRss, r.rawRss, {
        kind: "valueAtMost",
        value: Math.round(limit)
      }, {
        detail: `flat = at most 16 MiB above the growth with ${mb / 4} MB (${small.sdkRss.toFixed(1)} MiB); ${
          mb * 1000
        } lines of 1000 characters`
      }),
      row("bigstream.rate", `${mb} MB of output through stream, throughput`, "MB/s", mbps(r.sdkRate), mbps(r.rawRate), {
        kind: "report"
      })
    ]
  }
}

/** The SDK's `Filesystem` on the stock protocol: the executor's capabilities hidden, as on Koyeb's Go executor. */
const stockFilesystem = Effect.flatMap(
  ExecutorClient.ExecutorClient,
  (client) =>
    Effect.provideService(Filesystem.make, ExecutorClient.ExecutorClient, {
      ...client,
      health: Effect.map(client.health, ({ status }) => ({ status })),
      capabilities: Effect.succeed(new Set<string>())
    })
)

const binary: Figure = {
  key: "binary",
  title: "binary write + read",
  run: async (world) => {
    const rows: Array<Row> = []
    const ours = await sdk(world, Filesystem.Filesystem)
    const stock = await sdk(world, stockFilesystem)
    // warm-up of every path
    const warm = new Uint8Array(Crypto.randomBytes(256 * 1024))
    const warmPath = Path.join(workDir, "binary-warm")
    for (const fs of [ours, stock]) {
      await sdk(world, Effect.zipRight(fs.writeFile(warmPath, warm), fs.readFile(warmPath)))
    }
    await Raw.writeBytesByHand(world.executor, warmPath, warm)
    await Raw.readBytesByHand(world.executor, warmPath)
    for (const mib of size([1, 16, 64], [1, 4])) {
      const bytes = new Uint8Array(Crypto.randomBytes(mib * 1024 * 1024))
      const rounds = quick ? 1 : mib >= 64 ? 1 : mib >= 16 ? 2 : 3
      const rawPath = Path.join(workDir, `binary-${mib}-raw`)
      const check = (back: Uint8Array) => {
        if (Buffer.compare(back, bytes) !== 0) throw new Error(`${mib} MiB: the bytes read back differ`)
      }
      const sdkOnce = (fs: Filesystem.FilesystemShape, sdkPath: string) => () =>
        H.withPeakRss(async () => {
          const write = await H.timed(() => sdk(world, fs.writeFile(sdkPath, bytes)))
          const read = await H.timed(() => sdk(world, fs.readFile(sdkPath)))
          check(read.value)
          return { write: write.millis, read: read.millis }
        })
      const rawOnce = () =>
        H.withPeakRss(async () => {
          const write = await H.timed(() => Raw.writeBytesByHand(world.executor, rawPath, bytes))
          const read = await H.timed(() => Raw.readBytesByHand(world.executor, rawPath))
          check(read.value)
          return { write: write.millis, read: read.millis }
        })
      const rate = (
        rs: ReadonlyArray<{ readonly value: { readonly write: number; readonly read: number } }>,
        k: "write" | "read"
      ) => H.median(rs.map((r) => (mib * 1.048576) / (r.value[k] / 1000)))
      const baseline = "baseline: base64 through /write_file + base64 -d, base64 -w0 through /run"
      const { a, b } = await H.interleave(rounds, sdkOnce(ours, Path.join(workDir, `binary-${mib}-sdk`)), rawOnce)
      const detail = `median of ${rounds}; SDK: the executor's binary-files extension; ${baseline}`
      rows.push(
        row(`binary.write.${mib}`, `binary write ${mib} MiB`, "MB/s", rate(a, "write"), rate(b, "write"), {
          kind: "ratioAtLeast",
          value: 1
        }, { detail }),
        row(`binary.read.${mib}`, `binary read ${mib} MiB`, "MB/s", rate(a, "read"), rate(b, "read"), {
          kind: "ratioAtLeast",
          value: 1
        }, { detail }),
        row(
          `binary.rss.${mib}`,
          `binary write+read ${mib} MiB, peak RSS growth`,
          "MiB",
          H.mib(Math.max(...a.map((r) => r.rssGrowth))),
          H.mib(Math.max(...b.map((r) => r.rssGrowth))),
          { kind: "valueAtMost", value: 4 * mib },
          { detail: "limit: 4× the file size" }
        )
      )
      // The same on the stock protocol (Koyeb's Go executor has no extension): reported.
      const stockRun = await H.interleave(rounds, sdkOnce(stock, Path.join(workDir, `binary-${mib}-stock`)), rawOnce)
      const stockDetail = `median of ${rounds}; SDK with the executor's capabilities hidden; ${baseline}`
      for (const k of ["write", "read"] as const) {
        rows.push(
          row(
            `binary.stock.${k}.${mib}`,
            `binary ${k} ${mib} MiB, stock protocol`,
            "MB/s",
            rate(stockRun.a, k),
            rate(stockRun.b, k),
            {
              kind: "report"
            },
            { detail: stockDetail }
          )
        )
      }
    }
    return rows
  }
}

const manyFiles: Figure = {
  key: "writefiles",
  title: "writeFiles of small files",
  run: async (world) => {
    const n = size(1000, 200)
    const rounds = size(3, 1)
    const files = (dir: string) =>
      Array.from({ length: n }, (_, i) => ({ path: `${dir}/f${i}.txt`, content: `file ${i}: ${"x".repeat(80)}\n` }))
    let round = 0
    const prepare = (name: string) => {
      const dir = Path.join(workDir, `many-${name}-${round++}`)
      Fs.mkdirSync(dir, { recursive: true })
      return files(dir)
    }
    const batch = () => {
      const list = prepare("batch")
      return H.timed(() => sdk(world, Effect.flatMap(Filesystem.Filesystem, (fs) => fs.writeFiles(list))))
    }
    const sequential = () => {
      const list = prepare("seq")
      return H.timed(() =>
        sdk(
          world,
          Effect.flatMap(Filesystem.Filesystem, (fs) =>
            Effect.forEach(list, (f) => fs.writeFile(f.path, f.content), { discard: true }))
        )
      )
    }
    const { a, b } = await H.interleave(rounds, batch, sequential)
    return [
      row(
        "writefiles.rate",
        `writeFiles of ${n} small files`,
        "files/s",
        H.median(a.map((r) => (n / r.millis) * 1000)),
        H.median(b.map((r) => (n / r.millis) * 1000)),
        { kind: "ratioAtLeast", value: 5 },
        { detail: `median of ${rounds}; baseline: sequential writeFile of the same ~90-byte text files` }
      )
    ]
  }
}

const serverStreaming: Figure = {
  key: "server",
  title: "ExecutorServer streaming throughput",
  run: async (world) => {
    const naive = await world.naive()
    const n = size(1_000_000, 100_000)
    const rounds = size(3, 1)
    const count = (endpoint: Raw.Endpoint) => () =>
      H.timed(async () => {
        const lines = await Raw.countOutputEvents(endpoint, `seq 1 ${n}`)
        if (lines !== n) throw new Error(`expected ${n} lines, got ${lines}`)
      })
    await count(world.executor)()
    await count(naive)()
    const { a, b } = await H.interleave(rounds, count(world.executor), count(naive))
    return [
      row(
        "server.rate",
        `ExecutorServer /run_streaming seq 1 ${n}, raw client`,
        "lines/s",
        H.median(a.map((r) => (n / r.millis) * 1000)),
        H.median(b.map((r) => (n / r.millis) * 1000)),
        { kind: "ratioAtLeast", value: 3 },
        {
          detail:
            `median of ${rounds}; client counts events without decoding; baseline: node:http server, one write per SSE event (as the stock executor)`
        }
      )
    ]
  }
}

/** Time from spawning `node -e` to its first output. */
const bareNode = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const t0 = H.now()
    const child = ChildProcess.spawn(process.execPath, ["-e", "process.stdout.write('ready\\n')"], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let first: number | undefined
    child.stdout.once("data", () => {
      first = H.now() - t0
    })
    child.once("error", reject)
    child.once("exit", () => (first === undefined ? reject(new Error("node -e printed nothing")) : resolve(first)))
  })

/** Create a local sandbox, run a command in it (and optionally use its files), delete it. */
const sandboxOnce = (use: boolean) =>
  Effect.gen(function*() {
    const t0 = H.now()
    const firstResult = yield* Effect.scoped(Effect.gen(function*() {
      const handle = yield* Sandbox.make()
      const result = yield* handle.executor.run("echo ready")
      const elapsed = H.now() - t0
      if (result.stdout !== "ready\n") return yield* Effect.dieMessage(`unexpected output ${result.stdout}`)
      if (use) {
        yield* handle.filesystem.writeFile("data.txt", "hello")
        const back = yield* handle.filesystem.readFileString("data.txt")
        if (back !== "hello") return yield* Effect.dieMessage(`unexpected file content ${back}`)
      }
      return elapsed
    }))
    return { firstResult, total: H.now() - t0 }
  })

const sandboxStart: Figure = {
  key: "sandbox",
  title: "local Sandbox.make → first result",
  run: async (world) => {
    const rounds = size(7, 2)
    // warm-up: the executor bundle is built (or found in the cache) on first use
    await sdk(world, sandboxOnce(false))
    await bareNode()
    const { a, b } = await H.interleave(rounds, () => sdk(world, sandboxOnce(false)), bareNode)
    return [
      row(
        "sandbox.first",
        "local Sandbox.make → first run result, median",
        "ms",
        H.median(a.map((r) => r.firstResult)),
        H.median(b),
        { kind: "ratioAtMost", value: 3 },
        {
          detail: `median of ${rounds}; isolation auto; create+run+delete median ${
            H.median(a.map((r) => r.total)).toFixed(0)
          } ms; baseline: spawn node -e until its first output`
        }
      )
    ]
  }
}

const sandboxMany: Figure = {
  key: "sandboxes",
  title: "local sandboxes concurrently",
  run: async (world) => {
    const n = size(20, 4)
    const rounds = size(2, 1)
    const many = (concurrency: number | "unbounded") => () =>
      H.timedWithCores(() =>
        sdk(world, Effect.forEach(Array.from({ length: n }), () => sandboxOnce(true), { concurrency }))
      )
    // warm-up: the executor bundle and its code cache are found (or built) on first use
    await sdk(world, sandboxOnce(true))
    const { a, b } = await H.interleave(rounds, many("unbounded"), many(1))
    const concurrent = H.median(a.map((r) => r.millis))
    const sequential = H.median(b.map((r) => r.millis))
    // Sequential creation already keeps most of a core busy (starting node is CPU-bound), so the
    // machine caps the speed-up near cores ÷ that: the bound is printed with the figure.
    const cores = Os.availableParallelism()
    const sequentialCores = H.median(b.map((r) => r.cores))
    const left = await sdk(world, Effect.flatMap(ControlPlane, (controlPlane) => controlPlane.list))
    return [
      row(
        "sandboxes.rate",
        `${n} local sandboxes create/use/delete concurrently`,
        "sandboxes/s",
        (n / concurrent) * 1000,
        (n / sequential) * 1000,
        { kind: "ratioAtLeast", value: 2 },
        {
          detail: `median of ${rounds}: concurrent ${(concurrent / 1000).toFixed(1)} s (${
            H.median(a.map((r) => r.cores)).toFixed(2)
          } cores busy) vs sequential ${(sequential / 1000).toFixed(1)} s (${
            sequentialCores.toFixed(2)
          } cores busy), so at most ~${
            (cores / sequentialCores).toFixed(1)
          }× on ${cores} cores; use = run + write + read a file`
        }
      ),
      row(
        "sandboxes.leaked",
        "sandboxes leaked (left after the sandbox figures)",
        "sandboxes",
        left.length,
        0,
        { kind: "valueAtMost", value: 0 },
        { detail: "sandboxes the control plane still lists once every scoped sandbox of the figures is released" }
      )
    ]
  }
}

/**
 * `n` local sandboxes created, used (a command, a file written and read back) and deleted
 * concurrently; the memory of their processes is sampled once all of them are up and used.
 */
const densityBatch = (n: number) =>
  Effect.gen(function*() {
    const before = Density.descendants()
    const ids: Array<string> = []
    const allUsed = yield* Deferred.make<void>()
    const measured = yield* Deferred.make<void>()
    let used = 0
    const t0 = H.now()
    const batch = yield* Effect.forEach(
      Array.from({ length: n }, (_, i) => i),
      (i) =>
        Effect.scoped(Effect.gen(function*() {
          const handle = yield* Sandbox.make()
          ids.push(handle.info.id)
          const result = yield* handle.executor.run(`echo ${i}`)
          if (result.stdout !== `${i}\n`) return yield* Effect.dieMessage(`unexpected output ${result.stdout}`)
          yield* handle.filesystem.writeFile("data.txt", `sandbox ${i}`)
          const back = yield* handle.filesystem.readFileString("data.txt")
          if (back !== `sandbox ${i}`) return yield* Effect.dieMessage(`unexpected file content ${back}`)
          if (++used === n) yield* Deferred.succeed(allUsed, undefined)
          yield* Deferred.await(measured)
        })),
      { concurrency: "unbounded", discard: true }
    ).pipe(Effect.fork)
    yield* Effect.raceFirst(Deferred.await(allUsed), Fiber.join(batch))
    const upMillis = H.now() - t0
    const alive = Density.newProcesses(before)
    const t1 = H.now()
    yield* Deferred.succeed(measured, undefined)
    yield* Fiber.join(batch)
    const millis = upMillis + (H.now() - t1)
    // A helper's exit may still be on its way when its sandbox's deletion returns.
    let left = Density.newProcesses(before)
    for (let i = 0; i < 40 && left.pids.length > 0; i++) {
      yield* Effect.sleep("50 millis")
      left = Density.newProcesses(before)
    }
    return {
      millis,
      pss: alive.pss,
      processes: alive.pids.length,
      left: left.names,
      leftDirs: Density.leftDirectories(Path.join(Os.tmpdir(), "effect-koyeb"), ids)
    }
  })

/** PSS of one idle process of `args` after `settle` ms (a bare node, as the floor of a node-based sandbox). */
const idleProcessPss = async (args: ReadonlyArray<string>, settle = 1000): Promise<number> => {
  const child = ChildProcess.spawn(process.execPath, args, { stdio: "ignore" })
  try {
    await new Promise((resolve) => setTimeout(resolve, settle))
    return Density.processMemory(child.pid!).pss
  } finally {
    child.kill("SIGKILL")
  }
}

const density: Figure = {
  key: "density",
  title: "local sandboxes: memory per idle sandbox, 1 to 100 at once",
  run: async (world) => {
    const sizes = size([1, 10, 50, 100], [1, 5, 10])
    // warm-up: the executor bundle and its code cache are found (or built) on first use
    await sdk(world, sandboxOnce(false))
    const idle = await sdk(
      world,
      Effect.scoped(Effect.gen(function*() {
        const before = Density.descendants()
        const handle = yield* Sandbox.make()
        yield* handle.executor.run("true")
        yield* Effect.sleep("1 second")
        return Density.newProcesses(before)
      }))
    )
    const bare = await idleProcessPss(["-e", "setTimeout(() => {}, 60_000)"])
    const rows: Array<Row> = [
      row(
        "density.idle",
        "memory of one idle local sandbox (PSS of its processes)",
        "MiB",
        H.mib(idle.pss),
        H.mib(bare),
        { kind: "valueAtMost", value: 16 },
        {
          detail: `${idle.names.join(" + ")}: PSS ${H.mib(idle.pss).toFixed(1)} MiB, RSS ${
            H.mib(idle.rss).toFixed(1)
          } MiB, 1 s after a command; baseline: PSS of an idle bare node`
        }
      )
    ]
    let single: { readonly millis: number; readonly pss: number } | undefined
    const left: Array<string> = []
    for (const n of sizes) {
      const batch = await sdk(world, densityBatch(n))
      single ??= batch
      left.push(...batch.left, ...batch.leftDirs.map((id) => `directory ${id}`))
      const perMiB = H.mib(batch.pss) / n
      rows.push(
        row(
          `density.${n}.time`,
          `${n} local sandboxes at once: create/use/delete`,
          "ms",
          batch.millis,
          single.millis * n,
          {
            kind: "report"
          },
          { detail: `baseline: ${n} × the time of 1 (sequential estimate); use = run + write + read a file` }
        ),
        row(
          `density.${n}.memory`,
          `${n} local sandboxes at once: memory (PSS) when all are up`,
          "MiB",
          H.mib(batch.pss),
          H.mib(single.pss) * n,
          {
            kind: "report"
          },
          { detail: `${batch.processes} processes; baseline: ${n} × the memory of 1` }
        ),
        row(
          `density.${n}.per`,
          `${n} local sandboxes at once: time per sandbox`,
          "ms",
          batch.millis / n,
          single.millis,
          {
            kind: "report"
          },
          { detail: `${perMiB.toFixed(1)} MiB per sandbox; baseline: the time of 1 alone` }
        )
      )
    }
    rows.push(
      row("density.leaked", "processes and directories left after the batches", "leftovers", left.length, 0, {
        kind: "valueAtMost",
        value: 0
      }, {
        detail: left.length === 0 ? "checked: new descendant processes and the sandboxes' directories" : left.join(", ")
      })
    )
    return rows
  }
}

/** Builds the packages when their published output is missing (`npm run bench` builds first). */
const ensureBuilt = (): void => {
  const outputs = ["packages/core/dist/esm/index.js", "packages/platform-node/dist/cjs/index.js", cliBin]
  if (outputs.every((file) => Fs.existsSync(Path.join(H.root, file)))) return
  ChildProcess.execFileSync("npm", ["run", "build"], { cwd: H.root, env: userEnv, stdio: "ignore" })
}

const cliBin = "packages/platform-node/dist/bin/effect-koyeb.cjs"

// The built output as a user runs it: without the source condition the tests put in NODE_OPTIONS.
const userEnv: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: "" }

/** Wall time of a fresh `node …args` process, to its exit. */
const processMillis = (args: ReadonlyArray<string>) => async () => {
  const t0 = H.now()
  await new Promise<void>((resolve, reject) => {
    const child = ChildProcess.spawn(process.execPath, args, { cwd: H.root, env: userEnv, stdio: "ignore" })
    child.once("error", reject)
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`node ${args.join(" ")} exited ${code}`))))
  })
  return H.now() - t0
}

const cliStartup: Figure = {
  key: "cli",
  title: "effect-koyeb --version (built bin)",
  run: async () => {
    ensureBuilt()
    const rounds = size(15, 3)
    const cli = processMillis([Path.join(H.root, cliBin), "--version"])
    const bare = processMillis(["-e", "0"])
    // warm-up: the bin records its code cache on its first run
    await cli()
    await bare()
    const { a, b } = await H.interleave(rounds, cli, bare)
    return [
      row("cli.startup", "effect-koyeb --version (fresh process)", "ms", H.median(a), H.median(b), {
        kind: "ratioAtMost",
        value: 3
      }, { detail: `median of ${rounds}; baseline: node -e 0` })
    ]
  }
}

const importTime: Figure = {
  key: "import",
  title: "built package import + layerLocal build",
  run: async () => {
    ensureBuilt()
    const rounds = size(7, 1)
    const probe = (which: string) => async () => {
      const child = await H.spawnAnnounced([Path.join(H.root, "bench", "importProbe.mjs"), which], { env: userEnv })
      await child.close()
      return Number(child.announcement.millis)
    }
    await probe("sdk")()
    await probe("effect")()
    const { a, b } = await H.interleave(rounds, probe("sdk"), probe("effect"))
    return [
      row(
        "import.time",
        "import @effect-koyeb/platform-node + build layerLocal (plain node)",
        "ms",
        H.median(a),
        H.median(b),
        { kind: "report" },
        { detail: `median of ${rounds}; baseline: bare import("effect"); built ESM output, no loader` }
      )
    ]
  }
}

// ---------------------------------------------------------------------------------------------
// Figures of stdin and watch (issue 14)

const mbps = (bytes: number, millis: number) => bytes / 1e6 / (millis / 1000)

/**
 * Bytes through spawn's stdin into `wc -c`, against the same bytes piped into `wc -c` from a file
 * already in the sandbox (`cat file | wc -c`: `wc -c < file` would only stat the file).
 */
const stdinThroughput: Figure = {
  key: "stdin",
  title: "stdin throughput into wc -c",
  run: async (world) => {
    const mb = size(100, 10)
    const bytes = mb * 1024 * 1024
    const file = Path.join(workDir, "stdin-baseline.bin")
    Fs.writeFileSync(file, Buffer.alloc(bytes, 120))
    // one chunk reused: the stream itself holds no more than a chunk
    const chunk = new Uint8Array(1024 * 1024).fill(120)
    const pipe = (chunks: number) => () =>
      sdk(
        world,
        Effect.flatMap(Executor.Executor, (executor) =>
          executor.run("wc -c", { stdin: Stream.repeatValue(chunk).pipe(Stream.take(chunks)) }))
      )
    const piped = pipe(mb)
    const fromFile = () => sdk(world, run(`cat ${file} | wc -c`))
    // the HTTP transfer by hand: one streamed raw body to `/write_file_bytes`, then `wc -c` of the file
    const upload = Path.join(workDir, "stdin-upload.bin")
    const byHand = async () => {
      let sent = 0
      const body = new ReadableStream<Uint8Array>({
        pull: (controller) => sent++ < mb ? controller.enqueue(chunk) : controller.close()
      })
      const response = await fetch(`${world.executor.url}/write_file_bytes?path=${encodeURIComponent(upload)}`, {
        method: "POST",
        headers: { authorization: `Bearer ${world.executor.secret}` },
        body,
        duplex: "half"
      } as RequestInit)
      if (response.status !== 200) throw new Error(`/write_file_bytes: ${response.status} ${await response.text()}`)
      await response.text()
      await Raw.run(world.executor, `wc -c < ${upload}`)
    }
    await pipe(2)()
    await fromFile()
    const rounds = size(3, 1)
    const sdkTimes: Array<number> = []
    const fileTimes: Array<number> = []
    const handTimes: Array<number> = []
    let peak = 0
    for (let i = 0; i < rounds; i++) {
      const measured = await H.withPeakRss(piped)
      if (measured.value.stdout.trim() !== String(bytes)) throw new Error(`wc -c read ${measured.value.stdout}`)
      sdkTimes.push(measured.millis)
      peak = Math.max(peak, measured.rssGrowth)
      fileTimes.push((await H.timed(fromFile)).millis)
      handTimes.push((await H.timed(byHand)).millis)
    }
    Fs.rmSync(file, { force: true })
    Fs.rmSync(upload, { force: true })
    return [
      row(
        "stdin.rate",
        `${mb} MB piped into wc -c through stdin`,
        "MB/s",
        mbps(bytes, H.median(sdkTimes)),
        mbps(bytes, H.median(fileTimes)),
        {
          kind: "ratioAtLeast",
          value: 0.5
        },
        { detail: `baseline: run("cat file | wc -c") of a ${mb} MB file already in the sandbox; median of ${rounds}` }
      ),
      row(
        "stdin.http",
        `${mb} MB piped into wc -c through stdin, against the bytes uploaded by hand`,
        "MB/s",
        mbps(bytes, H.median(sdkTimes)),
        mbps(bytes, H.median(handTimes)),
        { kind: "report" },
        { detail: "baseline: one streamed fetch to /write_file_bytes, then wc -c of the file" }
      ),
      row("stdin.rss", `${mb} MB piped into wc -c, peak RSS growth`, "MiB", H.mib(peak), 0, {
        kind: "valueAtMost",
        value: 64
      }, { detail: "flat: the SDK holds a few chunks of 256 KiB, whatever the volume" })
    ]
  }
}

/** A hand-written `/watch` client (fetch + SSE split): calls `onChange` with each `change` event's path. */
const rawWatch = async (endpoint: Raw.Endpoint, path: string, onChange: (path: string) => void) => {
  const controller = new AbortController()
  const response = await fetch(`${endpoint.url}/watch?path=${encodeURIComponent(path)}&recursive=false`, {
    headers: { authorization: `Bearer ${endpoint.secret}` },
    signal: controller.signal
  })
  if (response.status !== 200 || response.body === null) throw new Error(`/watch: status ${response.status}`)
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ""
  let ready: () => void = () => {}
  const isReady = new Promise<void>((resolve) => (ready = resolve))
  const pump = async () => {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      buffer += value
      let end: number
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const frame = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        if (frame.startsWith("event: ready")) ready()
        if (frame.startsWith("event: change")) {
          onChange((JSON.parse(frame.slice(frame.indexOf("data: ") + 6)) as { path: string }).path)
        }
      }
    }
  }
  pump().catch(() => {})
  await isReady
  return () => controller.abort()
}

/** Milliseconds from a file write on the host (the sandbox's disk) to its event, `samples` times. */
const writeToEvent = async (dir: string, prefix: string, samples: number, next: (path: string) => Promise<void>) => {
  const times: Array<number> = []
  for (let i = 0; i < samples; i++) {
    const path = Path.join(dir, `${prefix}-${i}`)
    const t0 = H.now()
    const seen = next(path)
    Fs.writeFileSync(path, "x")
    await seen
    times.push(H.now() - t0)
  }
  return times
}

/** Waits for paths, in order: `next(path)` resolves once `path` was reported. */
const pathWaiter = () => {
  const seen = new Set<string>()
  let waiting: { readonly path: string; readonly resolve: () => void } | undefined
  return {
    report: (path: string) => {
      seen.add(path)
      if (waiting !== undefined && seen.has(waiting.path)) waiting.resolve()
    },
    next: (path: string) =>
      new Promise<void>((resolve) => {
        waiting = { path, resolve }
        if (seen.has(path)) resolve()
      })
  }
}

/** Watch-event latency: the SDK's `Filesystem.watch` against a raw SSE client of the same `/watch`; polling reported. */
const watchLatency: Figure = {
  key: "watch",
  title: "watch-event latency",
  run: async (world) => {
    const samples = size(100, 20)
    const dir = Fs.mkdtempSync(Path.join(workDir, "watch-"))
    const sdkWatch = (stock: boolean, interval: Duration.DurationInput, prefix: string, count: number) => {
      const waiter = pathWaiter()
      return sdk(
        world,
        Effect.scoped(Effect.gen(function*() {
          const fs = stock ? yield* stockFilesystem : yield* Filesystem.Filesystem
          const events = yield* fs.watchScoped(dir, { pollInterval: interval })
          yield* Effect.forkScoped(Stream.runForEach(events, (event) => Effect.sync(() => waiter.report(event.path))))
          return yield* Effect.promise(() => writeToEvent(dir, prefix, count, waiter.next))
        }))
      )
    }
    const rawOnce = async (prefix: string, count: number) => {
      const waiter = pathWaiter()
      const close = await rawWatch(world.executor, dir, waiter.report)
      try {
        return await writeToEvent(dir, prefix, count, waiter.next)
      } finally {
        close()
      }
    }
    const sdkTimes: Array<number> = []
    const rawTimes: Array<number> = []
    for (let round = 0; round < 2; round++) {
      sdkTimes.push(...await sdkWatch(false, "500 millis", `sdk${round}`, samples / 2))
      rawTimes.push(...await rawOnce(`raw${round}`, samples / 2))
    }
    const polled = await sdkWatch(true, "100 millis", "poll", size(20, 5))
    Fs.rmSync(dir, { recursive: true, force: true })
    return [
      row(
        "watch.latency",
        "write to watch event (watch extension), median",
        "ms",
        H.median(sdkTimes),
        H.median(rawTimes),
        {
          kind: "report"
        },
        { detail: `baseline: a raw fetch + SSE client of the same /watch; ${samples} writes each` }
      ),
      row(
        "watch.poll",
        "write to watch event (stock polling, 100 ms interval), median",
        "ms",
        H.median(polled),
        H.median(rawTimes),
        {
          kind: "report"
        },
        { detail: "baseline: the raw /watch client above; polling costs one find per interval" }
      )
    ]
  }
}

// ---------------------------------------------------------------------------------------------
// Figure of terminals (issue 14: pty)

/** A hand-written `/spawn` client of `cat` (no terminal): `key` writes a byte through `/stdin` and waits for its echo. */
const rawEcho = async (endpoint: Raw.Endpoint) => {
  const auth = { authorization: `Bearer ${endpoint.secret}` }
  const abort = new AbortController()
  const response = await fetch(`${endpoint.url}/spawn`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ cmd: "cat" }),
    signal: abort.signal
  })
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ""
  let echoed = 0
  let wake: (() => void) | undefined
  let started: (id: string) => void = () => {}
  const id = new Promise<string>((resolve) => (started = resolve))
  void (async () => {
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }))
      if (done) return
      buffer += value
      let end: number
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const [head, data] = buffer.slice(0, end).split("\n")
        buffer = buffer.slice(end + 2)
        const payload = JSON.parse(data!.slice(6)) as { id?: string; data?: string }
        if (head === "event: started") started(payload.id!)
        else if (head === "event: output") echoed += Buffer.from(payload.data!, "base64").length
      }
      wake?.()
    }
  })()
  const session = await id
  let sent = 0
  return {
    key: async () => {
      sent++
      const echo = new Promise<void>((resolve) => (wake = () => echoed >= sent && resolve()))
      await fetch(`${endpoint.url}/stdin?id=${session}`, { method: "POST", headers: auth, body: "x" }).then((r) =>
        r.text()
      )
      if (echoed < sent) await echo
    },
    close: () => abort.abort()
  }
}

/** The SDK's `spawn` of `cat` on a pty in raw mode: `key` writes a byte and waits for `cat`'s echo of it. */
const ptyEcho = async (world: World) => {
  const scope = await sdk(world, Scope.make())
  const session = await sdk(
    world,
    Effect.gen(function*() {
      const executor = yield* Executor.Executor
      const running = yield* executor.spawn("stty raw -echo && echo ready && cat", { pty: { cols: 80, rows: 24 } })
      const pull = yield* Stream.toPull(running.output)
      let echoed = 0
      const until = (bytes: number) =>
        Effect.gen(function*() {
          while (echoed < bytes) {
            for (const chunk of yield* pull) echoed += chunk.data.length
          }
        })
      return { running, until }
    }).pipe(Scope.extend(scope))
  )
  // raw mode has no output processing: "ready\n", 6 bytes
  let sent = 6
  await sdk(world, session.until(sent))
  return {
    key: () => sdk(world, Effect.zipRight(session.running.stdin.write("x"), session.until(++sent))),
    close: () => sdk(world, Scope.close(scope, Exit.void))
  }
}

/** Keystroke-to-echo round trip through a pty, against the same byte echoed by `cat` through a raw `/spawn` client. */
const ptyRoundTrip: Figure = {
  key: "pty",
  title: "keystroke-to-echo round trip through a pty",
  run: async (world) => {
    const keys = size(200, 40)
    const terminal = await ptyEcho(world)
    const raw = await rawEcho(world.executor)
    try {
      for (let i = 0; i < 20; i++) {
        await terminal.key()
        await raw.key()
      }
      const rounds = await H.interleave(
        keys,
        async () => (await H.timed(terminal.key)).millis,
        async () => (await H.timed(raw.key)).millis
      )
      const detail = `${keys} keystrokes each, interleaved; SDK: spawn("cat", { pty }) in raw mode, write 1 byte, ` +
        "await its echo; baseline: fetch /spawn of cat (no pty), POST /stdin of 1 byte, await its output event"
      return [
        row("pty.median", "pty keystroke → echo, median", "ms", H.median(rounds.a), H.median(rounds.b), {
          kind: "ratioAtMost",
          value: 1.5
        }, { detail }),
        row("pty.p95", "pty keystroke → echo, p95", "ms", H.quantile(rounds.a, 0.95), H.quantile(rounds.b, 0.95), {
          kind: "report"
        }, { detail })
      ]
    } finally {
      raw.close()
      await terminal.close()
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Figures of the code interpreter (issue 15)

/** Round trips of `cell` in a warm context against `run(command)` (a new interpreter each time). */
const warmCell = async (
  world: World,
  context: CodeInterpreter.CodeContext,
  cell: string,
  command: string,
  iterations: number
) => {
  const cellOnce = () =>
    sdk(world, context.run(cell)).then((execution) => {
      if (execution.text !== "2") throw new Error(`${cell} gave ${execution.text ?? execution.error?.value}`)
    })
  const commandOnce = () => sdk(world, run(command))
  for (let i = 0; i < 3; i++) {
    await cellOnce()
    await commandOnce()
  }
  const { a, b } = await H.interleave(iterations, () => H.timed(cellOnce), () => H.timed(commandOnce))
  return { cell: H.median(a.map((r) => r.millis)), command: H.median(b.map((r) => r.millis)) }
}

const codeInterpreter: Figure = {
  key: "interpreter",
  title: "code interpreter: warm cells and output throughput",
  run: async (world) => {
    const scope = await sdk(world, Scope.make())
    try {
      const interpreter = await sdk(world, Scope.extend(CodeInterpreter.make, scope))
      const python = await sdk(world, Scope.extend(interpreter.createContext({ language: "python" }), scope))
      const javascript = await sdk(world, Scope.extend(interpreter.createContext({ language: "javascript" }), scope))
      const py = await warmCell(world, python, "1+1", `python3 -c 'print(1+1)'`, size(60, 10))
      const js = await warmCell(world, javascript, "1+1", `node -e 'console.log(1+1)'`, size(30, 6))
      const lines = size(1_000_000, 100_000)
      const cellLines = () =>
        sdk(
          world,
          Stream.runCount(
            Stream.filter(python.runStream(`for i in range(${lines}): print(i)`), (e) => e._tag === "OutputChunk")
          )
        )
      const streamLines = () =>
        sdk(
          world,
          Effect.flatMap(Executor.Executor, (executor) =>
            Stream.runCount(executor.stream(`python3 -c 'for i in range(${lines}): print(i)'`)))
        )
      const rounds = size(3, 1)
      const { a, b } = await H.interleave(rounds, () => H.timed(cellLines), () => H.timed(streamLines))
      for (const r of [...a, ...b]) if (r.value !== lines) throw new Error(`expected ${lines} lines, got ${r.value}`)
      const rate = (rs: ReadonlyArray<{ readonly millis: number }>) =>
        H.median(rs.map((r) => (lines / r.millis) * 1000))
      return [
        row("interpreter.python", "python cell 1+1 in a warm context", "ms", py.cell, py.command, {
          kind: "ratioAtMost",
          value: 0.25
        }, { detail: `median round trip; baseline: run("python3 -c 'print(1+1)'"), a new interpreter each time` }),
        row("interpreter.javascript", "javascript cell 1+1 in a warm context", "ms", js.cell, js.command, {
          kind: "ratioAtMost",
          value: 0.25
        }, { detail: `median round trip; baseline: run("node -e 'console.log(1+1)'")` }),
        row("interpreter.output", `python cell printing ${lines} lines`, "lines/s", rate(a), rate(b), {
          kind: "ratioAtLeast",
          value: 0.8
        }, {
          detail: `runStream of the cell; baseline: stream() of python3 -c with the same loop; median of ${rounds}`
        })
      ]
    } finally {
      await sdk(world, Scope.close(scope, Exit.void))
    }
  }
}

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
  if (argv.includes("--list")) {
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
