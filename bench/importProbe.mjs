/**
 * Measures, in a fresh plain `node` process, either the built package's import plus the build of
 * `NodeSandbox.layerLocal` (`sdk`) or a bare `import("effect")` (`effect`), and prints
 * `{"event":"measured","millis":…}`. No loader: this is what a user's program pays.
 */
import { performance } from "node:perf_hooks"

const which = process.argv[2]
const t0 = performance.now()
if (which === "effect") {
  await import("effect")
} else {
  const [{ NodeSandbox }, Effect, Layer] = await Promise.all([
    import("@effect-koyeb/platform-node"),
    import("effect/Effect"),
    import("effect/Layer")
  ])
  await Effect.runPromise(Effect.scoped(Layer.build(NodeSandbox.layerLocal({ isolation: "none" }))))
}
process.stdout.write(`${JSON.stringify({ event: "measured", millis: performance.now() - t0 })}\n`)
