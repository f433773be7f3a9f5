/**
 * What an emulated deployment's sandbox starts with, from its definition: the env and config
 * files with their templates resolved against the emulator's secrets (`{{ secret.NAME }}`,
 * `{{ VAR }}`, and the platform's `KOYEB_APP_NAME`, `KOYEB_SERVICE_NAME`, `KOYEB_PUBLIC_DOMAIN`),
 * the sandbox's own program (`docker.entrypoint` / `command` / `args`), the limits of its instance
 * type and the plan of its config files. The same rules as the local backend (`sandboxStart`).
 * The checks that need no machine run at create (`createViolations`, a 400 naming the field);
 * what can only fail at start (a secret deleted since, config files without isolation) fails the
 * deployment with the reason as its message.
 *
 * @internal
 */
import type { InvalidArgument } from "@effect-koyeb/core/SandboxError"
import * as Secrets from "@effect-koyeb/core/Secrets"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import { type IsolationOption, planConfigFiles, resolveIsolation, type SpawnOptions } from "../localRuntime.js"
import * as Start from "../sandboxStart.js"
import type { AppRecord, Store } from "./state.js"
import * as State from "./state.js"
import type { FieldViolation, ParsedDefinition } from "./validation.js"

/** The variables Koyeb provides to templates besides the definition's env. */
const providedVariables = (app: AppRecord | undefined, definition: ParsedDefinition): Record<string, string> => ({
  KOYEB_APP_NAME: app?.name ?? "",
  KOYEB_SERVICE_NAME: definition.name,
  KOYEB_PUBLIC_DOMAIN: app?.domain ?? ""
})

/** The definition's templates resolved against the store's secrets (the sandbox secret among the variables). */
const resolved = (definition: ParsedDefinition, store: Store, appId: string) =>
  Secrets.resolveTemplates(
    { ...definition.env, SANDBOX_SECRET: definition.secret },
    definition.configFiles,
    { secrets: State.secretValues(store), provided: providedVariables(store.apps.get(appId), definition) }
  )

/** The config files as the create options give them, for `sandboxStart.configFiles`. */
const configFileRecord = (files: ParsedDefinition["configFiles"]) =>
  Object.fromEntries(files.map((file) => [file.path, { content: file.content, permissions: file.permissions }]))

/** Where the create options' arguments are in a definition. */
const fieldOf: Readonly<Record<string, string>> = {
  instanceType: "definition.instance_types[0].type",
  entrypoint: "definition.docker.entrypoint",
  command: "definition.docker.command",
  args: "definition.docker.args",
  configFiles: "definition.config_files"
}

/**
 * The violations of a valid definition that the store or the start rules reveal: references to
 * secrets or variables that do not exist, a program or instance type the sandbox cannot have,
 * config files the local rules refuse.
 */
export const createViolations = (
  definition: ParsedDefinition,
  store: Store,
  appId: string
): ReadonlyArray<FieldViolation> => {
  const out: Array<FieldViolation> = []
  const templates = resolved(definition, store, appId)
  if (Either.isLeft(templates)) {
    for (const u of templates.left) {
      out.push({
        field: u.location.startsWith("env.") ? "definition.env" : "definition.config_files",
        description: Secrets.describeUnresolved([u])
      })
    }
  }
  for (
    const check of [
      Start.mainCommand(definition.entrypoint, definition.command, definition.args),
      Start.instanceLimits(definition.instanceType),
      Start.configFiles(configFileRecord(definition.configFiles))
    ] as ReadonlyArray<Either.Either<unknown, InvalidArgument>>
  ) {
    if (Either.isLeft(check)) {
      out.push({ field: fieldOf[check.left.argument] ?? "definition", description: check.left.detail })
    }
  }
  return out
}

/** Why a sandbox cannot start; the deployment's ERROR message. */
export interface StartProblem {
  readonly detail: string
}

/**
 * The spawn options of a deployment's sandbox (id, secret and everything from its definition), or
 * why it cannot start.
 */
export const spawnOptions = (
  id: string,
  definition: ParsedDefinition,
  store: Store,
  appId: string,
  runtime: { readonly isolation: IsolationOption | undefined; readonly baseDir: string | undefined }
): Effect.Effect<SpawnOptions, StartProblem> =>
  Effect.gen(function*() {
    const templates = resolved(definition, store, appId)
    if (Either.isLeft(templates)) return yield* Effect.fail({ detail: Secrets.describeUnresolved(templates.left) })
    const { SANDBOX_SECRET: secret, ...env } = templates.right.env
    const fromDefinition = Either.all({
      main: Start.mainCommand(definition.entrypoint, definition.command, definition.args),
      limits: Start.instanceLimits(definition.instanceType),
      files: Start.configFiles(configFileRecord(templates.right.files))
    })
    if (Either.isLeft(fromDefinition)) return yield* Effect.fail({ detail: fromDefinition.left.message })
    const { files, limits, main } = fromDefinition.right
    const configFiles = files.length === 0 ? undefined : yield* resolveIsolation(runtime.isolation ?? "auto").pipe(
      Effect.flatMap((isolation) => planConfigFiles(files, isolation, id, runtime.baseDir)),
      Effect.mapError((error) => ({ detail: error._tag === "ExecutorStartError" ? error.detail : error.message }))
    )
    return {
      id,
      secret: Redacted.make(secret ?? ""),
      env,
      isolation: runtime.isolation,
      baseDir: runtime.baseDir,
      main,
      configFiles,
      limits
    } satisfies SpawnOptions
  })
