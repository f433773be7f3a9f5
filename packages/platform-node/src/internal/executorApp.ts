/**
 * The HTTP application of the executor server: routing, auth, body limits, and one handler per
 * endpoint, speaking the stock Go executor's wire format (`koyeb-wire.md` §2).
 *
 * @internal
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs/promises"
import type * as Http from "node:http"
import * as Path from "node:path"
import { finished, Readable } from "node:stream"
import type * as GoFiles from "./goFiles.js"
import * as GoJson from "./goJson.js"
import * as LineSplitter from "./lineSplitter.js"
import type { CommandExit, CommandSpec, ProcessGroups, Spawned } from "./processGroups.js"
import type { LogEntry, ProcessRecord, ProcessTable } from "./processTable.js"

/** Extensions over the stock executor, advertised by `/health` (clients must not require them). */
export const capabilities: ReadonlyArray<string> = [
  "process-group-kill",
  "process-details",
  "ordered-logs",
  "secret-hidden",
  "binary-files"
]

/** Everything the handlers need. */
export interface AppContext {
  readonly secret: string
  readonly cwd: string
  readonly baseEnv: Readonly<Record<string, string>>
  readonly maxBodyBytes: number
  readonly groups: ProcessGroups
  readonly processes: ProcessTable
  readonly files: GoFiles.GoFiles
}

/** A bound on one unterminated `/run_streaming` line, far above any real line (the stock has none). */
const maxStreamLineBytes = 64 * 1024 * 1024
/** Log entries per SSE write of `/process_logs_streaming`. */
const logBatch = 2048

type Response = HttpServerResponse.HttpServerResponse

// ---------------------------------------------------------------------------------------------
// responses

/** `http.Error`: text/plain, nosniff, message + "\n". */
const plain = (status: number, message: string, headers?: Record<string, string>): Response =>
  HttpServerResponse.text(`${message}\n`, {
    status,
    contentType: "text/plain; charset=utf-8",
    headers: { "x-content-type-options": "nosniff", ...headers }
  })

/** `json.NewEncoder(w).Encode(...)`: the body ends with "\n". */
const json = (status: number, body: string): Response =>
  HttpServerResponse.text(`${body}\n`, { status, contentType: "application/json" })

const sseHeaders = { "cache-control": "no-cache", connection: "keep-alive" }

const sse = (body: Stream.Stream<Uint8Array>): Response =>
  HttpServerResponse.stream(body, { contentType: "text/event-stream", headers: sseHeaders })

const encoder = new TextEncoder()
const frame = (event: string, data: string): Uint8Array => encoder.encode(`event: ${event}\ndata: ${data}\n\n`)

const invalidRequest = plain(400, "Invalid request")
const methodNotAllowed = plain(405, "Method not allowed")
const unauthorized = plain(401, "Unauthorized")
const notFound = plain(404, "404 page not found")
const tooLarge = plain(413, "Request body too large", { connection: "close" })

// ---------------------------------------------------------------------------------------------
// request plumbing

// Digests have a fixed length, so neither the comparison nor an early length check reveals the secret's length.
const digest = (text: string): Buffer => Crypto.createHash("sha256").update(text).digest()

const safeEqual = (a: string, b: string): boolean => Crypto.timingSafeEqual(digest(a), digest(b))

const isAuthorized = (request: HttpServerRequest.HttpServerRequest, secret: string): boolean => {
  const header = request.headers["authorization"]
  if (header === undefined || !header.startsWith("Bearer ")) return false
  const token = header.slice(7)
  return token !== "" && safeEqual(token, secret)
}

type Body = { readonly _tag: "Text"; readonly text: string } | { readonly _tag: "TooLarge" }

/** Reads the body as UTF-8 text, refusing (without buffering) one over `max` bytes. */
const readBody = (request: HttpServerRequest.HttpServerRequest, max: number): Effect.Effect<Body> =>
  Effect.async<Body>((resume) => {
    const incoming = NodeHttpServerRequest.toIncomingMessage(request)
    const declared = Number(incoming.headers["content-length"] ?? "0")
    if (declared > max) return resume(Effect.succeed({ _tag: "TooLarge" }))
    const chunks: Array<Buffer> = []
    let size = 0
    const cleanup = () => {
      incoming.off("data", onData)
      incoming.off("end", onEnd)
      incoming.off("error", onEnd)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > max) {
        cleanup()
        incoming.pause()
        resume(Effect.succeed({ _tag: "TooLarge" }))
      } else {
        chunks.push(chunk)
      }
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed({ _tag: "Text", text: Buffer.concat(chunks, size).toString("utf8") }))
    }
    if (incoming.readableEnded) return onEnd()
    incoming.on("data", onData)
    incoming.on("end", onEnd)
    incoming.on("error", onEnd)
    return Effect.sync(cleanup)
  })

/** Reads and decodes the body; the handler gets the decoded fields or the error response is returned. */
const withBody = <const F extends Record<string, "string" | "stringMap">>(
  ctx: AppContext,
  request: HttpServerRequest.HttpServerRequest,
  fields: F,
  handle: (body: GoJson.Decoded<F>) => Effect.Effect<Response>
): Effect.Effect<Response> =>
  Effect.flatMap(readBody(request, ctx.maxBodyBytes), (body) => {
    if (body._tag === "TooLarge") return Effect.succeed(tooLarge)
    const decoded = GoJson.decode(body.text, fields)
    return decoded === undefined ? Effect.succeed(invalidRequest) : handle(decoded)
  })

/** A query parameter as Go's `r.URL.Query().Get` reads it (`""` when absent). */
const queryParam = (request: HttpServerRequest.HttpServerRequest, name: string): string => {
  const query = request.url.indexOf("?")
  return query === -1 ? "" : new URLSearchParams(request.url.slice(query + 1)).get(name) ?? ""
}

const commandFields = { cmd: "string", cwd: "string", env: "stringMap" } as const

/** Validates `cwd` (400 when not a directory) and builds the spawn spec. */
const commandSpec = (
  ctx: AppContext,
  body: GoJson.Decoded<typeof commandFields>
): Effect.Effect<CommandSpec, Response> =>
  Effect.gen(function*() {
    let cwd = ctx.cwd
    if (body.cwd !== "") {
      cwd = Path.resolve(ctx.cwd, body.cwd)
      const isDir = yield* Effect.promise(() => Fs.stat(cwd).then((s) => s.isDirectory(), () => false))
      if (!isDir) return yield* Effect.fail(plain(400, `Invalid working directory: ${body.cwd}`))
    }
    return { cmd: body.cmd, cwd, env: { ...ctx.baseEnv, ...body.env } }
  })

/** Resolves once the child has exited and all its pipes are closed (Node's `close`), registered at once. */
const closeSignal = (spawned: Spawned) => {
  let closed = false
  const promise = new Promise<CommandExit>((resolve) => {
    spawned.child.once("close", (code, signal) => {
      closed = true
      resolve(signal !== null || code === null ? { code: -1, signaled: true } : { code, signaled: false })
    })
  })
  return { await: Effect.promise(() => promise), isClosed: () => closed }
}

/** Spawns for the lifetime of the current scope; an interrupted request kills the command's group. */
const spawnScoped = (ctx: AppContext, spec: CommandSpec) =>
  Effect.acquireRelease(
    Effect.map(ctx.groups.spawn(spec), (spawned) => ({ spawned, closed: closeSignal(spawned) })),
    ({ closed, spawned }, exit) =>
      Exit.isInterrupted(exit) && !closed.isClosed() ? ctx.groups.kill(spawned.pid) : Effect.void
  )

// ---------------------------------------------------------------------------------------------
// commands

const run = (ctx: AppContext, request: HttpServerRequest.HttpServerRequest) =>
  withBody(ctx, request, commandFields, (body) =>
    Effect.gen(function*() {
      const spec = yield* commandSpec(ctx, body)
      const started = yield* Effect.either(spawnScoped(ctx, spec))
      if (started._tag === "Left") return plain(500, "Failed to start command")
      const { closed, spawned } = started.right
      // both pipes are drained concurrently: no deadlock on a full stderr pipe
      const stdout: Array<Buffer> = []
      const stderr: Array<Buffer> = []
      spawned.child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk))
      spawned.child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk))
      const exit = yield* closed.await
      const code = exit.code
      return json(
        200,
        `{"stdout":${GoJson.string(Buffer.concat(stdout).toString("utf8"))},"stderr":${
          GoJson.string(Buffer.concat(stderr).toString("utf8"))
        }${code !== 0 ? `,"error":"Non-zero exit code"` : ""},"code":${code}}`
      )
    }).pipe(Effect.merge, Effect.scoped))

const outputTail = {
  stdout: `,"stream":"stdout"}\n\n`,
  stderr: `,"stream":"stderr"}\n\n`
}

/** One write's worth of `output` events (Go escapes `<>&` only inside the JSON, which is all there is to escape). */
const outputFrames = (lines: ReadonlyArray<string>, stream: "stdout" | "stderr"): Uint8Array => {
  const tail = outputTail[stream]
  let text = ""
  for (let i = 0; i < lines.length; i++) text += `event: output\ndata: {"data":${JSON.stringify(lines[i])}${tail}`
  return Buffer.from(GoJson.escapeHtml(text), "utf8")
}

/**
 * The SSE body of one running command, as a Node stream written straight to the response: the
 * lines of each pipe read are framed into one buffer, then `complete` follows once the command
 * has closed. A full response pauses both pipes (so a slow client pauses the command); a body
 * destroyed or a response closed before the command closed (the client went away) kills its group.
 */
const commandBody = (ctx: AppContext, spawned: Spawned, response: Http.ServerResponse): Readable => {
  const { child, pid } = spawned
  const pipes = [child.stdout, child.stderr]
  let closed = false
  let killed = false
  const kill = () => {
    if (closed || killed) return
    killed = true
    // drained (and ignored) until the group is gone, so no write blocks a command being stopped
    for (const pipe of pipes) pipe.resume()
    Effect.runFork(ctx.groups.kill(pid))
  }
  const body = new Readable({
    read() {
      for (const pipe of pipes) pipe.resume()
    },
    destroy(error, callback) {
      kill()
      callback(error)
    }
  })
  const emit = (lines: ReadonlyArray<string>, stream: "stdout" | "stderr") => {
    if (lines.length > 0 && !body.push(outputFrames(lines, stream)) && !killed) {
      for (const pipe of pipes) pipe.pause()
    }
  }
  const forward = (pipe: NodeJS.ReadableStream, stream: "stdout" | "stderr") => {
    const splitter = LineSplitter.make({ maxLineBytes: maxStreamLineBytes, trim: "all" })
    pipe.on("data", (chunk: Buffer) => emit(splitter.push(chunk), stream))
    pipe.once("end", () => emit(splitter.end(), stream))
    pipe.on("error", () => {})
  }
  forward(child.stdout, "stdout")
  forward(child.stderr, "stderr")
  child.once("close", (code, signal) => {
    closed = true
    const exit = signal !== null || code === null ? -1 : code
    body.push(frame("complete", `{"code":${exit},"error":${exit !== 0}}`))
    body.push(null)
  })
  // also when the connection closes before the body is piped to it
  response.once("close", () => {
    if (!response.writableFinished) kill()
  })
  return body
}

const startFailedFrame = frame("error", `{"error": "Failed to start command"}`)

const runStreaming = (ctx: AppContext, request: HttpServerRequest.HttpServerRequest) =>
  withBody(
    ctx,
    request,
    commandFields,
    (body) =>
      Effect.flatMap(commandSpec(ctx, body), (spec) =>
        Effect.match(ctx.groups.spawn(spec), {
          onFailure: () => sse(Stream.make(startFailedFrame)),
          onSuccess: (spawned) =>
            HttpServerResponse.raw(commandBody(ctx, spawned, NodeHttpServerRequest.toServerResponse(request)), {
              contentType: "text/event-stream",
              headers: sseHeaders
            })
        })).pipe(Effect.merge)
  )

// ---------------------------------------------------------------------------------------------
// background processes

const startProcess = (ctx: AppContext, request: HttpServerRequest.HttpServerRequest) =>
  request.method !== "POST" ?
    Effect.succeed(methodNotAllowed) :
    withBody(ctx, request, commandFields, (body) =>
      Effect.gen(function*() {
        if (body.cmd === "") return plain(400, "Command is required")
        const spec = yield* commandSpec(ctx, body)
        return yield* ctx.processes.start(spec).pipe(
          Effect.match({
            onFailure: (error) =>
              json(500, `{"id":"","pid":0,"status":"","error":${GoJson.string(`failed to start command: ${error}`)}}`),
            onSuccess: (record) => json(201, `{"id":"${record.id}","pid":${record.pid},"status":"running"}`)
          })
        )
      }).pipe(Effect.merge))

/** A `/list_processes` entry: the stock's sorted keys plus `completed_at`, `exit_code`, `started_at` (fields the Python SDK's `ProcessInfo` already has). */
const processJson = (p: ProcessRecord): string =>
  `{"command":${GoJson.string(p.command)}${p.endedAt !== undefined ? `,"completed_at":"${p.endedAt}"` : ""}${
    p.exitCode !== undefined ? `,"exit_code":${p.exitCode}` : ""
  },"id":"${p.id}","pid":${p.pid},"started_at":"${p.startedAt}","status":"${p.status}"}`

const listProcesses = (ctx: AppContext, request: HttpServerRequest.HttpServerRequest) =>
  Effect.sync(() =>
    request.method !== "GET"
      ? methodNotAllowed
      : json(200, `{"processes":[${ctx.processes.list().map(processJson).join(",")}]}`)
  )

const killProcess = (ctx: AppContext, request: HttpServerRequest.HttpServerRequest) =>
  request.method !== "POST" ?
    Effect.succeed(methodNotAllowed) :
    withBody(ctx, request, { id: "string" }, (body) =>
      body.id === ""
        ? Effect.succeed(plain(400, "Process ID is required"))
        : ctx.processes.kill(body.id).pipe(
          Effect.match({
            onFailure: (refusal) =>
              json(
                400,
                `{"success":false,"error":${
                  GoJson.string(
                    refusal._tag === "NotFound"
                      ? `process not found: ${body.id}`
                      : `process is not running (status: ${refusal.status})`
                  )
                }}`
              ),
            onSuccess: () => json(200, `{"success":true,"message":"Process killed successfully"}`)
          })
        ))

const logFrames = (entries: ReadonlyArray<LogEntry>): Uint8Array => {
  let text = ""
  for (const e of entries) {
    text += `event: log\ndata: {"timestamp":"${e.timestamp}","stream":"${e.stream}","data":${
      JSON.stringify(e.data)
    }}\n\n`
  }
  return Buffer.from(GoJson.escapeHtml(text), "utf8")
}

const logsComplete = frame("complete", `{"message": "stream ended"}`)

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
        return Effect.succeed(Chunk.of(logFrames(entries)))
      }
      if (record.logs.ended) {
        done = true
        return Effect.succeed(Chunk.of(logsComplete))
      }
      return Effect.as(record.logs.awaitAfter(cursor), Chunk.empty())
    })
    return Stream.repeatEffectChunkOption(pull)
  })

const processLogs = (ctx: AppContext, request: HttpServerRequest.HttpServerRequest) =>
  Effect.sync(() => {
    if (request.method !== "GET") return methodNotAllowed
    const id = queryParam(request, "id")
    if (id === "") return plain(400, "Process ID is required")
    const record = ctx.processes.get(id)
    if (record === undefined) {
      return sse(Stream.make(frame("error", `{"error": ${GoJson.string(`process not found: ${id}`)}}`)))
    }
    return sse(logStream(record))
  })

// ---------------------------------------------------------------------------------------------
// files

const fileReply = <A>(outcome: GoFiles.Outcome<A>, success: (value: A) => string): Response =>
  json(
    200,
    outcome._tag === "Err" ? `{"error":${GoJson.string(outcome.error)},"success":false}` : success(outcome.value)
  )

const pathOp = (
  ctx: AppContext,
  request: HttpServerRequest.HttpServerRequest,
  op: (path: string) => Effect.Effect<GoFiles.Outcome<void>>
) =>
  withBody(
    ctx,
    request,
    { path: "string" },
    (body) => Effect.map(op(body.path), (outcome) => fileReply(outcome, () => `{"success":true}`))
  )

const writeFile = (ctx: AppContext, request: HttpServerRequest.HttpServerRequest) =>
  withBody(
    ctx,
    request,
    { path: "string", content: "string" },
    (body) =>
      Effect.map(
        ctx.files.writeFile(body.path, body.content),
        (outcome) => fileReply(outcome, () => `{"success":true}`)
      )
  )

const readFile = (ctx: AppContext, request: HttpServerRequest.HttpServerRequest) =>
  withBody(ctx, request, { path: "string" }, (body) =>
    Effect.map(ctx.files.readFile(body.path), (outcome) =>
      json(
        200,
        outcome._tag === "Err"
          ? `{"error":${GoJson.string(outcome.error)}}`
          : outcome.value === ""
          ? "{}"
          : `{"content":${GoJson.string(outcome.value)}}`
      )))

/**
 * A `/write_file_bytes` error reply sent at once, whose response ends only once the rest of the
 * body has arrived (and been dropped): closing a connection (`Connection: close`) that still
 * receives data resets it, and the client may lose the reply.
 */
const refusedBody = (body: Readable, error: string): Response => {
  const text = Buffer.from(`{"error":${GoJson.string(error)},"success":false}\n`)
  const reply = new Readable({ read() {} })
  reply.push(text)
  finished(body, () => reply.push(null))
  body.resume()
  return HttpServerResponse.raw(reply, {
    contentType: "application/json",
    headers: { "content-length": String(text.length) }
  })
}

// The `binary-files` extension: the raw body is the file's bytes, with no body-size limit.
const writeFileBytes = (ctx: AppContext, request: HttpServerRequest.HttpServerRequest) => {
  if (request.method !== "POST") return Effect.succeed(methodNotAllowed)
  const body = NodeHttpServerRequest.toIncomingMessage(request)
  return Effect.map(
    ctx.files.writeStream(queryParam(request, "path"), body),
    (outcome) => outcome._tag === "Err" ? refusedBody(body, outcome.error) : json(200, `{"success":true}`)
  )
}

const readFileBytes = (ctx: AppContext, request: HttpServerRequest.HttpServerRequest) => {
  if (request.method !== "GET") return Effect.succeed(methodNotAllowed)
  return Effect.map(ctx.files.readStream(queryParam(request, "path")), (outcome) => {
    if (outcome._tag === "Err") return json(422, `{"error":${GoJson.string(outcome.error)}}`)
    const file = outcome.value
    // the platform destroys the body once it pipes it; a client gone before that must close the file too
    const response = NodeHttpServerRequest.toServerResponse(request)
    if (response.destroyed) file.destroy()
    else response.once("close", () => file.destroy())
    // a read error once bytes were sent destroys the connection: the client sees a truncated body
    return HttpServerResponse.raw(file, { contentType: "application/octet-stream" })
  }).pipe(Effect.uninterruptible)
}

const listDir = (ctx: AppContext, request: HttpServerRequest.HttpServerRequest) =>
  withBody(ctx, request, { path: "string" }, (body) =>
    Effect.map(ctx.files.listDir(body.path), (outcome) =>
      json(
        200,
        outcome._tag === "Err"
          ? `{"error":${GoJson.string(outcome.error)}}`
          : outcome.value.length === 0
          ? "{}"
          : `{"entries":[${outcome.value.map(GoJson.string).join(",")}]}`
      )))

// ---------------------------------------------------------------------------------------------
// ports

/** The port the TCP proxy forwards to (a string, unvalidated, as in the stock). */
export interface PortBinding {
  current: string | undefined
}

const bindPort = (ctx: AppContext, binding: PortBinding, request: HttpServerRequest.HttpServerRequest) =>
  withBody(ctx, request, { port: "string" }, (body) =>
    Effect.sync(() => {
      if (body.port === "") return plain(400, "Port is required")
      if (binding.current !== undefined) {
        return json(
          409,
          `{"current_port":${GoJson.string(binding.current)},"error":"Port already bound","success":false}`
        )
      }
      binding.current = body.port
      return json(200, `{"message":"Port binding configured","port":${GoJson.string(body.port)},"success":true}`)
    }))

const unbindPort = (binding: PortBinding) =>
  Effect.sync(() => {
    binding.current = undefined
    return json(200, `{"message":"Port binding removed","success":true}`)
  })

// ---------------------------------------------------------------------------------------------
// routing

const healthBody = JSON.stringify({ status: "ok", capabilities })

const health = HttpServerResponse.text(healthBody, { contentType: "text/plain; charset=utf-8" })

const prefix = "/koyeb-sandbox"

/** Builds the application: `/x` and `/koyeb-sandbox/x` are the same endpoint; unknown paths 404 before auth. */
export const make = (ctx: AppContext, binding: PortBinding): HttpApp.Default => {
  type Handler = (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<Response>
  const routes: Record<string, Handler> = {
    "/run": (r) => run(ctx, r),
    "/run_streaming": (r) => runStreaming(ctx, r),
    "/write_file": (r) => writeFile(ctx, r),
    "/read_file": (r) => readFile(ctx, r),
    "/write_file_bytes": (r) => writeFileBytes(ctx, r),
    "/read_file_bytes": (r) => readFileBytes(ctx, r),
    "/delete_file": (r) => pathOp(ctx, r, ctx.files.deleteFile),
    "/delete_dir": (r) => pathOp(ctx, r, ctx.files.deleteDir),
    "/make_dir": (r) => pathOp(ctx, r, ctx.files.makeDir),
    "/list_dir": (r) => listDir(ctx, r),
    "/bind_port": (r) => bindPort(ctx, binding, r),
    "/unbind_port": () => unbindPort(binding),
    "/start_process": (r) => startProcess(ctx, r),
    "/list_processes": (r) => listProcesses(ctx, r),
    "/kill_process": (r) => killProcess(ctx, r),
    "/process_logs_streaming": (r) => processLogs(ctx, r)
  }
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const query = request.url.indexOf("?")
    let path = query === -1 ? request.url : request.url.slice(0, query)
    if (path.startsWith(`${prefix}/`)) path = path.slice(prefix.length)
    if (path === "/health") return Effect.succeed(health)
    const handler = Object.hasOwn(routes, path) ? routes[path] : undefined
    if (handler === undefined) return Effect.succeed(notFound)
    if (!isAuthorized(request, ctx.secret)) return Effect.succeed(unauthorized)
    return handler(request)
  })
}
