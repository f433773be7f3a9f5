/** Binary files written and read back, on our executor and on the stock protocol. */
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Effect from "effect/Effect"
import * as Crypto from "node:crypto"
import * as Path from "node:path"
import * as H from "../harness.js"
import { quick, size } from "../options.js"
import * as Raw from "../raw.js"
import { type Row, row } from "../rows.js"
import { type Figure, sdk, stockFilesystem, workDir } from "../world.js"

export const binary: Figure = {
  key: "binary",
  title: "binary write + read",
  run: async (world) => {
    const rows: Array<Row> = []
    const ours = await sdk(world, Filesystem.Filesystem)
    const stock = await sdk(world, stockFilesystem)
    // warm-up of every path
    const warm = new Uint8Array(Crypto.randomBytes(256 * 1024))
    const warmPath = Path.join(workDir, "binary-warm")
    for (const fs of [ours, stock]) {
      await sdk(world, Effect.zipRight(fs.writeFile(warmPath, warm), fs.readFile(warmPath)))
    }
    await Raw.writeBytesByHand(world.executor, warmPath, warm)
    await Raw.readBytesByHand(world.executor, warmPath)
    for (const mib of size([1, 16, 64], [1, 4])) {
      const bytes = new Uint8Array(Crypto.randomBytes(mib * 1024 * 1024))
      const rounds = quick ? 1 : mib >= 64 ? 1 : mib >= 16 ? 2 : 3
      const rawPath = Path.join(workDir, `binary-${mib}-raw`)
      const check = (back: Uint8Array) => {
        if (Buffer.compare(back, bytes) !== 0) throw new Error(`${mib} MiB: the bytes read back differ`)
      }
      const sdkOnce = (fs: Filesystem.FilesystemShape, sdkPath: string) => () =>
        H.withPeakRss(async () => {
          const write = await H.timed(() => sdk(world, fs.writeFile(sdkPath, bytes)))
          const read = await H.timed(() => sdk(world, fs.readFile(sdkPath)))
          check(read.value)
          return { write: write.millis, read: read.millis }
        })
      const rawOnce = () =>
        H.withPeakRss(async () => {
          const write = await H.timed(() => Raw.writeBytesByHand(world.executor, rawPath, bytes))
          const read = await H.timed(() => Raw.readBytesByHand(world.executor, rawPath))
          check(read.value)
          return { write: write.millis, read: read.millis }
        })
      const rate = (
        rs: ReadonlyArray<{ readonly value: { readonly write: number; readonly read: number } }>,
        k: "write" | "read"
      ) => H.median(rs.map((r) => (mib * 1.048576) / (r.value[k] / 1000)))
      const baseline = "baseline: base64 through /write_file + base64 -d, base64 -w0 through /run"
      const { a, b } = await H.interleave(rounds, sdkOnce(ours, Path.join(workDir, `binary-${mib}-sdk`)), rawOnce)
      const detail = `median of ${rounds}; SDK: the executor's binary-files extension; ${baseline}`
      rows.push(
        row(`binary.write.${mib}`, `binary write ${mib} MiB`, "MB/s", rate(a, "write"), rate(b, "write"), {
          kind: "ratioAtLeast",
          value: 1
        }, { detail }),
        row(`binary.read.${mib}`, `binary read ${mib} MiB`, "MB/s", rate(a, "read"), rate(b, "read"), {
          kind: "ratioAtLeast",
          value: 1
        }, { detail }),
        row(
          `binary.rss.${mib}`,
          `binary write+read ${mib} MiB, peak RSS growth`,
          "MiB",
          H.mib(Math.max(...a.map((r) => r.rssGrowth))),
          H.mib(Math.max(...b.map((r) => r.rssGrowth))),
          { kind: "valueAtMost", value: 4 * mib },
          { detail: "limit: 4× the file size" }
        )
      )
      // The same on the stock protocol (Koyeb's Go executor has no extension): reported.
      const stockRun = await H.interleave(rounds, sdkOnce(stock, Path.join(workDir, `binary-${mib}-stock`)), rawOnce)
      const stockDetail = `median of ${rounds}; SDK with the executor's capabilities hidden; ${baseline}`
      for (const k of ["write", "read"] as const) {
        rows.push(
          row(
            `binary.stock.${k}.${mib}`,
            `binary ${k} ${mib} MiB, stock protocol`,
            "MB/s",
            rate(stockRun.a, k),
            rate(stockRun.b, k),
            {
              kind: "report"
            },
            { detail: stockDetail }
          )
        )
      }
    }
    return rows
  }
}
