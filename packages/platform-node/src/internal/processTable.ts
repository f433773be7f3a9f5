/**
 * The background processes of `/start_process` with their log buffers.
 * Fixes over the stock: output is never lost (the process finishes only after both pipes ended),
 * pipes are always drained (over-long lines are cut), every log line carries a global sequence
 * number so replay is chronological and readers follow a cursor (no duplicates, no drops for slow
 * readers while the lines are buffered), and the table and buffers are bounded.
 *
 * @internal
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import * as LineSplitter from "./lineSplitter.js"
import {
  type CommandExit,
  commandExit,
  type CommandSpec,
  type ProcessGroups,
  type SpawnError
} from "./processGroups.js"

/** The stock scanner's maximum line length; longer lines are cut instead of stalling capture. */
const maxLineBytes = 1024 * 1024
/** Bytes kept per stream on top of the line limit, so 10 000 huge lines cannot exhaust memory. */
const maxBufferedBytesPerStream = 32 * 1024 * 1024
/** How long a finished shell waits for descendants that still hold its pipes before it counts as ended. */
const pipeGraceAfterExit = Duration.seconds(1)

/** The output stream a line came from. */
export type StreamName = "stdout" | "stderr"

/** One captured line. */
export interface LogEntry {
  readonly seq: number
  readonly timestamp: string
  readonly stream: StreamName
  readonly data: string
}

/** The status values of the stock executor. */
export type ProcessStatus = "running" | "completed" | "failed" | "killed"

const pad = (n: number, width = 2) => String(n).padStart(width, "0")

const wallBase = BigInt(Date.now()) * 1_000_000n
const monotonicBase = process.hrtime.bigint()

/** Now as Go's `time.RFC3339Nano` in the local zone (trailing zeros of the fraction trimmed). */
export const timestamp = (ns: bigint = wallBase + (process.hrtime.bigint() - monotonicBase)): string => {
  const date = new Date(Number(ns / 1_000_000n))
  const offset = -date.getTimezoneOffset()
  const fraction = String(ns % 1_000_000_000n).padStart(9, "0").replace(/0+$/, "")
  const zone = offset === 0
    ? "Z"
    : `${offset > 0 ? "+" : "-"}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${
    pad(date.getMinutes())
  }:${pad(date.getSeconds())}${fraction === "" ? "" : `.${fraction}`}${zone}`
}

/** A bounded buffer of the last lines of one stream, ordered by sequence number. */
class Ring {
  private entries: Array<LogEntry> = []
  private start = 0
  private bytes = 0
  constructor(private readonly capacity: number) {}

  push(entry: LogEntry): void {
    this.entries.push(entry)
    this.bytes += entry.data.length
    while (this.entries.length - this.start > this.capacity || this.bytes > maxBufferedBytesPerStream) {
      this.bytes -= this.entries[this.start]!.data.length
      this.start++
    }
    if (this.start > 1024 && this.start * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.start)
      this.start = 0
    }
  }

  /** Index of the first entry with `seq >= cursor`. */
  indexFrom(cursor: number): number {
    let lo = this.start
    let hi = this.entries.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.entries[mid]!.seq < cursor) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  at(index: number): LogEntry | undefined {
    return this.entries[index]
  }
}

/** The log buffers of one process. */
export class ProcessLogs {
  private readonly stdout: Ring
  private readonly stderr: Ring
  private seq = 0
  private waiters = new Set<() => void>()
  /** True once the process has ended and its pipes are drained: no line will follow. */
  ended = false

  constructor(capacity: number) {
    this.stdout = new Ring(capacity)
    this.stderr = new Ring(capacity)
  }

  append(stream: StreamName, lines: ReadonlyArray<string>): void {
    if (lines.length === 0) return
    const ring = stream === "stdout" ? this.stdout : this.stderr
    const ts = timestamp()
    for (const data of lines) ring.push({ seq: this.seq++, timestamp: ts, stream, data })
    this.notify()
  }

  end(): void {
    this.ended = true
    this.notify()
  }

  private notify(): void {
    if (this.waiters.size === 0) return
    const waiters = this.waiters
    this.waiters = new Set()
    for (const wake of waiters) wake()
  }

  /** Up to `max` buffered entries with `seq >= cursor`, in chronological order. */
  read(cursor: number, max: number): Array<LogEntry> {
    const out: Array<LogEntry> = []
    let i = this.stdout.indexFrom(cursor)
    let j = this.stderr.indexFrom(cursor)
    while (out.length < max) {
      const a = this.stdout.at(i)
      const b = this.stderr.at(j)
      if (a === undefined && b === undefined) break
      if (b === undefined || (a !== undefined && a.seq < b.seq)) {
        out.push(a!)
        i++
      } else {
        out.push(b)
        j++
      }
    }
    return out
  }

  /** Waits until a line with `seq >= cursor` exists or the logs have ended. */
  awaitAfter(cursor: number): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (this.ended || this.seq > cursor) return resume(Effect.void)
      const wake = () => resume(Effect.void)
      this.waiters.add(wake)
      return Effect.sync(() => this.waiters.delete(wake))
    })
  }
}

/** A background process. */
export interface ProcessRecord {
  readonly id: string
  readonly pid: number
  readonly command: string
  readonly startedAt: string
  status: ProcessStatus
  exitCode: number | undefined
  endedAt: string | undefined
  readonly logs: ProcessLogs
}

/** A kill named a process the table does not know. */
export class ProcessNotFound extends Data.TaggedError("ProcessNotFound")<{ readonly id: string }> {}

/** A kill named a process that is no longer running. */
export class ProcessNotRunning extends Data.TaggedError("ProcessNotRunning")<{
  readonly id: string
  readonly status: ProcessStatus
}> {}

/** The process table of one server. */
export interface ProcessTable {
  /** Starts a background process. */
  readonly start: (spec: CommandSpec) => Effect.Effect<ProcessRecord, SpawnError>
  /** Every known process in start order. */
  readonly list: () => ReadonlyArray<ProcessRecord>
  readonly get: (id: string) => ProcessRecord | undefined
  /** Signals the process group (SIGTERM, SIGKILL after the grace period) without waiting for it. */
  readonly kill: (id: string) => Effect.Effect<void, ProcessNotFound | ProcessNotRunning>
}

/** Creates a process table whose background work lives in `scope`. */
export const make = (options: {
  readonly groups: ProcessGroups
  readonly scope: Scope.Scope
  readonly linesPerStream: number
  readonly maxFinished: number
}): ProcessTable => {
  const records = new Map<string, ProcessRecord>()
  const finished: Array<string> = []

  const retire = (record: ProcessRecord) => {
    finished.push(record.id)
    while (finished.length > options.maxFinished) records.delete(finished.shift()!)
  }

  const capture = (record: ProcessRecord, pipe: NodeJS.ReadableStream, stream: StreamName, onEnd: () => void) => {
    const splitter = LineSplitter.make({ maxLineBytes, trim: "one" })
    pipe.on("data", (chunk: Buffer) => record.logs.append(stream, splitter.push(chunk)))
    let done = false
    const end = () => {
      if (done) return
      done = true
      record.logs.append(stream, splitter.end())
      onEnd()
    }
    pipe.on("end", end)
    pipe.on("close", end)
    pipe.on("error", end)
  }

  return {
    start: (spec) =>
      Effect.map(options.groups.spawn(spec), ({ child, pid }) => {
        const record: ProcessRecord = {
          id: Crypto.randomUUID(),
          pid,
          command: spec.cmd,
          startedAt: timestamp(),
          status: "running",
          exitCode: undefined,
          endedAt: undefined,
          logs: new ProcessLogs(options.linesPerStream)
        }
        records.set(record.id, record)
        let openPipes = 2
        let exit: CommandExit | undefined
        let graceTimer: NodeJS.Timeout | undefined
        const finish = () => {
          if (exit === undefined || record.logs.ended) return
          if (graceTimer !== undefined) clearTimeout(graceTimer)
          record.exitCode = exit.code
          record.status = exit.signaled ? "killed" : exit.code === 0 ? "completed" : "failed"
          record.endedAt = timestamp()
          record.logs.end()
          retire(record)
        }
        const pipeEnded = () => {
          openPipes--
          if (openPipes === 0) finish()
        }
        capture(record, child.stdout, "stdout", pipeEnded)
        capture(record, child.stderr, "stderr", pipeEnded)
        child.once("exit", (code, signal) => {
          exit = commandExit(code, signal)
          if (openPipes === 0) finish()
          else graceTimer = setTimeout(finish, Duration.toMillis(pipeGraceAfterExit)).unref()
        })
        return record
      }),
    list: () => [...records.values()],
    get: (id) => records.get(id),
    kill: (id) =>
      Effect.suspend((): Effect.Effect<void, ProcessNotFound | ProcessNotRunning> => {
        const record = records.get(id)
        if (record === undefined) return Effect.fail(new ProcessNotFound({ id }))
        if (record.status !== "running") return Effect.fail(new ProcessNotRunning({ id, status: record.status }))
        return Effect.asVoid(Effect.forkIn(options.groups.kill(record.pid), options.scope))
      })
  }
}
