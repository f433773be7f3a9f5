/**
 * The background process endpoints: `/start_process`, `/list_processes`, `/kill_process` and
 * `/process_logs_streaming` (history then live lines, in order, paced by the reader).
 *
 * @internal
 */
import * as ExecutorWire from "@effect-koyeb/core/ExecutorWire"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as GoJson from "../goJson.js"
import type { ProcessRecord } from "../processTable.js"
import { commandSpec, decodeCommand } from "./commands.js"
import type { AppContext } from "./context.js"
import { json, onlyMethod, plain, queryParam, type Request, withBody } from "./http.js"
import * as Sse from "./sse.js"

/** Log entries per SSE write of `/process_logs_streaming`. */
const logBatch = 2048

const decodeKill = GoJson.decoder(ExecutorWire.KillProcessRequest)

/** `/start_process` (POST): 201 with the new process's id and pid. */
export const startProcess = (ctx: AppContext, request: Request) =>
  onlyMethod("POST", request, () =>
    withBody(ctx, request, decodeCommand, (body) =>
      Effect.gen(function*() {
        if (body.cmd === "") return plain(400, "Command is required")
        const spec = yield* commandSpec(ctx, body)
        return yield* ctx.processes.start(spec).pipe(
          Effect.match({
            onFailure: (error) =>
              json(
                500,
                `{"id":"","pid":0,"status":"","error":${GoJson.string(`failed to start command: ${error.text}`)}}`
              ),
            onSuccess: (record) => json(201, `{"id":"${record.id}","pid":${record.pid},"status":"running"}`)
          })
        )
      }).pipe(Effect.merge)))

/** A `/list_processes` entry: the stock's sorted keys plus `completed_at`, `exit_code`, `started_at` (fields the Python SDK's `ProcessInfo` already has). */
const processJson = (p: ProcessRecord): string =>
  `{"command":${GoJson.string(p.command)}${p.endedAt !== undefined ? `,"completed_at":"${p.endedAt}"` : ""}${
    p.exitCode !== undefined ? `,"exit_code":${p.exitCode}` : ""
  },"id":"${p.id}","pid":${p.pid},"started_at":"${p.startedAt}","status":"${p.status}"}`

/** `/list_processes` (GET): every known process in start order. */
export const listProcesses = (ctx: AppContext, request: Request) =>
  onlyMethod(
    "GET",
    request,
    () => Effect.sync(() => json(200, `{"processes":[${ctx.processes.list().map(processJson).join(",")}]}`))
  )

/** `/kill_process` (POST): SIGTERM to the process group, SIGKILL after the grace period. */
export const killProcess = (ctx: AppContext, request: Request) =>
  onlyMethod("POST", request, () =>
    withBody(ctx, request, decodeKill, (body) =>
      body.id === ""
        ? Effect.succeed(plain(400, "Process ID is required"))
        : ctx.processes.kill(body.id).pipe(
          Effect.match({
            onFailure: (refusal) =>
              json(
                400,
                `{"success":false,"error":${
                  GoJson.string(
                    refusal._tag === "ProcessNotFound"
                      ? `process not found: ${refusal.id}`
                      : `process is not running (status: ${refusal.status})`
                  )
                }}`
              ),
            onSuccess: () => json(200, `{"success":true,"message":"Process killed successfully"}`)
          })
        )))

const logsComplete = Sse.frame("complete", `{"message": "stream ended"}`)

/** History then live lines by sequence number: chronological, no duplicates, paced by the reader. */
const logStream = (record: ProcessRecord): Stream.Stream<Uint8Array> =>
  Stream.suspend(() => {
    let cursor = 0
    let done = false
    const pull: Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<never>> = Effect.suspend(() => {
      if (done) return Effect.fail(Option.none())
      const entries = record.logs.read(cursor, logBatch)
      if (entries.length > 0) {
        cursor = entries[entries.length - 1]!.seq + 1
        return Effect.succeed(Chunk.of(Sse.logFrames(entries)))
      }
      if (record.logs.ended) {
        done = true
        return Effect.succeed(Chunk.of(logsComplete))
      }
      // interruptible even in a server built by a layer, so a reader gone away does not wait on
      return Effect.as(Effect.interruptible(record.logs.awaitAfter(cursor)), Chunk.empty())
    })
    return Stream.repeatEffectChunkOption(pull)
  })

/** `/process_logs_streaming?id=` (GET): the process's log lines, then `complete` once it has ended. */
export const processLogs = (ctx: AppContext, request: Request) =>
  onlyMethod("GET", request, () =>
    Effect.sync(() => {
      const id = queryParam(request, "id")
      if (id === "") return plain(400, "Process ID is required")
      const record = ctx.processes.get(id)
      if (record === undefined) {
        return Sse.sse(Stream.make(Sse.frame("error", `{"error": ${GoJson.string(`process not found: ${id}`)}}`)))
      }
      return Sse.sse(logStream(record))
    }))
