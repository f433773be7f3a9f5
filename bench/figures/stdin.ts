/** Bytes through `spawn`'s stdin (issue 14). */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as H from "../harness.js"
import { size } from "../options.js"
import * as Raw from "../raw.js"
import { row } from "../rows.js"
import { type Figure, run, sdk, workDir } from "../world.js"

const mbps = (bytes: number, millis: number) => bytes / 1e6 / (millis / 1000)

/**
 * Bytes through spawn's stdin into `wc -c`, against the same bytes piped into `wc -c` from a file
 * already in the sandbox (`cat file | wc -c`: `wc -c < file` would only stat the file).
 */
export const stdinThroughput: Figure = {
  key: "stdin",
  title: "stdin throughput into wc -c",
  run: async (world) => {
    const mb = size(100, 10)
    const bytes = mb * 1024 * 1024
    const file = Path.join(workDir, "stdin-baseline.bin")
    Fs.writeFileSync(file, Buffer.alloc(bytes, 120))
    // one chunk reused: the stream itself holds no more than a chunk
    const chunk = new Uint8Array(1024 * 1024).fill(120)
    const pipe = (chunks: number) => () =>
      sdk(
        world,
        Effect.flatMap(Executor.Executor, (executor) =>
          executor.run("wc -c", { stdin: Stream.repeatValue(chunk).pipe(Stream.take(chunks)) }))
      )
    const piped = pipe(mb)
    const fromFile = () => sdk(world, run(`cat ${file} | wc -c`))
    // the HTTP transfer by hand: one streamed raw body to `/write_file_bytes`, then `wc -c` of the file
    const upload = Path.join(workDir, "stdin-upload.bin")
    const byHand = async () => {
      let sent = 0
      const body = new ReadableStream<Uint8Array>({
        pull: (controller) => sent++ < mb ? controller.enqueue(chunk) : controller.close()
      })
      const response = await fetch(`${world.executor.url}/write_file_bytes?path=${encodeURIComponent(upload)}`, {
        method: "POST",
        headers: { authorization: `Bearer ${world.executor.secret}` },
        body,
        duplex: "half"
      } as RequestInit)
      if (response.status !== 200) throw new Error(`/write_file_bytes: ${response.status} ${await response.text()}`)
      await response.text()
      await Raw.run(world.executor, `wc -c < ${upload}`)
    }
    await pipe(2)()
    await fromFile()
    const rounds = size(3, 1)
    const sdkTimes: Array<number> = []
    const fileTimes: Array<number> = []
    const handTimes: Array<number> = []
    let peak = 0
    for (let i = 0; i < rounds; i++) {
      const measured = await H.withPeakRss(piped)
      if (measured.value.stdout.trim() !== String(bytes)) throw new Error(`wc -c read ${measured.value.stdout}`)
      sdkTimes.push(measured.millis)
      peak = Math.max(peak, measured.rssGrowth)
      fileTimes.push((await H.timed(fromFile)).millis)
      handTimes.push((await H.timed(byHand)).millis)
    }
    Fs.rmSync(file, { force: true })
    Fs.rmSync(upload, { force: true })
    return [
      row(
        "stdin.rate",
        `${mb} MB piped into wc -c through stdin`,
        "MB/s",
        mbps(bytes, H.median(sdkTimes)),
        mbps(bytes, H.median(fileTimes)),
        {
          kind: "ratioAtLeast",
          value: 0.5
        },
        { detail: `baseline: run("cat file | wc -c") of a ${mb} MB file already in the sandbox; median of ${rounds}` }
      ),
      row(
        "stdin.http",
        `${mb} MB piped into wc -c through stdin, against the bytes uploaded by hand`,
        "MB/s",
        mbps(bytes, H.median(sdkTimes)),
        mbps(bytes, H.median(handTimes)),
        { kind: "report" },
        { detail: "baseline: one streamed fetch to /write_file_bytes, then wc -c of the file" }
      ),
      row("stdin.rss", `${mb} MB piped into wc -c, peak RSS growth`, "MiB", H.mib(peak), 0, {
        kind: "valueAtMost",
        value: 64
      }, { detail: "flat: the SDK holds a few chunks of 256 KiB, whatever the volume" })
    ]
  }
}
