/** Latency of `Filesystem.watch` events (issue 14). */
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as H from "../harness.js"
import { size } from "../options.js"
import type * as Raw from "../raw.js"
import { row } from "../rows.js"
import { type Figure, sdk, stockFilesystem, workDir } from "../world.js"

/** A hand-written `/watch` client (fetch + SSE split): calls `onChange` with each `change` event's path. */
const rawWatch = async (endpoint: Raw.Endpoint, path: string, onChange: (path: string) => void) => {
  const controller = new AbortController()
  const response = await fetch(`${endpoint.url}/watch?path=${encodeURIComponent(path)}&recursive=false`, {
    headers: { authorization: `Bearer ${endpoint.secret}` },
    signal: controller.signal
  })
  if (response.status !== 200 || response.body === null) throw new Error(`/watch: status ${response.status}`)
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ""
  let ready: () => void = () => {}
  const isReady = new Promise<void>((resolve) => (ready = resolve))
  const pump = async () => {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      buffer += value
      let end: number
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const frame = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        if (frame.startsWith("event: ready")) ready()
        if (frame.startsWith("event: change")) {
          onChange((JSON.parse(frame.slice(frame.indexOf("data: ") + 6)) as { path: string }).path)
        }
      }
    }
  }
  pump().catch(() => {})
  await isReady
  return () => controller.abort()
}

/** Milliseconds from a file write on the host (the sandbox's disk) to its event, `samples` times. */
const writeToEvent = async (dir: string, prefix: string, samples: number, next: (path: string) => Promise<void>) => {
  const times: Array<number> = []
  for (let i = 0; i < samples; i++) {
    const path = Path.join(dir, `${prefix}-${i}`)
    const t0 = H.now()
    const seen = next(path)
    Fs.writeFileSync(path, "x")
    await seen
    times.push(H.now() - t0)
  }
  return times
}

/** Waits for paths, in order: `next(path)` resolves once `path` was reported. */
const pathWaiter = () => {
  const seen = new Set<string>()
  let waiting: { readonly path: string; readonly resolve: () => void } | undefined
  return {
    report: (path: string) => {
      seen.add(path)
      if (waiting !== undefined && seen.has(waiting.path)) waiting.resolve()
    },
    next: (path: string) =>
      new Promise<void>((resolve) => {
        waiting = { path, resolve }
        if (seen.has(path)) resolve()
      })
  }
}

/** Watch-event latency: the SDK's `Filesystem.watch` against a raw SSE client of the same `/watch`; polling reported. */
export const watchLatency: Figure = {
  key: "watch",
  title: "watch-event latency",
  run: async (world) => {
    const samples = size(100, 20)
    const dir = Fs.mkdtempSync(Path.join(workDir, "watch-"))
    const sdkWatch = (stock: boolean, interval: Duration.DurationInput, prefix: string, count: number) => {
      const waiter = pathWaiter()
      return sdk(
        world,
        Effect.scoped(Effect.gen(function*() {
          const fs = stock ? yield* stockFilesystem : yield* Filesystem.Filesystem
          const events = yield* fs.watchScoped(dir, { pollInterval: interval })
          yield* Effect.forkScoped(Stream.runForEach(events, (event) => Effect.sync(() => waiter.report(event.path))))
          return yield* Effect.promise(() => writeToEvent(dir, prefix, count, waiter.next))
        }))
      )
    }
    const rawOnce = async (prefix: string, count: number) => {
      const waiter = pathWaiter()
      const close = await rawWatch(world.executor, dir, waiter.report)
      try {
        return await writeToEvent(dir, prefix, count, waiter.next)
      } finally {
        close()
      }
    }
    const sdkTimes: Array<number> = []
    const rawTimes: Array<number> = []
    for (let round = 0; round < 2; round++) {
      sdkTimes.push(...await sdkWatch(false, "500 millis", `sdk${round}`, samples / 2))
      rawTimes.push(...await rawOnce(`raw${round}`, samples / 2))
    }
    const polled = await sdkWatch(true, "100 millis", "poll", size(20, 5))
    Fs.rmSync(dir, { recursive: true, force: true })
    return [
      row(
        "watch.latency",
        "write to watch event (watch extension), median",
        "ms",
        H.median(sdkTimes),
        H.median(rawTimes),
        {
          kind: "report"
        },
        { detail: `baseline: a raw fetch + SSE client of the same /watch; ${samples} writes each` }
      ),
      row(
        "watch.poll",
        "write to watch event (stock polling, 100 ms interval), median",
        "ms",
        H.median(polled),
        H.median(rawTimes),
        {
          kind: "report"
        },
        { detail: "baseline: the raw /watch client above; polling costs one find per interval" }
      )
    ]
  }
}
