/**
 * A V8 startup snapshot of the executor: `node --build-snapshot` evaluates the executor's modules
 * once (`executorSnapshotEntry.ts`, bundled as `executor-snapshot.cjs`), and every executor then
 * starts from the deserialized heap instead of evaluating them again. A blob only loads in the node
 * binary that built it, so it is built on first use into the per-user cache directory, named after
 * the node binary and the entry, and kept only when an executor started from it served a command
 * and a file round trip. Whatever fails leaves no blob, and the executor starts without it.
 *
 * Node reads the whole blob into memory and keeps it for the life of the process (~6 MiB of every
 * executor's private memory). Half of it is the code cache of node's own modules; building without
 * it (`--build-snapshot-config` with `withoutCodeCache`, node 20.12 on) would save ~3 MiB per
 * executor, but on node 20.20 `fs/promises.writeFile` then fails after a few hundred requests
 * (`ReferenceError: kFd is not defined`), so the blob keeps it.
 *
 * @internal
 */
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { executorFlags, removeUnused, warmUp } from "./executorCodeCache.js"

/** The blob of `entry` for this node in `dir`. Blobs (and temporary ones left by a killed build) unused for a day go. */
const blobFile = (dir: string, entry: string): string => {
  const node = Fs.statSync(process.execPath)
  const stat = Fs.statSync(entry)
  const key = Crypto.createHash("sha256").update(
    `${process.version}\0${process.execPath}\0${node.size}\0${node.mtimeMs}\0${entry}\0${stat.size}\0${stat.mtimeMs}\0${
      executorFlags.join(" ")
    }`
  ).digest("hex").slice(0, 16)
  const blob = Path.join(dir, `executor-${key}.blob`)
  removeUnused(dir, /^executor-[0-9a-f]+\.blob(\.|$)/, blob)
  return blob
}

/**
 * `node <executorFlags> --snapshot-blob <blob> --build-snapshot <entry>`, in an empty directory with
 * no environment but PATH.
 */
const build = (entry: string, blob: string): Promise<boolean> =>
  new Promise<boolean>((resolve) => {
    const cwd = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-snapshot-"))
    const child = ChildProcess.spawn(
      process.execPath,
      [...executorFlags, "--snapshot-blob", blob, "--build-snapshot", entry],
      {
        cwd,
        env: { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin" },
        stdio: "ignore"
      }
    )
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
    const finish = (ok: boolean) => {
      clearTimeout(timer)
      Fs.rmSync(cwd, { recursive: true, force: true })
      resolve(ok)
    }
    child.on("error", () => finish(false))
    child.on("exit", (code) => finish(code === 0 && Fs.existsSync(blob)))
  })

/** The snapshot blob of `entry` in `dir`, built and tried first when missing; undefined when it cannot be. */
export const snapshotBlob = async (dir: string, entry: string): Promise<string | undefined> => {
  try {
    const blob = blobFile(dir, entry)
    if (Fs.existsSync(blob)) return blob
    const temp = `${blob}.${process.pid}.${Crypto.randomUUID()}`
    try {
      if (!(await build(entry, temp)) || !(await warmUp(["--snapshot-blob", temp]))) return undefined
      Fs.renameSync(temp, blob)
      return blob
    } finally {
      Fs.rmSync(temp, { force: true })
    }
  } catch {
    return undefined
  }
}
