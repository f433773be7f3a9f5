/**
 * Global setup of the platform-node tests: proves that nothing the suite started outlives it.
 *
 * Setup gives this run a marker (`EFFECT_KOYEB_TEST_RUN=<uuid>`) and its own temporary directory
 * (`TMPDIR`), both inherited by the test workers. Local sandbox executors get a fresh environment,
 * but their `TMPDIR`, their directory and (with bubblewrap) their command line all lie under the
 * run's temporary directory, so every process the suite started carries one of the two marks,
 * while processes of a concurrent run carry other ones. Teardown fails, listing them, when such a
 * process is still alive or a sandbox directory (one holding `owner.pid`) is left behind.
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const MARKER = "EFFECT_KOYEB_TEST_RUN"
// Processes being killed by a finalizer that just ran may need a moment to be reaped.
const SETTLE_MILLIS = 5_000

interface Leak {
  readonly pid: number
  readonly command: string
}

const readProc = (pid: string, file: string): string | undefined => {
  try {
    return Fs.readFileSync(`/proc/${pid}/${file}`, "latin1")
  } catch {
    return undefined
  }
}

interface ProcInfo {
  readonly pid: number
  readonly ppid: number
  readonly command: string
  readonly marked: boolean
}

/** Live (not zombie) processes other than this one, and whether their environment or command line carries a mark. */
const processes = (marks: ReadonlyArray<string>): Array<ProcInfo> => {
  let entries: Array<string>
  try {
    entries = Fs.readdirSync("/proc")
  } catch {
    return []
  }
  const out: Array<ProcInfo> = []
  for (const entry of entries) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid === process.pid) continue
    const stat = readProc(entry, "stat")
    if (stat === undefined) continue
    // fields after the command name (which may hold spaces and parentheses): state, ppid, ...
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    if (fields[0] === "Z") continue
    const cmdline = readProc(entry, "cmdline") ?? ""
    const environ = readProc(entry, "environ") ?? ""
    out.push({
      pid,
      ppid: Number(fields[1]),
      command: cmdline.replace(/\0/g, " ").trim() || `(${stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))})`,
      marked: marks.some((mark) => cmdline.includes(mark) || environ.includes(mark))
    })
  }
  return out
}

/**
 * Marked processes, except vitest's own pool workers (children of this process, still alive
 * during teardown) and the esbuild service a worker keeps for its lifetime (it bundles the executor).
 */
const markedProcesses = (marks: ReadonlyArray<string>): Array<Leak> => {
  const all = processes(marks)
  const workers = new Set(
    all.filter((p) => p.ppid === process.pid && p.command.startsWith("node (vitest")).map((p) => p.pid)
  )
  return all
    .filter((p) => p.marked && !workers.has(p.pid) && !(workers.has(p.ppid) && /esbuild\S* --service/.test(p.command)))
    .map(({ command, pid }) => ({ command, pid }))
}

/** Directories under `root` (a few levels deep) that still hold a local sandbox's `owner.pid`. */
const sandboxDirs = (root: string, depth = 4): Array<string> => {
  let entries: Array<Fs.Dirent>
  try {
    entries = Fs.readdirSync(root, { withFileTypes: true })
  } catch {
    return []
  }
  if (entries.some((entry) => entry.isFile() && entry.name === "owner.pid")) return [root]
  if (depth === 0) return []
  return entries.flatMap((entry) => (entry.isDirectory() ? sandboxDirs(Path.join(root, entry.name), depth - 1) : []))
}

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** Vitest global setup: returns the teardown that checks for leaks. */
export default function setup(): () => Promise<void> {
  const run = Crypto.randomUUID()
  const previousTmpdir = process.env.TMPDIR
  const root = Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-test-run-")))
  process.env[MARKER] = run
  process.env.TMPDIR = root

  return async () => {
    const marks = [`${MARKER}=${run}`, root]
    let leaks = markedProcesses(marks)
    for (let waited = 0; leaks.length > 0 && waited < SETTLE_MILLIS; waited += 250) {
      await sleep(250)
      leaks = markedProcesses(marks)
    }
    const dirs = sandboxDirs(root)
    delete process.env[MARKER]
    if (previousTmpdir === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previousTmpdir
    // Leave nothing behind either way; the failure below reports what had to be cleaned up.
    for (const leak of leaks) {
      try {
        process.kill(leak.pid, "SIGKILL")
      } catch {
        // gone meanwhile
      }
    }
    Fs.rmSync(root, { recursive: true, force: true })
    if (leaks.length > 0 || dirs.length > 0) {
      throw new Error(
        [
          "The test suite left things behind (now killed / removed):",
          ...leaks.map((leak) => `  process ${leak.pid}: ${leak.command}`),
          ...dirs.map((dir) => `  sandbox directory ${dir}`)
        ].join("\n")
      )
    }
  }
}
