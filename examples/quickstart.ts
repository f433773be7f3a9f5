/**
 * Quickstart: the whole life of a sandbox in one program (`npm start`).
 *
 * Runs on the embedded local backend (no account, no network); with `KOYEB_API_TOKEN` set the
 * very same program runs on Koyeb. It creates a sandbox in a scope, streams a command's output,
 * writes and reads text and binary files, launches a web server and follows its logs, exposes its
 * port and fetches through the public URL, then leaves the scope and shows the sandbox is gone.
 */
import { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Duration, Effect, Exit, Fiber, Option, Schedule, Scope, Stream } from "effect"

/** Runs `effect`, then prints `label` with how long it took. */
const step = <A, E, R>(label: string, effect: Effect.Effect<A, E, R>) =>
  Effect.timed(effect).pipe(
    Effect.tap(([elapsed]) => Console.log(`✔ ${label} (${Math.round(Duration.toMillis(elapsed))} ms)`)),
    Effect.map(([, a]) => a)
  )

/** Ticks a line of dots on stdout while `effect` runs, so a slow start never looks stuck. */
const withProgress = <A, E, R>(label: string, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    process.stdout.write(`… ${label} `)
    const ticker = yield* Effect.sync(() => process.stdout.write(".")).pipe(
      Effect.repeat(Schedule.spaced("100 millis")),
      Effect.fork
    )
    // Stop the ticker whatever happens, then end the dotted line.
    return yield* effect.pipe(
      Effect.ensuring(Fiber.interrupt(ticker).pipe(Effect.zipRight(Effect.sync(() => process.stdout.write("\n")))))
    )
  })

const program = Effect.gen(function*() {
  const controlPlane = yield* ControlPlane
  const backend = process.env.KOYEB_API_TOKEN ? "Koyeb" : "the embedded local backend"
  yield* Console.log(`effect-koyeb quickstart on ${backend}\n`)

  // 1. Create: the sandbox lives exactly as long as this scope (`Effect.scoped` does the same in
  // one call; here the scope is closed by hand to time it). A failure or Ctrl-C closes it too.
  const scope = yield* Scope.make()
  const id = yield* Effect.gen(function*() {
    const sandbox = yield* step(
      "sandbox created and ready",
      withProgress("creating sandbox", Sandbox.make({ name: "quickstart" }))
    )
    yield* Console.log(`  id ${sandbox.info.id} · region ${sandbox.info.region}`)

    // 2. Stream a command's output live, line by line, as it is produced.
    yield* step(
      "streamed a command",
      sandbox.executor.stream("for i in 1 2 3; do echo \"tick $i\"; sleep 0.1; done; uname -sm").pipe(
        Stream.runForEach((chunk) => Console.log(`  [${chunk.stream}] ${chunk.data}`))
      )
    )

    // 3. Text and binary files: bytes round-trip exactly, even those that are not valid UTF-8.
    const fs = sandbox.filesystem
    yield* step(
      "wrote and read a text file",
      Effect.gen(function*() {
        yield* fs.writeFile("hello.txt", "Hello from effect-koyeb!\n")
        const text = yield* fs.readFileString("hello.txt")
        yield* Console.log(`  hello.txt: ${JSON.stringify(text)}`)
      })
    )
    yield* step(
      "wrote and read a binary file",
      Effect.gen(function*() {
        const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
        yield* fs.writeFile("bytes.bin", bytes)
        const back = yield* fs.readFile("bytes.bin")
        const same = back.length === bytes.length && back.every((b, i) => b === bytes[i])
        if (!same) return yield* Effect.dieMessage("binary file did not round-trip")
        yield* Console.log(`  bytes.bin: ${back.length} bytes, identical`)
      })
    )

    // 4. A background web server, killed (with its children) when the scope closes.
    yield* fs.mkdir("site", { recursive: true })
    yield* fs.writeFile("site/index.html", "<h1>Served from a sandbox</h1>\n")
    const server = yield* step(
      "web server listening on port 8080",
      Effect.gen(function*() {
        const server = yield* sandbox.processes.launchScoped("python3 -u -m http.server 8080 --bind 0.0.0.0", {
          cwd: "site"
        })
        yield* sandbox.processes.waitForPort(8080, { timeout: "20 seconds" })
        return server
      })
    )
    // Follow its logs in the background: every request it serves shows up here.
    const logs = yield* server.logs.pipe(
      Stream.runForEach((line) => Console.log(`  [server ${line.stream}] ${line.data}`)),
      Effect.fork
    )

    // 5. Expose the port and fetch through the public URL.
    const exposed = yield* step("port 8080 exposed", sandbox.exposePort(8080))
    yield* Console.log(`  public URL ${exposed.url}`)
    yield* step(
      "fetched through the public URL",
      Effect.gen(function*() {
        const response = yield* Effect.tryPromise(() => fetch(exposed.url)).pipe(
          Effect.retry(Schedule.spaced("250 millis").pipe(Schedule.intersect(Schedule.recurs(20))))
        )
        const body = yield* Effect.tryPromise(() => response.text())
        yield* Console.log(`  HTTP ${response.status} · ${body.trim().slice(0, 60)}`)
      })
    )
    yield* server.waitForLog("GET /", { timeout: "5 seconds" })
    yield* Fiber.interrupt(logs)
    return sandbox.info.id
  }).pipe(
    Scope.extend(scope),
    Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
  )
  yield* step("left the scope: server stopped, sandbox deleted", Scope.close(scope, Exit.void))

  // 6. Gone: the control plane no longer lists it (Koyeb deletes asynchronously, so it may take
  // a few seconds there; locally it is immediate).
  const listed = controlPlane.list.pipe(Effect.map((all) => all.some((info) => info.id === id)))
  yield* step(
    `sandbox ${id} is gone`,
    listed.pipe(
      Effect.repeat({ schedule: Schedule.spaced("1 second"), until: (stillListed) => !stillListed }),
      Effect.timeoutFail({
        duration: "2 minutes",
        onTimeout: () => new Error(`sandbox ${id} is still listed 2 minutes after its deletion`)
      })
    )
  )
  yield* Console.log("\nDone.")
})

/** A typed failure as its one-line message; anything else (a defect) in full. */
const explain = (cause: Cause.Cause<unknown>): string =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => Cause.pretty(cause),
    onSome: (error) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error))
  })

program.pipe(
  Effect.provide(NodeSandbox.layerFromEnv),
  Effect.onExit((exit) =>
    Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
      ? Console.error(`\n✘ quickstart failed: ${explain(exit.cause)}`)
      : Effect.void
  ),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
