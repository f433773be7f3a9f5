/**
 * Validation of the Koyeb REST bodies the emulator accepts (`CreateApp`, `CreateService`,
 * `UpdateService`), reporting Koyeb-style `fields: [{field, description}]`.
 *
 * @internal
 */

/** One rejected field, as in Koyeb's `ErrorWithFields.fields`. */
export interface FieldViolation {
  readonly field: string
  readonly description: string
}

/** What the emulator needs from a valid `DeploymentDefinition`; `raw` is echoed back as given. */
export interface ParsedDefinition {
  readonly raw: Record<string, unknown>
  readonly name: string
  readonly secret: string
  readonly env: Record<string, string>
  /** The definition publishes port 3031 as a TCP proxy port (`enable_tcp_proxy`). */
  readonly tcpProxy: boolean
}

/** `ServiceLifeCycle` with int64 seconds (numbers or numeric strings on the wire). */
export interface ParsedLifeCycle {
  readonly delete_after_create?: number
  readonly delete_after_sleep?: number
}

/** Result of a validation: the parsed value or the list of violations. */
export type Validated<A> =
  | { readonly _tag: "Valid"; readonly value: A }
  | { readonly _tag: "Invalid"; readonly fields: ReadonlyArray<FieldViolation> }

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/
const PROTOCOLS = ["http", "http2", "tcp"]
const EXECUTOR_PORT = 3030
const PROXY_PORT = 3031

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** int64 fields arrive as JSON numbers or numeric strings. */
const int64 = (u: unknown): number | undefined =>
  typeof u === "number" && Number.isInteger(u)
    ? u
    : typeof u === "string" && /^-?\d+$/.test(u)
    ? Number(u)
    : undefined

const nameRule = "must be 1 to 63 lowercase letters, digits or dashes, starting and ending with a letter or digit"

/** Validates a `CreateApp` body. */
export const validateCreateApp = (
  body: unknown
): Validated<{ readonly name: string; readonly deleteWhenEmpty: boolean }> => {
  const fields: Array<FieldViolation> = []
  if (!isRecord(body)) return { _tag: "Invalid", fields: [{ field: "body", description: "must be a JSON object" }] }
  if (typeof body.name !== "string" || !NAME.test(body.name)) fields.push({ field: "name", description: nameRule })
  let deleteWhenEmpty = false
  if (body.life_cycle !== undefined && body.life_cycle !== null) {
    if (!isRecord(body.life_cycle)) {
      fields.push({ field: "life_cycle", description: "must be an object" })
    } else if (body.life_cycle.delete_when_empty !== undefined && body.life_cycle.delete_when_empty !== null) {
      if (typeof body.life_cycle.delete_when_empty !== "boolean") {
        fields.push({ field: "life_cycle.delete_when_empty", description: "must be a boolean" })
      } else {
        deleteWhenEmpty = body.life_cycle.delete_when_empty
      }
    }
  }
  return fields.length > 0
    ? { _tag: "Invalid", fields }
    : { _tag: "Valid", value: { name: body.name as string, deleteWhenEmpty } }
}

/** Validates a `ServiceLifeCycle` (absent or null is an empty life cycle). */
export const validateLifeCycle = (u: unknown, fields: Array<FieldViolation>): ParsedLifeCycle => {
  if (u === undefined || u === null) return {}
  if (!isRecord(u)) {
    fields.push({ field: "life_cycle", description: "must be an object" })
    return {}
  }
  const out: { delete_after_create?: number; delete_after_sleep?: number } = {}
  for (const key of ["delete_after_create", "delete_after_sleep"] as const) {
    const value = u[key]
    if (value === undefined || value === null) continue
    const n = int64(value)
    if (n === undefined || n < 0) {
      fields.push({ field: `life_cycle.${key}`, description: "must be a non-negative integer number of seconds" })
    } else {
      out[key] = n
    }
  }
  return out
}

/** Validates a `DeploymentDefinition` of type SANDBOX (the only type the emulator runs). */
export const validateDefinition = (u: unknown, fields: Array<FieldViolation>): ParsedDefinition | undefined => {
  const at = (path: string) => `definition${path}`
  if (!isRecord(u)) {
    fields.push({ field: "definition", description: "is required and must be an object" })
    return undefined
  }
  const before = fields.length
  if (typeof u.name !== "string" || !NAME.test(u.name)) fields.push({ field: at(".name"), description: nameRule })
  if (u.type !== "SANDBOX") {
    fields.push({ field: at(".type"), description: "must be SANDBOX (the emulator runs sandbox services only)" })
  }
  if (!isRecord(u.docker)) {
    fields.push({ field: at(".docker"), description: "is required (the emulator runs docker definitions only)" })
  } else {
    if (typeof u.docker.image !== "string" || u.docker.image.trim() === "") {
      fields.push({ field: at(".docker.image"), description: "must be a non-empty image reference" })
    }
    if (u.docker.privileged !== undefined && u.docker.privileged !== null && typeof u.docker.privileged !== "boolean") {
      fields.push({ field: at(".docker.privileged"), description: "must be a boolean" })
    }
  }

  const ports = new Set<number>()
  if (!Array.isArray(u.ports) || u.ports.length === 0) {
    fields.push({ field: at(".ports"), description: "must list the ports, including 3030 (the sandbox executor)" })
  } else {
    u.ports.forEach((p: unknown, i) => {
      const port = isRecord(p) ? int64(p.port) : undefined
      if (port === undefined || port < 1 || port > 65535) {
        fields.push({ field: at(`.ports[${i}].port`), description: "must be an integer between 1 and 65535" })
      } else {
        ports.add(port)
      }
      if (!isRecord(p) || typeof p.protocol !== "string" || !PROTOCOLS.includes(p.protocol)) {
        fields.push({ field: at(`.ports[${i}].protocol`), description: "must be one of http, http2, tcp" })
      }
    })
    if (!ports.has(EXECUTOR_PORT) && fields.length === before) {
      fields.push({ field: at(".ports"), description: "a sandbox must expose port 3030 (the sandbox executor)" })
    }
  }
  if (u.routes !== undefined && u.routes !== null) {
    if (!Array.isArray(u.routes)) {
      fields.push({ field: at(".routes"), description: "must be a list" })
    } else {
      u.routes.forEach((r: unknown, i) => {
        const port = isRecord(r) ? int64(r.port) : undefined
        if (port === undefined || !ports.has(port)) {
          fields.push({ field: at(`.routes[${i}].port`), description: "must be one of the declared ports" })
        }
        if (!isRecord(r) || typeof r.path !== "string" || !r.path.startsWith("/")) {
          fields.push({ field: at(`.routes[${i}].path`), description: "must start with /" })
        }
      })
    }
  }
  let tcpProxy = false
  if (u.proxy_ports !== undefined && u.proxy_ports !== null) {
    if (!Array.isArray(u.proxy_ports)) {
      fields.push({ field: at(".proxy_ports"), description: "must be a list" })
    } else {
      u.proxy_ports.forEach((p: unknown, i) => {
        const port = isRecord(p) ? int64(p.port) : undefined
        if (port === undefined || !ports.has(port)) {
          fields.push({ field: at(`.proxy_ports[${i}].port`), description: "must be one of the declared ports" })
        } else if (port === PROXY_PORT) {
          tcpProxy = true
        }
        if (!isRecord(p) || p.protocol !== "tcp") {
          fields.push({ field: at(`.proxy_ports[${i}].protocol`), description: "must be tcp" })
        }
      })
    }
  }

  const env: Record<string, string> = {}
  let secret: string | undefined
  if (u.env !== undefined && u.env !== null && !Array.isArray(u.env)) {
    fields.push({ field: at(".env"), description: "must be a list of {key, value}" })
  } else {
    ;((u.env ?? []) as Array<unknown>).forEach((e, i) => {
      if (!isRecord(e) || typeof e.key !== "string" || !ENV_KEY.test(e.key)) {
        fields.push({ field: at(`.env[${i}].key`), description: "must be a valid environment variable name" })
        return
      }
      if (e.secret !== undefined && e.secret !== null && e.secret !== "") {
        fields.push({
          field: at(`.env[${i}].secret`),
          description: "secret references are not supported by the emulator"
        })
        return
      }
      if (e.value !== undefined && e.value !== null && typeof e.value !== "string") {
        fields.push({ field: at(`.env[${i}].value`), description: "must be a string" })
        return
      }
      const value = typeof e.value === "string" ? e.value : ""
      if (e.key === "SANDBOX_SECRET") secret = value
      else env[e.key] = value
    })
    if (secret === undefined || secret === "") {
      fields.push({ field: at(".env"), description: "a SANDBOX service needs a non-empty SANDBOX_SECRET" })
    }
  }

  for (const key of ["instance_types", "regions", "scalings"] as const) {
    if (u[key] !== undefined && u[key] !== null && !Array.isArray(u[key])) {
      fields.push({ field: at(`.${key}`), description: "must be a list" })
    }
  }
  if (Array.isArray(u.instance_types)) {
    u.instance_types.forEach((t: unknown, i) => {
      if (!isRecord(t) || typeof t.type !== "string" || t.type === "") {
        fields.push({ field: at(`.instance_types[${i}].type`), description: "must be a non-empty instance type" })
      }
    })
  }
  if (Array.isArray(u.regions)) {
    u.regions.forEach((r: unknown, i) => {
      if (typeof r !== "string" || r === "") {
        fields.push({ field: at(`.regions[${i}]`), description: "must be a region" })
      }
    })
  }
  if (Array.isArray(u.scalings)) {
    u.scalings.forEach((s: unknown, i) => {
      const min = isRecord(s) ? int64(s.min ?? 0) : undefined
      const max = isRecord(s) ? int64(s.max ?? 0) : undefined
      if (min === undefined || max === undefined || min < 0 || max < min) {
        fields.push({ field: at(`.scalings[${i}]`), description: "min and max must be integers with 0 <= min <= max" })
      }
    })
  }

  return fields.length > before
    ? undefined
    : { raw: u, name: u.name as string, secret: secret as string, env, tcpProxy }
}

/** Validates a `CreateService` body. */
export const validateCreateService = (
  body: unknown
): Validated<
  { readonly appId: string; readonly definition: ParsedDefinition; readonly lifeCycle: ParsedLifeCycle }
> => {
  if (!isRecord(body)) return { _tag: "Invalid", fields: [{ field: "body", description: "must be a JSON object" }] }
  const fields: Array<FieldViolation> = []
  if (typeof body.app_id !== "string" || body.app_id === "") {
    fields.push({ field: "app_id", description: "is required" })
  }
  const definition = validateDefinition(body.definition, fields)
  const lifeCycle = validateLifeCycle(body.life_cycle, fields)
  return fields.length > 0 || definition === undefined
    ? { _tag: "Invalid", fields }
    : { _tag: "Valid", value: { appId: body.app_id as string, definition, lifeCycle } }
}

/** Validates an `UpdateService` body (`save_only` stores without deploying). */
export const validateUpdateService = (
  body: unknown
): Validated<{
  readonly definition: ParsedDefinition
  readonly lifeCycle: ParsedLifeCycle
  readonly saveOnly: boolean
}> => {
  if (!isRecord(body)) return { _tag: "Invalid", fields: [{ field: "body", description: "must be a JSON object" }] }
  const fields: Array<FieldViolation> = []
  const definition = validateDefinition(body.definition, fields)
  const lifeCycle = validateLifeCycle(body.life_cycle, fields)
  if (body.save_only !== undefined && body.save_only !== null && typeof body.save_only !== "boolean") {
    fields.push({ field: "save_only", description: "must be a boolean" })
  }
  return fields.length > 0 || definition === undefined
    ? { _tag: "Invalid", fields }
    : { _tag: "Valid", value: { definition, lifeCycle, saveOnly: body.save_only === true } }
}
