/**
 * Spawning of executor commands (`sh -c`, stdin `/dev/null` or a pipe, own process group) and the registry
 * of the process groups the server started, so that kills and shutdown reach every descendant, also
 * one that left the group (`setsid`).
 *
 * @internal
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as GoErrors from "./goErrors.js"
import { lookPath } from "./lookPath.js"
import { canEncode, type CommandChild, type Spawner, type SpawnRequest } from "./spawner.js"

/** A command as the executor receives it, after validation. */
export interface CommandSpec {
  readonly cmd: string
  readonly cwd: string
  readonly env: Readonly<Record<string, string>>
  /** Give the command a stdin pipe (`child.stdin`) instead of `/dev/null`. */
  readonly stdin?: boolean | undefined
}

/** How a command ended: its exit code, or -1 when the shell died from a signal. */
export interface CommandExit {
  readonly code: number
  readonly signaled: boolean
}

/** The exit of a child as Node reports it (`exit` / `close` events), as the stock reports it: -1 for a signal. */
export const commandExit = (code: number | null, signal: NodeJS.Signals | null): CommandExit =>
  signal !== null || code === null ? { code: -1, signaled: true } : { code, signaled: false }

/** A started command with piped stdout and stderr (and stdin when its spec asked for it). */
export interface Spawned {
  readonly child: CommandChild
  readonly pid: number
}

/** A command could not be started; `text` is shaped like Go's `fork/exec /usr/bin/sh: <errno text>`. */
export class SpawnError extends Data.TaggedError("SpawnError")<{ readonly text: string; readonly cause: unknown }> {}

const spawnError = (cause: unknown): SpawnError =>
  new SpawnError({
    text: `fork/exec /usr/bin/sh: ${
      GoErrors.errnoText(cause) ?? (cause instanceof Error ? cause.message : String(cause))
    }`,
    cause
  })

/** Whether process `pid` (or, negative, process group `-pid`) exists; EPERM: it exists but belongs to someone else. */
export const exists = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

// a member that changed its credentials (EPERM) still counts
const isGroupAlive = (pgid: number): boolean => exists(-pgid)

/** A process as `/proc/<pid>/stat` shows it. */
export interface ProcStat {
  readonly pid: number
  readonly state: string
  readonly ppid: number
  readonly pgrp: number
  /** Its controlling terminal (device number; 0: none). */
  readonly ttyNr: number
  /** The foreground process group of its terminal (-1: none). */
  readonly tpgid: number
}

/** Every process `/proc` shows; `undefined` where there is no `/proc`. */
export const processList = (): Array<ProcStat> | undefined => {
  let entries: Array<string>
  try {
    entries = Fs.readdirSync("/proc")
  } catch {
    return undefined
  }
  const out: Array<ProcStat> = []
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry)) continue
    let stat: string
    try {
      stat = Fs.readFileSync(`/proc/${entry}/stat`, "latin1")
    } catch {
      continue // exited meanwhile, or not ours to read
    }
    // The command name may contain spaces and parentheses: fields follow the last ")" (state, ppid, pgrp, session, tty_nr, tpgid, …).
    const [state, ppid, pgrp, , ttyNr, tpgid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ", 6)
    out.push({
      pid: Number(entry),
      state: state!,
      ppid: Number(ppid),
      pgrp: Number(pgrp),
      ttyNr: Number(ttyNr),
      tpgid: Number(tpgid)
    })
  }
  return out
}

const isLive = (p: ProcStat): boolean => p.state !== "Z" && p.state !== "X"

/**
 * The groups among `pgids` that still have a live member. `kill(-pgid, 0)` also succeeds while only
 * zombies are left: a member orphaned by the group's leader is reparented to init and stays a
 * zombie until init reaps it, which some inits do late and a plain PID 1 (a container's own
 * program) never does. On Linux, /proc tells them apart; elsewhere a zombie counts as alive.
 */
const liveGroups = (pgids: ReadonlyArray<number>): Array<number> => {
  const existing = pgids.filter(isGroupAlive)
  if (existing.length === 0) return existing
  const all = processList()
  if (all === undefined) return existing
  const wanted = new Set(existing)
  const live = new Set<number>()
  for (const p of all) if (isLive(p) && wanted.has(p.pgrp)) live.add(p.pgrp)
  // A group only this process cannot signal (EPERM) may have members /proc hides: keep it.
  return existing.filter((pgid) => live.has(pgid) || !isSignalable(pgid))
}

/** The pids among `pids` that are alive and not zombies. */
const livePids = (pids: ReadonlySet<number>): Array<number> => {
  if (pids.size === 0) return []
  const all = processList()
  if (all === undefined) return [...pids].filter(exists)
  return all.filter((p) => pids.has(p.pid) && isLive(p)).map((p) => p.pid)
}

const isSignalable = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

/** Sends `sig` to `pid` (negative: a process group), ignoring a process already gone. */
export const signal = (pid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(pid, sig)
  } catch {
    // gone
  }
}

const signalGroup = (pgid: number, sig: NodeJS.Signals): void => signal(-pgid, sig)

/**
 * Freezes the descendants of the members of `pgids` that left those groups (`setsid`, a shell's
 * job control, a terminal wrapper) and adds them to `escaped`: SIGSTOP to each one found, scan
 * again until a scan finds no new one. The groups themselves must be stopped already, so that
 * nothing forks or is reparented to init while the tree is walked.
 */
const freezeEscaped = (pgids: ReadonlySet<number>, escaped: Set<number>): void => {
  for (;;) {
    const all = processList()
    if (all === undefined) return
    const tree = new Set<number>()
    for (const p of all) if (pgids.has(p.pgrp) || escaped.has(p.pid)) tree.add(p.pid)
    let found = false
    for (const p of all) {
      if (!tree.has(p.pid) && tree.has(p.ppid) && isLive(p) && p.pid !== process.pid) {
        escaped.add(p.pid)
        signal(p.pid, "SIGSTOP")
        found = true
      }
    }
    if (!found) return
  }
}

/** The registry of the process groups started by one server. */
export interface ProcessGroups {
  /** Starts `sh -c cmd` as the leader of a new process group. */
  readonly spawn: (spec: CommandSpec) => Effect.Effect<Spawned, SpawnError>
  /**
   * SIGTERM to the group and to the descendants that left it (found through `/proc`, frozen while
   * found), then SIGKILL once the grace period has passed and one of them is still alive.
   */
  readonly kill: (pgid: number) => Effect.Effect<void>
  /** Kills every group still alive (shutdown). */
  readonly killAll: Effect.Effect<void>
}

const pollInterval = Duration.millis(25)

/**
 * Creates a registry; groups whose members are all gone are forgotten on the next spawn. Commands
 * start through `spawner` when there is one (once it is ready), else with Node's spawn; with
 * `onlySpawner` (a sandbox's spawner: Node's spawn would start the command outside the sandbox)
 * never with Node's spawn: a command the spawner cannot take fails.
 */
export const make = (
  gracePeriod: Duration.Duration,
  spawner?: Effect.Effect<Spawner | undefined>,
  onlySpawner = false
): ProcessGroups => {
  const groups = new Set<number>()
  let shell: string | undefined

  const nodeSpawn = (shell: string, spec: CommandSpec): Effect.Effect<Spawned, SpawnError> => {
    let child: ChildProcess.ChildProcessWithoutNullStreams
    try {
      child = ChildProcess.spawn(shell, ["-c", spec.cmd], {
        argv0: "sh", // `$0`, as Go's exec.Command("sh") gives
        cwd: spec.cwd,
        env: spec.env,
        stdio: [spec.stdin === true ? "pipe" : "ignore", "pipe", "pipe"],
        detached: true
      }) as unknown as ChildProcess.ChildProcessWithoutNullStreams
    } catch (cause) {
      return Effect.fail(spawnError(cause))
    }
    if (child.pid === undefined) {
      // the error event follows on the next tick; wait for its errno
      return Effect.async<never, SpawnError>((resume) => {
        child.once("error", (cause) => resume(Effect.fail(spawnError(cause))))
      })
    }
    // later errors (e.g. a failed kill) must not crash the server
    child.on("error", () => {})
    groups.add(child.pid)
    return Effect.succeed({ child: child as CommandChild, pid: child.pid })
  }

  // A spawn interrupted while the spawner answers leaves no command behind; one the spawner took
  // with it when it went away starts with Node's spawn.
  const viaSpawner = (spawner: Spawner, request: SpawnRequest, spec: CommandSpec) =>
    Effect.async<Spawned, SpawnError>((resume) => {
      let interrupted = false
      spawner.spawn(request)
        .then(
          (child) => {
            groups.add(child.pid)
            if (interrupted) signalGroup(child.pid, "SIGKILL")
            else resume(Effect.succeed({ child, pid: child.pid }))
          },
          (cause) =>
            resume(spawner.alive() || onlySpawner ? Effect.fail(spawnError(cause)) : nodeSpawn(request.path, spec))
        )
      return Effect.sync(() => {
        interrupted = true
      })
    })

  const prune = () => {
    for (const pgid of groups) if (!isGroupAlive(pgid)) groups.delete(pgid)
  }

  const freeze = (pgids: ReadonlyArray<number>, escaped: Set<number>) => {
    for (const pgid of pgids) signalGroup(pgid, "SIGSTOP")
    freezeEscaped(new Set(pgids), escaped)
  }

  // The groups and their escaped descendants are frozen, sent SIGTERM and resumed (so that they
  // handle it), then looked at every `pollInterval` until they are gone or the grace period is
  // over; what is left is frozen again (with what it forked meanwhile) and killed.
  const killGroups = (pgids: ReadonlyArray<number>) =>
    Effect.gen(function*() {
      const escaped = new Set<number>()
      const signalAll = (sig: NodeJS.Signals) => {
        for (const pgid of pgids) signalGroup(pgid, sig)
        for (const pid of escaped) signal(pid, sig)
      }
      freeze(pgids, escaped)
      signalAll("SIGTERM")
      signalAll("SIGCONT")
      const left = () => liveGroups(pgids).length + livePids(escaped).length
      yield* Effect.repeat(Effect.sync(left), {
        schedule: Schedule.spaced(pollInterval).pipe(Schedule.upTo(gracePeriod)),
        while: (alive) => alive > 0
      })
      if (left() > 0) {
        freeze(liveGroups(pgids), escaped)
        signalAll("SIGKILL")
      }
      const alive = new Set(liveGroups(pgids))
      for (const pgid of pgids) if (!alive.has(pgid)) groups.delete(pgid)
    }).pipe(Effect.uninterruptible)

  return {
    spawn: (spec) =>
      Effect.suspend(() => {
        prune()
        // looked up once, as Go's exec.Command does: spawning by name would make every start try
        // each `PATH` entry with `execve`
        shell ??= lookPath("sh") ?? "sh"
        // Node's spawn takes over from a spawner that is gone, and reports the strings it refuses
        // (a NUL byte) with its own error.
        const request: SpawnRequest = {
          path: shell,
          args: ["sh", "-c", spec.cmd],
          cwd: spec.cwd,
          env: spec.env,
          stdin: spec.stdin === true
        }
        // a NUL byte: Go's exec refuses it with EINVAL
        if (onlySpawner && !canEncode(request)) return Effect.fail(spawnError({ code: "EINVAL" }))
        if (spawner === undefined || !canEncode(request)) return nodeSpawn(request.path, spec)
        return Effect.flatMap(spawner, (ready) => {
          if (ready !== undefined && (ready.alive() || onlySpawner)) return viaSpawner(ready, request, spec)
          return nodeSpawn(request.path, spec)
        })
      }),
    kill: (pgid) => killGroups([pgid]),
    killAll: Effect.suspend(() => killGroups([...groups]))
  }
}
