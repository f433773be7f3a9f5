/**
 * The client of `effect-koyeb-spawner` (`native/spawner.c`): a small long-lived process that starts
 * the executor's commands with `posix_spawn`, so that starting one does not fork this (large)
 * process. A started command is a {@link CommandChild} like Node's own children: its pipes are
 * opened here through `/proc/<spawner>/fd/<n>`, its exit comes from the spawner, which reaps it.
 *
 * The spawner may also be a sandbox's only process (its pid 1, started by bubblewrap; see
 * {@link attach}): then the pids it reports are read back as this host's pids, its file operations
 * resolve paths inside the sandbox, and a command can inherit the sockets it was started with.
 *
 * @internal
 */
import * as ChildProcess from "node:child_process"
import { EventEmitter } from "node:events"
import * as Fs from "node:fs"
import * as FsPromises from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Stream from "node:stream"
import type { Readable, Writable } from "node:stream"
import type { FileOps } from "./goFiles.js"

/** The spawner's file name, next to the bundles in `dist`. */
export const spawnerFile = "effect-koyeb-spawner"

/** A started command, as the executor uses it (a subset of Node's `ChildProcess`). */
export interface CommandChild extends EventEmitter {
  readonly pid: number
  /** The command's stdin, a pipe when asked for (else a stream that discards). */
  readonly stdin: Writable
  readonly stdout: Readable
  readonly stderr: Readable
}

/** What to start. */
export interface SpawnRequest {
  readonly path: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  readonly env: Readonly<Record<string, string>>
  readonly stdin: boolean
  /** The command gets the fds 3 and 4 the spawner was started with (as its own fds 3 and 4). */
  readonly inherit?: boolean | undefined
}

/** A spawner process. */
export interface Spawner {
  /** Starts a command; rejects with an `ErrnoException` (`code` set) as Node's spawn reports one. */
  readonly spawn: (request: SpawnRequest) => Promise<CommandChild>
  /** Whether it still runs (once gone, for instance killed by a command, it takes no more requests). */
  readonly alive: () => boolean
  /** Stops the spawner (its commands keep running: they lead their own sessions). */
  readonly close: () => void
  /** The spawner's pid on this host (its /proc entry). */
  readonly pid: number
  /**
   * File operations done by the spawner: paths resolve where it runs (a sandbox's mount namespace).
   * `open` reopens here, through /proc, what the spawner opened, with the access mode of `flags`
   * and `O_APPEND`; the spawner opens with `O_NONBLOCK`, so a write-open of a FIFO without reader
   * fails `ENXIO`. `removeAll` is `rm -rf`: symlinks are removed, never followed, the first errno
   * met rejects. `readdir` opens the directory there and lists it here through /proc.
   */
  readonly files: FileOps
}

const opSpawn = 1
const opRelease = 2
const opPath = 3
const replySpawned = 1
const replyFailed = 2
const replyExited = 3
const replyDone = 4
const recordBytes = 28
const flagStdin = 1
const flagInherit = 2
const pathOpen = 1
const pathStat = 2
const pathLstat = 3
const pathMkdir = 4
const pathUnlink = 5
const pathRmdir = 6
const pathRemoveAll = 7
// O_ACCMODE, which `fs.constants` lacks
const accessModes = 3

const errnoNames = new Map(Object.entries(Os.constants.errno).map(([name, value]) => [value, name]))
const signalNames = new Map(Object.entries(Os.constants.signals).map(([name, value]) => [value, name]))

const errnoError = (errno: number, syscall: string): NodeJS.ErrnoException => {
  const code = errnoNames.get(errno) ?? `E${errno}`
  return Object.assign(new Error(`${syscall} ${code}`), { errno: -errno, code, syscall })
}

/** Whether `pid` has exited: no such process, or a zombie its new parent has not reaped (yet). */
const isGone = (pid: number): boolean => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z"
  } catch {
    return true
  }
}

type Ended = [number | null, NodeJS.Signals | null]

/**
 * A started command. The spawner may report its exit in the same read as its start, before the
 * asker has had a turn to listen: `exit` and `close` reach a listener added after they happened
 * (on the next turn), where Node's children emit them only after `spawn` returned.
 */
class Child extends EventEmitter implements CommandChild {
  private exitArgs: Ended | undefined
  private closeArgs: Ended | undefined
  private closesNeeded = 3
  constructor(
    readonly pid: number,
    readonly stdin: Writable,
    readonly stdout: Readable,
    readonly stderr: Readable
  ) {
    super()
    // 'close' once the command exited and both output pipes ended, as Node's children do
    stdout.once("close", () => this.maybeClose())
    stderr.once("close", () => this.maybeClose())
  }
  private ended(event: string | symbol): Ended | undefined {
    return event === "exit" ? this.exitArgs : event === "close" ? this.closeArgs : undefined
  }
  override on(event: string | symbol, listener: (...args: Array<unknown>) => void): this {
    const ended = this.ended(event)
    if (ended === undefined) return super.on(event, listener)
    setImmediate(() => listener(...ended))
    return this
  }
  override once(event: string | symbol, listener: (...args: Array<unknown>) => void): this {
    const ended = this.ended(event)
    if (ended === undefined) return super.once(event, listener)
    setImmediate(() => listener(...ended))
    return this
  }
  exited(status: number) {
    const signal = status & 0x7f
    this.exitArgs = signal === 0
      ? [(status >> 8) & 0xff, null]
      : [null, (signalNames.get(signal) ?? "SIGKILL") as NodeJS.Signals]
    this.emit("exit", ...this.exitArgs)
    this.maybeClose()
  }
  private maybeClose() {
    if (--this.closesNeeded > 0) return
    this.closeArgs = this.exitArgs!
    this.emit("close", ...this.closeArgs)
  }
}

/** The stdin of a command started without one (`/dev/null` for the command): writes are dropped. */
const nullStdin = (): Writable => new Stream.Writable({ write: (_chunk, _encoding, done) => done() })

/** An environment as the spawner reads it (`K=V\0` each); `undefined` when a string holds a NUL. */
interface EncodedEnv {
  readonly bytes: Buffer | undefined
  readonly count: number
}

// Most commands share the server's environment object: encoded once.
const encodedEnvs = new WeakMap<object, EncodedEnv>()

const encodeEnv = (env: Readonly<Record<string, string>>): EncodedEnv => {
  let encoded = encodedEnvs.get(env)
  if (encoded === undefined) {
    const entries = Object.entries(env)
    const nul = entries.some(([k, v]) => k.includes("\0") || v.includes("\0"))
    encoded = {
      bytes: nul ? undefined : Buffer.from(entries.map(([k, v]) => `${k}=${v}\0`).join(""), "utf8"),
      count: entries.length
    }
    encodedEnvs.set(env, encoded)
  }
  return encoded
}

/** Whether the spawner can take `request` (no string with a NUL byte, which C strings cannot carry). */
export const canEncode = (request: SpawnRequest): boolean =>
  encodeEnv(request.env).bytes !== undefined &&
  ![request.path, request.cwd, ...request.args].some((s) => s.includes("\0"))

const encode = (id: number, request: SpawnRequest): Buffer => {
  const env = encodeEnv(request.env)
  const strings = Buffer.from([request.path, request.cwd, ...request.args].map((s) => `${s}\0`).join(""), "utf8")
  const head = Buffer.alloc(24)
  head.writeUInt32LE(20 + strings.length + env.bytes!.length, 0)
  head.writeUInt32LE(opSpawn, 4)
  head.writeUInt32LE(id, 8)
  head.writeUInt32LE((request.stdin ? flagStdin : 0) | (request.inherit === true ? flagInherit : 0), 12)
  head.writeUInt32LE(request.args.length, 16)
  head.writeUInt32LE(env.count, 20)
  return Buffer.concat([head, strings, env.bytes!])
}

const releaseFrame = (id: number): Buffer => {
  const frame = Buffer.alloc(12)
  frame.writeUInt32LE(8, 0)
  frame.writeUInt32LE(opRelease, 4)
  frame.writeUInt32LE(id, 8)
  return frame
}

const pathFrame = (id: number, subop: number, flags: number, mode: number, path: string): Buffer => {
  const name = Buffer.from(`${path}\0`, "utf8")
  const head = Buffer.alloc(24)
  head.writeUInt32LE(20 + name.length, 0)
  head.writeUInt32LE(opPath, 4)
  head.writeUInt32LE(id, 8)
  head.writeUInt32LE(subop, 12)
  head.writeUInt32LE(flags >>> 0, 16)
  head.writeUInt32LE(mode >>> 0, 20)
  return Buffer.concat([head, name])
}

/** The pid in this process's namespace of the process behind fd `pidfd` of `spawner`; undefined when unknown. */
const pidfdPid = (spawner: number, pidfd: number): number | undefined => {
  if (pidfd < 0) return undefined
  try {
    const pid = Number(/^Pid:\s*(-?\d+)$/m.exec(Fs.readFileSync(`/proc/${spawner}/fdinfo/${pidfd}`, "latin1"))?.[1])
    return pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

const samePidNamespace = (pid: number): boolean => {
  try {
    return Fs.readlinkSync(`/proc/${pid}/ns/pid`) === Fs.readlinkSync("/proc/self/ns/pid")
  } catch {
    // never take a pid of another namespace for one of ours
    return false
  }
}

interface Waiter {
  readonly reply: (record: Buffer) => void
  readonly reject: (e: unknown) => void
}

/** A spawner started by someone else (a sandbox's init): its stdin, its stdout, its pid on this host, and when it has exited. */
export const attach = (options: {
  readonly input: Writable
  readonly output: Readable
  readonly pid: number
  readonly exited: Promise<void>
}): Spawner => {
  const { input, output, pid } = options
  input.on("error", () => {})
  const pending = new Map<number, Waiter>()
  // by the pid the spawner reports (its namespace's), for its `exited` replies
  const running = new Map<number, Child>()
  let nextId = 1
  let closed: Error | undefined
  let buffered: Buffer = Buffer.alloc(0)
  // In another pid namespace (a sandbox's) the pids the spawner sees are not ours: each command's is
  // read from its pidfd, which costs a read of /proc that the same namespace does without.
  const samePids = samePidNamespace(pid)

  /** Sends `frame(id)` and resolves to what `onReply` makes of the reply to it. */
  const request = <A>(frame: (id: number) => Buffer, onReply: (record: Buffer, id: number) => A) =>
    new Promise<A>((resolve, reject) => {
      if (closed !== undefined) return reject(closed)
      if (input.writableEnded) return reject(new Error("the spawner was closed"))
      const id = nextId++
      pending.set(id, {
        reply: (record) => {
          try {
            resolve(onReply(record, id))
          } catch (e) {
            reject(e)
          }
        },
        reject
      })
      input.write(frame(id))
    })

  const release = (id: number) => {
    if (closed === undefined) input.write(releaseFrame(id))
  }

  const ends = (childPid: number, out: number, err: number, stdinEnd: number, wantStdin: boolean) => {
    const open = (fd: number, flags: number) => Fs.openSync(`/proc/${pid}/fd/${fd}`, flags | Fs.constants.O_NONBLOCK)
    const opened: Array<number> = []
    try {
      opened.push(open(out, Fs.constants.O_RDONLY), open(err, Fs.constants.O_RDONLY))
      if (wantStdin) opened.push(open(stdinEnd, Fs.constants.O_WRONLY))
    } catch (e) {
      for (const fd of opened) Fs.closeSync(fd)
      throw e
    }
    const stdout = new Net.Socket({ fd: opened[0]!, readable: true, writable: false })
    const stderr = new Net.Socket({ fd: opened[1]!, readable: true, writable: false })
    const stdin = wantStdin ? new Net.Socket({ fd: opened[2]!, readable: false, writable: true }) : nullStdin()
    return new Child(childPid, stdin, stdout, stderr)
  }

  const spawned = (record: Buffer, id: number, wantStdin: boolean): Child => {
    const type = record.readInt32LE(0)
    const nsPid = record.readInt32LE(8)
    if (type === replyFailed) throw errnoError(nsPid, "spawn")
    if (type !== replySpawned) throw new Error(`spawner: unknown reply ${type}`)
    // read before the release, while the spawner keeps the child unreaped (its pidfd names it)
    const hostPid = samePids ? nsPid : pidfdPid(pid, record.readInt32LE(24))
    let child: Child
    try {
      // without a pid here (no pidfd), the command cannot be watched nor stopped from here: it
      // goes with the spawner's namespace
      if (hostPid === undefined) throw new Error("spawner: the command's pid on this host is unknown")
      child = ends(hostPid, record.readInt32LE(12), record.readInt32LE(16), record.readInt32LE(20), wantStdin)
    } catch (e) {
      // the command runs but cannot be watched: stop it
      try {
        if (hostPid !== undefined) process.kill(-hostPid, "SIGKILL")
      } catch {
        // gone
      }
      throw e
    } finally {
      release(id)
    }
    running.set(nsPid, child)
    return child
  }

  const onRecord = (record: Buffer) => {
    const type = record.readInt32LE(0)
    if (type === replyExited) {
      // a pid not ours (an orphan the sandbox's init reaped) is no one's business here
      const nsPid = record.readInt32LE(8)
      const child = running.get(nsPid)
      if (child !== undefined) {
        running.delete(nsPid)
        child.exited(record.readInt32LE(12))
      }
      return
    }
    const id = record.readUInt32LE(4)
    const waiter = pending.get(id)
    if (waiter === undefined) return
    pending.delete(id)
    waiter.reply(record)
  }

  output.on("data", (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    let at = 0
    for (; buffered.length - at >= recordBytes; at += recordBytes) onRecord(buffered.subarray(at, at + recordBytes))
    buffered = buffered.subarray(at)
  })

  // Gone (killed, or closed): waiting requests fail, and running commands, now nobody's children
  // here, are reported as killed once they no longer exist.
  const gone = () => {
    closed = new Error("the spawner exited")
    for (const waiter of pending.values()) waiter.reject(closed)
    pending.clear()
    const orphans = new Set(running.values())
    running.clear()
    if (orphans.size === 0) return
    const poll = setInterval(() => {
      for (const child of orphans) {
        if (isGone(child.pid)) {
          orphans.delete(child)
          child.exited(9)
        }
      }
      if (orphans.size === 0) clearInterval(poll)
    }, 50)
  }
  options.exited.then(gone, gone)

  /** A path operation's value; rejects with the errno the spawner met, named after `syscall`. */
  const pathRequest = (subop: number, path: string, flags: number, mode: number, syscall: string) =>
    path.includes("\0")
      // as Go's syscall layer answers (Node's fs throws ERR_INVALID_ARG_VALUE, which goErrors maps alike)
      ? Promise.reject(errnoError(Os.constants.errno.EINVAL, syscall))
      : request((id) => pathFrame(id, subop, flags, mode, path), (record, id) => {
        const type = record.readInt32LE(0)
        if (type !== replyDone) throw new Error(`spawner: unknown reply ${type}`)
        const errno = record.readInt32LE(8)
        if (errno !== 0) throw errnoError(errno, syscall)
        return { id, value: record.readInt32LE(12) }
      })

  /** Opens `path` there and hands its /proc path here to `use`; released after. */
  const withOpened = async <A>(
    path: string,
    flags: number,
    mode: number,
    syscall: string,
    use: (procPath: string) => Promise<A>
  ): Promise<A> => {
    const { id, value } = await pathRequest(pathOpen, path, flags, mode, syscall)
    try {
      return await use(`/proc/${pid}/fd/${value}`)
    } finally {
      release(id)
    }
  }

  const isDirectory = (subop: number, syscall: string) => (path: string) =>
    pathRequest(subop, path, 0, 0, syscall).then(({ value }) => ({ isDirectory: value === 1 }))
  const done = (subop: number, syscall: string) => (path: string, mode = 0) =>
    pathRequest(subop, path, 0, mode, syscall).then(() => undefined)

  return {
    spawn: (spawnRequest) =>
      request<CommandChild>(
        (id) => encode(id, spawnRequest),
        (record, id) => spawned(record, id, spawnRequest.stdin)
      ),
    alive: () => closed === undefined,
    close: () => input.end(),
    pid,
    files: {
      open: (path, flags, mode) =>
        withOpened(
          path,
          flags,
          mode,
          "open",
          (procPath) => FsPromises.open(procPath, flags & (accessModes | Fs.constants.O_APPEND))
        ),
      stat: isDirectory(pathStat, "stat"),
      lstat: isDirectory(pathLstat, "lstat"),
      mkdir: done(pathMkdir, "mkdir"),
      unlink: done(pathUnlink, "unlink"),
      rmdir: done(pathRmdir, "rmdir"),
      removeAll: done(pathRemoveAll, "unlinkat"),
      readdir: (path) =>
        withOpened(
          path,
          Fs.constants.O_RDONLY | Fs.constants.O_DIRECTORY,
          0,
          "scandir",
          (procPath) => FsPromises.readdir(procPath)
        )
    }
  }
}

/**
 * Starts the spawner at `binary`; resolves once it answered a first spawn (`true`), so that a
 * binary that cannot run here (another architecture, no `/proc`) is found out before it is used.
 */
export const start = async (binary: string): Promise<Spawner> => {
  const proc = ChildProcess.spawn(binary, [], { stdio: ["pipe", "pipe", "inherit"] })
  proc.on("error", () => {})
  const attached = attach({
    input: proc.stdin,
    output: proc.stdout,
    // no pid: it did not start, and `close` follows
    pid: proc.pid ?? -1,
    exited: new Promise((resolve) => proc.once("close", () => resolve()))
  })
  const spawner: Spawner = { ...attached, close: () => proc.kill("SIGKILL") }
  // a first command proves that the binary runs and that its pipes can be opened here
  const probe = await spawner.spawn({ path: "/bin/sh", args: ["sh", "-c", ":"], cwd: "/", env: {}, stdin: false })
    .catch(
      (e) => {
        spawner.close()
        throw e
      }
    )
  await new Promise((resolve) => probe.once("close", resolve))
  return spawner
}
