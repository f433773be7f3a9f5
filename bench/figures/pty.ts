/** Keystroke-to-echo round trip through a pty (issue 14). */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as H from "../harness.js"
import { size } from "../options.js"
import type * as Raw from "../raw.js"
import { row } from "../rows.js"
import { type Figure, sdk, type World } from "../world.js"

/** A hand-written `/spawn` client of `cat` (no terminal): `key` writes a byte through `/stdin` and waits for its echo. */
const rawEcho = async (endpoint: Raw.Endpoint) => {
  const auth = { authorization: `Bearer ${endpoint.secret}` }
  const abort = new AbortController()
  const response = await fetch(`${endpoint.url}/spawn`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ cmd: "cat" }),
    signal: abort.signal
  })
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ""
  let echoed = 0
  let wake: (() => void) | undefined
  let started: (id: string) => void = () => {}
  const id = new Promise<string>((resolve) => (started = resolve))
  void (async () => {
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }))
      if (done) return
      buffer += value
      let end: number
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const [head, data] = buffer.slice(0, end).split("\n")
        buffer = buffer.slice(end + 2)
        const payload = JSON.parse(data!.slice(6)) as { id?: string; data?: string }
        if (head === "event: started") started(payload.id!)
        else if (head === "event: output") echoed += Buffer.from(payload.data!, "base64").length
      }
      wake?.()
    }
  })()
  const session = await id
  let sent = 0
  return {
    key: async () => {
      sent++
      const echo = new Promise<void>((resolve) => (wake = () => echoed >= sent && resolve()))
      await fetch(`${endpoint.url}/stdin?id=${session}`, { method: "POST", headers: auth, body: "x" }).then((r) =>
        r.text()
      )
      if (echoed < sent) await echo
    },
    close: () => abort.abort()
  }
}

/** The SDK's `spawn` of `cat` on a pty in raw mode: `key` writes a byte and waits for `cat`'s echo of it. */
const ptyEcho = async (world: World) => {
  const scope = await sdk(world, Scope.make())
  const session = await sdk(
    world,
    Effect.gen(function*() {
      const executor = yield* Executor.Executor
      const running = yield* executor.spawn("stty raw -echo && echo ready && cat", { pty: { cols: 80, rows: 24 } })
      const pull = yield* Stream.toPull(running.output)
      let echoed = 0
      const until = (bytes: number) =>
        Effect.gen(function*() {
          while (echoed < bytes) {
            for (const chunk of yield* pull) echoed += chunk.data.length
          }
        })
      return { running, until }
    }).pipe(Scope.extend(scope))
  )
  // raw mode has no output processing: "ready\n", 6 bytes
  let sent = 6
  await sdk(world, session.until(sent))
  return {
    key: () => sdk(world, Effect.zipRight(session.running.stdin.write("x"), session.until(++sent))),
    close: () => sdk(world, Scope.close(scope, Exit.void))
  }
}

/** Keystroke-to-echo round trip through a pty, against the same byte echoed by `cat` through a raw `/spawn` client. */
export const ptyRoundTrip: Figure = {
  key: "pty",
  title: "keystroke-to-echo round trip through a pty",
  run: async (world) => {
    const keys = size(200, 40)
    const terminal = await ptyEcho(world)
    const raw = await rawEcho(world.executor)
    try {
      for (let i = 0; i < 20; i++) {
        await terminal.key()
        await raw.key()
      }
      const rounds = await H.interleave(
        keys,
        async () => (await H.timed(terminal.key)).millis,
        async () => (await H.timed(raw.key)).millis
      )
      const detail = `${keys} keystrokes each, interleaved; SDK: spawn("cat", { pty }) in raw mode, write 1 byte, ` +
        "await its echo; baseline: fetch /spawn of cat (no pty), POST /stdin of 1 byte, await its output event"
      return [
        row("pty.median", "pty keystroke → echo, median", "ms", H.median(rounds.a), H.median(rounds.b), {
          kind: "ratioAtMost",
          value: 1.5
        }, { detail }),
        row("pty.p95", "pty keystroke → echo, p95", "ms", H.quantile(rounds.a, 0.95), H.quantile(rounds.b, 0.95), {
          kind: "report"
        }, { detail })
      ]
    } finally {
      raw.close()
      await terminal.close()
    }
  }
}
