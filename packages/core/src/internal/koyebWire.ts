/**
 * Pure functions over the Koyeb wire shapes of `KoyebWire`: what a service and its deployment say
 * about a sandbox (info, secret, gateway, TCP proxy), and the validated create payload.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { CreateOptions } from "../ControlPlane.js"
import {
  type CreateService,
  DefinitionView,
  type Deployment,
  EnvKey,
  EXECUTOR_PORT,
  PROXY_PORT,
  ResourceName,
  SECRET_ENV,
  type Service
} from "../KoyebWire.js"
import { InvalidArgument } from "../SandboxError.js"
import { SandboxInfo } from "../SandboxSchema.js"
import { envError } from "./sandboxEnv.js"

/** Reads the parts of a raw definition the SDK needs (a malformed definition reads as empty). */
export const definitionView = (raw: unknown): DefinitionView =>
  Option.getOrElse(Schema.decodeUnknownOption(DefinitionView)(raw), () => ({}))

/** The `SANDBOX_SECRET` value of a definition's env, if any. */
export const secretOf = (definition: DefinitionView): Option.Option<string> =>
  Option.fromNullable(definition.env?.find((e) => e.key === SECRET_ENV)?.value).pipe(
    Option.filter((s) => s.length > 0)
  )

/** The deployment that describes the service now: the active one, else the latest. */
export const currentDeployment = (service: Service): Option.Option<string> =>
  Option.fromNullable(service.active_deployment_id || service.latest_deployment_id || null)

/** A timestamp of the API; absent or malformed reads as the epoch. */
export const dateOf = (s: string | null | undefined): Date => {
  const date = s ? new Date(s) : new Date(0)
  return Number.isNaN(date.getTime()) ? new Date(0) : date
}

/** What the service and its deployment (when known) say about a sandbox. */
export const infoOf = (service: Service, deployment: Option.Option<Deployment>, ownsApp: boolean): SandboxInfo => {
  const view: DefinitionView = Option.match(deployment, {
    onNone: () => ({}),
    onSome: (d) => definitionView(d.definition)
  })
  return new SandboxInfo({
    id: service.id,
    appId: service.app_id,
    name: view.name ?? service.name ?? "",
    region: view.regions?.[0] ?? "",
    instanceType: view.instance_types?.[0]?.type ?? "",
    image: view.docker?.image ?? "",
    createdAt: dateOf(service.created_at),
    ownsApp
  })
}

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

const isResourceName = Schema.is(ResourceName)
const isEnvKey = Schema.is(EnvKey)
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
  readonly serviceBody: (appId: string, secret: string) => typeof CreateService.Encoded
}

/** Validates `options` and prepares the service payload; fails with the first invalid option. */
export const resolveCreate = (
  options: CreateOptions,
  defaultRegion: string
): Either.Either<ResolvedCreate, InvalidArgument> =>
  Either.gen(function*() {
    const name = options.name ?? "quick-sandbox"
    if (!isResourceName(name)) {
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
    const badEnv = envError(options.env)
    if (badEnv !== undefined) return yield* Either.left(badEnv)
    const env = Object.entries(options.env ?? {})
    // Koyeb's API takes narrower names than a command's environment
    for (const [key] of env) {
      if (!isEnvKey(key)) return yield* Either.left(invalid("env", `bad variable name ${JSON.stringify(key)}`))
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

    const docker: typeof CreateService.Encoded["definition"]["docker"] = {
      image,
      privileged: options.privileged ?? false,
      ...(options.registrySecret !== undefined ? { image_registry_secret: options.registrySecret } : {}),
      ...(options.entrypoint !== undefined ? { entrypoint: [...options.entrypoint] } : {}),
      ...(options.command !== undefined ? { command: options.command } : {}),
      ...(options.args !== undefined ? { args: [...options.args] } : {})
    }

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
