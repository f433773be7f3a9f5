/**
 * Deploy-time templates on the local backend: env values and config-file contents with
 * `{{ secret.NAME }}` and `{{ VAR }}` resolved as Koyeb does (`Secrets.resolveTemplates`), the
 * secrets read from the `Secrets` service the local control plane was built with (any
 * implementation: `Secrets.layerMemory` shared with the program, or Koyeb's). A reference that
 * cannot be resolved is an `InvalidArgument` naming `env` or `configFiles`, as is a secret
 * reference when the control plane has no `Secrets` service.
 *
 * @internal
 */
import { InvalidArgument } from "@effect-koyeb/core/SandboxError"
import * as Secrets from "@effect-koyeb/core/Secrets"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type { ConfigFileSpec } from "./sandboxStart.js"

/** The env and config files of a new local sandbox with their templates resolved. */
export const resolveTemplates = (
  env: Readonly<Record<string, string>>,
  files: ReadonlyArray<ConfigFileSpec>,
  serviceName: string,
  secrets: Option.Option<Secrets.SecretsShape>
): Effect.Effect<
  { readonly env: Record<string, string>; readonly files: ReadonlyArray<ConfigFileSpec> },
  InvalidArgument | Secrets.SecretsFailure
> =>
  Effect.gen(function*() {
    const referenced = new Set(
      [...Object.values(env), ...files.map((f) => f.content)].flatMap((text) =>
        Secrets.references(text).flatMap((r) => (r.kind === "secret" ? [r.name] : []))
      )
    )
    const values = new Map<string, string>()
    if (referenced.size > 0) {
      if (Option.isNone(secrets)) {
        return yield* new InvalidArgument({
          argument: Object.values(env).some((v) => Secrets.references(v).some((r) => r.kind === "secret"))
            ? "env"
            : "configFiles",
          detail: `refers to secrets (${
            [...referenced].join(", ")
          }), but this local control plane has no Secrets service: build it with one (Secrets.layerMemory)`
        })
      }
      for (const name of referenced) {
        const found = yield* secrets.value.findByName(name)
        if (Option.isSome(found)) {
          const value = yield* secrets.value.reveal(found.value.id).pipe(
            // Deleted between the lookup and the reveal: reported below as missing.
            Effect.catchTag("SecretNotFound", () => Effect.succeed(undefined))
          )
          if (value !== undefined) values.set(name, Redacted.value(value))
        }
      }
    }
    const resolved = Secrets.resolveTemplates(
      env,
      files.map((f) => ({ path: f.path, content: f.content, permissions: f.mode.toString(8) })),
      { secrets: values, provided: { KOYEB_SERVICE_NAME: serviceName } }
    )
    if (Either.isLeft(resolved)) {
      return yield* new InvalidArgument({
        argument: resolved.left[0]!.location.startsWith("env.") ? "env" : "configFiles",
        detail: Secrets.describeUnresolved(resolved.left)
      })
    }
    return {
      env: resolved.right.env,
      files: files.map((f, i) => ({ ...f, content: resolved.right.files[i]!.content }))
    }
  })
