/**
 * What the figures run against: the executor child, the naive server child and the SDK runtime,
 * in a work directory removed at exit.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as ExecutorClient from "@effect-koyeb/core/ExecutorClient"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as H from "./harness.js"
import type * as Raw from "./raw.js"
import type { Row } from "./rows.js"

export const secret = Crypto.randomBytes(24).toString("base64url")
export const workDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-bench-"))
export const children: Array<H.Child> = []

export const startExecutor = async (): Promise<{ readonly endpoint: Raw.Endpoint; readonly pid: number }> => {
  const child = await H.spawnAnnounced(
    [
      ...H.gcOnSignalArgs,
      ...H.tsxArgs("packages/platform-node/src/bin/effect-koyeb.ts", "executor", "--port", "0", "--proxy-port", "0")
    ],
    {
      cwd: workDir,
      env: { ...process.env, SANDBOX_SECRET: secret, EFFECT_KOYEB_PARENT_PID: String(process.pid) }
    }
  )
  children.push(child)
  return { endpoint: { url: String(child.announcement.url), secret }, pid: child.process.pid! }
}

export const startNaiveServer = async (): Promise<Raw.Endpoint> => {
  const child = await H.spawnAnnounced(H.tsxArgs("bench/naiveServer.ts"), {
    cwd: workDir,
    env: { ...process.env, SANDBOX_SECRET: secret }
  })
  children.push(child)
  return { url: String(child.announcement.url), secret }
}

export const makeRuntime = (endpoint: Raw.Endpoint) =>
  ManagedRuntime.make(
    Layer.mergeAll(Executor.layer, Filesystem.layer).pipe(
      Layer.provideMerge(ExecutorClient.layer({ url: endpoint.url, secret: Redacted.make(endpoint.secret) })),
      Layer.provide(NodeHttpClient.layerUndici),
      Layer.merge(NodeSandbox.layerLocal())
    )
  )

export type Runtime = ReturnType<typeof makeRuntime>

export interface World {
  readonly executor: Raw.Endpoint
  /** The executor child's process id, for its RSS. */
  readonly executorPid: number
  readonly naive: () => Promise<Raw.Endpoint>
  readonly runtime: Runtime
}

/** Runs an SDK effect on the bench runtime. */
export const sdk = <A, E>(world: World, effect: Effect.Effect<A, E, ManagedRuntime.ManagedRuntime.Context<Runtime>>) =>
  world.runtime.runPromise(effect)

export const run = (cmd: string) => Effect.flatMap(Executor.Executor, (executor) => executor.run(cmd))

// The built output as a user runs it: without the source condition the tests put in NODE_OPTIONS.
export const userEnv: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: "" }

/** The SDK's `Filesystem` on the stock protocol: the executor's capabilities hidden, as on Koyeb's Go executor. */
export const stockFilesystem = Effect.flatMap(
  ExecutorClient.ExecutorClient,
  (client) =>
    Effect.provideService(Filesystem.make, ExecutorClient.ExecutorClient, {
      ...client,
      health: Effect.map(client.health, ({ status }) => ({ status })),
      capabilities: Effect.succeed(new Set<string>())
    })
)

/** One figure: its key (for `--only` and `--list`), its title and the rows it measures. */
export interface Figure {
  readonly key: string
  readonly title: string
  readonly run: (world: World) => Promise<Array<Row>>
}
