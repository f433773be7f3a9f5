/**
 * The emulator's `/v1/secrets` routes, with Koyeb's shapes: create, get, list (`name`, `types`,
 * `limit`, `offset`), update (PUT or PATCH), delete, and `POST /v1/secrets/{id}/reveal`. Only
 * SIMPLE secrets are stored. As on Koyeb, a secret's value is never in a reply except the reveal's;
 * deployments read the values when they start (see `deployments`).
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { isRecord } from "effect/Predicate"
import * as Ref from "effect/Ref"
import * as Crypto from "node:crypto"
import { body, invalidArgument, json, notFound, page, param, query } from "./http.js"
import { errorBody } from "./render.js"
import * as State from "./state.js"
import type { SecretRecord, Store } from "./state.js"
import type { FieldViolation } from "./validation.js"

/** What a secret name may be: what `{{ secret.NAME }}` can refer to. */
const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/

const iso = (millis: number) => new Date(millis).toISOString()

/** Koyeb's `Secret`, without its value. */
const secretJson = (secret: SecretRecord, organizationId: string) => ({
  id: secret.id,
  name: secret.name,
  organization_id: organizationId,
  project_id: "",
  type: "SIMPLE",
  created_at: iso(secret.createdAt),
  updated_at: iso(secret.updatedAt)
})

interface SecretFields {
  readonly name: string | undefined
  readonly value: string | undefined
}

/** Checks a `CreateSecret` body (`required`) or an update's `Secret` body: the fields or their violations. */
const validate = (input: unknown, required: boolean): SecretFields | ReadonlyArray<FieldViolation> => {
  if (!isRecord(input)) return [{ field: "body", description: "must be a JSON object" }]
  const fields: Array<FieldViolation> = []
  const { name, type, value } = input
  if ((required || name !== undefined) && (typeof name !== "string" || !SECRET_NAME.test(name))) {
    fields.push({
      field: "name",
      description: "must be 1 to 63 letters, digits, dashes or underscores, starting with a letter or digit"
    })
  }
  if (type !== undefined && type !== null && type !== "SIMPLE") {
    fields.push({ field: "type", description: "must be SIMPLE (the emulator stores simple secrets only)" })
  }
  if ((required || value !== undefined) && typeof value !== "string") {
    fields.push({ field: "value", description: "must be a string" })
  }
  return fields.length > 0 ? fields : {
    name: typeof name === "string" ? name : undefined,
    value: typeof value === "string" ? value : undefined
  }
}

const isViolations = (u: SecretFields | ReadonlyArray<FieldViolation>): u is ReadonlyArray<FieldViolation> =>
  Array.isArray(u)

const alreadyExists = (name: string) =>
  json(errorBody(409, "ALREADY_EXISTS", `A secret named ${JSON.stringify(name)} already exists`), 409)

/** The `/v1/secrets` routes over the emulator's store. */
export const routes = (store: Ref.Ref<Store>, organizationId: string) => {
  const reply = (secret: SecretRecord) => json({ secret: secretJson(secret, organizationId) })
  const lookup = Effect.map(Effect.zip(Ref.get(store), param("id")), ([s, id]) => s.secrets.get(id))
  const secretNotFound = notFound("Secret not found")

  const create = Effect.gen(function*() {
    const fields = validate(yield* body, true)
    if (isViolations(fields)) return invalidArgument(fields)
    const name = fields.name!
    const now = yield* Clock.currentTimeMillis
    const secret: SecretRecord = { id: Crypto.randomUUID(), name, value: fields.value!, createdAt: now, updatedAt: now }
    const created = yield* Ref.modify(
      store,
      (s): [boolean, Store] =>
        State.secretNamed(s, name) === undefined ? [true, State.putSecret(secret)(s)] : [false, s]
    )
    return created ? reply(secret) : alreadyExists(name)
  })

  const list = Effect.gen(function*() {
    const q = yield* query
    const { limit, offset } = page(q)
    const name = q.get("name")
    const types = q.getAll("types")
    const matching = Array.from((yield* Ref.get(store)).secrets.values())
      .filter((s) => (name === null || s.name === name) && (types.length === 0 || types.includes("SIMPLE")))
      .sort((a, b) => b.createdAt - a.createdAt)
    return json({
      secrets: matching.slice(offset, offset + limit).map((s) => secretJson(s, organizationId)),
      limit,
      offset,
      count: matching.length
    })
  })

  const get = Effect.map(lookup, (secret) => secret === undefined ? secretNotFound : reply(secret))

  const update = Effect.gen(function*() {
    const secret = yield* lookup
    if (secret === undefined) return secretNotFound
    const fields = validate(yield* body, false)
    if (isViolations(fields)) return invalidArgument(fields)
    const { name, value } = fields
    const now = yield* Clock.currentTimeMillis
    const updated: SecretRecord = {
      ...secret,
      name: name ?? secret.name,
      value: value ?? secret.value,
      updatedAt: now
    }
    const done = yield* Ref.modify(store, (s): [boolean, Store] => {
      const holder = State.secretNamed(s, updated.name)
      return holder === undefined || holder.id === secret.id ? [true, State.putSecret(updated)(s)] : [false, s]
    })
    return done ? reply(updated) : alreadyExists(updated.name)
  })

  const remove = Effect.gen(function*() {
    const secret = yield* lookup
    if (secret === undefined) return secretNotFound
    yield* Ref.update(store, State.removeSecret(secret.id))
    return json({})
  })

  const reveal = Effect.map(lookup, (secret) => secret === undefined ? secretNotFound : json({ value: secret.value }))

  return HttpRouter.empty.pipe(
    HttpRouter.post("/v1/secrets", create),
    HttpRouter.get("/v1/secrets", list),
    HttpRouter.get("/v1/secrets/:id", get),
    HttpRouter.put("/v1/secrets/:id", update),
    HttpRouter.patch("/v1/secrets/:id", update),
    HttpRouter.del("/v1/secrets/:id", remove),
    HttpRouter.post("/v1/secrets/:id/reveal", reveal)
  )
}
