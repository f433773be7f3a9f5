/**
 * Starts local sandboxes: root directory, spawn (optionally inside bubblewrap), readiness, and a
 * kill that takes the whole process tree down. A sandbox's first process is `effect-koyeb-spawner`
 * and this process serves its executor API (`sandboxHub`); without a spawner for this platform it
 * is a node executor serving the API itself. Children never outlive this process: they are
 * tracked in a registry that is killed synchronously on exit and on an unhandled SIGINT/SIGTERM;
 * `--die-with-parent` (bubblewrap), the spawner's parent-death signal or `EFFECT_KOYEB_PARENT_PID`
 * (an executor without isolation) covers a crash of this process.
 *
 * @internal
 */
import { InvalidArgument } from "@effect-koyeb/core/SandboxError"
import type { SandboxNetwork } from "@effect-koyeb/core/SandboxSchema"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import type * as Stream from "node:stream"
import { executorCommand } from "./executorCommand.js"
import * as Network from "./localNetwork.js"
import * as Processes from "./localProcesses.js"
import * as SandboxHub from "./sandboxHub.js"
import * as Limits from "./sandboxLimits.js"
import * as Start from "./sandboxStart.js"
import * as Spawner from "./spawner.js"

/** How a local sandbox is isolated from the host. */
export type Isolation = "none" | "bubblewrap"

/** The isolation a caller asks for: `"auto"` picks bubblewrap when it works on this machine. */
export type IsolationOption = Isolation | "auto"

/** A running local sandbox and the address of its executor API. */
export interface LocalExecutorProcess {
  readonly id: string
  /** Host directory holding the sandbox's `home` and `tmp`. */
  readonly dir: string
  /** Executor base URL on loopback. */
  readonly url: string
  readonly port: number
  /** The executor's TCP proxy port (what `/bind_port` forwards). */
  readonly proxyPort: number
  /** Pid of the spawned process (the spawner or executor, or the outer `bwrap`); leader of its process group. */
  readonly pid: number
  readonly secret: Redacted.Redacted<string>
  readonly isolation: Isolation
  /** What the sandbox's commands reach: their own loopback only, plus outbound traffic, or the host's network. */
  readonly network: SandboxNetwork
  /** The instance type's limits and which of them apply (see `sandboxLimits`); undefined without limits. */
  readonly limits?: Limits.AppliedLimits | undefined
  /** Home directory of the sandbox as commands see it (their default cwd and `HOME`). */
  readonly home: string
  /** Kills the whole process tree and removes the directory (unless spawned with `keepDirectory`). Idempotent. */
  readonly kill: Effect.Effect<void>
  /** Completes when the process has exited (killed or crashed). */
  readonly exited: Effect.Effect<void>
}

/**
 * Why an executor did not start: the isolation asked for does not work here, its directory could
 * not be made, the process could not be spawned, it exited or did not answer in time, or its
 * `/health` answers an error.
 */
export const ExecutorStartReason = Schema.Literal("Isolation", "Directory", "Spawn", "Exited", "Timeout", "Unhealthy")

/** The executor of a local sandbox did not start. */
export class ExecutorStartError extends Schema.TaggedError<ExecutorStartError>(
  "@effect-koyeb/platform-node/ExecutorStartError"
)("ExecutorStartError", { sandbox: Schema.String, reason: ExecutorStartReason, detail: Schema.String }) {
  get message(): string {
    return `The executor of sandbox ${this.sandbox} did not start (${this.reason}): ${this.detail}`
  }
}

/** Options of `spawnExecutor`. */
export interface SpawnOptions {
  readonly id: string
  readonly secret: Redacted.Redacted<string>
  readonly env?: Readonly<Record<string, string>> | undefined
  readonly isolation?: IsolationOption | undefined
  /** Outbound traffic through slirp4netns or pasta when installed (default true); false: the sandbox's own loopback only. */
  readonly outbound?: boolean | undefined
  /** Parent of the sandbox directories (default `<os tmpdir>/effect-koyeb`). */
  readonly baseDir?: string | undefined
  /** Bound on start-up (default 30 seconds). */
  readonly startTimeout?: Duration.DurationInput | undefined
  /**
   * `kill` leaves the sandbox directory (its home and tmp) in place, so a later spawn with the same
   * id finds its files again (a sandbox waking from sleep); the caller removes it (`removeSandboxDir`).
   */
  readonly keepDirectory?: boolean | undefined
  /** Loopback ports for the API and the proxy (a sandbox waking from sleep keeps its address); default: free ones. */
  readonly ports?: { readonly api: number; readonly proxy: number } | undefined
  /**
   * The sandbox's own program (`sandboxStart.mainCommand`): started beside the executor, before it
   * listens, with the sandbox's env and its home as cwd, output appended to `MAIN_LOG` in its tmp.
   */
  readonly main?: ReadonlyArray<string> | undefined
  /** Its config files (`planConfigFiles`, for this id, base directory and isolation). */
  readonly configFiles?: Start.ConfigFilePlan | undefined
  /** Memory and process limits of its instance type (`sandboxStart.instanceLimits`). */
  readonly limits?: Start.InstanceLimits | undefined
  /**
   * Serve the sandbox's API from this process with the spawner as its only process (default, when
   * a spawner is built for this platform); false: a node executor inside serves it, as without one.
   */
  readonly hub?: boolean | undefined
}

/** Removes the directory of sandbox `id` (one spawned with `keepDirectory`). */
export const removeSandboxDir = (id: string, baseDir: string | undefined): Effect.Effect<void> =>
  Effect.suspend(() => {
    const dir = Path.join(baseDir ?? defaultBaseDir(), id)
    Processes.keepDir(dir, false)
    return Effect.promise(() => Fs.promises.rm(dir, { recursive: true, force: true }).catch(() => undefined))
  })

/** Default parent of sandbox directories. */
export const defaultBaseDir = (): string => Path.join(Os.tmpdir(), "effect-koyeb")

/** Inside bubblewrap the sandbox sees its own home and tmp at these fixed paths. */
const SANDBOX_HOME = "/home/sandbox"
const GRACE_MILLIS = 2_000

// ---------------------------------------------------------------------------------------------
// Isolation

let bwrapProbe: Promise<{ readonly works: boolean; readonly network: boolean }> | undefined
let warnedNoIsolation = false
let warnedSharedNetwork = false
let warnedNoOutbound = false

const bwrapRuns = (extra: ReadonlyArray<string>): Promise<boolean> =>
  new Promise((resolve) => {
    const args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", ...extra]
    ChildProcess.execFile(
      "bwrap",
      [...args, "--die-with-parent", "true"],
      { timeout: 5_000 },
      (error) => resolve(error === null)
    )
  })

/** Whether bubblewrap works here, and whether it can also give a sandbox a network namespace (probed once). */
const bwrapProbes = () =>
  bwrapProbe ??= Promise.all([bwrapRuns([]), bwrapRuns(["--unshare-net"])]).then(([works, network]) => ({
    works,
    network: works && network
  }))
const bwrapWorks = () => bwrapProbes().then((probe) => probe.works)

/** Resolves `"auto"` (probing bubblewrap once per process) and checks an explicit `"bubblewrap"`. */
export const resolveIsolation = (option: IsolationOption): Effect.Effect<Isolation, ExecutorStartError> =>
  option === "none" ? Effect.succeed("none") : Effect.promise(bwrapWorks).pipe(
    Effect.flatMap((works): Effect.Effect<Isolation, ExecutorStartError> => {
      if (works) return Effect.succeed("bubblewrap")
      if (option === "bubblewrap") {
        return Effect.fail(
          new ExecutorStartError({
            sandbox: "local",
            reason: "Isolation",
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

const bwrapArgs = (
  root: string,
  visible: ReadonlyArray<string>,
  network: { readonly unshare: boolean; readonly infoFd: number | undefined },
  /** The command is the sandbox's init (the spawner reaps what it orphans) instead of bubblewrap's own. */
  asPid1: boolean,
  configFiles: { readonly reopen: ReadonlyArray<string>; readonly files: ReadonlyArray<string> }
): Array<string> => {
  const args = ["--ro-bind", "/", "/", ...configFiles.reopen, "--dev", "/dev", "--proc", "/proc"]
  for (const hidden of hiddenRoots) {
    if (Fs.existsSync(hidden)) args.push("--tmpfs", hidden)
  }
  args.push("--bind", Path.join(root, "home"), SANDBOX_HOME, "--bind", Path.join(root, "tmp"), "/tmp")
  // What the executor itself runs from (node, its bundle) must stay visible under the hidden paths.
  for (const path of visible) {
    if ([...hiddenRoots, "/tmp"].some((hidden) => Start.isUnder(path, hidden))) args.push("--ro-bind", path, path)
  }
  for (const arg of configFiles.files) args.push(arg)
  if (network.unshare) args.push("--unshare-net")
  if (network.infoFd !== undefined) args.push("--info-fd", String(network.infoFd))
  args.push("--unshare-pid")
  if (asPid1) args.push("--as-pid-1")
  args.push("--die-with-parent", "--chdir", SANDBOX_HOME, "--")
  return args
}

// ---------------------------------------------------------------------------------------------
// What the sandbox starts with

/** Where the sandbox's own program writes its output: this file in the sandbox's tmp (`/tmp` under bubblewrap). */
export const MAIN_LOG = "effect-koyeb-main.log"

const hostKind = (path: string): Start.HostKind => {
  try {
    const stat = Fs.lstatSync(path)
    return stat.isDirectory() ? "directory" : stat.isFile() ? "file" : stat.isSymbolicLink() ? "symlink" : "other"
  } catch {
    return "missing"
  }
}

/** The host as bubblewrap's read-only bind of `/` shows it. */
const hostProbe: Start.HostProbe = {
  kind: hostKind,
  realpath: (path) => {
    try {
      return Fs.realpathSync(path)
    } catch {
      return path
    }
  },
  entries: (directory) => {
    try {
      return Fs.readdirSync(directory).map((name) => {
        const path = Path.join(directory, name)
        const kind = hostKind(path)
        if (kind !== "symlink") return { name, kind }
        try {
          return { name, kind, target: Fs.readlinkSync(path) }
        } catch {
          return { name, kind: "missing" as const }
        }
      })
    } catch {
      return []
    }
  }
}

/**
 * Plans the config files of sandbox `id` (see `sandboxStart.planConfigFiles`). Without isolation
 * every path would be this machine's own, so any config file is an `InvalidArgument`.
 */
export const planConfigFiles = (
  files: ReadonlyArray<Start.ConfigFileSpec>,
  isolation: Isolation,
  id: string,
  baseDir: string | undefined
): Either.Either<Start.ConfigFilePlan, InvalidArgument> => {
  if (files.length === 0) return Either.right({ hostFiles: [], reopened: [], directories: [], mounted: [] })
  if (isolation === "none") {
    return Either.left(
      new InvalidArgument({
        argument: "configFiles",
        detail: `${
          JSON.stringify(files[0]!.path)
        }: config files need bubblewrap isolation; without it the path would be on this machine's own file system`
      })
    )
  }
  const dir = Path.join(baseDir ?? defaultBaseDir(), id)
  const layout: Start.SandboxLayout = {
    home: SANDBOX_HOME,
    hostHome: Path.join(dir, "home"),
    hostTmp: Path.join(dir, "tmp"),
    hidden: hiddenRoots.filter((root) => Fs.existsSync(root))
  }
  return Start.planConfigFiles(files, layout, hostProbe)
}

// ---------------------------------------------------------------------------------------------
// Spawn

const failed = (id: string, reason: ExecutorStartError["reason"], detail: string) =>
  new ExecutorStartError({ sandbox: id, reason, detail })

const tail = (s: string) => (s.length > 2_000 ? `…${s.slice(-2_000)}` : s)

/**
 * `GET /health` on the loopback socket the executor is about to accept on, over a bare connection
 * that reads the status line only (an HTTP client costs this process more than the request):
 * no deadline of its own (the caller's start timeout bounds it); false on a non-2xx answer; a
 * failed connection (the executor died, its startFailed says why) is false too, after a short pause.
 */
export const firstHealth = (port: number): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    let done = false
    let pause: ReturnType<typeof setTimeout> | undefined
    const socket = Net.connect({ host: "127.0.0.1", port })
    const finish = (ok: boolean, after = 0) => {
      if (done) return
      done = true
      socket.destroy()
      if (after === 0) resume(Effect.succeed(ok))
      else pause = setTimeout(() => resume(Effect.succeed(ok)), after)
    }
    let head = ""
    socket.setEncoding("latin1")
    socket.once("connect", () => socket.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
    socket.on("data", (chunk: string) => {
      head += chunk
      const status = /^HTTP\/1\.[01] (\d{3})[ \r]/.exec(head)
      if (status !== null) finish(status[1]!.startsWith("2"))
      else if (head.includes("\n")) finish(false)
    })
    socket.once("error", () => finish(false, 25))
    socket.once("close", () => finish(false, 25))
    return Effect.sync(() => {
      done = true
      clearTimeout(pause)
      socket.destroy()
    })
  })

/** Starts an executor: ready (`/health` OK) when it succeeds; killed when the scope closes. */
export type SpawnExecutor = (
  options: SpawnOptions
) => Effect.Effect<LocalExecutorProcess, ExecutorStartError, Scope.Scope>

const spawnOnce = Effect.fnUntraced(function*(options: SpawnOptions) {
  const isolation = yield* resolveIsolation(options.isolation ?? "auto")
  const start = yield* executorCommand
  const ownNetwork = isolation === "bubblewrap" && (yield* Effect.promise(bwrapProbes)).network
  if (isolation === "bubblewrap" && !ownNetwork && !warnedSharedNetwork) {
    warnedSharedNetwork = true
    yield* Effect.logWarning(
      "effect-koyeb: bubblewrap cannot create a network namespace here; local sandboxes share the host's network."
    )
  }
  const helper = ownNetwork && options.outbound !== false ? Network.outboundHelper() : undefined
  // With a spawner for this platform, it is the sandbox's only process and this process serves the
  // sandbox's API (`sandboxHub`); else a node executor runs inside and serves it.
  const spawnerPath = options.hub === false ? undefined : start.spawner
  // Bound here, on host loopback: the host reaches the API and the proxy; the sandbox's own ports
  // stay inside. With a hub they are those of the executor started inside on demand (the hub
  // listens on the sandbox's own ports itself).
  const [api, proxy] = yield* Effect.all([
    Network.listenOnLoopback(spawnerPath === undefined ? options.ports?.api : undefined),
    Network.listenOnLoopback(spawnerPath === undefined ? options.ports?.proxy : undefined)
  ]).pipe(
    Effect.mapError((cause) => failed(options.id, "Spawn", `cannot listen on 127.0.0.1: ${cause.message}`))
  )
  const baseDir = options.baseDir ?? defaultBaseDir()
  const dir = Path.join(baseDir, options.id)
  yield* Effect.try({
    try: () => {
      Processes.sweepOrphans(baseDir)
      Fs.mkdirSync(Path.join(dir, "home"), { recursive: true })
      Fs.mkdirSync(Path.join(dir, "tmp"), { recursive: true })
      Fs.writeFileSync(Path.join(dir, Processes.OWNER_FILE), String(process.pid))
    },
    catch: (cause) => failed(options.id, "Directory", `cannot create ${dir}: ${String(cause)}`)
  })
  const plan = options.configFiles
  // Files in the sandbox's own home and tmp are plain files there; the others are read by bubblewrap
  // from descriptors of unlinked files, so nothing of them stays on the host.
  const configFds: Array<number> = []
  yield* Effect.try({
    try: () => {
      for (const file of plan?.hostFiles ?? []) {
        Fs.mkdirSync(Path.dirname(file.path), { recursive: true })
        Fs.writeFileSync(file.path, file.content, { mode: file.mode })
        Fs.chmodSync(file.path, file.mode)
      }
      for (const [i, file] of (plan?.mounted ?? []).entries()) {
        const path = Path.join(dir, `config-file-${i}`)
        Fs.writeFileSync(path, file.content, { mode: 0o600 })
        configFds.push(Fs.openSync(path, "r"))
        Fs.unlinkSync(path)
      }
    },
    catch: (cause) => {
      configFds.forEach((fd) => Fs.closeSync(fd))
      if (options.keepDirectory !== true) Fs.rmSync(dir, { recursive: true, force: true })
      return failed(options.id, "Directory", `cannot write the config files: ${String(cause)}`)
    }
  })
  const cgroups = options.limits === undefined ? undefined : Limits.make(options.id, options.limits)
  // Also when the executor never starts (`kill` removes them too, as soon as it is done).
  if (cgroups !== undefined) yield* Effect.addFinalizer(() => cgroups.remove)
  const home = isolation === "bubblewrap" ? SANDBOX_HOME : Path.join(dir, "home")
  const tmp = isolation === "bubblewrap" ? "/tmp" : Path.join(dir, "tmp")
  const sandboxEnv: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    LANG: process.env.LANG ?? "C.UTF-8",
    HOME: home,
    TMPDIR: tmp,
    ...options.env
  }
  // The executor's own variables (the spawner needs none).
  const executorEnv: Record<string, string> = {
    // The secret goes through stdin: in the environment, commands could read it from /proc/<pid>/environ.
    SANDBOX_SECRET_STDIN: "1",
    // In a PID namespace the parent's pid means nothing; --die-with-parent covers it there.
    ...(isolation === "none" ? { EFFECT_KOYEB_PARENT_PID: String(process.pid) } : {})
  }
  const env: Record<string, string> = spawnerPath === undefined ? { ...sandboxEnv, ...executorEnv } : sandboxEnv
  // fd 3: the API socket, fd 4: the proxy socket; with a helper, fds 5 to 8 are the launcher's (see
  // `localNetwork`); a hub under bubblewrap without a helper reads the sandbox's pid from fd 5.
  const infoFd = helper !== undefined || (spawnerPath !== undefined && isolation === "bubblewrap")
    ? Network.INFO_FD
    : undefined
  const extraPipes = helper !== undefined ? Network.LAUNCH_FDS : infoFd !== undefined ? 1 : 0
  const network = { unshare: ownNetwork, infoFd }
  // Config file descriptors follow the ones above.
  const configFd = (i: number) => 5 + extraPipes + i
  const configArgs = plan === undefined
    ? { reopen: [], files: [] }
    : Start.configFileArgs(plan, hostProbe, configFd)
  const payload = spawnerPath !== undefined
    ? [spawnerPath]
    : [start.command, ...start.args, "executor", "--fd", "3", "--proxy-fd", "4"]
  const inside = options.main === undefined
    ? payload
    : Start.withMain(
      options.main,
      Path.posix.join(tmp, MAIN_LOG),
      Object.keys(env).filter((key) => !Object.hasOwn(sandboxEnv, key)),
      payload
    )
  const command = isolation === "bubblewrap"
    ? ["bwrap", ...bwrapArgs(dir, start.visiblePaths, network, spawnerPath !== undefined, configArgs), ...inside]
    : inside
  const limited = cgroups === undefined ? command : cgroups.wrap(command)
  const [file, ...args] = helper === undefined ? limited : Network.launch(dir, limited)

  // Fails when the executor cannot be spawned or exits before it is ready.
  const startFailed = yield* Deferred.make<never, ExecutorStartError>()
  const exited = yield* Deferred.make<void>()
  const child = yield* Effect.try({
    try: () =>
      ChildProcess.spawn(file, args, {
        cwd: isolation === "bubblewrap" ? "/" : Path.join(dir, "home"),
        env,
        detached: true,
        stdio: [
          "pipe",
          "pipe",
          "pipe",
          api.fd,
          proxy.fd,
          ...Array.from({ length: extraPipes }, () => "pipe" as const),
          ...configFds
        ]
      }),
    catch: (cause) => failed(options.id, "Spawn", `cannot spawn the executor: ${String(cause)}`)
  }).pipe(Effect.ensuring(Effect.sync(() => configFds.forEach((fd) => Fs.closeSync(fd)))))
  // From now on only the executor accepts on these sockets.
  api.close()
  proxy.close()
  if (spawnerPath === undefined) child.stdin?.end(Redacted.value(options.secret))
  const pid = child.pid
  if (pid === undefined) {
    Processes.removeDirSync(dir)
    return yield* Effect.fail(failed(options.id, "Spawn", "cannot spawn the executor"))
  }
  const record: Processes.Child = { pid, dir }
  Processes.register(record)

  let hub: SandboxHub.Hub | undefined
  let stderr = ""
  // Keep draining the pipe so the executor never blocks on a full pipe (its listening line is not needed: see below).
  if (spawnerPath === undefined) child.stdout!.resume()
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = tail(stderr + chunk)
  })
  child.on("error", (error) => {
    Deferred.unsafeDone(
      startFailed,
      Effect.fail(failed(options.id, "Spawn", `executor failed to start: ${error.message}`))
    )
  })
  child.on("exit", (code, sig) => {
    Processes.unregister(pid)
    // its API goes with it, as an executor's would: calls in flight fail instead of waiting
    if (hub !== undefined) Effect.runFork(hub.close)
    Deferred.unsafeDone(
      startFailed,
      Effect.fail(
        failed(
          options.id,
          "Exited",
          `executor exited (${sig ?? code}) before it was ready${stderr ? `: ${tail(stderr)}` : ""}`
        )
      )
    )
    Deferred.unsafeDone(exited, Effect.void)
  })

  // For at most the grace period, on a timer of its own: inside this uninterruptible finalizer a
  // timeout could not end a plain await, and an interruptible one would be cut short at once when
  // the caller is being interrupted.
  const awaitExit = Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    const done = () => {
      clearTimeout(timer)
      child.off("exit", done)
      resume(Effect.void)
    }
    const timer = setTimeout(done, GRACE_MILLIS)
    child.once("exit", done)
    return Effect.sync(() => {
      clearTimeout(timer)
      child.off("exit", done)
    })
  })
  let killed = false
  let outbound: Network.Outbound | undefined
  const kill: Effect.Effect<void> = Effect.suspend(() => {
    if (killed) return Deferred.await(exited)
    killed = true
    Processes.unregister(pid)
    return Effect.gen(function*() {
      if (hub !== undefined) yield* hub.close
      if (child.exitCode === null && child.signalCode === null) {
        // Without namespaces, let the executor stop its process groups first (a spawner would only
        // orphan them); bwrap's PID namespace dies with it anyway.
        if (isolation === "none" && spawnerPath === undefined) {
          Processes.signal(-pid, "SIGTERM")
          yield* awaitExit
        }
        // Under bubblewrap the group holds both bwraps and the outbound helper, and the PID
        // namespace dies with its init: no /proc scan (a scan per deletion grows with every
        // process of every sandbox).
        if (isolation === "bubblewrap") Processes.signal(-pid, "SIGKILL")
        else Processes.killTreeSync(record)
        yield* awaitExit
      }
      // Ends the helper when bubblewrap exited on its own (the group was not signalled).
      outbound?.stop()
      // SIGKILL is asynchronous, and reparented stragglers are no longer in the tree: sweep until
      // none is left. Under bubblewrap none can leave: its PID namespace dies with the executor.
      if (isolation === "none") {
        yield* Effect.sync(() => {
          const left = Processes.processesIn(dir)
          for (const straggler of left) Processes.signal(straggler, "SIGKILL")
          return left.length === 0
        }).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (none) => none, times: GRACE_MILLIS / 50 })
        )
      }
      if (cgroups !== undefined) yield* cgroups.remove
      // A kept directory still goes if this process exits before its owner removes it.
      if (options.keepDirectory === true) Processes.keepDir(dir, true)
      else yield* removeSandboxDir(options.id, options.baseDir)
    })
  }).pipe(Effect.uninterruptible)

  yield* Effect.addFinalizer(() => kill)

  const stdio = child.stdio as ReadonlyArray<Stream.Duplex | null>
  // The host pid of the sandbox's first process (the spawner, with a hub).
  const sandboxPid = infoFd === undefined ? Promise.resolve(pid) : Network.sandboxPid(stdio[infoFd])
  sandboxPid.catch(() => undefined) // reported by whoever waits for it
  // The helper attaches while the executor starts. Without it the sandbox is still a sandbox, offline.
  const attaching: Promise<SandboxNetwork | Error> = helper === undefined
    ? Promise.resolve(ownNetwork ? "private" : "shared")
    : Network.attachOutbound(
      helper,
      sandboxPid,
      stdio.slice(Network.INFO_FD + 1, Network.INFO_FD + Network.LAUNCH_FDS),
      dir,
      5_000
    )
      .then((attached) => {
        if (killed) attached.stop()
        else outbound = attached
        return "user-mode" as const
      }, (error: Error) => error)

  // With a hub: the spawner's first answer (on its home) is the readiness check, then this process
  // serves the sandbox's API. Else the sockets are bound here, so the ports are known and a request
  // waits in the backlog until the executor accepts it: one /health round trip is the whole check.
  const ready = spawnerPath === undefined
    ? firstHealth(api.port).pipe(
      Effect.filterOrFail(
        (ok) => ok,
        () => failed(options.id, "Unhealthy", `executor at 127.0.0.1:${api.port} does not answer /health`)
      ),
      Effect.retry({ schedule: Schedule.spaced("25 millis"), times: 20 }),
      Effect.as({ port: api.port, proxyPort: proxy.port })
    )
    : Effect.gen(function*() {
      const spawner = Spawner.attach({
        input: child.stdin!,
        output: child.stdout!,
        pid: yield* Effect.tryPromise({
          try: () => sandboxPid,
          catch: (cause) => failed(options.id, "Spawn", String(cause))
        }),
        exited: Effect.runPromise(Deferred.await(exited))
      })
      yield* Effect.tryPromise({
        try: () => spawner.files.stat(home),
        catch: (cause) => failed(options.id, "Unhealthy", `the sandbox's spawner does not answer: ${String(cause)}`)
      })
      hub = yield* SandboxHub.serve({
        spawner,
        secret: options.secret,
        home,
        env: sandboxEnv,
        executorEnv,
        ports: options.ports,
        inner: { command: start, apiPort: api.port, proxyPort: proxy.port }
      }).pipe(
        Effect.mapError((cause) => failed(options.id, "Spawn", `cannot listen on 127.0.0.1: ${cause.message}`))
      )
      return { port: hub.port, proxyPort: hub.proxyPort }
    })
  const served = yield* ready.pipe(
    Effect.raceFirst(Deferred.await(startFailed)),
    Effect.timeoutFail({
      duration: options.startTimeout ?? Duration.seconds(30),
      onTimeout: () =>
        failed(options.id, "Timeout", `executor did not start in time${stderr ? `: ${tail(stderr)}` : ""}`)
    }),
    Effect.tapError(() => kill)
  )
  const attached = yield* Effect.promise(() => attaching)
  if (attached instanceof Error && !warnedNoOutbound) {
    warnedNoOutbound = true
    yield* Effect.logWarning(`effect-koyeb: local sandboxes have no outbound network: ${attached.message}`)
  }
  const limits = cgroups?.joined(pid)
  if (limits?.detail !== undefined) {
    yield* Effect.logWarning(
      `effect-koyeb: sandbox ${options.id} (${limits.instanceType}) runs without some limits: ${limits.detail}`
    )
  }
  // Without holding this process open.
  child.unref()
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    ;(stream as unknown as { unref?: () => void } | null)?.unref?.()
  }

  return {
    id: options.id,
    dir,
    url: `http://127.0.0.1:${served.port}`,
    port: served.port,
    proxyPort: served.proxyPort,
    pid,
    secret: options.secret,
    isolation,
    network: attached instanceof Error ? "private" : attached,
    limits,
    home,
    kill,
    exited: Deferred.await(exited)
  } satisfies LocalExecutorProcess
}) as SpawnExecutor

/**
 * Spawns the executor of sandbox `id`; ready (`/health` OK) when it succeeds; killed
 * when the scope closes. Rarely, bubblewrap fails to set up a new network namespace's loopback (a
 * netlink reply it does not recognise): that start is tried again.
 */
export const spawnExecutor: SpawnExecutor = (options) =>
  spawnOnce(options).pipe(
    Effect.retry({ times: 2, while: (error) => error.reason === "Exited" && error.detail.includes("bwrap: loopback:") })
  )
