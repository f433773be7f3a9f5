/** Many `run` calls on one sandbox, concurrent and sequential, and the memory they leave. */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as H from "../harness.js"
import { size } from "../options.js"
import * as Raw from "../raw.js"
import { memoryRows, row } from "../rows.js"
import { type Figure, run, sdk } from "../world.js"

export const concurrent: Figure = {
  key: "concurrent",
  title: "concurrent run calls on one sandbox",
  run: async (world) => {
    const n = size(200, 50)
    const rounds = size(5, 1)
    let sdkErrors = 0
    let rawErrors = 0
    const sdkRound = async () => {
      const results = await sdk(
        world,
        Effect.forEach(Array.from({ length: n }), () => Effect.either(run("true")), { concurrency: "unbounded" })
      )
      sdkErrors += results.filter(Either.isLeft).length
    }
    const rawRound = async () => {
      const results = await Promise.allSettled(Array.from({ length: n }, () => Raw.runText(world.executor, "true")))
      rawErrors += results.filter((r) => r.status === "rejected" || r.value !== 0).length
    }
    await sdkRound()
    await rawRound()
    sdkErrors = rawErrors = 0
    const before = await H.settledMemory(world.executorPid)
    const { a, b } = await H.interleave(rounds, () => H.timed(sdkRound), () => H.timed(rawRound))
    const after = await H.settledMemory(world.executorPid)
    return [
      row(
        "concurrent.total",
        `${n} concurrent run("true"), total time`,
        "ms",
        H.median(a.map((r) => r.millis)),
        H.median(b.map((r) => r.millis)),
        { kind: "ratioAtMost", value: 1.3 },
        {
          detail: `median of ${rounds}; errors: SDK ${sdkErrors}, baseline ${rawErrors}`,
          extraPass: sdkErrors === 0
        }
      ),
      ...memoryRows(
        "concurrent",
        `${n} concurrent run("true")`,
        before,
        after,
        `${rounds} SDK and ${rounds} baseline rounds`
      )
    ]
  }
}

export const sequential: Figure = {
  key: "sequential",
  title: "sequential run calls on one sandbox",
  run: async (world) => {
    const n = size(1000, 100)
    const sdkRun = () => sdk(world, Effect.forEach(Array.from({ length: n }), () => Effect.either(run("true"))))
    const rawRun = async () => {
      let errors = 0
      for (let i = 0; i < n; i++) {
        errors += await Raw.runText(world.executor, "true").then((code) => (code === 0 ? 0 : 1), () => 1)
      }
      return errors
    }
    // warm-up
    for (let i = 0; i < 20; i++) {
      await sdk(world, run("true"))
      await Raw.runText(world.executor, "true")
    }
    const before = await H.settledMemory(world.executorPid)
    const a = await H.timed(sdkRun)
    const after = await H.settledMemory(world.executorPid)
    const b = await H.timed(rawRun)
    const sdkErrors = a.value.filter(Either.isLeft).length
    const rawErrors = b.value
    const load = `${n} sequential run("true")`
    return [
      row("sequential.rate", `${load} on one sandbox`, "commands/s", (n / a.millis) * 1000, (n / b.millis) * 1000, {
        kind: "report"
      }, { detail: `one round each; baseline: fetch POST /run_streaming one after another` }),
      row("sequential.errors", `${load}, errors`, "errors", sdkErrors, rawErrors, { kind: "valueAtMost", value: 0 }),
      ...memoryRows("sequential", load, before, after, "the SDK's commands only")
    ]
  }
}
