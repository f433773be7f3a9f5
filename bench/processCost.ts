/**
 * What a command and an idle sandbox cost in processes: the spawn floor (a bare node spawning
 * `true`, driven one spawn at a time so it interleaves with the executor's `/run`), and the CPU
 * time of processes from `/proc` (Linux).
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Readline from "node:readline"

// Each input line spawns `true` once (stdout and stderr piped, as an executor captures them) and
// answers with the milliseconds from spawn to `close`.
const floorScript = `
const { spawn } = require("node:child_process")
const lines = require("node:readline").createInterface({ input: process.stdin })
lines.on("line", () => {
  const t0 = performance.now()
  const child = spawn("true", [], { stdio: ["ignore", "pipe", "pipe"] })
  child.once("close", () => process.stdout.write((performance.now() - t0) + "\\n"))
})
`

/** A bare node child that spawns `true` on demand. */
export interface SpawnFloor {
  /** One `spawn("true")` until `close`, timed inside the child, in milliseconds. */
  readonly spawnOnce: () => Promise<number>
  readonly close: () => void
}

/** Starts the bare node child (no loader, no flags, empty `NODE_OPTIONS`). */
export const spawnFloor = (): SpawnFloor => {
  const child = ChildProcess.spawn(process.execPath, ["-e", floorScript], {
    env: { ...process.env, NODE_OPTIONS: "" },
    stdio: ["pipe", "pipe", "inherit"]
  })
  const waiting: Array<(millis: number) => void> = []
  Readline.createInterface({ input: child.stdout }).on("line", (line) => waiting.shift()?.(Number(line)))
  return {
    spawnOnce: () =>
      new Promise((resolve) => {
        waiting.push(resolve)
        child.stdin.write("\n")
      }),
    close: () => child.kill()
  }
}

/**
 * Nanoseconds on a CPU of process `pid` so far, all its threads summed (`/proc/<pid>/task/<tid>/schedstat`,
 * nanosecond resolution, unlike the clock ticks of `stat`); 0 once it is gone.
 */
export const cpuNanos = (pid: number): number => {
  let total = 0
  try {
    for (const tid of Fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(Fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "latin1").split(" ", 1)[0])
      } catch {
        // thread exited meanwhile
      }
    }
  } catch {
    return 0
  }
  return total
}

/** The CPU time (ms) of `pids` over `millis` of wall time, counted from now. */
export const cpuOver = async (pids: ReadonlyArray<number>, millis: number): Promise<number> => {
  const before = pids.map(cpuNanos)
  await new Promise((resolve) => setTimeout(resolve, millis))
  return pids.reduce((sum, pid, i) => sum + Math.max(0, cpuNanos(pid) - before[i]!), 0) / 1e6
}
