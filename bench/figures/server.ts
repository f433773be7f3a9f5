/** Streaming throughput of the executor server itself. */
import * as H from "../harness.js"
import { size } from "../options.js"
import * as Raw from "../raw.js"
import { row } from "../rows.js"
import type { Figure } from "../world.js"

export const serverStreaming: Figure = {
  key: "server",
  title: "ExecutorServer streaming throughput",
  run: async (world) => {
    const naive = await world.naive()
    const n = size(1_000_000, 100_000)
    const rounds = size(3, 1)
    const count = (endpoint: Raw.Endpoint) => () =>
      H.timed(async () => {
        const lines = await Raw.countOutputEvents(endpoint, `seq 1 ${n}`)
        if (lines !== n) throw new Error(`expected ${n} lines, got ${lines}`)
      })
    await count(world.executor)()
    await count(naive)()
    const { a, b } = await H.interleave(rounds, count(world.executor), count(naive))
    return [
      row(
        "server.rate",
        `ExecutorServer /run_streaming seq 1 ${n}, raw client`,
        "lines/s",
        H.median(a.map((r) => (n / r.millis) * 1000)),
        H.median(b.map((r) => (n / r.millis) * 1000)),
        { kind: "ratioAtLeast", value: 3 },
        {
          detail:
            `median of ${rounds}; client counts events without decoding; baseline: node:http server, one write per SSE event (as the stock executor)`
        }
      )
    ]
  }
}
