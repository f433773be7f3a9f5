/**
 * The in-memory `ControlPlane` of `Testing.layerControlPlaneMemory`: each created sandbox is a
 * fresh memory sandbox; creations and deletions are recorded for assertions.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import type {
  ControlPlaneShape,
  CreateOptions,
  ProvisionedSandbox,
  SandboxEndpoint,
  SandboxServices
} from "../ControlPlane.js"
import { SandboxNotFound } from "../SandboxError.js"
import { SandboxInfo } from "../SandboxSchema.js"
import type { MemoryControlPlaneOptions, MemoryControlPlaneShape } from "../Testing.js"
import { domainOf, exposedUrl, infoOf, make as makeSandbox, type MemoryBackend } from "./memorySandbox.js"
import { check as checkEnv } from "./sandboxEnv.js"
import { withAdoption } from "./sandboxRelease.js"

interface Entry {
  readonly backend: MemoryBackend
  readonly provisioned: ProvisionedSandbox
  readonly tcpPort: number | undefined
}

const configText = (file: string | { readonly content: string }): string =>
  typeof file === "string" ? file : file.content

/**
 * The control plane, its inspection service, and the services of its sandboxes (which `Sandbox`
 * uses instead of building them over `connect`).
 */
export const make = (
  options: MemoryControlPlaneOptions
): Effect.Effect<
  {
    readonly controlPlane: ControlPlaneShape
    readonly inspect: MemoryControlPlaneShape
    readonly services: (endpoint: SandboxEndpoint) => Effect.Effect<Option.Option<SandboxServices>>
  },
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const sandboxes = new Map<string, Entry>()
    const created: Array<string> = []
    const deleted: Array<string> = []
    let counter = 0

    const live = (id: string) =>
      Effect.suspend(() => {
        const entry = sandboxes.get(id)
        return entry === undefined || deleted.includes(id)
          ? Effect.fail(new SandboxNotFound({ id }))
          : Effect.succeed(entry)
      })

    const find = (endpoint: SandboxEndpoint) =>
      Effect.sync(() =>
        Option.fromNullable(Array.from(sandboxes.values()).find((e) => e.provisioned.endpoint.url === endpoint.url))
      )

    const create = (request: CreateOptions) =>
      Effect.gen(function*() {
        yield* checkEnv(request.env)
        counter += 1
        const id = `memory-sandbox-${counter}`
        const info = infoOf({
          id,
          appId: request.appId ?? `memory-app-${counter}`,
          name: request.name ?? "quick-sandbox",
          region: request.region ?? "na",
          instanceType: request.instanceType ?? "micro",
          image: request.image ?? "koyeb/sandbox",
          createdAt: new Date(yield* Clock.currentTimeMillis),
          ownsApp: request.appId === undefined
        })
        const files: Record<string, string | Uint8Array> = { ...options.files }
        for (const [path, file] of Object.entries(request.configFiles ?? {})) files[path] = configText(file)
        const backend = yield* makeSandbox({
          info,
          files,
          handlers: options.commands,
          env: request.env,
          onDelete: Effect.sync(() => {
            deleted.push(id)
          })
        }).pipe(Scope.extend(scope))
        const endpoint: SandboxEndpoint = { url: `memory://${id}`, secret: Redacted.make(`memory-secret-${id}`) }
        sandboxes.set(id, {
          backend,
          provisioned: { info, endpoint },
          tcpPort: request.enableTcpProxy === true ? 10000 + counter : undefined
        })
        created.push(id)
        return { info, endpoint }
      })

    const memoryControlPlane: ControlPlaneShape = {
      create,
      get: (id) =>
        Effect.map(live(id), ({ provisioned }) => ({
          info: new SandboxInfo({ ...provisioned.info, ownsApp: false }),
          endpoint: provisioned.endpoint
        })),
      list: Effect.sync(() =>
        Array.from(sandboxes.values()).filter((e) => !deleted.includes(e.provisioned.info.id)).map((e) =>
          e.provisioned.info
        )
      ),
      delete: (info) =>
        Effect.suspend(() => {
          const entry = sandboxes.get(info.id)
          return entry === undefined ? Effect.void : entry.backend.remove
        }),
      waitReady: (id) => Effect.map(live(id), (entry) => entry.provisioned.endpoint),
      domain: (id) => Effect.as(live(id), Option.some(domainOf(id))),
      exposedUrl: (id) => Effect.as(live(id), exposedUrl(id)),
      tcpProxy: (id) =>
        Effect.map(live(id), (entry) =>
          entry.tcpPort === undefined ? Option.none() : Option.some({ host: "tcp.sandbox.test", port: entry.tcpPort })),
      connect: (endpoint) =>
        Effect.flatMap(
          find(endpoint),
          Option.match({
            onNone: () =>
              Effect.dieMessage(`Testing.layerControlPlaneMemory: no memory sandbox at ${endpoint.url}`),
            onSome: (entry) =>
              Effect.succeed(entry.backend.client)
          })
        ),
      updateLifecycle: (id, update) =>
        Effect.flatMap(live(id), (entry) => entry.backend.sandbox.updateLifecycle(update))
    }

    // Sandboxes of `Sandbox.make` still alive when the layer closes are deleted then.
    const controlPlane = yield* withAdoption(memoryControlPlane)

    const inspect: MemoryControlPlaneShape = {
      created: Effect.sync(() => created.slice()),
      deleted: Effect.sync(() => deleted.slice()),
      live: Effect.sync(() => created.filter((id) => !deleted.includes(id))),
      sandbox: (id) =>
        Effect.suspend(() => {
          const entry = sandboxes.get(id)
          return entry === undefined ? Effect.fail(new SandboxNotFound({ id })) : Effect.succeed(entry.backend.inspect)
        })
    }

    const services = (endpoint: SandboxEndpoint) =>
      Effect.map(
        find(endpoint),
        Option.map(({ backend }): SandboxServices => ({
          executor: backend.executor,
          filesystem: backend.filesystem,
          processes: backend.processes
        }))
      )

    return { controlPlane, inspect, services }
  })
