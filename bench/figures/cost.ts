/** What a command, an idle sandbox and a sandbox's memory cost (issue 13). */
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as Os from "node:os"
import * as Path from "node:path"
import { executorCommand } from "../../packages/platform-node/src/internal/executorCommand.js"
import { descendantsOf } from "../../packages/platform-node/src/internal/localProcesses.js"
import * as Density from "../density.js"
import * as H from "../harness.js"
import { size } from "../options.js"
import * as ProcessCost from "../processCost.js"
import * as Raw from "../raw.js"
import { type Row, row } from "../rows.js"
import { type Figure, sdk, secret, userEnv, workDir } from "../world.js"
import { sandboxOnce } from "./sandboxes.js"

/**
 * One command's cost against the floor of spawning it: `/run "true"` with a raw client against a
 * bare node child's `spawn("true")` (pipes drained until `close`), interleaved in the same run.
 */
export const command: Figure = {
  key: "command",
  title: `executor /run("true") vs spawn("true") floor`,
  run: async () => {
    const iterations = size(300, 40)
    // the executor as a local sandbox starts it (its bundle; tsx's loader thread would slow every fork)
    const { args, spawner } = await Effect.runPromise(executorCommand)
    const spawnerArgs = spawner === undefined ? [] : ["--spawner", spawner]
    const executor = await H.spawnAnnounced([...args, "executor", "--port", "0", ...spawnerArgs], {
      cwd: workDir,
      env: { ...userEnv, SANDBOX_SECRET: secret }
    })
    const endpoint: Raw.Endpoint = { url: String(executor.announcement.url), secret }
    const floor = ProcessCost.spawnFloor()
    try {
      const rawRun = async () => {
        const t0 = H.now()
        const { code } = await Raw.run(endpoint, "true")
        if (code !== 0) throw new Error(`/run "true": code ${code}`)
        return H.now() - t0
      }
      for (let i = 0; i < 20; i++) {
        await rawRun()
        await floor.spawnOnce()
      }
      const { a: runs, b: spawns } = await H.interleave(iterations, rawRun, floor.spawnOnce)
      const detail = `${iterations} each, interleaved; executor bundle: fetch POST /run {"cmd":"true"}, JSON read; ` +
        `baseline: child_process.spawn("true") in a bare node child, stdout/stderr piped, until close`
      return [
        row("command.median", `/run("true") median vs spawn floor`, "ms", H.median(runs), H.median(spawns), {
          kind: "ratioAtMost",
          value: 1
        }, { detail }),
        row("command.p95", `/run("true") p95 vs spawn floor`, "ms", H.quantile(runs, 0.95), H.quantile(spawns, 0.95), {
          kind: "ratioAtMost",
          value: 1
        }, { detail })
      ]
    } finally {
      floor.close()
      await executor.close()
    }
  }
}

/**
 * Idle local sandboxes: the CPU time, over a quiet window, of every process that exists because
 * of them (their descendants of this process) plus this process's own CPU beyond an equal window
 * without them (the control plane runs here), as % of a core per sandbox.
 */
export const idleSandboxes: Figure = {
  key: "idle",
  title: "idle local sandboxes, CPU",
  run: async (world) => {
    const n = size(10, 3)
    const windowMillis = size(10_000, 3_000)
    const existing = new Set(descendantsOf(process.pid))
    // warm-up: the executor bundle and its code cache are found (or built) on first use
    await sdk(world, sandboxOnce(false))
    await new Promise((resolve) => setTimeout(resolve, 500))
    const hostIdle = await ProcessCost.cpuOver([process.pid], windowMillis)
    const scope = await Effect.runPromise(Scope.make())
    try {
      await sdk(
        world,
        Effect.forEach(
          Array.from({ length: n }),
          () =>
            Effect.flatMap(Sandbox.make(), (handle) => handle.executor.run("true")).pipe(
              Scope.extend(scope)
            ),
          { concurrency: "unbounded" }
        )
      )
      // settle: start-up work is not idle time (V8's memory reducer collects a few times in the
      // ~20 s after the last allocation, then a sandbox is quiet; with sandboxes served by this
      // process, its own reducer runs then, 20–26 s after the creates)
      await new Promise((resolve) => setTimeout(resolve, size(30_000, 1000)))
      const pids = descendantsOf(process.pid).filter((pid) => !existing.has(pid))
      const hostBefore = ProcessCost.cpuNanos(process.pid)
      const sandboxes = await ProcessCost.cpuOver(pids, windowMillis)
      const host = (ProcessCost.cpuNanos(process.pid) - hostBefore) / 1e6
      const percent = (millis: number) => (millis / windowMillis / n) * 100
      const total = sandboxes + Math.max(0, host - hostIdle)
      return [
        row("idle.cpu", `${n} idle local sandboxes: CPU per sandbox`, "% core", percent(total), percent(hostIdle), {
          kind: "valueAtMost",
          value: 0.05
        }, {
          detail: `${(windowMillis / 1000).toFixed(0)} s window after ${
            size(30, 1)
          } s of settling; ${pids.length} processes (${sandboxes.toFixed(1)} ms) + this process ${
            host.toFixed(1)
          } ms vs ${
            hostIdle.toFixed(1)
          } ms without sandboxes (baseline column, per sandbox); /proc/<pid>/task/*/schedstat`
        })
      ]
    } finally {
      await sdk(world, Scope.close(scope, Exit.void))
    }
  }
}

/**
 * `n` local sandboxes created, used (a command, a file written and read back) and deleted
 * concurrently; the memory of their processes is sampled once all of them are up and used.
 */
const densityBatch = (n: number) =>
  Effect.gen(function*() {
    const before = Density.descendants()
    const ids: Array<string> = []
    const allUsed = yield* Deferred.make<void>()
    const measured = yield* Deferred.make<void>()
    let used = 0
    const t0 = H.now()
    const batch = yield* Effect.forEach(
      Array.from({ length: n }, (_, i) => i),
      (i) =>
        Effect.scoped(Effect.gen(function*() {
          const handle = yield* Sandbox.make()
          ids.push(handle.info.id)
          const result = yield* handle.executor.run(`echo ${i}`)
          if (result.stdout !== `${i}\n`) return yield* Effect.dieMessage(`unexpected output ${result.stdout}`)
          yield* handle.filesystem.writeFile("data.txt", `sandbox ${i}`)
          const back = yield* handle.filesystem.readFileString("data.txt")
          if (back !== `sandbox ${i}`) return yield* Effect.dieMessage(`unexpected file content ${back}`)
          if (++used === n) yield* Deferred.succeed(allUsed, undefined)
          yield* Deferred.await(measured)
        })),
      { concurrency: "unbounded", discard: true }
    ).pipe(Effect.fork)
    yield* Effect.raceFirst(Deferred.await(allUsed), Fiber.join(batch))
    const upMillis = H.now() - t0
    const alive = Density.newProcesses(before)
    const t1 = H.now()
    yield* Deferred.succeed(measured, undefined)
    yield* Fiber.join(batch)
    const millis = upMillis + (H.now() - t1)
    // A helper's exit may still be on its way when its sandbox's deletion returns.
    let left = Density.newProcesses(before)
    for (let i = 0; i < 40 && left.pids.length > 0; i++) {
      yield* Effect.sleep("50 millis")
      left = Density.newProcesses(before)
    }
    return {
      millis,
      pss: alive.pss,
      processes: alive.pids.length,
      left: left.names,
      leftDirs: Density.leftDirectories(Path.join(Os.tmpdir(), "effect-koyeb"), ids)
    }
  })

/** PSS of one idle process of `args` after `settle` ms (a bare node, as the floor of a node-based sandbox). */
const idleProcessPss = async (args: ReadonlyArray<string>, settle = 1000): Promise<number> => {
  const child = ChildProcess.spawn(process.execPath, args, { stdio: "ignore" })
  try {
    await new Promise((resolve) => setTimeout(resolve, settle))
    return Density.processMemory(child.pid!).pss
  } finally {
    child.kill("SIGKILL")
  }
}

export const density: Figure = {
  key: "density",
  title: "local sandboxes: memory per idle sandbox, 1 to 100 at once",
  run: async (world) => {
    const sizes = size([1, 10, 50, 100], [1, 5, 10])
    // warm-up: the executor bundle and its code cache are found (or built) on first use
    await sdk(world, sandboxOnce(false))
    const idle = await sdk(
      world,
      Effect.scoped(Effect.gen(function*() {
        const before = Density.descendants()
        const handle = yield* Sandbox.make()
        yield* handle.executor.run("true")
        yield* Effect.sleep("1 second")
        return Density.newProcesses(before)
      }))
    )
    const bare = await idleProcessPss(["-e", "setTimeout(() => {}, 60_000)"])
    const rows: Array<Row> = [
      row(
        "density.idle",
        "memory of one idle local sandbox (PSS of its processes)",
        "MiB",
        H.mib(idle.pss),
        H.mib(bare),
        { kind: "valueAtMost", value: 16 },
        {
          detail: `${idle.names.join(" + ")}: PSS ${H.mib(idle.pss).toFixed(1)} MiB, RSS ${
            H.mib(idle.rss).toFixed(1)
          } MiB, 1 s after a command; baseline: PSS of an idle bare node`
        }
      )
    ]
    let single: { readonly millis: number; readonly pss: number } | undefined
    const left: Array<string> = []
    for (const n of sizes) {
      const batch = await sdk(world, densityBatch(n))
      single ??= batch
      left.push(...batch.left, ...batch.leftDirs.map((id) => `directory ${id}`))
      const perMiB = H.mib(batch.pss) / n
      rows.push(
        row(
          `density.${n}.time`,
          `${n} local sandboxes at once: create/use/delete`,
          "ms",
          batch.millis,
          single.millis * n,
          {
            kind: "report"
          },
          { detail: `baseline: ${n} × the time of 1 (sequential estimate); use = run + write + read a file` }
        ),
        row(
          `density.${n}.memory`,
          `${n} local sandboxes at once: memory (PSS) when all are up`,
          "MiB",
          H.mib(batch.pss),
          H.mib(single.pss) * n,
          {
            kind: "report"
          },
          { detail: `${batch.processes} processes; baseline: ${n} × the memory of 1` }
        ),
        row(
          `density.${n}.per`,
          `${n} local sandboxes at once: time per sandbox`,
          "ms",
          batch.millis / n,
          single.millis,
          {
            kind: "report"
          },
          { detail: `${perMiB.toFixed(1)} MiB per sandbox; baseline: the time of 1 alone` }
        )
      )
    }
    rows.push(
      row("density.leaked", "processes and directories left after the batches", "leftovers", left.length, 0, {
        kind: "valueAtMost",
        value: 0
      }, {
        detail: left.length === 0 ? "checked: new descendant processes and the sandboxes' directories" : left.join(", ")
      })
    )
    return rows
  }
}
