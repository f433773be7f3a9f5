/**
 * Expose a port: run a web server in the sandbox and reach it through the sandbox's public URL.
 * Only one port is exposed at a time; `exposePort` replaces the previous binding.
 */
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Processes from "@effect-koyeb/core/Processes"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Schedule } from "effect"

// Every sandbox has a network of its own (locally too, under bubblewrap): any port is free there.
const PORT = 8080

/** GET through the public URL; the edge may need a moment after exposing, so retry briefly. */
const get = (url: string) =>
  Effect.tryPromise(async () => {
    const response = await fetch(url)
    return { status: response.status, body: await response.text() }
  }).pipe(Effect.retry(Schedule.spaced("250 millis").pipe(Schedule.intersect(Schedule.recurs(40)))))

const program = Effect.gen(function*() {
  const sandbox = yield* Sandbox.Sandbox
  const fs = yield* Filesystem.Filesystem
  const processes = yield* Processes.Processes

  yield* fs.mkdir("/tmp/site", { recursive: true })
  yield* fs.writeFile("/tmp/site/index.html", "<h1>Hello from a Koyeb sandbox</h1>\n")
  yield* fs.writeFile("/tmp/site/data.json", JSON.stringify({ ok: true }))

  // Killed when the program's scope closes.
  yield* processes.launchScoped(`python3 -m http.server ${PORT} --bind 0.0.0.0`, { cwd: "/tmp/site" })
  yield* processes.waitForPort(PORT, { timeout: "30 seconds" })

  const exposed = yield* sandbox.exposePort(PORT)
  yield* Console.log(`port ${exposed.port} exposed at ${exposed.url}`)

  const index = yield* get(exposed.url)
  yield* Console.log(`GET /          -> ${index.status} ${index.body.trim()}`)
  const data = yield* get(new URL("data.json", exposed.url).toString())
  yield* Console.log(`GET /data.json -> ${data.status} ${data.body}`)

  yield* sandbox.unexposePort
  yield* Console.log("port unexposed")
})

program.pipe(
  Effect.scoped,
  Effect.provide(Sandbox.layer({ name: "example-expose" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
