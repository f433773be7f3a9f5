/**
 * Koyeb's deploy-time interpolation of env values and config-file contents: `{{ secret.NAME }}`
 * is the value of the secret `NAME`, `{{ VAR }}` the value of the variable `VAR` (another env
 * entry of the same definition, or a variable the platform provides). Spaces inside the braces
 * are optional. In an env value, a variable reference gets the other variable's value with its
 * secrets resolved; references inside that value are not expanded again (one level, no cycles).
 * In a config file, a variable reference gets the variable's final value, as the sandbox's
 * processes see it. Text that is not
 * a reference (`{{ not a name }}`, a single brace) stays as it is. A reference that cannot be
 * resolved is reported, never left literal: a sandbox must not start with a template where a
 * credential should be. Shared by the emulator and the local backend.
 *
 * @internal
 */
import * as Either from "effect/Either"

/** One reference in a template. */
export interface TemplateReference {
  readonly kind: "secret" | "variable"
  readonly name: string
}

/** A reference that could not be resolved, and where it was. */
export interface Unresolved extends TemplateReference {
  /** `env.<KEY>` or `configFiles.<path>`. */
  readonly location: string
}

/** A config file as the platform writes it. */
export interface TemplateFile {
  readonly path: string
  readonly content: string
  readonly permissions: string
}

/** What a deployment's templates are resolved against. */
export interface TemplateContext {
  /** Secret values by name. */
  readonly secrets: ReadonlyMap<string, string>
  /** Variables the platform provides besides the definition's env (the env wins). */
  readonly provided?: Readonly<Record<string, string>> | undefined
}

// Secret names: letters, digits, dashes and underscores; variable names: env keys.
const REFERENCE = /\{\{\s*(?:secret\.([A-Za-z0-9][A-Za-z0-9_-]*)|([A-Za-z_][A-Za-z0-9_]*))\s*\}\}/g
const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/

/** 1 to 63 letters, digits, dashes or underscores, starting with a letter or digit. */
export const isSecretName = (name: string): boolean => SECRET_NAME.test(name)

/** The references of a template, in order (repeats included). */
export const references = (template: string): ReadonlyArray<TemplateReference> =>
  Array.from(
    template.matchAll(REFERENCE),
    (m): TemplateReference => m[1] !== undefined ? { kind: "secret", name: m[1] } : { kind: "variable", name: m[2]! }
  )

/** The names of the secrets a template refers to. */
export const secretNames = (template: string): ReadonlyArray<string> =>
  references(template).flatMap((r) => (r.kind === "secret" ? [r.name] : []))

/** Replaces every reference `lookup` resolves; the others are collected as unresolved. */
const substitute = (
  template: string,
  location: string,
  lookup: (reference: TemplateReference) => string | undefined,
  unresolved: Array<Unresolved>
): string =>
  template.replace(REFERENCE, (match, secret: string | undefined, variable: string | undefined) => {
    const reference: TemplateReference = secret !== undefined
      ? { kind: "secret", name: secret }
      : { kind: "variable", name: variable! }
    const value = lookup(reference)
    if (value === undefined) {
      unresolved.push({ ...reference, location })
      return match
    }
    return value
  })

/**
 * Resolves the env values and config-file contents of a definition: the resolved env and files,
 * or every reference that could not be resolved.
 */
export const resolve = (
  env: Readonly<Record<string, string>>,
  files: ReadonlyArray<TemplateFile>,
  context: TemplateContext
): Either.Either<
  { readonly env: Record<string, string>; readonly files: ReadonlyArray<TemplateFile> },
  ReadonlyArray<Unresolved>
> => {
  const unresolved: Array<Unresolved> = []
  // What a variable reference stands for: the other variable with its secrets resolved.
  const variables: Record<string, string> = { ...context.provided }
  for (const [key, value] of Object.entries(env)) {
    variables[key] = value.replace(
      REFERENCE,
      (match, secret: string | undefined) => (secret === undefined ? match : context.secrets.get(secret) ?? match)
    )
  }
  const lookup = (r: TemplateReference) =>
    r.kind === "secret" ? context.secrets.get(r.name) : Object.hasOwn(variables, r.name) ? variables[r.name] : undefined
  const resolvedEnv: Record<string, string> = {}
  for (const [key, value] of Object.entries(env)) {
    resolvedEnv[key] = substitute(value, `env.${key}`, lookup, unresolved)
  }
  // A config file sees the variables as the sandbox's processes do.
  const final: Record<string, string> = { ...context.provided, ...resolvedEnv }
  const resolvedFiles = files.map((file) => ({
    ...file,
    content: substitute(
      file.content,
      `configFiles.${file.path}`,
      (r) => (r.kind === "secret" ? lookup(r) : Object.hasOwn(final, r.name) ? final[r.name] : undefined),
      unresolved
    )
  }))
  return unresolved.length > 0
    ? Either.left(unresolved)
    : Either.right({ env: resolvedEnv, files: resolvedFiles })
}

/** A one-line description of unresolved references, for a deployment message or an error. */
export const describeUnresolved = (unresolved: ReadonlyArray<Unresolved>): string =>
  Array.from(
    new Set(unresolved.map((u) =>
      u.kind === "secret"
        ? `${u.location} refers to secret ${JSON.stringify(u.name)}, which does not exist`
        : `${u.location} refers to variable ${JSON.stringify(u.name)}, which is not defined`
    ))
  ).join("; ")
