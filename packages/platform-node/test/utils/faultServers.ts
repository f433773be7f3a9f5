/**
 * Hostile executors for fault tests: a scoped `node:http` server on 127.0.0.1:0 whose handler
 * misbehaves at will (resets, truncated replies, malformed SSE, silence), plus SSE frame helpers
 * and a way to crash a real executor process with its whole tree, as a dead machine would.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type * as Net from "node:net"

/** Handles one request; the request body is already drained. */
export type Handler = (request: Http.IncomingMessage, response: Http.ServerResponse) => void

/** Serves `handler` on 127.0.0.1:0 until the scope closes (open connections are destroyed); returns the base URL. */
export const serve = (handler: Handler): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<Http.Server>((resume) => {
      const server = Http.createServer((request, response) => {
        request.resume()
        request.on("end", () => handler(request, response))
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`))

/** Starts an SSE reply (status 200, headers sent at once). */
export const sseHead = (response: Http.ServerResponse): void => {
  response.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" })
  response.flushHeaders()
}

/** One SSE frame. */
export const frame = (event: string, data: string): string => `event: ${event}\ndata: ${data}\n\n`

/** An `output` frame of `/run_streaming`. */
export const output = (stream: "stdout" | "stderr", data: string): string =>
  frame("output", JSON.stringify({ data, stream }))

/** The `complete` frame of `/run_streaming`. */
export const complete = (code: number): string => frame("complete", JSON.stringify({ code, error: code !== 0 }))

/** Sends the first `bytes` of a JSON reply that announces its full length, then resets the connection. */
export const truncatedBody = (response: Http.ServerResponse, body: string, bytes: number): void => {
  response.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) })
  response.write(body.slice(0, bytes), () => response.socket?.resetAndDestroy())
}

/** Pids of every descendant of `pid` (Linux /proc walk). */
export const descendants = (pid: number): Array<{ readonly pid: number; readonly command: string }> => {
  const children = new Map<number, Array<number>>()
  for (const entry of Fs.readdirSync("/proc")) {
    const child = Number(entry)
    if (!Number.isInteger(child)) continue
    try {
      const stat = Fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      children.set(ppid, [...(children.get(ppid) ?? []), child])
    } catch {
      // exited meanwhile
    }
  }
  const out: Array<{ pid: number; command: string }> = []
  const stack = [pid]
  while (stack.length > 0) {
    for (const child of children.get(stack.pop()!) ?? []) {
      let command = ""
      try {
        command = Fs.readFileSync(`/proc/${child}/cmdline`, "utf8").replace(/\0/g, " ")
      } catch {
        // exited meanwhile
      }
      out.push({ pid: child, command })
      stack.push(child)
    }
  }
  return out
}

/** SIGKILLs `pid` and all its descendants at once: the executor and its commands die as with a lost machine. */
export const crash = (pid: number): Effect.Effect<void> =>
  Effect.sync(() => {
    for (const target of [pid, ...descendants(pid).map((d) => d.pid)]) {
      try {
        process.kill(target, "SIGKILL")
      } catch {
        // already gone
      }
    }
  })

/** Polls `check` every 20 ms until it holds. */
export const until = (check: () => boolean): Effect.Effect<void> =>
  Effect.suspend(() => (check() ? Effect.void : Effect.zipRight(Effect.sleep("20 millis"), until(check))))
