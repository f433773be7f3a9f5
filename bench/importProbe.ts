/**
 * Measures, in a fresh process, either the SDK's import plus the build of its layers (`sdk`) or a
 * bare `import("effect")` (`effect`), and prints `{"event":"measured","millis":…}`. Both run
 * under tsx, like `npm run bench` itself, so the loader's cost is on both sides.
 */
const which = process.argv[2]
const t0 = performance.now()
if (which === "effect") {
  await import("effect")
} else {
  const [Effect, Layer, Redacted, NodeHttpClient, ExecutorClient, Executor, Filesystem, Processes, NodeSandbox] =
    await Promise.all([
      import("effect/Effect"),
      import("effect/Layer"),
      import("effect/Redacted"),
      import("@effect/platform-node/NodeHttpClient"),
      import("@effect-koyeb/core/ExecutorClient"),
      import("@effect-koyeb/core/Executor"),
      import("@effect-koyeb/core/Filesystem"),
      import("@effect-koyeb/core/Processes"),
      import("@effect-koyeb/platform-node/NodeSandbox")
    ])
  // The per-sandbox services on a client (no request is made) and the local control plane.
  const services = Layer.mergeAll(Executor.layer, Filesystem.layer, Processes.layer).pipe(
    Layer.provideMerge(ExecutorClient.layer({ url: "http://127.0.0.1:9", secret: Redacted.make("probe") })),
    Layer.provide(NodeHttpClient.layerUndici)
  )
  await Effect.runPromise(Effect.scoped(Layer.build(Layer.merge(services, NodeSandbox.layerLocal({ isolation: "none" })))))
}
process.stdout.write(`${JSON.stringify({ event: "measured", millis: performance.now() - t0 })}\n`)
