/**
 * Measurement helpers of the benchmark suite: clocks, order statistics, a peak-RSS sampler,
 * forced garbage collection, settled memory snapshots, and child processes that announce their
 * address on stdout.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Module from "node:module"
import * as Path from "node:path"
import * as Url from "node:url"
import * as V8 from "node:v8"
import * as Vm from "node:vm"

/** The repository root (the bench lives in `<root>/bench`). */
export const root = Path.resolve(Path.dirname(Url.fileURLToPath(import.meta.url)), "..")

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export const now = (): number => performance.now()

/** The median of `values` (not mutated). */
export const median = (values: ReadonlyArray<number>): number => quantile(values, 0.5)

/** The `q` quantile (0..1) of `values`, nearest-rank on the sorted copy. */
export const quantile = (values: ReadonlyArray<number>, q: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

const MiB = 1024 * 1024

/** Bytes as MiB. */
export const mib = (bytes: number): number => bytes / MiB

// `global.gc` when node runs with --expose-gc; otherwise the flag is set now and gc is taken from
// a fresh context (a documented V8 idiom), so `npm run bench` needs no extra node flags.
const gcFunction: () => void = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed !== undefined) return exposed
  V8.setFlagsFromString("--expose-gc")
  return Vm.runInNewContext("gc") as () => void
})()

/** Runs a full garbage collection twice (weak callbacks and finalizers run in between). */
export const gc = async (): Promise<void> => {
  gcFunction()
  await new Promise((resolve) => setImmediate(resolve))
  gcFunction()
}

/** The resident set size of process `pid` (`VmRSS` of `/proc/<pid>/status`, Linux), in bytes; NaN elsewhere. */
export const processRss = (pid: number): number => {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(Fs.readFileSync(`/proc/${pid}/status`, "utf8"))
    return match === null ? Number.NaN : Number(match[1]) * 1024
  } catch {
    return Number.NaN
  }
}

/** This process's heap and RSS and another process's RSS, in bytes. */
export interface MemorySnapshot {
  readonly heapUsed: number
  readonly rss: number
  readonly childRss: number
}

/**
 * Node arguments that make a child collect its garbage on SIGUSR2 (see `settledMemory`): without
 * it an idle child keeps collectable garbage for as long as it has no memory pressure.
 */
export const gcOnSignalArgs: ReadonlyArray<string> = [
  "--expose-gc",
  "--import",
  `data:text/javascript,process.on("SIGUSR2",()=>globalThis.gc())`
]

/**
 * Memory once garbage has had its chance: a forced GC here and in `childPid` (started with
 * `gcOnSignalArgs`), `settleMillis` of idle time, another GC here, then this process's heap and
 * RSS and the RSS of `childPid`.
 */
export const settledMemory = async (childPid: number, settleMillis = 1000): Promise<MemorySnapshot> => {
  process.kill(childPid, "SIGUSR2")
  await gc()
  await new Promise((resolve) => setTimeout(resolve, settleMillis))
  await gc()
  const usage = process.memoryUsage()
  return { heapUsed: usage.heapUsed, rss: usage.rss, childRss: processRss(childPid) }
}

/** Samples this process's RSS every few milliseconds while `f` runs; returns its value, time and peak growth. */
export const withPeakRss = async <A>(
  f: () => Promise<A>
): Promise<{ readonly value: A; readonly millis: number; readonly rssGrowth: number }> => {
  await gc()
  const start = process.memoryUsage.rss()
  let peak = start
  const timer = setInterval(() => {
    const rss = process.memoryUsage.rss()
    if (rss > peak) peak = rss
  }, 5)
  const t0 = now()
  try {
    const value = await f()
    const millis = now() - t0
    peak = Math.max(peak, process.memoryUsage.rss())
    return { value, millis, rssGrowth: Math.max(0, peak - start) }
  } finally {
    clearInterval(timer)
  }
}

/** CPU time the whole machine spent busy (all cores, all processes), in ms, from `/proc/stat`; 0 elsewhere. */
const machineBusyMillis = (): number => {
  try {
    const [user, nice, system, , , irq, softirq] = Fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim()
      .split(/\s+/).slice(1).map(Number)
    return (user! + nice! + system! + irq! + softirq!) * (1000 / 100)
  } catch {
    return 0
  }
}

/** Times `f`, with how many cores the machine kept busy meanwhile (busy CPU time / wall time). */
export const timedWithCores = async <A>(
  f: () => Promise<A>
): Promise<{ readonly value: A; readonly millis: number; readonly cores: number }> => {
  const busy = machineBusyMillis()
  const { millis, value } = await timed(f)
  return { value, millis, cores: (machineBusyMillis() - busy) / millis }
}

/** Times `f`. */
export const timed = async <A>(f: () => Promise<A>): Promise<{ readonly value: A; readonly millis: number }> => {
  const t0 = now()
  const value = await f()
  return { value, millis: now() - t0 }
}

/**
 * Runs `a` and `b` alternately `rounds` times (A/B/A/B, starting with a different one each round
 * so that neither always runs on a warmer machine) and returns both lists of results.
 */
export const interleave = async <A, B>(
  rounds: number,
  a: () => Promise<A>,
  b: () => Promise<B>
): Promise<{ readonly a: Array<A>; readonly b: Array<B> }> => {
  const as: Array<A> = []
  const bs: Array<B> = []
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      as.push(await a())
      bs.push(await b())
    } else {
      bs.push(await b())
      as.push(await a())
    }
  }
  return { a: as, b: bs }
}

/** Fails with `label` when `promise` has not settled after `millis`. */
export const withDeadline = <A>(label: string, millis: number, promise: Promise<A>): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: no result within ${Math.round(millis / 1000)} s`)), millis)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/** A child process started by the bench, killed by `close`. */
export interface Child {
  readonly process: ChildProcess.ChildProcess
  /** The first JSON line the child printed. */
  readonly announcement: Record<string, unknown>
  readonly close: () => Promise<void>
}

/**
 * Starts `node <args>` and waits for its first stdout line, which must be JSON (the
 * `{"event":"listening",…}` line of the executor CLI and of the bench's own servers). The child's
 * stdin is a pipe it can watch to exit when the bench dies.
 */
export const spawnAnnounced = (
  args: ReadonlyArray<string>,
  options: { readonly env?: NodeJS.ProcessEnv; readonly cwd?: string; readonly timeoutMillis?: number } = {}
): Promise<Child> =>
  new Promise((resolve, reject) => {
    const child = ChildProcess.spawn(process.execPath, args, {
      cwd: options.cwd ?? root,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "inherit"]
    })
    let buffered = ""
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    const close = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM")
        const killer = setTimeout(() => child.kill("SIGKILL"), 3000)
        await exited
        clearTimeout(killer)
      }
    }
    const timer = setTimeout(() => {
      void close()
      reject(new Error(`child ${args.join(" ")} did not announce itself`))
    }, options.timeoutMillis ?? 60_000)
    const onData = (data: Buffer) => {
      buffered += data.toString("utf8")
      const nl = buffered.indexOf("\n")
      if (nl === -1) return
      child.stdout!.off("data", onData)
      child.stdout!.resume()
      clearTimeout(timer)
      try {
        resolve({ process: child, announcement: JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>, close })
      } catch (error) {
        void close()
        reject(error)
      }
    }
    child.stdout!.on("data", onData)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`child ${args.join(" ")} exited (${code ?? signal}) before announcing itself`))
    })
  })

// Resolved here: `--import tsx` would be resolved from the child's working directory.
const tsxLoader = Url.pathToFileURL(Module.createRequire(import.meta.url).resolve("tsx")).href

/** The node arguments that run a TypeScript file of this repository through tsx, on the workspace packages' sources. */
export const tsxArgs = (file: string, ...args: ReadonlyArray<string>): Array<string> => [
  "--conditions=@effect-koyeb/source",
  "--import",
  tsxLoader,
  Path.resolve(root, file),
  ...args
]
