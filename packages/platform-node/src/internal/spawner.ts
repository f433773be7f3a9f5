/**
 * The client of `effect-koyeb-spawner` (`native/spawner.c`): a small long-lived process that starts
 * the executor's commands with `posix_spawn`, so that starting one does not fork this (large)
 * process. A started command is a {@link CommandChild} like Node's own children: its pipes are
 * opened here through `/proc/<spawner>/fd/<n>`, its exit comes from the spawner, which reaps it.
 *
 * @internal
 */
import * as ChildProcess from "node:child_process"
import { EventEmitter } from "node:events"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Stream from "node:stream"
import type { Readable, Writable } from "node:stream"

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
}

/** A spawner process. */
export interface Spawner {
  /** Starts a command; rejects with an `ErrnoException` (`code` set) as Node's spawn reports one. */
  readonly spawn: (request: SpawnRequest) => Promise<CommandChild>
  /** Whether it still runs (once gone, for instance killed by a command, it takes no more requests). */
  readonly alive: () => boolean
  /** Stops the spawner (its commands keep running: they lead their own sessions). */
  readonly close: () => void
}

const opSpawn = 1
const opRelease = 2
const replySpawned = 1
const replyFailed = 2
const replyExited = 3
const recordBytes = 24

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
  head.writeUInt32LE(request.stdin ? 1 : 0, 12)
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

/**
 * Starts the spawner at `binary`; resolves once it answered a first spawn (`true`), so that a
 * binary that cannot run here (another architecture, no `/proc`) is found out before it is used.
 */
export const start = async (binary: string): Promise<Spawner> => {
  const proc = ChildProcess.spawn(binary, [], { stdio: ["pipe", "pipe", "inherit"] })
  proc.on("error", () => {})
  proc.stdin.on("error", () => {})
  const pending = new Map<number, { resolve: (child: Child) => void; reject: (e: unknown) => void; stdin: boolean }>()
  const running = new Map<number, Child>()
  let nextId = 1
  let closed: Error | undefined
  let buffered: Buffer = Buffer.alloc(0)

  const ends = (pid: number, out: number, err: number, input: number, wantStdin: boolean) => {
    const open = (fd: number, flags: number) =>
      Fs.openSync(`/proc/${proc.pid}/fd/${fd}`, flags | Fs.constants.O_NONBLOCK)
    const opened: Array<number> = []
    try {
      opened.push(open(out, Fs.constants.O_RDONLY), open(err, Fs.constants.O_RDONLY))
      if (wantStdin) opened.push(open(input, Fs.constants.O_WRONLY))
    } catch (e) {
      for (const fd of opened) Fs.closeSync(fd)
      throw e
    }
    const stdout = new Net.Socket({ fd: opened[0]!, readable: true, writable: false })
    const stderr = new Net.Socket({ fd: opened[1]!, readable: true, writable: false })
    const stdin = wantStdin ? new Net.Socket({ fd: opened[2]!, readable: false, writable: true }) : nullStdin()
    return new Child(pid, stdin, stdout, stderr)
  }

  const onRecord = (record: Buffer) => {
    const type = record.readInt32LE(0)
    const id = record.readUInt32LE(4)
    const a = record.readInt32LE(8)
    if (type === replyExited) {
      const child = running.get(a)
      if (child !== undefined) {
        running.delete(a)
        child.exited(record.readInt32LE(12))
      }
      return
    }
    const waiter = pending.get(id)
    if (waiter === undefined) return
    pending.delete(id)
    if (type === replyFailed) return waiter.reject(errnoError(a, "spawn"))
    if (type !== replySpawned) return waiter.reject(new Error(`spawner: unknown reply ${type}`))
    let child: Child
    try {
      child = ends(a, record.readInt32LE(12), record.readInt32LE(16), record.readInt32LE(20), waiter.stdin)
    } catch (e) {
      // the command runs but cannot be watched: stop it
      try {
        process.kill(-a, "SIGKILL")
      } catch {
        // gone
      }
      waiter.reject(e)
      return
    } finally {
      proc.stdin.write(releaseFrame(id))
    }
    running.set(a, child)
    waiter.resolve(child)
  }

  proc.stdout.on("data", (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    let at = 0
    for (; buffered.length - at >= recordBytes; at += recordBytes) onRecord(buffered.subarray(at, at + recordBytes))
    buffered = buffered.subarray(at)
  })

  // Gone (killed, or closed): waiting spawns fail, and running commands, now nobody's children
  // here, are reported as killed once they no longer exist.
  proc.once("close", () => {
    closed = new Error("the spawner exited")
    for (const waiter of pending.values()) waiter.reject(closed)
    pending.clear()
    const orphans = new Map(running)
    running.clear()
    const poll = setInterval(() => {
      for (const [pid, child] of orphans) {
        if (isGone(pid)) {
          orphans.delete(pid)
          child.exited(9)
        }
      }
      if (orphans.size === 0) clearInterval(poll)
    }, 50)
  })

  const spawner: Spawner = {
    spawn: (request) =>
      new Promise<CommandChild>((resolve, reject) => {
        if (closed !== undefined) return reject(closed)
        const id = nextId++
        pending.set(id, { resolve, reject, stdin: request.stdin })
        proc.stdin.write(encode(id, request))
      }),
    alive: () => closed === undefined,
    close: () => proc.kill("SIGKILL")
  }
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
