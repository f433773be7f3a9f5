/**
 * Runs one executor process per local sandbox: root directory, spawn (optionally inside
 * bubblewrap), readiness, and a kill that takes the whole process tree down. Children never
 * outlive this process: they are tracked in a registry that is killed synchronously on exit and
 * on an unhandled SIGINT/SIGTERM; `--die-with-parent` (bubblewrap) or `EFFECT_KOYEB_PARENT_PID`
 * (no isolation) covers a crash of this process.
 *
 * @internal
 */
import { DeploymentFailed } from "@effect-koyeb/core/SandboxError"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { executorCommand } from "./executorCommand.js"

/** How a local sandbox is isolated from the host. */
export type Isolation = "none" | "bubblewrap"

/** The isolation a caller asks for: `"auto"` picks bubblewrap when it works on this machine. */
export type IsolationOption = Isolation | "auto"

/** A running executor of one local sandbox. */
export interface LocalExecutorProcess {
  readonly id: string
  /** Host directory holding the sandbox's `home` and `tmp`. */
  readonly dir: string
  /** Executor base URL on loopback. */
  readonly url: string
  readonly port: number
  /** The executor's TCP proxy port (what `/bind_port` forwards). */
  readonly proxyPort: number
  /** Pid of the spawned process (the executor, or the outer `bwrap`); leader of its process group. */
  readonly pid: number
  readonly secret: Redacted.Redacted<string>
  readonly isolation: Isolation
  /** Home directory of the sandbox as commands see it (their default cwd and `HOME`). */
  readonly home: string
  /** Kills the whole process tree and removes the directory. Idempotent. */
  readonly kill: Effect.Effect<void>
  /** Completes when the process has exited (killed or crashed). */
  readonly exited: Effect.Effect<void>
}

/** Options of `spawnExecutor`. */
export interface SpawnOptions {
  readonly id: string
  readonly secret: Redacted.Redacted<string>
  readonly env?: Readonly<Record<string, string>> | undefined
  readonly isolation?: IsolationOption | undefined
  /** Parent of the sandbox directories (default `<os tmpdir>/effect-koyeb`). */
  readonly baseDir?: string | undefined
  /** Bound on start-up (default 30 seconds). */
  readonly startTimeout?: Duration.DurationInput | undefined
}

/** Default parent of sandbox directories. */
export const defaultBaseDir = (): string => Path.join(Os.tmpdir(), "effect-koyeb")

/** Inside bubblewrap the sandbox sees its own home and tmp at these fixed paths. */
const SANDBOX_HOME = "/home/sandbox"
const GRACE_MILLIS = 2_000

// ---------------------------------------------------------------------------------------------
// Registry of live children, killed synchronously when this process goes away.

interface Child {
  readonly pid: number
  readonly dir: string
  readonly isolation: Isolation
}

const children = new Map<number, Child>()
let hooksInstalled = false

/** Pids of every descendant of `pid` (Linux /proc walk; empty elsewhere). */
const descendantsOf = (pid: number): Array<number> => {
  let entries: Array<string>
  try {
    entries = Fs.readdirSync("/proc")
  } catch {
    return []
  }
  const parentOf = new Map<number, Array<number>>()
  for (const entry of entries) {
    const child = Number(entry)
    if (!Number.isInteger(child)) continue
    try {
      const stat = Fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      // The command name may contain spaces and parentheses: fields follow the last ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      const list = parentOf.get(ppid)
      if (list) list.push(child)
      else parentOf.set(ppid, [child])
    } catch {
      // the process exited while we were reading
    }
  }
  const out: Array<number> = []
  const stack = [pid]
  while (stack.length > 0) {
    for (const c of parentOf.get(stack.pop()!) ?? []) {
      out.push(c)
      stack.push(c)
    }
  }
  return out
}

/**
 * Live processes of the sandbox in `dir`, found by working directory or `TMPDIR` inside it: this
 * also catches those that left the executor's tree (setsid, double fork) and were reparented.
 */
const processesIn = (dir: string): Array<number> => {
  let entries: Array<string>
  try {
    entries = Fs.readdirSync("/proc")
  } catch {
    return []
  }
  const tmpdir = `\0TMPDIR=${dir}/`
  const out: Array<number> = []
  for (const entry of entries) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid === process.pid) continue
    try {
      const stat = Fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue
      const cwd = Fs.readlinkSync(`/proc/${entry}/cwd`)
      if (
        cwd === dir || cwd.startsWith(`${dir}/`) ||
        `\0${Fs.readFileSync(`/proc/${entry}/environ`, "latin1")}`.includes(tmpdir)
      ) {
        out.push(pid)
      }
    } catch {
      // gone, or not readable: not ours
    }
  }
  return out
}

const signal = (pid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(pid, sig)
  } catch {
    // already gone
  }
}

/** SIGKILLs the process group of `child` and every descendant (including those that left the group). */
const killTreeSync = (child: Child): void => {
  const descendants = descendantsOf(child.pid)
  signal(-child.pid, "SIGKILL")
  signal(child.pid, "SIGKILL")
  for (const pid of descendants) signal(pid, "SIGKILL")
}

const removeDirSync = (dir: string): void => {
  try {
    Fs.rmSync(dir, { recursive: true, force: true })
  } catch {
    // best effort at exit
  }
}

const killAllSync = (): void => {
  for (const child of children.values()) {
    killTreeSync(child)
    removeDirSync(child.dir)
  }
  children.clear()
}

const onSignal = (sig: NodeJS.Signals) => {
  const handler = (): void => {
    // Another listener (e.g. NodeRuntime.runMain) owns the shutdown: let it run finalizers, which
    // stop each sandbox gracefully; the exit hook still catches whatever is left. This handler
    // runs first (prepended), while that listener is still registered: runMain removes its own
    // listeners as soon as it handles a signal, so a second signal during the shutdown ends up here.
    if (process.listeners(sig).some((listener) => listener !== handler)) return
    process.removeListener(sig, handler)
    killAllSync()
    process.kill(process.pid, sig)
  }
  return handler
}

const installHooks = (): void => {
  if (hooksInstalled) return
  hooksInstalled = true
  process.on("exit", killAllSync)
  process.prependListener("SIGINT", onSignal("SIGINT"))
  process.prependListener("SIGTERM", onSignal("SIGTERM"))
}

// A parent killed by SIGKILL cannot remove its directories: the next program using the same
// base directory removes those whose owner is gone.
const OWNER_FILE = "owner.pid"
const swept = new Set<string>()

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const sweepOrphans = (baseDir: string): void => {
  if (swept.has(baseDir)) return
  swept.add(baseDir)
  let entries: Array<string>
  try {
    entries = Fs.readdirSync(baseDir)
  } catch {
    return
  }
  for (const entry of entries) {
    const dir = Path.join(baseDir, entry)
    try {
      const owner = Number(Fs.readFileSync(Path.join(dir, OWNER_FILE), "utf8"))
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && !isAlive(owner)) {
        Fs.rmSync(dir, { recursive: true, force: true })
      }
    } catch {
      // not a sandbox directory, or removed concurrently
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Isolation

let bwrapProbe: Promise<boolean> | undefined
let warnedNoIsolation = false

const bwrapWorks = (): Promise<boolean> => (bwrapProbe ??= new Promise((resolve) => {
  ChildProcess.execFile(
    "bwrap",
    ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--die-with-parent", "true"],
    { timeout: 5_000 },
    (error) => resolve(error === null)
  )
}))

/** Resolves `"auto"` (probing bubblewrap once per process) and checks an explicit `"bubblewrap"`. */
export const resolveIsolation = (option: IsolationOption): Effect.Effect<Isolation, DeploymentFailed> =>
  option === "none" ? Effect.succeed("none") : Effect.promise(bwrapWorks).pipe(
    Effect.flatMap((works): Effect.Effect<Isolation, DeploymentFailed> => {
      if (works) return Effect.succeed("bubblewrap")
      if (option === "bubblewrap") {
        return Effect.fail(
          new DeploymentFailed({
            sandbox: "local",
            status: "ERROR",
            detail: "bubblewrap (bwrap) is not available or does not work here"
          })
        )
      }
      if (warnedNoIsolation) return Effect.succeed("none")
      warnedNoIsolation = true
      return Effect.logWarning(
        "effect-koyeb: bubblewrap is not available; local sandboxes run as plain processes of this user. The local backend without bubblewrap is NOT a security boundary."
      ).pipe(Effect.as("none"))
    })
  )

// Host homes are hidden; the sandbox gets its own home and /tmp.
const hiddenRoots = ["/home", "/root"]
const isUnder = (path: string, root: string) => path === root || path.startsWith(root + "/")

const bwrapArgs = (root: string, visible: ReadonlyArray<string>): Array<string> => {
  const args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
  for (const hidden of hiddenRoots) {
    if (Fs.existsSync(hidden)) args.push("--tmpfs", hidden)
  }
  args.push("--bind", Path.join(root, "home"), SANDBOX_HOME, "--bind", Path.join(root, "tmp"), "/tmp")
  // What the executor itself runs from (node, its bundle) must stay visible under the hidden paths.
  for (const path of visible) {
    if ([...hiddenRoots, "/tmp"].some((hidden) => isUnder(path, hidden))) args.push("--ro-bind", path, path)
  }
  args.push("--unshare-pid", "--die-with-parent", "--chdir", SANDBOX_HOME, "--")
  return args
}

// ---------------------------------------------------------------------------------------------
// Spawn

interface Listening {
  readonly url: string
  readonly port: number
  readonly proxyPort: number
}

const failed = (id: string, detail: string) => new DeploymentFailed({ sandbox: id, status: "ERROR", detail })

const tail = (s: string) => (s.length > 2_000 ? `…${s.slice(-2_000)}` : s)

/** True when `GET <url>/health` answers 2xx within 2 seconds. */
export const healthy = (url: string): Effect.Effect<boolean> =>
  Effect.promise(() =>
    fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) }).then(
      (response) => response.ok,
      () => false
    )
  )

/** Spawns the executor of sandbox `id`; ready (listening and `/health` OK) when it succeeds; killed when the scope closes. */
export const spawnExecutor = Effect.fnUntraced(function*(options: SpawnOptions) {
  const isolation = yield* resolveIsolation(options.isolation ?? "auto")
  const start = yield* executorCommand
  const baseDir = options.baseDir ?? defaultBaseDir()
  const dir = Path.join(baseDir, options.id)
  yield* Effect.try({
    try: () => {
      sweepOrphans(baseDir)
      Fs.mkdirSync(Path.join(dir, "home"), { recursive: true })
      Fs.mkdirSync(Path.join(dir, "tmp"), { recursive: true })
      Fs.writeFileSync(Path.join(dir, OWNER_FILE), String(process.pid))
    },
    catch: (cause) => failed(options.id, `cannot create ${dir}: ${String(cause)}`)
  })
  const home = isolation === "bubblewrap" ? SANDBOX_HOME : Path.join(dir, "home")
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    LANG: process.env.LANG ?? "C.UTF-8",
    HOME: home,
    TMPDIR: isolation === "bubblewrap" ? "/tmp" : Path.join(dir, "tmp"),
    ...options.env,
    // The secret goes through stdin: in the environment, commands could read it from /proc/<pid>/environ.
    SANDBOX_SECRET_STDIN: "1",
    // In a PID namespace the parent's pid means nothing; --die-with-parent covers it there.
    ...(isolation === "none" ? { EFFECT_KOYEB_PARENT_PID: String(process.pid) } : {})
  }
  const executorArgs = [...start.args, "executor", "--host", "127.0.0.1", "--port", "0", "--proxy-port", "0"]
  const [file, args] = isolation === "bubblewrap"
    ? ["bwrap", [...bwrapArgs(dir, start.visiblePaths), start.command, ...executorArgs]] as const
    : [start.command, executorArgs] as const

  const listening = yield* Deferred.make<Listening, DeploymentFailed>()
  const exited = yield* Deferred.make<void>()
  installHooks()
  const child = yield* Effect.try({
    try: () =>
      ChildProcess.spawn(file, args, {
        cwd: isolation === "bubblewrap" ? "/" : Path.join(dir, "home"),
        env,
        detached: true,
        stdio: ["pipe", "pipe", "pipe"]
      }),
    catch: (cause) => failed(options.id, `cannot spawn the executor: ${String(cause)}`)
  })
  child.stdin?.end(Redacted.value(options.secret))
  const pid = child.pid
  if (pid === undefined) {
    removeDirSync(dir)
    return yield* Effect.fail(failed(options.id, "cannot spawn the executor"))
  }
  const record: Child = { pid, dir, isolation }
  children.set(pid, record)

  let stdout = ""
  let stderr = ""
  let ready = false
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    if (ready) return
    stdout += chunk
    let newline: number
    while ((newline = stdout.indexOf("\n")) >= 0) {
      const line = stdout.slice(0, newline).trim()
      stdout = stdout.slice(newline + 1)
      try {
        const event = JSON.parse(line)
        if (event?.event === "listening" && typeof event.port === "number" && typeof event.proxyPort === "number") {
          ready = true
          Deferred.unsafeDone(
            listening,
            Effect.succeed({ url: String(event.url), port: event.port, proxyPort: event.proxyPort })
          )
          return
        }
      } catch {
        // not our line
      }
    }
  })
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = tail(stderr + chunk)
  })
  child.on("error", (error) => {
    Deferred.unsafeDone(listening, Effect.fail(failed(options.id, `executor failed to start: ${error.message}`)))
  })
  child.on("exit", (code, sig) => {
    children.delete(pid)
    Deferred.unsafeDone(
      listening,
      Effect.fail(
        failed(options.id, `executor exited (${sig ?? code}) before listening${stderr ? `: ${tail(stderr)}` : ""}`)
      )
    )
    Deferred.unsafeDone(exited, Effect.void)
  })

  // interruptible, or the timeout could not end the wait inside the uninterruptible kill
  // Polled: inside this uninterruptible finalizer a timeout could not end a plain await, and an
  // interruptible one would be cut short at once when the caller is being interrupted.
  const awaitExit = Effect.gen(function*() {
    for (let waited = 0; waited < GRACE_MILLIS && !(yield* Deferred.isDone(exited)); waited += 25) {
      yield* Effect.sleep(Duration.millis(25))
    }
  })
  let killed = false
  const kill: Effect.Effect<void> = Effect.suspend(() => {
    if (killed) return Deferred.await(exited)
    killed = true
    children.delete(pid)
    return Effect.gen(function*() {
      if (child.exitCode === null && child.signalCode === null) {
        // Without namespaces, let the executor stop its process groups first; bwrap's PID namespace dies with it anyway.
        if (isolation === "none") {
          signal(-pid, "SIGTERM")
          yield* awaitExit
        }
        killTreeSync(record)
        yield* awaitExit
      }
      // SIGKILL is asynchronous, and reparented stragglers are no longer in the tree: sweep until
      // none is left. Under bubblewrap none can leave: its PID namespace dies with the executor.
      for (let attempt = 0; isolation === "none" && attempt < GRACE_MILLIS / 50; attempt++) {
        const left = processesIn(dir)
        if (left.length === 0) break
        for (const straggler of left) signal(straggler, "SIGKILL")
        yield* Effect.sleep(Duration.millis(50))
      }
      yield* Effect.promise(() => Fs.promises.rm(dir, { recursive: true, force: true }).catch(() => undefined))
    })
  }).pipe(Effect.uninterruptible)

  yield* Effect.addFinalizer(() => kill)

  const started = yield* Deferred.await(listening).pipe(
    Effect.timeoutFail({
      duration: options.startTimeout ?? Duration.seconds(30),
      onTimeout: () => failed(options.id, `executor did not start in time${stderr ? `: ${tail(stderr)}` : ""}`)
    }),
    Effect.tapError(() => kill)
  )
  const url = `http://127.0.0.1:${started.port}`
  let ok = yield* healthy(url)
  for (let attempt = 0; !ok && attempt < 20; attempt++) {
    yield* Effect.sleep(Duration.millis(25))
    ok = yield* healthy(url)
  }
  if (!ok) {
    yield* kill
    return yield* Effect.fail(failed(options.id, `executor at ${url} does not answer /health`))
  }
  // Keep draining the pipes so the executor never blocks on a full pipe, without holding this process open.
  child.stdout!.resume()
  child.unref()
  ;(child.stdout as unknown as { unref?: () => void }).unref?.()
  ;(child.stderr as unknown as { unref?: () => void }).unref?.()

  return {
    id: options.id,
    dir,
    url,
    port: started.port,
    proxyPort: started.proxyPort,
    pid,
    secret: options.secret,
    isolation,
    home,
    kill,
    exited: Deferred.await(exited)
  } satisfies LocalExecutorProcess
}) as (options: SpawnOptions) => Effect.Effect<LocalExecutorProcess, DeploymentFailed, Scope.Scope>
