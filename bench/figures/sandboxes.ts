/** Local sandboxes created, used and deleted, one at a time and many at once. */
import { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as Os from "node:os"
import * as H from "../harness.js"
import { size } from "../options.js"
import { row } from "../rows.js"
import { type Figure, sdk } from "../world.js"

/** Time from spawning `node -e` to its first output. */
const bareNode = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const t0 = H.now()
    const child = ChildProcess.spawn(process.execPath, ["-e", "process.stdout.write('ready\\n')"], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let first: number | undefined
    child.stdout.once("data", () => {
      first = H.now() - t0
    })
    child.once("error", reject)
    child.once("exit", () => (first === undefined ? reject(new Error("node -e printed nothing")) : resolve(first)))
  })

/** Create a local sandbox, run a command in it (and optionally use its files), delete it. */
export const sandboxOnce = (use: boolean) =>
  Effect.gen(function*() {
    const t0 = H.now()
    const firstResult = yield* Effect.scoped(Effect.gen(function*() {
      const handle = yield* Sandbox.make()
      const result = yield* handle.executor.run("echo ready")
      const elapsed = H.now() - t0
      if (result.stdout !== "ready\n") return yield* Effect.dieMessage(`unexpected output ${result.stdout}`)
      if (use) {
        yield* handle.filesystem.writeFile("data.txt", "hello")
        const back = yield* handle.filesystem.readFileString("data.txt")
        if (back !== "hello") return yield* Effect.dieMessage(`unexpected file content ${back}`)
      }
      return elapsed
    }))
    return { firstResult, total: H.now() - t0 }
  })

export const sandboxStart: Figure = {
  key: "sandbox",
  title: "local Sandbox.make → first result",
  run: async (world) => {
    const rounds = size(7, 2)
    // warm-up: the executor bundle is built (or found in the cache) on first use
    await sdk(world, sandboxOnce(false))
    await bareNode()
    const { a, b } = await H.interleave(rounds, () => sdk(world, sandboxOnce(false)), bareNode)
    return [
      row(
        "sandbox.first",
        "local Sandbox.make → first run result, median",
        "ms",
        H.median(a.map((r) => r.firstResult)),
        H.median(b),
        { kind: "ratioAtMost", value: 3 },
        {
          detail: `median of ${rounds}; isolation auto; create+run+delete median ${
            H.median(a.map((r) => r.total)).toFixed(0)
          } ms; baseline: spawn node -e until its first output`
        }
      )
    ]
  }
}

export const sandboxMany: Figure = {
  key: "sandboxes",
  title: "local sandboxes concurrently",
  run: async (world) => {
    const n = size(20, 4)
    const rounds = size(2, 1)
    const many = (concurrency: number | "unbounded") => () =>
      H.timedWithCores(() =>
        sdk(world, Effect.forEach(Array.from({ length: n }), () => sandboxOnce(true), { concurrency }))
      )
    // warm-up: the executor bundle and its code cache are found (or built) on first use
    await sdk(world, sandboxOnce(true))
    const { a, b } = await H.interleave(rounds, many("unbounded"), many(1))
    const concurrent = H.median(a.map((r) => r.millis))
    const sequential = H.median(b.map((r) => r.millis))
    // Sequential creation already keeps most of a core busy (starting node is CPU-bound), so the
    // machine caps the speed-up near cores ÷ that: the bound is printed with the figure.
    const cores = Os.availableParallelism()
    const sequentialCores = H.median(b.map((r) => r.cores))
    const left = await sdk(world, Effect.flatMap(ControlPlane, (controlPlane) => controlPlane.list))
    return [
      row(
        "sandboxes.rate",
        `${n} local sandboxes create/use/delete concurrently`,
        "sandboxes/s",
        (n / concurrent) * 1000,
        (n / sequential) * 1000,
        { kind: "ratioAtLeast", value: 2 },
        {
          detail: `median of ${rounds}: concurrent ${(concurrent / 1000).toFixed(1)} s (${
            H.median(a.map((r) => r.cores)).toFixed(2)
          } cores busy) vs sequential ${(sequential / 1000).toFixed(1)} s (${
            sequentialCores.toFixed(2)
          } cores busy), so at most ~${
            (cores / sequentialCores).toFixed(1)
          }× on ${cores} cores; use = run + write + read a file`
        }
      ),
      row(
        "sandboxes.leaked",
        "sandboxes leaked (left after the sandbox figures)",
        "sandboxes",
        left.length,
        0,
        { kind: "valueAtMost", value: 0 },
        { detail: "sandboxes the control plane still lists once every scoped sandbox of the figures is released" }
      )
    ]
  }
}
