/** Latency of one `run("true")` call. */
import * as H from "../harness.js"
import { size } from "../options.js"
import * as Raw from "../raw.js"
import { row } from "../rows.js"
import { type Figure, run, sdk } from "../world.js"

export const latency: Figure = {
  key: "latency",
  title: `run("true") latency, keep-alive`,
  run: async (world) => {
    const iterations = size(300, 40)
    const sdkRun = () => sdk(world, run("true"))
    const rawRun = () => Raw.runText(world.executor, "true")
    for (let i = 0; i < 20; i++) {
      await sdkRun()
      await rawRun()
    }
    const sdkTimes: Array<number> = []
    const rawTimes: Array<number> = []
    for (let i = 0; i < iterations; i++) {
      const first = i % 2 === 0
      if (first) sdkTimes.push((await H.timed(sdkRun)).millis)
      rawTimes.push((await H.timed(rawRun)).millis)
      if (!first) sdkTimes.push((await H.timed(sdkRun)).millis)
    }
    const detail = `${iterations} calls each, interleaved; baseline: fetch POST /run_streaming, whole body read`
    return [
      row("latency.median", `run("true") median latency`, "ms", H.median(sdkTimes), H.median(rawTimes), {
        kind: "ratioAtMost",
        value: 1.25
      }, { detail }),
      row("latency.p95", `run("true") p95 latency`, "ms", H.quantile(sdkTimes, 0.95), H.quantile(rawTimes, 0.95), {
        kind: "ratioAtMost",
        value: 1.25
      }, { detail })
    ]
  }
}
