/**
 * The check of a sandbox's environment (`CreateOptions.env`) that every control plane makes
 * before creating anything: the reserved `SANDBOX_SECRET`, then what any command's environment
 * must be (`Shell.checkEnv`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import { SECRET_ENV } from "../KoyebWire.js"
import { InvalidArgument } from "../SandboxError.js"
import { checkEnv } from "./shell.js"

/** Why `env` cannot be a sandbox's environment, or undefined. */
export const envError = (env: Readonly<Record<string, string>> | undefined): InvalidArgument | undefined =>
  env !== undefined && Object.hasOwn(env, SECRET_ENV)
    ? new InvalidArgument({
      argument: "env",
      detail: `${SECRET_ENV} is reserved: the SDK generates the sandbox secret`
    })
    : checkEnv(env)

/** `envError` as an effect. */
export const check = (env: Readonly<Record<string, string>> | undefined): Effect.Effect<void, InvalidArgument> =>
  Effect.suspend(() => {
    const error = envError(env)
    return error === undefined ? Effect.void : Effect.fail(error)
  })
