/**
 * Tracing with OpenTelemetry: every public SDK operation is an Effect span (`Sandbox.make`,
 * `Executor.run`, `Filesystem.writeFile`, …), so providing `@effect/opentelemetry`'s `NodeSdk`
 * layer traces them with no extra code, nested under your own spans.
 *
 * Here spans go to an in-memory exporter and are printed as a tree; in production swap in an
 * OTLP exporter (`@opentelemetry/exporter-trace-otlp-http`) or a `BatchSpanProcessor`.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeSdk } from "@effect/opentelemetry"
import { NodeRuntime } from "@effect/platform-node"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Console, Effect, Layer } from "effect"

const exporter = new InMemorySpanExporter()
const TracingLive = NodeSdk.layer(() => ({
  resource: { serviceName: "effect-koyeb-example" },
  spanProcessor: new SimpleSpanProcessor(exporter)
}))

// Your own functions become spans too, with `Effect.fn`.
const buildProject = Effect.fn("app.buildProject")(function*(name: string) {
  const fs = yield* Filesystem.Filesystem
  const executor = yield* Executor.Executor
  yield* fs.mkdir(`/tmp/${name}`, { recursive: true })
  yield* fs.writeFile(`/tmp/${name}/main.py`, "print('built')\n")
  return (yield* executor.run(["python3", `/tmp/${name}/main.py`])).stdout.trim()
})

const work = Effect.gen(function*() {
  const output = yield* buildProject("demo")
  yield* Console.log(`build printed: ${output}`)
}).pipe(
  // The sandbox is created and deleted inside the traced span, so those spans nest under it.
  Effect.provide(Sandbox.layer({ name: "example-tracing" })),
  Effect.withSpan("app.main")
)

/** Prints the finished spans as an indented tree. */
const printTree = (spans: ReadonlyArray<ReadableSpan>) => {
  const byParent = new Map<string | undefined, Array<ReadableSpan>>()
  const ids = new Set(spans.map((span) => span.spanContext().spanId))
  for (const span of spans) {
    const parent = span.parentSpanContext?.spanId
    const key = parent !== undefined && ids.has(parent) ? parent : undefined
    byParent.set(key, [...(byParent.get(key) ?? []), span])
  }
  const lines: Array<string> = []
  const walk = (parent: string | undefined, depth: number) => {
    const children = (byParent.get(parent) ?? []).sort((a, b) =>
      a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]
    )
    for (const span of children) {
      const millis = span.duration[0] * 1000 + span.duration[1] / 1e6
      lines.push(`${"  ".repeat(depth)}${span.name} (${millis.toFixed(1)} ms)`)
      walk(span.spanContext().spanId, depth + 1)
    }
  }
  walk(undefined, 0)
  return lines.join("\n")
}

const program = Effect.gen(function*() {
  yield* work
  const spans = exporter.getFinishedSpans()
  yield* Console.log(`\n${spans.length} spans recorded:\n${printTree(spans)}`)
})

program.pipe(
  Effect.provide(Layer.merge(NodeSandbox.layerFromEnv, TracingLive)),
  NodeRuntime.runMain
)
