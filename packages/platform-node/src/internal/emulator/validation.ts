/**
 * Validation of the Koyeb REST bodies the emulator accepts (`CreateApp`, `CreateService`,
 * `UpdateService`). The bodies are decoded with the request schemas of `KoyebWire`, narrowed to
 * what the emulator runs (SANDBOX services from a docker image; a definition field it does not
 * know is refused, never ignored), with every error collected; each
 * error is reported as Koyeb does, `fields: [{field, description}]`, the description depending on
 * the field only. The checks that relate fields to each other (declared ports, the executor port,
 * the sandbox secret) are small functions next to the schemas.
 *
 * @internal
 */
import * as Wire from "@effect-koyeb/core/KoyebWire"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import { isRecord } from "effect/Predicate"
import * as Schema from "effect/Schema"
import { isTcpPort } from "../ports.js"

/** One rejected field, as in Koyeb's `ErrorWithFields.fields`. */
export interface FieldViolation {
  readonly field: string
  readonly description: string
}

/** A config file of a definition, permissions as sent (default `"0644"`). */
export interface ParsedConfigFile {
  readonly path: string
  readonly content: string
  readonly permissions: string
}

/**
 * What the emulator needs from a valid `DeploymentDefinition`; `raw` is echoed back as given.
 * `secret`, `env` and the config files' contents are templates (`{{ secret.NAME }}`, `{{ VAR }}`),
 * resolved when a deployment starts. `docker.image`, `docker.privileged`,
 * `docker.image_registry_secret`, `regions` and `mesh` are recorded (echoed back) with no local
 * effect: no image is pulled, and every sandbox runs on this machine.
 */
export interface ParsedDefinition {
  readonly raw: Record<string, unknown>
  readonly name: string
  readonly secret: string
  readonly env: Record<string, string>
  /** The definition publishes the proxy port (3031) as a TCP proxy port. */
  readonly tcpProxy: boolean
  /** `docker.entrypoint` / `command` / `args`: the sandbox's own program, run beside the executor. */
  readonly entrypoint: ReadonlyArray<string> | undefined
  readonly command: string | undefined
  readonly args: ReadonlyArray<string> | undefined
  readonly configFiles: ReadonlyArray<ParsedConfigFile>
  /** The first `instance_types[].type`, if any: the sandbox's resource limits. */
  readonly instanceType: string | undefined
}

/** A `ServiceLifeCycle` in seconds; an absent delay is not set. */
export interface ParsedLifeCycle {
  readonly delete_after_create?: number
  readonly delete_after_sleep?: number
}

/** The definition and life cycle of a valid service body. */
export interface ServiceBody {
  readonly definition: ParsedDefinition
  readonly lifeCycle: ParsedLifeCycle
}

type Path = ReadonlyArray<PropertyKey>

interface Violation {
  readonly path: Path
  readonly description: string
}

const list = <S extends Schema.Schema.Any>(item: S) => Schema.optional(Schema.NullOr(Schema.Array(item)))

// ---------------------------------------------------------------------------------------------
// Schemas: KoyebWire's, narrowed to what the emulator runs

const TcpPort = Wire.Int64.pipe(Schema.filter(isTcpPort))
const Seconds = Wire.Int64.pipe(Schema.nonNegative())

const EnvEntry = Schema.Struct({
  key: Wire.DeploymentEnv.fields.key,
  // The older form of a secret reference: the name of the secret whose value the variable gets.
  secret: Schema.optional(Schema.NullOr(Schema.String.pipe(Schema.pattern(/^([A-Za-z0-9][A-Za-z0-9_-]*)?$/)))),
  value: Wire.DeploymentEnv.fields.value
})

const isSafeAbsolute = (path: string) => path.startsWith("/") && !path.split("/").includes("..") && !path.includes("\0")

const ConfigFile = Schema.Struct({
  path: Schema.String.pipe(Schema.filter((path) => isSafeAbsolute(path) && path !== "/" && !path.endsWith("/"))),
  permissions: Schema.optional(Schema.NullOr(Schema.String.pipe(Schema.pattern(/^[0-7]{3,4}$/)))),
  content: Schema.String
})

const Scaling = Wire.DeploymentScaling.pick("min", "max").pipe(
  Schema.filter(({ max, min }) => (min ?? 0) >= 0 && (max ?? 0) >= (min ?? 0))
)

const Definition = Schema.Struct({
  name: Wire.DeploymentDefinition.fields.name,
  type: Wire.DeploymentType.pipe(Schema.pickLiteral("SANDBOX")),
  docker: Schema.Struct({
    image: Schema.String.pipe(Schema.filter((image) => image.trim() !== "")),
    privileged: Wire.DockerSource.fields.privileged,
    image_registry_secret: Wire.DockerSource.fields.image_registry_secret,
    entrypoint: Wire.DockerSource.fields.entrypoint,
    command: Wire.DockerSource.fields.command,
    args: Wire.DockerSource.fields.args
  }),
  ports: Schema.Array(Schema.Struct({ ...Wire.DeploymentPort.fields, port: TcpPort })).pipe(Schema.minItems(1)),
  routes: list(Schema.Struct({ ...Wire.DeploymentRoute.fields, path: Schema.String.pipe(Schema.startsWith("/")) })),
  proxy_ports: list(Wire.DeploymentProxyPort),
  env: list(EnvEntry),
  instance_types: list(Schema.Struct({ type: Schema.NonEmptyString })),
  regions: list(Schema.NonEmptyString),
  scalings: list(Scaling),
  mesh: Schema.optional(
    Schema.NullOr(Schema.Literal("DEPLOYMENT_MESH_AUTO", "DEPLOYMENT_MESH_ENABLED", "DEPLOYMENT_MESH_DISABLED"))
  ),
  config_files: list(ConfigFile)
})

/** The definition fields the emulator knows; any other is refused rather than ignored. */
const definitionFields: ReadonlySet<string> = new Set([
  "name",
  "type",
  "docker",
  "ports",
  "routes",
  "proxy_ports",
  "env",
  "instance_types",
  "regions",
  "scalings",
  "mesh",
  "config_files"
])

const LifeCycle = Schema.Struct({
  delete_after_create: Schema.optional(Schema.NullOr(Seconds)),
  delete_after_sleep: Schema.optional(Schema.NullOr(Seconds))
})

const CreateService = Schema.Struct({
  ...Wire.CreateService.fields,
  app_id: Schema.NonEmptyString,
  definition: Definition,
  life_cycle: Schema.optional(Schema.NullOr(LifeCycle))
})

const UpdateService = Schema.Struct({
  ...Wire.UpdateService.fields,
  definition: Definition,
  life_cycle: Schema.optional(Schema.NullOr(LifeCycle))
})

// ---------------------------------------------------------------------------------------------
// Parse errors → Koyeb's fields

const nameRule = "must be 1 to 63 lowercase letters, digits or dashes, starting and ending with a letter or digit"
const declaredPort = "must be one of the declared ports"
const aList = "must be a list"

/** What a field must be, by path (`[]` standing for any index); errors deeper down are reported on the nearest listed field. */
const descriptions: Readonly<Record<string, string>> = {
  "name": nameRule,
  "life_cycle": "must be an object",
  "life_cycle.delete_when_empty": "must be a boolean",
  "life_cycle.delete_after_create": "must be a non-negative integer number of seconds",
  "life_cycle.delete_after_sleep": "must be a non-negative integer number of seconds",
  "app_id": "is required",
  "save_only": "must be a boolean",
  "definition": "is required and must be an object",
  "definition.name": nameRule,
  "definition.type": "must be SANDBOX (the emulator runs sandbox services only)",
  "definition.docker": "is required (the emulator runs docker definitions only)",
  "definition.docker.image": "must be a non-empty image reference",
  "definition.docker.privileged": "must be a boolean",
  "definition.docker.image_registry_secret": "must be a string",
  "definition.docker.entrypoint": "must be a list of strings",
  "definition.docker.command": "must be a string",
  "definition.docker.args": "must be a list of strings",
  "definition.ports": "must list the ports, including 3030 (the sandbox executor)",
  "definition.ports[].port": "must be an integer between 1 and 65535",
  "definition.ports[].protocol": "must be one of http, http2, tcp",
  "definition.routes": aList,
  "definition.routes[].port": declaredPort,
  "definition.routes[].path": "must start with /",
  "definition.proxy_ports": aList,
  "definition.proxy_ports[].port": declaredPort,
  "definition.proxy_ports[].protocol": "must be tcp",
  "definition.env": "must be a list of {key, value}",
  "definition.env[].key": "must be a valid environment variable name",
  "definition.env[].secret": "must be the name of a secret",
  "definition.env[].value": "must be a string",
  "definition.instance_types": aList,
  "definition.instance_types[].type": "must be a non-empty instance type",
  "definition.regions": aList,
  "definition.regions[]": "must be a region",
  "definition.scalings": aList,
  "definition.scalings[]": "min and max must be integers with 0 <= min <= max",
  "definition.mesh": "must be DEPLOYMENT_MESH_AUTO, DEPLOYMENT_MESH_ENABLED or DEPLOYMENT_MESH_DISABLED",
  "definition.config_files": aList,
  "definition.config_files[].path": "must be an absolute file path without ..",
  "definition.config_files[].permissions": "must be octal permissions such as 0644",
  "definition.config_files[].content": "must be a string"
}

/** A list item that is not an object is reported on these of its fields. */
const itemFields: Readonly<Record<string, ReadonlyArray<string>>> = {
  "definition.ports[]": ["port", "protocol"],
  "definition.routes[]": ["port", "path"],
  "definition.proxy_ports[]": ["port", "protocol"],
  "definition.env[]": ["key"],
  "definition.instance_types[]": ["type"],
  "definition.config_files[]": ["path", "content"]
}

/**
 * Fields are reported in this order: siblings by key, list items by index, a field after what is
 * under it; the list checks of `instance_types`, `regions` and `scalings` come before their items.
 */
const keyOrder = [
  "app_id",
  "name",
  "definition",
  "type",
  "docker",
  "image",
  "privileged",
  "image_registry_secret",
  "entrypoint",
  "command",
  "args",
  "ports",
  "port",
  "protocol",
  "routes",
  "path",
  "proxy_ports",
  "env",
  "key",
  "secret",
  "value",
  "mesh",
  "config_files",
  "permissions",
  "content",
  "life_cycle",
  "delete_when_empty",
  "delete_after_create",
  "delete_after_sleep",
  "save_only"
]
const listsLast = ["instance_types", "regions", "scalings"]

const sortKey = (path: Path): ReadonlyArray<number> =>
  path.map((key, i) => {
    if (typeof key === "number") return key
    const last = i === 1 && path[0] === "definition" ? listsLast.indexOf(String(key)) : -1
    if (last >= 0) return 100 + (path.length === 2 ? 0 : 10) + last
    // Fields the emulator does not know come last.
    const known = keyOrder.indexOf(String(key))
    return known < 0 ? 1000 : known
  })

const compare = (a: Violation, b: Violation): number => {
  const [x, y] = [sortKey(a.path), sortKey(b.path)]
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!
  }
  return y.length - x.length
}

const joinPath = (path: Path, index: (i: number) => string) =>
  path.map((key, i) => typeof key === "number" ? index(key) : i === 0 ? String(key) : `.${String(key)}`).join("")

/** `definition.ports[].port` for `definition.ports[2].port`. */
const pattern = (path: Path) => joinPath(path, () => "[]")

const fieldName = (path: Path) => path.length === 0 ? "body" : joinPath(path, (i) => `[${i}]`)

/** The fields a parse issue at `path` is reported on. */
const violationsAt = (path: Path): ReadonlyArray<Violation> => {
  if (path.length === 0) return [{ path, description: "must be a JSON object" }]
  const fields = itemFields[pattern(path)]
  if (fields !== undefined) {
    return fields.map((key) => ({ path: [...path, key], description: descriptions[pattern([...path, key])]! }))
  }
  for (let end = path.length; end > 0; end--) {
    const description = descriptions[pattern(path.slice(0, end))]
    if (description !== undefined) return [{ path: path.slice(0, end), description }]
  }
  return [{ path, description: "is invalid" }]
}

/** The env entry a path is under, if any: each entry reports its first violation only. */
const envEntry = (path: Path) =>
  path[0] === "definition" && path[1] === "env" && typeof path[2] === "number" ? `env[${path[2]}]` : undefined

const toFields = (violations: ReadonlyArray<Violation>): ReadonlyArray<FieldViolation> => {
  const seen = new Set<string>()
  const out: Array<FieldViolation> = []
  for (const violation of [...violations].sort(compare)) {
    const field = fieldName(violation.path)
    const key = envEntry(violation.path) ?? field
    if (seen.has(key)) continue
    seen.add(key)
    out.push({ field, description: violation.description })
  }
  return out
}

const isUnder = (path: Path, parent: Path) => path.length > parent.length && parent.every((key, i) => path[i] === key)

/** The violations of a parse issue. An issue under a field supersedes those of the other union members tried at it (`null`, absent). */
const shapeViolations = (issue: ParseResult.ParseIssue): ReadonlyArray<Violation> => {
  const paths = ParseResult.ArrayFormatter.formatIssueSync(issue).map((error) => error.path)
  return paths.filter((path) => !paths.some((other) => isUnder(other, path))).flatMap(violationsAt)
}

// ---------------------------------------------------------------------------------------------
// Checks across fields

const items = (u: unknown): ReadonlyArray<unknown> => (Array.isArray(u) ? u : [])
const decodePort = Schema.decodeUnknownOption(TcpPort)
const decodeInt64 = Schema.decodeUnknownOption(Wire.Int64)
const decodeEnvEntry = Schema.decodeUnknownOption(EnvEntry)

/** The ports the definition declares validly. */
const declaredPorts = (definition: Record<string, unknown>): ReadonlySet<number> =>
  new Set(items(definition.ports).flatMap((p) => (isRecord(p) ? Option.toArray(decodePort(p.port)) : [])))

/** Routes and proxy ports must use declared ports. */
const undeclaredPorts = (definition: Record<string, unknown>): ReadonlyArray<Violation> => {
  const declared = declaredPorts(definition)
  return (["routes", "proxy_ports"] as const).flatMap((key) =>
    items(definition[key]).flatMap((item, i) => {
      const port = isRecord(item) ? decodeInt64(item.port) : Option.none()
      return Option.isSome(port) && !declared.has(port.value)
        ? [{ path: ["definition", key, i, "port"], description: declaredPort }]
        : []
    })
  )
}

/** The valid env entries: the sandbox secret and the other variables. */
const environment = (definition: Record<string, unknown>) => {
  const env: Record<string, string> = {}
  let secret: string | undefined
  for (const entry of items(definition.env)) {
    const decoded = decodeEnvEntry(entry)
    if (Option.isNone(decoded)) continue
    const reference = decoded.value.secret
    const value = reference ? `{{ secret.${reference} }}` : decoded.value.value ?? ""
    if (decoded.value.key === Wire.SECRET_ENV) secret = value
    else env[decoded.value.key] = value
  }
  return { env, secret }
}

/** The executor port must be declared, once everything before the routes is valid. */
const executorPort = (
  definition: Record<string, unknown>,
  shape: ReadonlyArray<Violation>
): ReadonlyArray<Violation> => {
  const early = new Set(["name", "type", "docker", "ports"])
  return items(definition.ports).length > 0 && !declaredPorts(definition).has(Wire.EXECUTOR_PORT) &&
      !shape.some((v) => v.path[0] === "definition" && early.has(String(v.path[1])))
    ? [{ path: ["definition", "ports"], description: "a sandbox must expose port 3030 (the sandbox executor)" }]
    : []
}

/** A list of variables (or none) must set a non-empty sandbox secret. */
const sandboxSecret = (definition: Record<string, unknown>): ReadonlyArray<Violation> => {
  if (definition.env !== undefined && definition.env !== null && !Array.isArray(definition.env)) return []
  const { secret } = environment(definition)
  return secret === undefined || secret === ""
    ? [{ path: ["definition", "env"], description: "a SANDBOX service needs a non-empty SANDBOX_SECRET" }]
    : []
}

/** A field the emulator does not know would be accepted and have no effect: refused by name. */
const unknownFields = (definition: Record<string, unknown>): ReadonlyArray<Violation> =>
  Object.keys(definition).filter((key) => !definitionFields.has(key) && definition[key] !== null).map((key) => ({
    path: ["definition", key],
    description: "is not supported by the emulator"
  }))

/** Checks across the fields of a definition, given the violations found in its shape. */
const definitionChecks = (definition: unknown, shape: ReadonlyArray<Violation>): ReadonlyArray<Violation> =>
  isRecord(definition)
    ? [
      ...executorPort(definition, shape),
      ...undeclaredPorts(definition),
      ...sandboxSecret(definition),
      ...unknownFields(definition)
    ]
    : []

// ---------------------------------------------------------------------------------------------
// Bodies

const decodeAll = <A, I>(schema: Schema.Schema<A, I>, body: unknown) =>
  Schema.decodeUnknownEither(schema, { errors: "all" })(body)

/** Decodes `body`, adding the definition's checks across fields; all violations or the value. */
const validate = <A, I>(
  schema: Schema.Schema<A, I>,
  body: unknown
): Either.Either<A, ReadonlyArray<FieldViolation>> => {
  if (!isRecord(body)) return Either.left(toFields(violationsAt([])))
  const decoded = decodeAll(schema, body)
  const shape = Either.isLeft(decoded) ? shapeViolations(decoded.left.issue) : []
  const all = [...shape, ...definitionChecks(body.definition, shape)]
  return all.length > 0 || Either.isLeft(decoded) ? Either.left(toFields(all)) : Either.right(decoded.right)
}

const parsedDefinition = (raw: unknown, decoded: typeof Definition.Type): ParsedDefinition => {
  const record = raw as Record<string, unknown>
  const { env, secret } = environment(record)
  return {
    raw: record,
    name: decoded.name,
    secret: secret!,
    env,
    tcpProxy: (decoded.proxy_ports ?? []).some((p) => p.port === Wire.PROXY_PORT),
    entrypoint: decoded.docker.entrypoint ?? undefined,
    command: decoded.docker.command ?? undefined,
    args: decoded.docker.args ?? undefined,
    configFiles: (decoded.config_files ?? []).map((file) => ({
      path: file.path,
      content: file.content,
      permissions: file.permissions ?? "0644"
    })),
    instanceType: decoded.instance_types?.[0]?.type
  }
}

const parsedLifeCycle = (lifeCycle: typeof LifeCycle.Type | null | undefined): ParsedLifeCycle => {
  const out: { delete_after_create?: number; delete_after_sleep?: number } = {}
  for (const key of ["delete_after_create", "delete_after_sleep"] as const) {
    const seconds = lifeCycle?.[key]
    if (seconds !== undefined && seconds !== null) out[key] = seconds
  }
  return out
}

/** Validates a `CreateApp` body. */
export const validateCreateApp = (
  body: unknown
): Either.Either<{ readonly name: string; readonly deleteWhenEmpty: boolean }, ReadonlyArray<FieldViolation>> =>
  Either.map(validate(Wire.CreateApp, body), (app) => ({
    name: app.name,
    deleteWhenEmpty: app.life_cycle?.delete_when_empty ?? false
  }))

/** Decodes a body with a definition and a life cycle, parsing both (`decoded` is the whole body). */
const withDefinition = <
  A extends {
    readonly definition: typeof Definition.Type
    readonly life_cycle?: typeof LifeCycle.Type | null | undefined
  },
  I
>(schema: Schema.Schema<A, I>, body: unknown) =>
  Either.map(validate(schema, body), (decoded) => ({
    decoded,
    definition: parsedDefinition((body as Record<string, unknown>).definition, decoded.definition),
    lifeCycle: parsedLifeCycle(decoded.life_cycle)
  }))

/** Validates a `CreateService` body. */
export const validateCreateService = (
  body: unknown
): Either.Either<ServiceBody & { readonly appId: string }, ReadonlyArray<FieldViolation>> =>
  Either.map(withDefinition(CreateService, body), ({ decoded, ...parsed }) => ({ appId: decoded.app_id, ...parsed }))

/** Validates an `UpdateService` body (`save_only` stores without deploying). */
export const validateUpdateService = (
  body: unknown
): Either.Either<ServiceBody & { readonly saveOnly: boolean }, ReadonlyArray<FieldViolation>> =>
  Either.map(
    withDefinition(UpdateService, body),
    ({ decoded, ...parsed }) => ({ ...parsed, saveOnly: decoded.save_only === true })
  )
