/** Output streaming: lines and bytes through the SDK's `stream` against fetch + SSE split. */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import * as H from "../harness.js"
import { size } from "../options.js"
import * as Raw from "../raw.js"
import { memoryRows, row } from "../rows.js"
import { type Figure, sdk, type World } from "../world.js"

/** Lines/s and RSS growth of the SDK's `stream` and of fetch + SSE split on the same command. */
const streamBoth = async (world: World, cmd: string, rounds: number, expectLines: number) => {
  const sdkLines = (cmd: string) =>
    sdk(world, Effect.flatMap(Executor.Executor, (executor) => Stream.runCount(executor.stream(cmd))))
  const rawLines = async (cmd: string) => {
    let lines = 0
    await Raw.runLines(world.executor, cmd, () => {
      lines++
    })
    return lines
  }
  // warm-up, so that both paths are compiled by the JIT before they are timed
  await sdkLines("seq 1 50000")
  await rawLines("seq 1 50000")
  const sdkOnce = () => H.withPeakRss(() => sdkLines(cmd))
  const rawOnce = () => H.withPeakRss(() => rawLines(cmd))
  const { a, b } = await H.interleave(rounds, sdkOnce, rawOnce)
  for (const r of [...a, ...b]) {
    if (r.value !== expectLines) throw new Error(`expected ${expectLines} lines, got ${r.value}`)
  }
  return {
    sdkRate: H.median(a.map((r) => (expectLines / r.millis) * 1000)),
    rawRate: H.median(b.map((r) => (expectLines / r.millis) * 1000)),
    sdkRss: H.mib(Math.max(...a.map((r) => r.rssGrowth))),
    rawRss: H.mib(Math.max(...b.map((r) => r.rssGrowth)))
  }
}

export const streamSeq: Figure = {
  key: "stream",
  title: "stream of seq",
  run: async (world) => {
    const n = size(1_000_000, 100_000)
    const rounds = size(3, 1)
    const r = await streamBoth(world, `seq 1 ${n}`, rounds, n)
    const detail = `median of ${rounds}; baseline: fetch + minimal SSE split + JSON.parse per event`
    return [
      row("stream.rate", `stream(seq 1 ${n}) throughput`, "lines/s", r.sdkRate, r.rawRate, {
        kind: "ratioAtLeast",
        value: 0.8
      }, { detail }),
      row("stream.rss", `stream(seq 1 ${n}) peak RSS growth`, "MiB", r.sdkRss, r.rawRss, {
        kind: "valueAtMost",
        value: 64
      }, { detail: "max over rounds" })
    ]
  }
}

export const outputStreams: Figure = {
  key: "outstreams",
  title: "concurrent output streams on one sandbox",
  run: async (world) => {
    const n = size(50, 10)
    const lines = 20_000
    const cmd = `seq 1 ${lines}`
    const sdkRound = (streams: number) =>
      sdk(
        world,
        Effect.flatMap(Executor.Executor, (executor) =>
          Effect.forEach(Array.from({ length: streams }), () =>
            Effect.either(Stream.runCount(executor.stream(cmd))), {
            concurrency: "unbounded"
          }))
      ).then((results) => ({
        lines: results.reduce((sum, r) =>
          sum + (Either.isRight(r) ? r.right : 0), 0),
        errors: results.filter((r) => Either.isLeft(r) || r.right !== lines).length
      }))
    const rawRound = (streams: number) =>
      Promise.allSettled(Array.from({ length: streams }, async () => {
        let count = 0
        const code = await Raw.runLines(world.executor, cmd, () => {
          count++
        })
        if (code !== 0) throw new Error(`exit code ${code}`)
        return count
      })).then((results) => ({
        lines: results.reduce((sum, r) => sum + (r.status === "fulfilled" ? r.value : 0), 0),
        errors: results.filter((r) => r.status === "rejected" || r.value !== lines).length
      }))
    // warm-up
    await sdkRound(2)
    await rawRound(2)
    const before = await H.settledMemory(world.executorPid)
    const a = await H.timed(() => sdkRound(n))
    const after = await H.settledMemory(world.executorPid)
    const b = await H.timed(() => rawRound(n))
    const load = `${n} concurrent stream(${cmd})`
    return [
      row(
        "outstreams.rate",
        `${load}, all lines`,
        "lines/s",
        (a.value.lines / a.millis) * 1000,
        (b.value.lines / b.millis) * 1000,
        {
          kind: "report"
        },
        {
          detail: `one round each; lines counted: SDK ${a.value.lines}, baseline ${b.value.lines} of ${
            n * lines
          }; baseline: fetch + minimal SSE split + JSON.parse per event`
        }
      ),
      row("outstreams.errors", `${load}, errors (failed or short streams)`, "errors", a.value.errors, b.value.errors, {
        kind: "valueAtMost",
        value: 0
      }),
      ...memoryRows("outstreams", load, before, after, "the SDK's streams only")
    ]
  }
}

export const streamBig: Figure = {
  key: "bigstream",
  title: "large output through stream",
  run: async (world) => {
    const mb = size(100, 10)
    // 1000 characters + newline per line; a quarter of the volume first, to tell accumulation
    // (growth that follows the volume) from garbage not yet collected (a constant)
    const cmd = (lines: number) => `yes "$(head -c 1000 /dev/zero | tr '\\0' x)" | head -n ${lines}`
    const small = await streamBoth(world, cmd(mb * 250), 1, mb * 250)
    const r = await streamBoth(world, cmd(mb * 1000), 1, mb * 1000)
    const mbps = (rate: number) => (rate * 1001) / 1e6
    const limit = small.sdkRss + 16
    return [
      row("bigstream.rss", `${mb} MB of output through stream, peak RSS growth`, "MiB", r.sdkRss, r.rawRss, {
        kind: "valueAtMost",
        value: Math.round(limit)
      }, {
        detail: `flat = at most 16 MiB above the growth with ${mb / 4} MB (${small.sdkRss.toFixed(1)} MiB); ${
          mb * 1000
        } lines of 1000 characters`
      }),
      row("bigstream.rate", `${mb} MB of output through stream, throughput`, "MB/s", mbps(r.sdkRate), mbps(r.rawRate), {
        kind: "report"
      })
    ]
  }
}
