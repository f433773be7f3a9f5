/**
 * The command endpoints: `/run` (buffered) and `/run_streaming` (SSE), both `sh -c cmd` in a
 * process group of its own. Fixes over the stock: both pipes are drained at once (no stderr
 * deadlock), and a client that goes away stops the whole group, even a silent one.
 *
 * @internal
 */
import * as ExecutorWire from "@effect-koyeb/core/ExecutorWire"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
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

/** Validates `cwd` (400 when not a directory) and builds the spawn spec. */
export const commandSpec = (
  ctx: AppContext,
  body: ExecutorWire.CommandRequest
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
      resolve(commandExit(code, signal))
    })
  })
  return { await: Effect.promise(() => promise), isClosed: () => closed }
}

/**
 * Spawns for the lifetime of the current scope; an interrupted request (the platform interrupts
 * the handler when the client goes away) kills the command's group, TERM then KILL.
 */
const spawnScoped = (ctx: AppContext, spec: CommandSpec) =>
  Effect.acquireRelease(
    Effect.map(ctx.groups.spawn(spec), (spawned) => ({ spawned, closed: closeSignal(spawned) })),
    ({ closed, spawned }, exit) =>
      Exit.isInterrupted(exit) && !closed.isClosed() ? ctx.groups.kill(spawned.pid) : Effect.void
  )

/**
 * `/run`: the whole output once the command has closed; `error` only for a non-zero code. Unlike
 * the stock, a client that goes away stops the command. Interruptible even when the server was
 * built in an uninterruptible region (a layer): its handlers inherit the flags of that region.
 */
export const run = (ctx: AppContext, request: Request) =>
  withBody(ctx, request, decodeCommand, (body) =>
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
        `{"stdout":${GoJson.string(GoJson.fromBytes(Buffer.concat(stdout)))},"stderr":${
          GoJson.string(GoJson.fromBytes(Buffer.concat(stderr)))
        }${code !== 0 ? `,"error":"Non-zero exit code"` : ""},"code":${code}}`
      )
    }).pipe(Effect.merge, Effect.scoped, Effect.interruptible))

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

const startFailedFrame = Sse.frame("error", `{"error": "Failed to start command"}`)

/** `/run_streaming`: `output` events as lines arrive, then `complete`; a start failure is an `error` event. */
export const runStreaming = (ctx: AppContext, request: Request) =>
  withBody(
    ctx,
    request,
    decodeCommand,
    (body) =>
      Effect.flatMap(commandSpec(ctx, body), (spec) =>
        Effect.match(ctx.groups.spawn(spec), {
          onFailure: () => Sse.sse(Stream.make(startFailedFrame)),
          onSuccess: (spawned) =>
            Sse.sseRaw(commandBody(ctx, spawned, NodeHttpServerRequest.toServerResponse(request), lineFramer))
        })).pipe(Effect.merge)
  )
