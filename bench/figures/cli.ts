/** Start-up of the CLI and import time of the packages, as a user runs them (built output). */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as H from "../harness.js"
import { size } from "../options.js"
import { row } from "../rows.js"
import { type Figure, userEnv } from "../world.js"

/** Builds the packages when their published output is missing (`npm run bench` builds first). */
const ensureBuilt = (): void => {
  const outputs = ["packages/core/dist/esm/index.js", "packages/platform-node/dist/cjs/index.js", cliBin]
  if (outputs.every((file) => Fs.existsSync(Path.join(H.root, file)))) return
  ChildProcess.execFileSync("npm", ["run", "build"], { cwd: H.root, env: userEnv, stdio: "ignore" })
}

const cliBin = "packages/platform-node/dist/bin/effect-koyeb.cjs"

/** Wall time of a fresh `node …args` process, to its exit. */
const processMillis = (args: ReadonlyArray<string>) => async () => {
  const t0 = H.now()
  await new Promise<void>((resolve, reject) => {
    const child = ChildProcess.spawn(process.execPath, args, { cwd: H.root, env: userEnv, stdio: "ignore" })
    child.once("error", reject)
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`node ${args.join(" ")} exited ${code}`))))
  })
  return H.now() - t0
}

export const cliStartup: Figure = {
  key: "cli",
  title: "effect-koyeb --version (built bin)",
  run: async () => {
    ensureBuilt()
    const rounds = size(15, 3)
    const cli = processMillis([Path.join(H.root, cliBin), "--version"])
    const bare = processMillis(["-e", "0"])
    // warm-up: the bin records its code cache on its first run
    await cli()
    await bare()
    const { a, b } = await H.interleave(rounds, cli, bare)
    return [
      row("cli.startup", "effect-koyeb --version (fresh process)", "ms", H.median(a), H.median(b), {
        kind: "ratioAtMost",
        value: 3
      }, { detail: `median of ${rounds}; baseline: node -e 0` })
    ]
  }
}

export const importTime: Figure = {
  key: "import",
  title: "built package import + layerLocal build",
  run: async () => {
    ensureBuilt()
    const rounds = size(7, 1)
    const probe = (which: string) => async () => {
      const child = await H.spawnAnnounced([Path.join(H.root, "bench", "importProbe.mjs"), which], { env: userEnv })
      await child.close()
      return Number(child.announcement.millis)
    }
    await probe("sdk")()
    await probe("effect")()
    const { a, b } = await H.interleave(rounds, probe("sdk"), probe("effect"))
    return [
      row(
        "import.time",
        "import @effect-koyeb/platform-node + build layerLocal (plain node)",
        "ms",
        H.median(a),
        H.median(b),
        { kind: "report" },
        { detail: `median of ${rounds}; baseline: bare import("effect"); built ESM output, no loader` }
      )
    ]
  }
}
