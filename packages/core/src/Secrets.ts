/**
 * Koyeb secrets: named values kept by the platform and put into a sandbox when it starts. An env
 * value or a config file's content refers to one as `{{ secret.NAME }}` (`Secrets.reference`), and
 * to another variable of the same sandbox as `{{ VAR }}`; Koyeb replaces the references at deploy
 * time, so the value never travels in the sandbox's definition.
 *
 * The `Secrets` service creates, reads, lists, reveals, updates and deletes them. Values go in and
 * come out as `Redacted`; only `reveal` returns one (as on Koyeb, no other reply carries it).
 * Implementations: `layerKoyeb` / `layerKoyebConfig` (the Koyeb REST API, or the emulator, which
 * serves the same `/v1/secrets`), `layerMemory` (tests; the local backend holds its own).
 *
 * Interpolation rules (the emulator and the local backend follow them): spaces inside the braces
 * are optional; in an env value `{{ VAR }}` gets the other variable's value with its secrets
 * resolved, one level deep; in a config file it gets the variable's final value, as processes see
 * it; the platform's `KOYEB_APP_NAME`, `KOYEB_SERVICE_NAME` and `KOYEB_PUBLIC_DOMAIN` can be
 * referred to too. A reference to a secret or variable that does not exist fails the create (or,
 * when the secret was deleted since, the deployment) instead of leaving the template in place.
 *
 * @since 0.2.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { withConfigToken } from "./internal/koyebControlPlane.js"
import * as internalKoyeb from "./internal/koyebSecrets.js"
import * as internalMemory from "./internal/memorySecrets.js"
import * as templates from "./internal/secretTemplates.js"
import type { KoyebControlPlaneOptions } from "./KoyebControlPlane.js"
import {
  type ApiError,
  type ControlPlaneError,
  type InvalidArgument,
  type RateLimited,
  TypeId,
  type Unauthorized
} from "./SandboxError.js"

/**
 * A secret as listed: never its value.
 *
 * @since 0.2.0
 * @category schemas
 */
export class SecretInfo extends Schema.Class<SecretInfo>("@effect-koyeb/core/Secrets/SecretInfo")({
  id: Schema.String,
  name: Schema.String,
  /** `SIMPLE` for a plain value (registry credentials have other types). */
  type: Schema.String,
  createdAt: Schema.DateFromSelf,
  updatedAt: Schema.DateFromSelf
}) {}

/**
 * No secret has this id.
 *
 * @since 0.2.0
 * @category errors
 */
export class SecretNotFound extends Schema.TaggedError<SecretNotFound>("@effect-koyeb/core/Secrets/SecretNotFound")(
  "SecretNotFound",
  { id: Schema.String }
) {
  /**
   * Marks the error as one of effect-koyeb's (see `SandboxError.isSandboxError`).
   *
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId

  get message(): string {
    return `Secret ${this.id} not found`
  }
}

/**
 * Failures of every call to the secrets API.
 *
 * @since 0.2.0
 * @category errors
 */
export type SecretsFailure = ApiError | ControlPlaneError | Unauthorized | RateLimited

/**
 * Options of `create`.
 *
 * @since 0.2.0
 * @category models
 */
export interface CreateSecretOptions {
  /** 1 to 63 letters, digits, dashes or underscores, starting with a letter or digit; unique. */
  readonly name: string
  readonly value: Redacted.Redacted<string>
}

/**
 * The secrets service.
 *
 * @since 0.2.0
 * @category models
 */
export interface SecretsShape {
  /** Creates a secret; a name already taken fails with `ApiError` (409 on Koyeb and the emulator). */
  readonly create: (options: CreateSecretOptions) => Effect.Effect<SecretInfo, SecretsFailure | InvalidArgument>
  readonly get: (id: string) => Effect.Effect<SecretInfo, SecretsFailure | SecretNotFound>
  /** The secret called `name`, if any. */
  readonly findByName: (name: string) => Effect.Effect<Option.Option<SecretInfo>, SecretsFailure>
  /** Every secret, newest first (all pages). */
  readonly list: Effect.Effect<ReadonlyArray<SecretInfo>, SecretsFailure>
  /** The value of a secret. */
  readonly reveal: (id: string) => Effect.Effect<Redacted.Redacted<string>, SecretsFailure | SecretNotFound>
  /** Replaces the value; sandboxes already running keep the value they started with. */
  readonly update: (
    id: string,
    value: Redacted.Redacted<string>
  ) => Effect.Effect<SecretInfo, SecretsFailure | SecretNotFound>
  /** Deletes a secret; succeeds when it is already gone. */
  readonly delete: (id: string) => Effect.Effect<void, SecretsFailure>
}

/**
 * The secrets service.
 *
 * @since 0.2.0
 * @category tags
 */
export class Secrets extends Context.Tag("@effect-koyeb/core/Secrets")<Secrets, SecretsShape>() {}

/**
 * True for a valid secret name.
 *
 * @since 0.2.0
 * @category refinements
 */
export const isSecretName: (name: string) => boolean = templates.isSecretName

/**
 * The env value (or config-file text) that stands for the secret `name`: `{{ secret.<name> }}`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const reference = (name: string): string => `{{ secret.${name} }}`

/**
 * A reference in a template: `{{ secret.NAME }}` (kind `secret`) or `{{ VAR }}` (kind `variable`).
 *
 * @since 0.2.0
 * @category models
 */
export type TemplateReference = templates.TemplateReference

/**
 * A reference that could not be resolved, with where it was (`env.<KEY>` or `configFiles.<path>`).
 *
 * @since 0.2.0
 * @category models
 */
export type Unresolved = templates.Unresolved

/**
 * A config file to resolve: path, content (a template) and octal permissions.
 *
 * @since 0.2.0
 * @category models
 */
export type TemplateFile = templates.TemplateFile

/**
 * The secret values and platform variables templates are resolved against.
 *
 * @since 0.2.0
 * @category models
 */
export type TemplateContext = templates.TemplateContext

/**
 * The references of a template, in order.
 *
 * @since 0.2.0
 * @category utils
 */
export const references: (template: string) => ReadonlyArray<TemplateReference> = templates.references

/**
 * Resolves env values and config-file contents as Koyeb does at deploy time: the resolved env and
 * files, or every reference that could not be resolved.
 *
 * @since 0.2.0
 * @category utils
 */
export const resolveTemplates: (
  env: Readonly<Record<string, string>>,
  files: ReadonlyArray<TemplateFile>,
  context: TemplateContext
) => Either.Either<
  { readonly env: Record<string, string>; readonly files: ReadonlyArray<TemplateFile> },
  ReadonlyArray<Unresolved>
> = templates.resolve

/**
 * One line describing unresolved references (for an error or a deployment message).
 *
 * @since 0.2.0
 * @category utils
 */
export const describeUnresolved: (unresolved: ReadonlyArray<Unresolved>) => string = templates.describeUnresolved

/**
 * Secrets over the Koyeb REST API (`/v1/secrets`), with the options and HTTP policy of
 * `KoyebControlPlane` (timeouts; GET, PUT and DELETE retried, POST never).
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeKoyeb: (
  options: KoyebControlPlaneOptions
) => Effect.Effect<SecretsShape, never, HttpClient.HttpClient> = internalKoyeb.make

/**
 * `Secrets` over the Koyeb REST API (or the emulator).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerKoyeb = (options: KoyebControlPlaneOptions): Layer.Layer<Secrets, never, HttpClient.HttpClient> =>
  Layer.effect(Secrets, internalKoyeb.make(options))

/**
 * `Secrets` over the Koyeb REST API configured from the environment like
 * `KoyebControlPlane.layerConfig`: `KOYEB_API_TOKEN` (required), `KOYEB_API_HOST`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerKoyebConfig = (
  options: Partial<KoyebControlPlaneOptions> = {}
): Layer.Layer<Secrets, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(Secrets, Effect.flatMap(withConfigToken(options), internalKoyeb.make))

/**
 * Secrets in memory, with the values by name (what a local control plane resolves templates
 * against).
 *
 * @since 0.2.0
 * @category models
 */
export interface MemorySecretsShape extends SecretsShape {
  /** The current values by secret name. */
  readonly values: Effect.Effect<ReadonlyMap<string, string>>
}

/**
 * A fresh in-memory secrets store.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<MemorySecretsShape> = internalMemory.make

/**
 * `Secrets` in memory, empty at start (for tests).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Secrets> = Layer.effect(Secrets, internalMemory.make)
