/**
 * A JavaScript context of the code interpreter: `node` in the sandbox, one `vm` context kept
 * across cells. Top-level declarations persist, `console` output streams while the cell runs
 * (`runStream`), a cell whose value is a promise is awaited, and a thrown error comes back as data
 * with its stack.
 */
import * as CodeInterpreter from "@effect-koyeb/core/CodeInterpreter"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Stream } from "effect"

const program = Effect.gen(function*() {
  const interpreter = yield* CodeInterpreter.CodeInterpreter
  const js = yield* interpreter.createContext({ language: "javascript" })

  yield* js.run(`
const orders = [
  { id: 1, customer: "ada", total: 30 },
  { id: 2, customer: "bob", total: 12.5 },
  { id: 3, customer: "ada", total: 7.5 }
]
function totalsBy(key) {
  return orders.reduce((acc, o) => ({ ...acc, [o[key]]: (acc[o[key]] ?? 0) + o.total }), {})
}`)
  const totals = yield* js.run("totalsBy('customer')")
  yield* Console.log(`totals: ${totals.text}`)

  // Output streams as the cell runs; the value (an awaited promise) comes last.
  yield* js.runStream(`
(async () => {
  for (const order of orders) {
    console.log("processing order", order.id)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return orders.length + " orders processed"
})()`).pipe(
    Stream.runForEach((event) =>
      event._tag === "OutputChunk"
        ? Console.log(`[${event.stream}] ${event.data}`)
        : event._tag === "Result"
        ? Console.log(`value: ${event.text}`)
        : Console.log(`error: ${event.name}`)
    )
  )

  const failed = yield* js.run("orders.find((o) => o.id === 9).total")
  yield* Console.log(`error as data: ${failed.error?.name}: ${failed.error?.value}`)
  const version = yield* js.run("process.version")
  yield* Console.log(
    `node ${version.text} in the sandbox; orders still defined: ${(yield* js.run("orders.length")).text}`
  )
})

program.pipe(
  Effect.scoped,
  Effect.provide(
    CodeInterpreter.layer.pipe(
      Layer.provideMerge(Sandbox.layer({ name: "example-javascript" })),
      Layer.provide(NodeSandbox.layerFromEnv)
    )
  ),
  NodeRuntime.runMain
)
