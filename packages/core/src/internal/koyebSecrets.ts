/**
 * `Secrets` over the Koyeb REST API: `/v1/secrets` with the HTTP policy of the control plane
 * (`koyebHttp`). A 404 on a named secret is `SecretNotFound`; `delete` of a secret already gone
 * succeeds. Replies are decoded by the fields read here; a secret's value is read only from the
 * reveal reply, and never appears in an error.
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { KoyebControlPlaneOptions } from "../KoyebControlPlane.js"
import { type ApiError, type ControlPlaneFailure, InvalidArgument } from "../SandboxError.js"
import {
  type CreateSecretOptions,
  SecretInfo,
  SecretNotFound,
  type SecretsFailure,
  type SecretsShape
} from "../Secrets.js"
import { makeHttp } from "./koyebControlPlane.js"
import type { CallOptions, KoyebHttp } from "./koyebHttp.js"
import { dateOf } from "./koyebWire.js"
import { isSecretName } from "./secretTemplates.js"

const optionalString = Schema.optional(Schema.NullOr(Schema.String))

const SecretWire = Schema.Struct({
  id: Schema.String,
  name: optionalString,
  type: optionalString,
  created_at: optionalString,
  updated_at: optionalString
})

const SecretReply = Schema.Struct({ secret: SecretWire })

const SecretList = Schema.Struct({
  secrets: Schema.optional(Schema.NullOr(Schema.Array(SecretWire))),
  count: Schema.optional(Schema.Union(Schema.Number, Schema.NumberFromString))
})

const RevealReply = Schema.Struct({ value: Schema.String })

const PAGE = 100

const infoOf = (secret: typeof SecretWire.Type): SecretInfo =>
  new SecretInfo({
    id: secret.id,
    name: secret.name ?? "",
    type: secret.type ?? "SIMPLE",
    createdAt: dateOf(secret.created_at),
    updatedAt: dateOf(secret.updated_at)
  })

/** Checks the options of `create`. */
export const validateCreate = (options: CreateSecretOptions): Either.Either<void, InvalidArgument> =>
  !isSecretName(options.name)
    ? Either.left(
      new InvalidArgument({
        argument: "name",
        detail: `${JSON.stringify(options.name)}: use 1-63 letters, digits, dashes or underscores`
      })
    )
    : !Redacted.isRedacted(options.value) || typeof Redacted.value(options.value) !== "string"
    ? Either.left(new InvalidArgument({ argument: "value", detail: "must be a Redacted string" }))
    : Either.void

const isNotFound = (e: { readonly _tag: string }) => e._tag === "ApiError" && (e as ApiError).status === 404

/** Builds the service over an existing HTTP policy. */
export const fromHttp = (koyebHttp: KoyebHttp): SecretsShape => {
  // These calls never name a sandbox, so the policy never reports `SandboxNotFound`.
  const narrow = <A>(effect: Effect.Effect<A, ControlPlaneFailure>): Effect.Effect<A, SecretsFailure> =>
    Effect.catchTag(effect, "SandboxNotFound", (e) => Effect.die(e))
  const http = {
    get: <A, I>(path: string, schema: Schema.Schema<A, I>, options?: CallOptions) =>
      narrow(koyebHttp.get(path, schema, options)),
    post: <A, I>(path: string, schema: Schema.Schema<A, I>, body: unknown) =>
      narrow(koyebHttp.post(path, schema, body)),
    put: (path: string, body: unknown, options?: CallOptions) => narrow(koyebHttp.put(path, body, options)),
    delete: (path: string) => narrow(koyebHttp.delete(path))
  }
  const path = (id: string) => `/v1/secrets/${encodeURIComponent(id)}`
  const notFound = (id: string) => <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.catchIf(effect, isNotFound, () => Effect.fail(new SecretNotFound({ id })))

  const get = Effect.fn("Secrets.get")(function*(id: string) {
    const reply = yield* http.get(path(id), SecretReply).pipe(notFound(id))
    return infoOf(reply.secret)
  })

  const page = (urlParams: Record<string, string>) => http.get("/v1/secrets", SecretList, { urlParams })

  return {
    create: Effect.fn("Secrets.create")(function*(options: CreateSecretOptions) {
      yield* validateCreate(options)
      const reply = yield* http.post("/v1/secrets", SecretReply, {
        name: options.name,
        type: "SIMPLE",
        value: Redacted.value(options.value)
      })
      return infoOf(reply.secret)
    }),
    get,
    findByName: Effect.fn("Secrets.findByName")(function*(name: string) {
      const reply = yield* page({ name, limit: String(PAGE), offset: "0" })
      return Option.map(
        Option.fromNullable((reply.secrets ?? []).find((s) => s.name === name)),
        infoOf
      )
    }),
    list: Effect.gen(function*() {
      const out: Array<SecretInfo> = []
      for (let offset = 0;; offset += PAGE) {
        const reply = yield* page({ limit: String(PAGE), offset: String(offset) })
        const secrets = reply.secrets ?? []
        for (const secret of secrets) out.push(infoOf(secret))
        if (secrets.length < PAGE || (reply.count !== undefined && out.length >= reply.count)) return out
      }
    }).pipe(Effect.withSpan("Secrets.list")),
    reveal: Effect.fn("Secrets.reveal")(function*(id: string) {
      const reply = yield* http.post(`${path(id)}/reveal`, RevealReply, {}).pipe(notFound(id))
      return Redacted.make(reply.value)
    }),
    update: Effect.fn("Secrets.update")(function*(id: string, value: Redacted.Redacted<string>) {
      yield* http.put(path(id), { value: Redacted.value(value) }, { urlParams: { update_mask: "value" } }).pipe(
        notFound(id)
      )
      return yield* get(id)
    }),
    delete: Effect.fn("Secrets.delete")(function*(id: string) {
      yield* http.delete(path(id)).pipe(Effect.catchIf(isNotFound, () => Effect.void))
    })
  }
}

/** `Secrets.makeKoyeb`. */
export const make = (options: KoyebControlPlaneOptions): Effect.Effect<SecretsShape, never, HttpClient.HttpClient> =>
  Effect.map(makeHttp(options), fromHttp)
