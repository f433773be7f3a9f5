/**
 * Watching a directory while a command writes files: `Filesystem.watchScoped` starts the watch
 * (so nothing the command does is missed), a build-like command creates, renames and deletes
 * files, and the events are printed as they come until the last one expected.
 *
 * On effect-koyeb's executor the events come from inotify as they happen; on Koyeb's stock
 * executor the SDK polls (`pollInterval`, 500 ms by default), merging what happens within one
 * interval and reporting a rename as a delete plus a create.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Fiber, Layer, Stream } from "effect"

const dir = "/tmp/site"

const program = Effect.gen(function*() {
  const fs = yield* Filesystem.Filesystem
  const executor = yield* Executor.Executor
  yield* fs.mkdir(dir, { recursive: true })

  const events = yield* fs.watchScoped(dir, { recursive: true })
  const printed = yield* events.pipe(
    Stream.tap((event) =>
      Console.log(
        event.kind === "rename"
          ? `rename ${event.from} -> ${event.path}`
          : `${event.kind} ${event.path}${event.directory === true ? "/" : ""}`
      )
    ),
    // the build ends by removing its scratch file
    Stream.takeUntil((event) => event.kind === "delete" && event.path.endsWith("scratch.tmp")),
    Stream.runCount,
    Effect.timeout("30 seconds"),
    Effect.fork
  )

  // a small "build": each step a moment apart, as a real one would be
  yield* executor.run([
    `mkdir ${dir}/assets`,
    `echo 'body { color: teal }' > ${dir}/assets/style.css`,
    `echo draft > ${dir}/scratch.tmp`,
    "sleep 0.2",
    `echo '<h1>hello</h1>' > ${dir}/index.html.part`,
    "sleep 0.2",
    `mv ${dir}/index.html.part ${dir}/index.html`,
    "sleep 0.2",
    `rm ${dir}/scratch.tmp`
  ].join(" && "))

  yield* Console.log(`${yield* Fiber.join(printed)} events, watch closed`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(Sandbox.layer({ name: "example-watch" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
