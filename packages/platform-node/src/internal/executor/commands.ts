/**
 * The command endpoints: `/run` (buffered) and `/run_streaming` (SSE), both `sh -c cmd` in a
 * process group of its own. Fixes over the stock: both pipes are drained at once (no stderr
 * deadlock), and a client that goes away stops the whole group, even a silent one.
 *
 * @internal
 */
import * as ExecutorWire from "@effect-koyeb/core/ExecutorWire"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs/promises"
import type * as Http from "node:http"
import * as Path from "node:path"
import { Readable } from "node:stream"
import * as GoJson from "../goJson.js"
import * as LineSplitter from "../lineSplitter.js"
import { type CommandExit, commandExit, type CommandSpec, type Spawned } from "../processGroups.js"
import type { StreamName } from "../processTable.js"
import type { AppContext } from "./context.js"
import { json, plain, type Request, type Response, withBody } from "./http.js"
import * as Sse from "./sse.js"

/** A bound on one unterminated `/run_streaming` line, far above any real line (the stock has none). */
const maxStreamLineBytes = 64 * 1024 * 1024

/** Decodes the body of `/run`, `/run_streaming` and `/start_process`. */
export const decodeCommand = GoJson.decoder(ExecutorWire.CommandRequest)

const hasKeys = (record: Readonly<Record<string, string>>): boolean => {
  for (const _ in record) return true
  return false
}

/** Validates `cwd` (400 when not a directory) and builds the spawn spec. */
export const commandSpec = (
  ctx: AppContext,
  body: ExecutorWire.CommandRequest
): Effect.Effect<CommandSpec, Response> => {
  // the server's environment is shared, not copied, by the commands that add nothing to it
  const env = hasKeys(body.env) ? { ...ctx.baseEnv, ...body.env } : ctx.baseEnv
  if (body.cwd === "") return Effect.succeed({ cmd: body.cmd, cwd: ctx.cwd, env })
  const cwd = Path.resolve(ctx.cwd, body.cwd)
  return Effect.flatMap(
    Effect.promise(() => Fs.stat(cwd).then((s) => s.isDirectory(), () => false)),
    (isDir) =>
      isDir
        ? Effect.succeed({ cmd: body.cmd, cwd, env })
        : Effect.fail(plain(400, `Invalid working directory: ${body.cwd}`))
  )
}

/**
 * Node's `close` of the command (exited, all its pipes closed), listened to at once. Waiting is
 * interruptible, even when the server was built in an uninterruptible region (a layer), whose flags
 * its handlers inherit; interrupted before the close (the client went away), it kills the
 * command's group, TERM then KILL.
 */
const closed = (ctx: AppContext, spawned: Spawned): Effect.Effect<CommandExit> => {
  let exit: CommandExit | undefined
  let resume: ((effect: Effect.Effect<CommandExit>) => void) | undefined
  spawned.child.once("close", (code, signal) => {
    exit = commandExit(code, signal)
    resume?.(Effect.succeed(exit))
  })
  return Effect.async<CommandExit>((callback) => {
    if (exit !== undefined) callback(Effect.succeed(exit))
    else resume = callback
  }).pipe(
    Effect.interruptible,
    Effect.onInterrupt(() => exit === undefined ? ctx.groups.kill(spawned.pid) : Effect.void)
  )
}

/**
 * `/run`: the whole output once the command has closed; `error` only for a non-zero code. Unlike
 * the stock, a client that goes away stops the command.
 */
export const run = (ctx: AppContext, request: Request) =>
  withBody(
    ctx,
    request,
    decodeCommand,
    (body) =>
      Effect.flatMap(commandSpec(ctx, body), (spec) =>
        Effect.matchEffect(ctx.groups.spawn(spec), {
          onFailure: () => Effect.succeed(plain(500, "Failed to start command")),
          onSuccess: (spawned) => {
            // both pipes are drained concurrently: no deadlock on a full stderr pipe
            const stdout: Array<Buffer> = []
            const stderr: Array<Buffer> = []
            spawned.child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk))
            spawned.child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk))
            return Effect.map(closed(ctx, spawned), ({ code }) =>
              json(
                200,
                `{"stdout":${GoJson.string(GoJson.fromBytes(Buffer.concat(stdout)))},"stderr":${
                  GoJson.string(GoJson.fromBytes(Buffer.concat(stderr)))
                }${code !== 0 ? `,"error":"Non-zero exit code"` : ""},"code":${code}}`
              ))
          }
        })).pipe(Effect.merge)
  )

/** Turns the chunks of one pipe into SSE frames (undefined: nothing to send yet). */
export interface PipeFramer {
  readonly data: (chunk: Buffer) => Uint8Array | undefined
  readonly end: () => Uint8Array | undefined
}

/** The framing of `/run_streaming`: `output` events of whole lines. */
const lineFramer = (stream: StreamName): PipeFramer => {
  const splitter = LineSplitter.make({ maxLineBytes: maxStreamLineBytes, trim: "all" })
  const frames = (lines: ReadonlyArray<string>) => lines.length > 0 ? Sse.outputFrames(lines, stream) : undefined
  return { data: (chunk) => frames(splitter.push(chunk)), end: () => frames(splitter.end()) }
}

/**
 * The SSE body of one running command, as a Node stream written straight to the response: `head`
 * first (if any), the frames of each pipe read, then `complete` once the command has closed. A
 * full response pauses both pipes (so a slow client pauses the command); a body destroyed or a
 * response closed before the command closed (the client went away) kills its group.
 */
export const commandBody = (
  ctx: AppContext,
  spawned: Spawned,
  response: Http.ServerResponse,
  framer: (stream: StreamName) => PipeFramer,
  head?: Uint8Array
): Readable => {
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
  if (head !== undefined) body.push(head)
  const emit = (frames: Uint8Array | undefined) => {
    if (frames !== undefined && !body.push(frames) && !killed) {
      for (const pipe of pipes) pipe.pause()
    }
  }
  const forward = (pipe: NodeJS.ReadableStream, stream: StreamName) => {
    const frames = framer(stream)
    pipe.on("data", (chunk: Buffer) => emit(frames.data(chunk)))
    pipe.once("end", () => emit(frames.end()))
    pipe.on("error", () => {})
  }
  forward(child.stdout, "stdout")
  forward(child.stderr, "stderr")
  child.once("close", (code, signal) => {
    closed = true
    const exit = commandExit(code, signal).code
    body.push(Sse.frame("complete", `{"code":${exit},"error":${exit !== 0}}`))
    body.push(null)
  })
  // also when the connection closes before the body is piped to it
  response.once("close", () => {
    if (!response.writableFinished) kill()
  })
  return body
}

/** The reply of the SSE endpoints to a command that could not start: one `error` event. */
export const startFailed = (): Response =>
  Sse.sse(Stream.make(Sse.frame("error", `{"error": "Failed to start command"}`)))

/** `/run_streaming`: `output` events as lines arrive, then `complete`; a start failure is an `error` event. */
export const runStreaming = (ctx: AppContext, request: Request) =>
  withBody(
    ctx,
    request,
    decodeCommand,
    (body) =>
      Effect.flatMap(commandSpec(ctx, body), (spec) =>
        Effect.match(ctx.groups.spawn(spec), {
          onFailure: startFailed,
          onSuccess: (spawned) => Sse.sseRaw(commandBody(ctx, spawned, request.response, lineFramer))
        })).pipe(Effect.merge)
  )
