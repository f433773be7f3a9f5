/**
 * Real local control planes for tests, each in a base directory of its own.
 */
import { ControlPlane, type ControlPlaneShape } from "@effect-koyeb/core/ControlPlane"
import * as LocalControlPlane from "@effect-koyeb/platform-node/LocalControlPlane"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

/** A fresh directory for a control plane's sandboxes, removed when the scope closes. */
export const tempBase: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "ek-plane-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** Runs `f` with a local control plane (of `isolation`) over a fresh base directory, closed with the scope. */
export const withPlane = <A, E>(
  isolation: "none" | "bubblewrap",
  f: (cp: ControlPlaneShape, baseDir: string) => Effect.Effect<A, E, Scope.Scope>
): Effect.Effect<A, E, Scope.Scope> =>
  Effect.gen(function*() {
    const baseDir = yield* tempBase
    return yield* Effect.flatMap(ControlPlane, (cp) => f(cp, baseDir)).pipe(
      Effect.provide(LocalControlPlane.layer({ isolation, baseDir }))
    )
  })
