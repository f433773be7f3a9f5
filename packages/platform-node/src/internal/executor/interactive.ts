/**
 * The `interactive` extension: commands with a stdin, raw output and signals.
 *
 * - `POST /spawn` (a `CommandRequest` body) starts `sh -c cmd` in a process group of its own with
 *   a stdin pipe and answers an SSE stream: `started` (`{"id","pid"}`), `output` events of the raw
 *   bytes of each pipe read (base64, not split into lines), then `complete`. Closing that
 *   connection stops the command's group, as on `/run_streaming`.
 * - `POST /stdin?id=` writes its raw body to the command's stdin; the reply comes once the child's
 *   stdin pipe has accepted every byte. The body is read only as fast as the pipe takes it, so a
 *   command that does not read its stdin holds the request (and the client) back instead of
 *   making the executor buffer. Bytes sent after the command closed its stdin are discarded
 *   (`{"success":true,"closed":true}`).
 * - `POST /stdin_end` and `POST /signal` (a `SpawnControlRequest` body) close the stdin and send a
 *   signal to the command's process group.
 * - The `pty` extension: `/spawn` with `pty: {cols, rows}` runs the command on a pseudo-terminal
 *   through `script` (see `pty.ts`); its output is all `stdout`, `/signal` goes to the terminal's
 *   foreground process group (as a key typed on a terminal would), `/stdin_end` types Ctrl-D, a
 *   client that goes away hangs the terminal up (`SIGHUP`) before the group is stopped, and
 *   `POST /resize` (a `ResizeRequest` body) sets the terminal's size.
 *
 * Why SSE plus plain POSTs rather than one WebSocket: every hop between the SDK and the executor
 * (Koyeb's gateway, the emulator's forwarder, corporate proxies) already carries streamed HTTP
 * responses and ordinary requests, while the emulator's gateway, like many proxies, drops the
 * `Upgrade` header a WebSocket needs. Each request carries the same bearer secret as any other.
 *
 * @internal
 */
import * as ExecutorWire from "@effect-koyeb/core/ExecutorWire"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Crypto from "node:crypto"
import * as Os from "node:os"
import * as GoJson from "../goJson.js"
import { signal as kill, type Spawned } from "../processGroups.js"
import type { StreamName } from "../processTable.js"
import { commandBody, commandSpec, type PipeFramer, startFailed } from "./commands.js"
import type { AppContext } from "./context.js"
import { json, onlyMethod, plain, queryParam, type Request, type Response, withBody } from "./http.js"
import * as Pty from "./pty.js"
import * as Sse from "./sse.js"

/** A command started by `/spawn`; `pty` when it runs on a terminal (its `pid` is then `script`'s). */
interface Session {
  readonly spawned: Spawned
  readonly pty: boolean
}

/** The running commands started by `/spawn`, by id. */
export type Sessions = Map<string, Session>

/** An empty registry, one per server. */
export const makeSessions = (): Sessions => new Map()

const decodeSpawn = GoJson.decoder(ExecutorWire.SpawnRequest)
const decodeControl = GoJson.decoder(ExecutorWire.SpawnControlRequest)
const decodeResize = GoJson.decoder(ExecutorWire.ResizeRequest)

const rawFramer = (stream: StreamName): PipeFramer => ({
  data: (chunk) => Sse.frame("output", `{"stream":"${stream}","data":"${chunk.toString("base64")}"}`),
  end: () => undefined
})

const notFound = (id: string) => json(404, `{"success":false,"error":${GoJson.string(`command not found: ${id}`)}}`)
const success = json(200, `{"success":true}`)
const discarded = json(200, `{"success":true,"closed":true}`)

/** The reply to a terminal asked of an executor without `script` (which then does not advertise `pty`). */
const noTerminal = plain(501, "pty unsupported: no script (util-linux) in the commands' PATH")

/** `/spawn` (POST); `pty`: whether terminals can be had (`script` found). */
export const spawn = (ctx: AppContext, sessions: Sessions, request: Request, pty: boolean) =>
  onlyMethod(
    "POST",
    request,
    () =>
      withBody(ctx, request, decodeSpawn, (body) =>
        body.pty != null && !pty ?
          Effect.succeed(noTerminal) :
          Effect.flatMap(commandSpec(ctx, body), (spec) =>
            Effect.match(
              ctx.groups.spawn({
                ...spec,
                ...(body.pty == null ? {} : Pty.wrap(spec.cmd, spec.env, body.pty)),
                stdin: true
              }),
              {
                onFailure: startFailed,
                onSuccess: (spawned) => {
                  const id = Crypto.randomUUID()
                  const pty = body.pty != null
                  sessions.set(id, { spawned, pty })
                  spawned.child.stdin.on("error", () => {})
                  spawned.child.once("close", () => sessions.delete(id))
                  const response = request.response
                  if (pty) {
                    // a client gone: the terminal hangs up, as closing a terminal window does
                    response.once("close", () => {
                      if (!response.writableFinished && sessions.has(id)) {
                        hangUp(spawned.pid)
                      }
                    })
                  }
                  const head = Sse.frame("started", `{"id":"${id}","pid":${spawned.pid}}`)
                  return Sse.sseRaw(commandBody(ctx, spawned, response, rawFramer, head))
                }
              }
            )).pipe(Effect.merge))
  )

const hangUp = (pid: number) => {
  const terminal = Pty.terminalOf(pid)
  if (terminal === undefined) return
  kill(-terminal.foreground, "SIGHUP")
  kill(terminal.leader, "SIGHUP")
}

/** `/stdin?id=` (POST): the body, written to the command's stdin at the pace the pipe takes it. */
export const stdin = (sessions: Sessions, request: Request) =>
  onlyMethod("POST", request, () =>
    Effect.async<Response>((resume) => {
      const id = queryParam(request, "id")
      const session = sessions.get(id)
      if (session === undefined) return resume(Effect.succeed(notFound(id)))
      const incoming = request.incoming
      const pipe = session.spawned.child.stdin
      let pending = 0
      let ended = false
      let replied = false
      const reply = (response: Response) => {
        if (replied) return
        replied = true
        cleanup()
        incoming.resume() // drain what is left of a discarded body
        resume(Effect.succeed(response))
      }
      const closed = () => pipe.destroyed || pipe.writableEnded
      const settle = () => {
        if (ended && pending === 0) reply(closed() ? discarded : success)
      }
      const onData = (chunk: Buffer) => {
        if (closed()) return reply(discarded)
        pending++
        const accepted = pipe.write(chunk, (error) => {
          pending--
          if (error != null) reply(discarded)
          else settle()
        })
        if (!accepted) {
          incoming.pause()
          pipe.once("drain", onDrain)
        }
      }
      const onDrain = () => incoming.resume()
      const onEnd = () => {
        ended = true
        settle()
      }
      const onPipeClosed = () => reply(discarded)
      const cleanup = () => {
        incoming.off("data", onData)
        incoming.off("end", onEnd)
        pipe.off("drain", onDrain)
        pipe.off("close", onPipeClosed)
      }
      incoming.on("data", onData)
      incoming.on("end", onEnd)
      pipe.once("close", onPipeClosed)
      if (incoming.readableEnded) onEnd()
      return Effect.sync(cleanup)
    }))

const endOfTransmission = Buffer.of(4)

/** `/stdin_end` (POST): closes the command's stdin; on a terminal, types Ctrl-D (the terminal stays open). */
export const stdinEnd = (ctx: AppContext, sessions: Sessions, request: Request) =>
  onlyMethod("POST", request, () =>
    withBody(ctx, request, decodeControl, (body) =>
      Effect.sync(() => {
        const session = sessions.get(body.id)
        if (session === undefined) return notFound(body.id)
        // On a terminal, end of input is a typed Ctrl-D: closing `script`'s stdin instead makes it
        // send one only once the command has read everything pending, and never after 2 s of waiting.
        if (session.pty) session.spawned.child.stdin.write(endOfTransmission)
        else session.spawned.child.stdin.end()
        return success
      })))

/**
 * `/signal` (POST): sends the named signal to the command's process group, or for a command on a
 * terminal to the terminal's foreground process group (falling back to `script`'s group before
 * the terminal exists).
 */
export const signal = (ctx: AppContext, sessions: Sessions, request: Request) =>
  onlyMethod("POST", request, () =>
    withBody(ctx, request, decodeControl, (body) =>
      Effect.sync(() => {
        if (!Object.hasOwn(Os.constants.signals, body.signal)) return plain(400, `Invalid signal: ${body.signal}`)
        const session = sessions.get(body.id)
        if (session === undefined) return notFound(body.id)
        const pid = session.spawned.pid
        kill(-(session.pty ? Pty.terminalOf(pid)?.foreground ?? pid : pid), body.signal as NodeJS.Signals)
        return success
      })))

// How long `/resize` waits for a command just spawned to hold its terminal.
const terminalWait = Schedule.spaced("20 millis").pipe(Schedule.upTo("2 seconds"))

/** `/resize` (POST): sets the size of a command's terminal; the kernel sends it `SIGWINCH`. */
export const resize = (ctx: AppContext, sessions: Sessions, request: Request) =>
  onlyMethod("POST", request, () =>
    withBody(ctx, request, decodeResize, (body) =>
      Effect.gen(function*() {
        const session = sessions.get(body.id)
        if (session === undefined) return notFound(body.id)
        if (!session.pty) return plain(400, "The command has no terminal")
        const pid = session.spawned.pid
        const terminal = yield* Effect.sync(() => Pty.terminalOf(pid)).pipe(
          Effect.filterOrFail((t) => t !== undefined || !sessions.has(body.id)),
          Effect.retry(terminalWait),
          Effect.orElseSucceed(() => undefined)
        )
        // a terminal gone (or never held) means the command is ending: nothing to resize
        if (terminal !== undefined) yield* Pty.resize(terminal.device, body)
        return success
      })))
