/** `writeFiles` of many small files. */
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as H from "../harness.js"
import { size } from "../options.js"
import { row } from "../rows.js"
import { type Figure, sdk, workDir } from "../world.js"

export const manyFiles: Figure = {
  key: "writefiles",
  title: "writeFiles of small files",
  run: async (world) => {
    const n = size(1000, 200)
    const rounds = size(3, 1)
    const files = (dir: string) =>
      Array.from({ length: n }, (_, i) => ({ path: `${dir}/f${i}.txt`, content: `file ${i}: ${"x".repeat(80)}\n` }))
    let round = 0
    const prepare = (name: string) => {
      const dir = Path.join(workDir, `many-${name}-${round++}`)
      Fs.mkdirSync(dir, { recursive: true })
      return files(dir)
    }
    const batch = () => {
      const list = prepare("batch")
      return H.timed(() => sdk(world, Effect.flatMap(Filesystem.Filesystem, (fs) => fs.writeFiles(list))))
    }
    const sequential = () => {
      const list = prepare("seq")
      return H.timed(() =>
        sdk(
          world,
          Effect.flatMap(Filesystem.Filesystem, (fs) =>
            Effect.forEach(list, (f) => fs.writeFile(f.path, f.content), { discard: true }))
        )
      )
    }
    const { a, b } = await H.interleave(rounds, batch, sequential)
    return [
      row(
        "writefiles.rate",
        `writeFiles of ${n} small files`,
        "files/s",
        H.median(a.map((r) => (n / r.millis) * 1000)),
        H.median(b.map((r) => (n / r.millis) * 1000)),
        { kind: "ratioAtLeast", value: 5 },
        { detail: `median of ${rounds}; baseline: sequential writeFile of the same ~90-byte text files` }
      )
    ]
  }
}
