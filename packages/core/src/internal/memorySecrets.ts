/**
 * `Secrets` in memory: one `Ref` of records, the same validation and not-found rules as the Koyeb
 * implementation, and the values by name for a control plane that resolves templates itself.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import { ApiError } from "../SandboxError.js"
import { type CreateSecretOptions, type MemorySecretsShape, SecretInfo, SecretNotFound } from "../Secrets.js"
import { validateCreate } from "./koyebSecrets.js"

interface Entry {
  readonly info: SecretInfo
  readonly value: Redacted.Redacted<string>
}

/** `Secrets.makeMemory`. */
export const make: Effect.Effect<MemorySecretsShape> = Effect.gen(function*() {
  const entries = yield* Ref.make<ReadonlyMap<string, Entry>>(new Map())
  const find = (id: string) =>
    Effect.flatMap(Ref.get(entries), (all) => {
      const entry = all.get(id)
      return entry === undefined ? Effect.fail(new SecretNotFound({ id })) : Effect.succeed(entry)
    })
  const newestFirst = (all: ReadonlyMap<string, Entry>) =>
    Array.from(all.values(), (e) => e.info).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())

  return {
    create: Effect.fn("Secrets.create")(function*(options: CreateSecretOptions) {
      yield* validateCreate(options)
      const now = new Date(yield* Clock.currentTimeMillis)
      const info = new SecretInfo({
        id: globalThis.crypto.randomUUID(),
        name: options.name,
        type: "SIMPLE",
        createdAt: now,
        updatedAt: now
      })
      const created = yield* Ref.modify(
        entries,
        (all): [boolean, ReadonlyMap<string, Entry>] =>
          Array.from(all.values()).some((e) => e.info.name === options.name)
            ? [false, all]
            : [true, new Map(all).set(info.id, { info, value: options.value })]
      )
      if (!created) {
        return yield* new ApiError({
          status: 409,
          code: "ALREADY_EXISTS",
          detail: `A secret named ${JSON.stringify(options.name)} already exists`,
          method: "POST",
          url: "memory:/v1/secrets"
        })
      }
      return info
    }),
    get: Effect.fn("Secrets.get")(function*(id: string) {
      return (yield* find(id)).info
    }),
    findByName: Effect.fn("Secrets.findByName")(function*(name: string) {
      return Option.fromNullable(newestFirst(yield* Ref.get(entries)).find((info) => info.name === name))
    }),
    list: Effect.map(Ref.get(entries), newestFirst).pipe(Effect.withSpan("Secrets.list")),
    reveal: Effect.fn("Secrets.reveal")(function*(id: string) {
      return (yield* find(id)).value
    }),
    update: Effect.fn("Secrets.update")(function*(id: string, value: Redacted.Redacted<string>) {
      const entry = yield* find(id)
      const info = new SecretInfo({ ...entry.info, updatedAt: new Date(yield* Clock.currentTimeMillis) })
      yield* Ref.update(entries, (all) => new Map(all).set(id, { info, value }))
      return info
    }),
    delete: Effect.fn("Secrets.delete")(function*(id: string) {
      yield* Ref.update(entries, (all) => {
        const rest = new Map(all)
        rest.delete(id)
        return rest
      })
    }),
    values: Effect.map(
      Ref.get(entries),
      (all) => new Map(Array.from(all.values(), (e) => [e.info.name, Redacted.value(e.value)] as const))
    )
  } satisfies MemorySecretsShape
})
