/**
 * Koyeb REST wire shapes (the subset the SDK reads) and the pure builders of the create and
 * update payloads (`koyeb-wire.md` §4).
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { CreateOptions } from "../ControlPlane.js"
import { InvalidArgument } from "../SandboxError.js"

/** Executor API port inside the sandbox (route `/koyeb-sandbox/`). */
export const EXECUTOR_PORT = 3030
/** The executor's TCP forwarder (route `/`, optional TCP proxy). */
export const PROXY_PORT = 3031
/** The env var that carries the executor's bearer secret. */
export const SECRET_ENV = "SANDBOX_SECRET"

/** Deployment statuses after which the sandbox will never become ready. */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(["ERROR", "ERRORING", "CANCELED", "STOPPED"])

// int64 fields are JSON numbers, uint64 fields numeric strings: accept both.
const Int = Schema.Union(Schema.Number, Schema.NumberFromString)
const optionalString = Schema.optional(Schema.NullOr(Schema.String))

/** Koyeb error body: `{status, code, message, fields?}` (or `google.rpc.Status`). */
export const ErrorBody = Schema.Struct({
  status: Schema.optional(Int),
  code: Schema.optional(Schema.Union(Schema.String, Schema.Number)),
  message: Schema.optional(Schema.String),
  fields: Schema.optional(Schema.Array(Schema.Struct({
    field: Schema.optional(Schema.String),
    description: Schema.optional(Schema.String)
  })))
})

/** `ServiceLifeCycle` (seconds, 0 = disabled). */
export const LifeCycle = Schema.Struct({
  delete_after_create: Schema.optional(Int),
  delete_after_sleep: Schema.optional(Int)
})
/** @see LifeCycle */
export type LifeCycle = typeof LifeCycle.Type

/** `App` (fields used). */
export const App = Schema.Struct({
  id: Schema.String,
  name: Schema.optional(Schema.String),
  domains: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({ name: Schema.String }))))
})

/** `{app}` reply of create / get app. */
export const AppReply = Schema.Struct({ app: App })

/** `ListAppsReply` (fields used). */
export const AppList = Schema.Struct({ apps: Schema.optional(Schema.NullOr(Schema.Array(App))) })

/** `Service` / `ServiceListItem` (fields used). */
export const Service = Schema.Struct({
  id: Schema.String,
  app_id: Schema.String,
  name: Schema.optional(Schema.String),
  created_at: optionalString,
  active_deployment_id: optionalString,
  latest_deployment_id: optionalString,
  life_cycle: Schema.optional(Schema.NullOr(LifeCycle))
})
/** @see Service */
export type Service = typeof Service.Type

/** `{service}` reply of create / get service. */
export const ServiceReply = Schema.Struct({ service: Service })

/** `ListServicesReply`. */
export const ServiceList = Schema.Struct({
  services: Schema.optional(Schema.NullOr(Schema.Array(Service))),
  has_next: Schema.optional(Schema.Boolean)
})

/** The parts of a `DeploymentDefinition` the SDK reads back. */
export const DefinitionView = Schema.Struct({
  name: Schema.optional(Schema.String),
  regions: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  instance_types: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({ type: Schema.String })))),
  docker: Schema.optional(Schema.NullOr(Schema.Struct({ image: Schema.optional(Schema.String) }))),
  env: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
    key: Schema.optional(Schema.String),
    value: Schema.optional(Schema.NullOr(Schema.String))
  }))))
})
/** @see DefinitionView */
export type DefinitionView = typeof DefinitionView.Type

/** `Deployment` (fields used); `definition` is kept raw so an update can send it back unchanged. */
export const Deployment = Schema.Struct({
  id: Schema.String,
  // Open string: new statuses must not break polling (koyeb-wire §4.4).
  status: Schema.optional(Schema.String),
  messages: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  metadata: Schema.optional(Schema.NullOr(Schema.Struct({
    sandbox: Schema.optional(Schema.NullOr(Schema.Struct({
      public_url: optionalString,
      routing_key: optionalString
    }))),
    proxy_ports: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
      host: optionalString,
      public_port: Schema.optional(Schema.NullOr(Int)),
      port: Schema.optional(Schema.NullOr(Int)),
      protocol: optionalString
    }))))
  }))),
  definition: Schema.optional(Schema.Unknown)
})
/** @see Deployment */
export type Deployment = typeof Deployment.Type

/** `{deployment}` reply of get deployment. */
export const DeploymentReply = Schema.Struct({ deployment: Deployment })

/** Reads the parts of a raw definition the SDK needs (a malformed definition reads as empty). */
export const definitionView = (raw: unknown): DefinitionView =>
  Option.getOrElse(Schema.decodeUnknownOption(DefinitionView)(raw), () => ({}))

/** The `SANDBOX_SECRET` value of a definition's env, if any. */
export const secretOf = (definition: DefinitionView): Option.Option<string> =>
  Option.fromNullable(definition.env?.find((e) => e.key === SECRET_ENV)?.value).pipe(
    Option.filter((s) => s.length > 0)
  )

/** Gateway location of a deployment (`metadata.sandbox`), when both fields are present. */
export const gatewayOf = (
  deployment: Deployment
): Option.Option<{ readonly publicUrl: string; readonly routingKey: string }> => {
  const sandbox = deployment.metadata?.sandbox
  return sandbox?.public_url && sandbox.routing_key
    ? Option.some({ publicUrl: sandbox.public_url.replace(/\/+$/, ""), routingKey: sandbox.routing_key })
    : Option.none()
}

/** The public TCP address of the proxy port, when published (host and port both required). */
export const tcpProxyOf = (
  deployment: Deployment
): Option.Option<{ readonly host: string; readonly port: number }> =>
  Option.fromNullable(
    deployment.metadata?.proxy_ports?.find((p) => p.port === PROXY_PORT && p.host && p.public_port)
  ).pipe(Option.map((p) => ({ host: p.host!, port: p.public_port! })))

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/
const PERMISSIONS = /^[0-7]{3,4}$/

const invalid = (argument: string, detail: string) => new InvalidArgument({ argument, detail })

/**
 * Whole seconds of a duration option, rounded up so that a non-zero duration never becomes 0
 * (which means "disabled" for Koyeb delays).
 */
export const seconds = (
  argument: string,
  input: Duration.DurationInput | undefined,
  fallback: number
): Either.Either<number, InvalidArgument> => {
  if (input === undefined) return Either.right(fallback)
  if (typeof input === "number" && !(input >= 0)) {
    return Either.left(invalid(argument, "must be a duration of 0 or more"))
  }
  const decoded = Duration.decodeUnknown(input)
  if (Option.isNone(decoded)) return Either.left(invalid(argument, "is not a duration"))
  const millis = Duration.toMillis(decoded.value)
  if (!Number.isFinite(millis)) return Either.left(invalid(argument, "must be finite"))
  return Either.right(Math.ceil(millis / 1000))
}

/** Validated create options with defaults applied, as Koyeb wants them. */
export interface ResolvedCreate {
  readonly name: string
  readonly image: string
  readonly instanceType: string
  readonly region: string
  readonly appId: string | undefined
  /** Builds `{app_id, definition, life_cycle}` for `POST /v1/services`. */
  readonly serviceBody: (appId: string, secret: string) => unknown
}

/** Validates `options` and prepares the service payload (koyeb-wire §4.3); fails with the first invalid option. */
export const resolveCreate = (
  options: CreateOptions,
  defaultRegion: string
): Either.Either<ResolvedCreate, InvalidArgument> =>
  Either.gen(function*() {
    const name = options.name ?? "quick-sandbox"
    if (!NAME.test(name)) {
      return yield* Either.left(
        invalid("name", `${JSON.stringify(name)}: use 1-63 lowercase letters, digits and inner dashes`)
      )
    }
    const image = options.image ?? "koyeb/sandbox"
    const instanceType = options.instanceType ?? "micro"
    const region = options.region ?? defaultRegion
    for (const [argument, value] of [["image", image], ["instanceType", instanceType], ["region", region]]) {
      if (value!.trim() === "") return yield* Either.left(invalid(argument!, "must not be empty"))
    }
    if (options.appId !== undefined && options.appId.trim() === "") {
      return yield* Either.left(invalid("appId", "must not be empty"))
    }
    const protocol = options.exposedPortProtocol ?? "http"
    if (protocol !== "http" && protocol !== "http2") {
      return yield* Either.left(invalid("exposedPortProtocol", `must be "http" or "http2", got ${String(protocol)}`))
    }
    const env = Object.entries(options.env ?? {})
    for (const [key, value] of env) {
      if (key === SECRET_ENV) {
        return yield* Either.left(invalid("env", `${SECRET_ENV} is reserved: the SDK generates the sandbox secret`))
      }
      if (!ENV_KEY.test(key)) return yield* Either.left(invalid("env", `bad variable name ${JSON.stringify(key)}`))
      if (typeof value !== "string") return yield* Either.left(invalid("env", `value of ${key} must be a string`))
    }
    const configFiles: Array<{ path: string; content: string; permissions: string }> = []
    for (const [path, file] of Object.entries(options.configFiles ?? {})) {
      const content = typeof file === "string" ? file : file.content
      const permissions = typeof file === "string" ? "0644" : file.permissions ?? "0644"
      if (!path.startsWith("/")) return yield* Either.left(invalid("configFiles", `path must be absolute: ${path}`))
      if (!PERMISSIONS.test(permissions)) {
        return yield* Either.left(invalid("configFiles", `permissions of ${path} must be octal, got ${permissions}`))
      }
      configFiles.push({ path, content, permissions })
    }
    const idle = yield* seconds("idleTimeout", options.idleTimeout, 300)
    const deepSleep = yield* seconds("deepSleepDelay", options.deepSleepDelay, 3900)
    const deleteAfterCreate = yield* seconds("deleteAfterDelay", options.deleteAfterDelay, 0)
    const deleteAfterSleep = yield* seconds("deleteAfterInactivityDelay", options.deleteAfterInactivityDelay, 0)

    const docker: Record<string, unknown> = { image, privileged: options.privileged ?? false }
    if (options.registrySecret !== undefined) docker.image_registry_secret = options.registrySecret
    if (options.entrypoint !== undefined) docker.entrypoint = [...options.entrypoint]
    if (options.command !== undefined) docker.command = options.command
    if (options.args !== undefined) docker.args = [...options.args]

    const scalings = idle === 0
      ? [{ min: 1, max: 1 }]
      : [{
        min: 0,
        max: 1,
        targets: [{
          sleep_idle_delay: options.enableLightSleep
            ? { light_sleep_value: idle, deep_sleep_value: deepSleep }
            : { deep_sleep_value: idle }
        }]
      }]
    const mesh = options.enableMesh === undefined
      ? "DEPLOYMENT_MESH_AUTO"
      : options.enableMesh
      ? "DEPLOYMENT_MESH_ENABLED"
      : "DEPLOYMENT_MESH_DISABLED"

    return {
      name,
      image,
      instanceType,
      region,
      appId: options.appId,
      serviceBody: (appId: string, secret: string) => ({
        app_id: appId,
        definition: {
          name,
          type: "SANDBOX",
          docker,
          env: [...env.map(([key, value]) => ({ key, value })), { key: SECRET_ENV, value: secret }],
          instance_types: [{ type: instanceType }],
          regions: [region],
          ports: [{ port: EXECUTOR_PORT, protocol: "http" }, { port: PROXY_PORT, protocol }],
          routes: [{ port: EXECUTOR_PORT, path: "/koyeb-sandbox/" }, { port: PROXY_PORT, path: "/" }],
          ...(options.enableTcpProxy ? { proxy_ports: [{ port: PROXY_PORT, protocol: "tcp" }] } : {}),
          scalings,
          mesh,
          ...(configFiles.length > 0 ? { config_files: configFiles } : {})
        },
        life_cycle: { delete_after_create: deleteAfterCreate, delete_after_sleep: deleteAfterSleep }
      })
    }
  })

/**
 * Parses `Retry-After` (delay in seconds, or an HTTP date relative to `now`) into milliseconds.
 */
export const parseRetryAfter = (header: string | undefined, now: number): number | undefined => {
  if (header === undefined || header.trim() === "") return undefined
  const trimmed = header.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
