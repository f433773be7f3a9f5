import * as CodeInterpreter from "@effect-koyeb/core/CodeInterpreter"
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandboxes from "@effect-koyeb/platform-node/Sandboxes"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as TestExecutor from "./utils/TestExecutor.js"

const Services = Layer.mergeAll(Executor.layer, Filesystem.layer)

const Interpreter = (stock: boolean) =>
  CodeInterpreter.layer.pipe(
    Layer.provideMerge(
      stock
        ? Services.pipe(Layer.provide(TestExecutor.hideCapabilities))
        : Services
    ),
    Layer.provideMerge(TestExecutor.layerClient)
  )

const suite = (name: string, stock: boolean) =>
  layer(Interpreter(stock), { timeout: "60 seconds", excludeTestServices: true })(name, (it) => {
    it.scoped("state across cells, the last expression as main result", () =>
      Effect.gen(function*() {
        const interpreter = yield* CodeInterpreter.CodeInterpreter
        const context = yield* interpreter.createContext()
        const first = yield* context.run("x = 41\nprint('hello')\nprint('to stderr', file=__import__('sys').stderr)")
        assert.deepStrictEqual(first.stdout, ["hello"])
        assert.deepStrictEqual(first.stderr, ["to stderr"])
        assert.deepStrictEqual(first.results, [])
        const second = yield* interpreter.run("x + 1", { context })
        assert.strictEqual(second.text, "42")
        assert.isTrue(second.results[0].isMain)
        assert.isUndefined(second.error)
        // concurrent runs on one context take turns
        const both = yield* Effect.all([
          context.run("import time\ntime.sleep(0.1)\nx = 'first'\nx"),
          context.run("x")
        ], { concurrency: 2 })
        assert.deepStrictEqual(both.map((e) => e.text), ["'first'", "'first'"])
      }))

    it.scoped("an exception is data, with its traceback", () =>
      Effect.gen(function*() {
        const interpreter = yield* CodeInterpreter.CodeInterpreter
        const context = yield* interpreter.createContext()
        const execution = yield* context.run("def f():\n    return 1 / 0\nprint('before')\nf()")
        assert.deepStrictEqual(execution.stdout, ["before"])
        assert.strictEqual(execution.error?.name, "ZeroDivisionError")
        assert.strictEqual(execution.error?.value, "division by zero")
        assert.include(execution.error?.traceback, "line 2, in f")
        assert.notInclude(execution.error?.traceback, ".effect-koyeb-kernel")
        // and the context goes on
        assert.strictEqual((yield* context.run("2 * 3")).text, "6")
      }))

    it.scoped("output streams before the cell ends", () =>
      Effect.gen(function*() {
        const interpreter = yield* CodeInterpreter.CodeInterpreter
        const context = yield* interpreter.createContext()
        // The cell waits for a file that only appears once its first line was seen.
        const flag = `/tmp/.ci-flag-${Date.now()}-${Math.random().toString(16).slice(2)}`
        const events = yield* Stream.toPull(context.runStream(
          `import os, time\nprint('waiting')\nwhile not os.path.exists(${JSON.stringify(flag)}): time.sleep(0.01)\n` +
            `os.remove(${JSON.stringify(flag)})\nprint('released')\n'end'`
        ))
        const first = yield* events
        assert.deepStrictEqual(Chunk.toReadonlyArray(first).map((e) => e._tag === "OutputChunk" && e.data), ["waiting"])
        const executor = yield* Executor.Executor
        yield* executor.run(`touch ${flag}`)
        const rest = yield* Stream.runCollect(Stream.repeatEffectChunkOption(events))
        const tags = Chunk.toReadonlyArray(rest).map((e) => e._tag === "OutputChunk" ? e.data : e._tag)
        assert.deepStrictEqual(tags, ["released", "Result"])
      }))

    it.scoped("interruption stops the cell and keeps the state", () =>
      Effect.gen(function*() {
        const interpreter = yield* CodeInterpreter.CodeInterpreter
        const context = yield* interpreter.createContext()
        yield* context.run("total = 0")
        // fiber interruption
        const fiber = yield* context.runStream(
          "import time\nprint('busy')\nwhile True:\n    total += 1\n    time.sleep(0.001)"
        )
          .pipe(Stream.runDrain, Effect.fork)
        yield* Effect.sleep("300 millis")
        yield* Fiber.interrupt(fiber)
        const after = yield* context.run("total > 0")
        assert.strictEqual(after.text, "True")
        // a timeout
        const timedOut = yield* context.run("while True:\n    total += 1", { timeout: "300 millis" }).pipe(Effect.flip)
        assert.strictEqual(timedOut._tag, "Timeout")
        // an AbortSignal: the run returns, its error the interruption
        const controller = new AbortController()
        setTimeout(() => controller.abort(), 300)
        const aborted = yield* context.run("print('spinning')\nwhile True:\n    total += 1", {
          signal: controller.signal
        })
        assert.deepStrictEqual(aborted.stdout, ["spinning"])
        assert.strictEqual(aborted.error?.name, "KeyboardInterrupt")
        assert.strictEqual((yield* context.run("type(total).__name__")).text, "'int'")
      }))

    it.scoped("a kernel killed behind its back: KernelDied, and a new context works", () =>
      Effect.gen(function*() {
        const interpreter = yield* CodeInterpreter.CodeInterpreter
        const executor = yield* Executor.Executor
        const context = yield* interpreter.createContext()
        yield* context.run("x = 1")
        const running = yield* context.run("import time\nwhile True: time.sleep(0.05)").pipe(Effect.fork)
        yield* Effect.sleep("200 millis")
        yield* executor.run(`kill -9 ${context.pid}`)
        const died = yield* Fiber.join(running).pipe(Effect.flip)
        assert.strictEqual(died._tag, "KernelDied")
        const again = yield* context.run("x").pipe(Effect.flip)
        assert.strictEqual(again._tag, "KernelDied")
        const fresh = yield* interpreter.createContext()
        assert.strictEqual((yield* fresh.run("1 + 1")).text, "2")
        // os._exit in a cell: the default context dies, and the next run gets a new one
        const exited = yield* interpreter.run("import os\nos._exit(3)").pipe(Effect.flip)
        assert.strictEqual(exited._tag, "KernelDied")
        assert.include(exited._tag === "KernelDied" ? exited.reason : "", "code 3")
        assert.strictEqual((yield* interpreter.run("'back'")).text, "'back'")
      }))

    it.scoped("huge outputs and long lines", () =>
      Effect.gen(function*() {
        const interpreter = yield* CodeInterpreter.CodeInterpreter
        const context = yield* interpreter.createContext()
        const lines = stock ? 20_000 : 100_000
        const execution = yield* context.run(`for i in range(${lines}): print(i)\n'x' * 3_000_000`)
        assert.strictEqual(execution.stdout.length, lines)
        assert.strictEqual(execution.stdout[lines - 1], String(lines - 1))
        assert.strictEqual(execution.text?.length, 3_000_002)
        // a line longer than 1 MiB is cut into pieces
        const long = yield* context.run("print('y' * 2_500_000)")
        assert.deepStrictEqual(long.stdout.map((l) => l.length), [1 << 20, 1 << 20, 2_500_000 - 2 * (1 << 20)])
      }))

    it.scoped("non-UTF-8 bytes do not break the protocol", () =>
      Effect.gen(function*() {
        const interpreter = yield* CodeInterpreter.CodeInterpreter
        const context = yield* interpreter.createContext()
        const execution = yield* context.run(
          "import os, sys\nos.write(1, b'\\xff\\xfeok\\n')\nsys.stdout.buffer.write(b'\\xe0\\xa0 end\\n')\n" +
            "import subprocess\nsubprocess.run(['printf', '\\\\377sub\\\\n'])\n'\\u00e9t\\u00e9 \\U0001F600'"
        )
        assert.deepStrictEqual(execution.stdout, ["\ufffd\ufffdok", "\ufffd end", "\ufffdsub"])
        assert.strictEqual(execution.text, "'été 😀'")
        assert.strictEqual((yield* context.run("print('still fine')")).stdout[0], "still fine")
      }))

    it.scoped("two contexts do not see each other", () =>
      Effect.gen(function*() {
        const interpreter = yield* CodeInterpreter.CodeInterpreter
        const a = yield* interpreter.createContext()
        const b = yield* interpreter.createContext()
        yield* a.run("secret = 'a'")
        const inB = yield* b.run("secret")
        assert.strictEqual(inB.error?.name, "NameError")
        assert.strictEqual((yield* a.run("secret")).text, "'a'")
        assert.notStrictEqual(a.pid, b.pid)
      }))

    it.scoped("rich results: _repr_html_, _repr_png_, _repr_json_, display", () =>
      Effect.gen(function*() {
        const interpreter = yield* CodeInterpreter.CodeInterpreter
        const context = yield* interpreter.createContext()
        const execution = yield* context.run([
          "class Chart:",
          "    def _repr_html_(self): return '<b>chart</b>'",
          "    def _repr_png_(self): return b'\\x89PNG\\r\\n'",
          "    def _repr_json_(self): return {'points': [1, 2]}",
          "    def __repr__(self): return 'Chart()'",
          "display('shown first')",
          "Chart()"
        ].join("\n"))
        assert.strictEqual(execution.results.length, 2)
        const [shown, main] = execution.results
        assert.isFalse(shown.isMain)
        assert.strictEqual(shown.text, "'shown first'")
        assert.isTrue(main.isMain)
        assert.strictEqual(main.text, "Chart()")
        assert.strictEqual(main.html, "<b>chart</b>")
        assert.strictEqual(main.png, Buffer.from("\x89PNG\r\n", "latin1").toString("base64"))
        assert.deepStrictEqual(main.json, { points: [1, 2] })
        assert.deepStrictEqual(main.formats, ["text/plain", "text/html", "image/png", "application/json"])
      }))

    it.scoped("open matplotlib figures become image/png results", () =>
      Effect.gen(function*() {
        // A stand-in for matplotlib (not installed here) with the calls the kernel makes.
        const fs = yield* Filesystem.Filesystem
        const dir = `/tmp/.ci-mpl-${Date.now()}-${Math.random().toString(16).slice(2)}`
        yield* Effect.addFinalizer(() => Effect.ignore(fs.rm(dir, { recursive: true })))
        yield* fs.mkdir(`${dir}/matplotlib`, { recursive: true })
        yield* fs.writeFile(`${dir}/matplotlib/__init__.py`, "")
        yield* fs.writeFile(
          `${dir}/matplotlib/pyplot.py`,
          [
            "figures = {}",
            "class Figure:",
            "    def savefig(self, out, format):",
            "        out.write(b'PNG-' + format.encode())",
            "def subplots():",
            "    figures[len(figures) + 1] = Figure()",
            "def get_fignums(): return sorted(figures)",
            "def figure(num): return figures[num]",
            "def close(which): figures.clear()"
          ].join("\n")
        )
        const interpreter = yield* CodeInterpreter.CodeInterpreter
        const context = yield* interpreter.createContext({ env: { PYTHONPATH: dir } })
        const execution = yield* context.run("import matplotlib.pyplot as plt\nplt.subplots()\n'plotted'")
        assert.deepStrictEqual(execution.results.map((r) => [r.isMain, r.png ?? r.text]), [
          [false, Buffer.from("PNG-png").toString("base64")],
          [true, "'plotted'"]
        ])
        // closed once shown
        assert.deepStrictEqual((yield* context.run("plt.get_fignums()")).text, "[]")
      }))

    it.scoped("a JavaScript context", () =>
      Effect.gen(function*() {
        const interpreter = yield* CodeInterpreter.CodeInterpreter
        const context = yield* interpreter.createContext({ language: "javascript" })
        const first = yield* context.run("const items = [1, 2, 3]\nconsole.log('sum', items.reduce((a, b) => a + b))")
        assert.deepStrictEqual(first.stdout, ["sum 6"])
        assert.strictEqual((yield* context.run("items.map((x) => x * 2)")).text, "[ 2, 4, 6 ]")
        const awaited = yield* context.run("new Promise((resolve) => setTimeout(() => resolve(items.length), 10))")
        assert.strictEqual(awaited.text, "3")
        const failed = yield* context.run("console.error('oops')\nnull.field")
        assert.deepStrictEqual(failed.stderr, ["oops"])
        assert.strictEqual(failed.error?.name, "TypeError")
        assert.include(failed.error?.traceback, "<cell-4>")
        const spinning = yield* context.run("while (true) {}", { timeout: "300 millis" }).pipe(Effect.flip)
        assert.strictEqual(spinning._tag, "Timeout")
        assert.strictEqual((yield* context.run("items.length")).text, "3")
        const html = yield* interpreter.run("({ _repr_html_: () => '<i>js</i>' })", { language: "javascript" })
        assert.strictEqual(html.results[0].html, "<i>js</i>")
      }))

    it.scoped("closing a context stops its kernel", () =>
      Effect.gen(function*() {
        const interpreter = yield* CodeInterpreter.CodeInterpreter
        const executor = yield* Executor.Executor
        const pid = yield* Effect.scoped(Effect.map(interpreter.createContext(), (context) => context.pid))
        const alive = () => executor.exec(`kill -0 ${pid}`).pipe(Effect.map((r) => r.exitCode === 0))
        const gone = yield* alive().pipe(
          Effect.repeat({ until: (up) => !up, schedule: Schedule.spaced("50 millis") }),
          Effect.timeoutOption("5 seconds")
        )
        assert.isTrue(Option.isSome(gone))
      }))
  })

suite("code interpreter on the interactive executor", false)
suite("code interpreter on the stock fallback", true)

describe("sandbox.codeInterpreter (Promise facade, local backend)", { timeout: 60_000 }, () => {
  it("run with an AbortSignal keeps the state; contexts; released with the sandbox", async () => {
    let pid = 0
    {
      await using sandbox = await Sandboxes.create({
        backend: "local",
        local: { isolation: "none" },
        name: "facade-ci"
      })
      assert.strictEqual((await sandbox.codeInterpreter.run("x = 20\nx + 1")).text, "21")
      const aborted = await sandbox.codeInterpreter.run("import time\nwhile True:\n    x += 1\n    time.sleep(0.01)", {
        signal: AbortSignal.timeout(300)
      }).then(() => "finished", (error: unknown) => error instanceof Error ? error.name : String(error))
      assert.strictEqual(aborted, "TimeoutError")
      assert.strictEqual((await sandbox.codeInterpreter.run("x > 20")).text, "True")
      const js = await sandbox.codeInterpreter.createContext({ language: "javascript" })
      pid = js.pid
      assert.strictEqual((await js.run("let n = 2; n * 21")).text, "42")
      const tags: Array<string> = []
      for await (const event of js.runStream("console.log('a'); n")) tags.push(event._tag)
      assert.deepStrictEqual(tags, ["OutputChunk", "Result"])
    }
    // the sandbox is gone with its kernels (no isolation: the host sees them)
    const alive = () => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    }
    for (let i = 0; i < 100 && alive(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
    assert.isFalse(alive(), `kernel ${pid} still runs`)
  })
})
