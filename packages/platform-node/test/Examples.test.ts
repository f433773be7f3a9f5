/**
 * Runs every program in `examples/` as a child process on the embedded local backend (bundled
 * from the current sources, see `utils/examplesBundle.ts`, and run with `node` from the repo root,
 * without `KOYEB_API_TOKEN`), two at a time, and checks its exit code, a few lines of its output, and that it left no sandbox behind.
 *
 * Each run gets its own `TMPDIR`, so the local backend puts its sandboxes under a directory unique
 * to the run: afterwards no process may mention that directory (the executors and, without
 * bubblewrap, the commands they ran carry it in their command line, environment or cwd; with
 * bubblewrap the `bwrap` parent does, and its PID namespace dies with it) and no sandbox
 * directory may remain in it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import { exampleBundle, examples } from "./utils/examplesBundle.js"

const root = Url.fileURLToPath(new URL("../../../", import.meta.url))

/** What each example must print (every pattern must match somewhere in its stdout). */
const expected: Record<string, ReadonlyArray<string | RegExp>> = {
  "quickstart.ts": [
    /✔ sandbox created and ready \(\d+ ms\)/,
    "[stdout] tick 3",
    "bytes.bin: 256 bytes, identical",
    "HTTP 200 · <h1>Served from a sandbox</h1>",
    /✔ sandbox \S+ is gone \(\d+ ms\)/
  ],
  "01-create.ts": ["Healthy: true", "Hello from the sandbox"],
  "02-create-with-timing.ts": [/^wait ready\s+\d+ ms$/m, /^delete\s+\d+ ms$/m, /^total\s+\d+ ms$/m],
  "03-basic-commands.ts": [
    "python3 says 2 + 2 = 4",
    "Hi, O'Brien; rm -rf /",
    "exec: exit 3, stderr \"oops\\n\"",
    "run: CommandError: exit 2"
  ],
  "04-streaming-output.ts": [
    "[stdout] step 5",
    "[stderr] done",
    "exited with 2 after",
    /first 3 lines[^\n]*\nline 1\nline 2\nline 3\n/
  ],
  "05-environment-variables.ts": [
    "sandbox env:  APP_ENV=production GREETING=hello",
    "command env:  APP_ENV=production GREETING=bonjour",
    "python3 sees: API_URL=https://api.example.com"
  ],
  "06-working-directory.ts": ["with cwd:          /tmp/project", "relative path:     running app.py"],
  "07-file-operations.ts": [
    "config.json retries = 3",
    "exclusive write: FileExists: /tmp/config.json",
    "after delete: FileNotFound: /tmp/hello.txt"
  ],
  "08-directory-operations.ts": [
    "my_project: README.md, src, tests",
    "exclusive mkdir: FileExists, as asked",
    "after deleteDir, exists: false"
  ],
  "09-binary-files.ts": ["256 byte values: identical", "sha256 in sandbox: matches", "2 MiB round trip: identical"],
  "10-batch-operations.ts": ["the sandbox sees 101 files", "file-042.txt: This is file number 42"],
  "11-upload-download.ts": ["downloaded summary: total,749250.00", "upload of a missing file: FileNotFound"],
  "12-file-manipulation.ts": [
    "archive:       report-2025.txt",
    "move onto existing: FileExists",
    "with overwrite: final.txt = notes",
    "after rm:      final.txt"
  ],
  "13-background-processes.ts": [
    "[job stdout] finished",
    "job ended: completed",
    "worker after kill: killed",
    "leftover children: none",
    "still running after the scope: 0"
  ],
  "14-expose-port.ts": [
    "GET /          -> 200 <h1>Hello from a Koyeb sandbox</h1>",
    "GET /data.json -> 200 {\"ok\":true}"
  ],
  "15-get-sandbox-by-id.ts": [
    "marker: written by the creator",
    "SandboxNotFound: 00000000-0000-0000-0000-000000000000"
  ],
  "16-composing-layers.ts": ["fib(20) = 6765", "platform: linux"],
  "17-many-sandboxes.ts": ["primes   in", "/tmp/only-here.txt exists in: yes, no, no"],
  "18-stream-pipelines.ts": ["batch 4: 50 lines", "first 500:", "merged 6 lines from two commands"],
  "19-retries-and-timeouts.ts": [
    "1. Timeout after 300 ms",
    "2. succeeded with \"ok\" after 3 attempts",
    "3. /tmp/ready appeared",
    "4. gave up after 1 s"
  ],
  "20-tracing.ts": ["build printed: built", /^app\.main \(/m, /^ {2}Sandbox\.make \(/m, /^ {4}Executor\.run \(/m],
  "21-plain-typescript.ts": [
    "one-shot: the sandbox runs Linux",
    "python3 says 42",
    "expected failure: FileNotFound /tmp/missing.txt",
    "sandbox deleted, runtime disposed"
  ],
  "22-testing-with-mocks.ts": ["✔ layerMemory", "✔ Layer.mock", "✔ layerControlPlaneMemory", "✔ real sandbox: rows: 3"],
  "23-promise-facade.ts": [
    "Hello from plain async code",
    "bytes back: 0,1,2,254,255",
    "CommandError, exit code 7",
    "aborted (TimeoutError)",
    "done, sandbox deleted"
  ],
  "24-interactive-shell.ts": [
    "stdout is a terminal",
    "sandbox$ tty; stty size\n/dev/pts/",
    "sandbox$ stty size\n43 132",
    "^C (interrupted; the shell lives on)",
    "shell exited with 3"
  ],
  "25-answer-prompts.ts": [
    "package name: (my-app) sandbox-demo",
    "version: (1.0.0) ⏎ (default)",
    "setup exited with 0",
    "package.json: {\"name\":\"sandbox-demo\",\"version\":\"1.0.0\",\"description\":\"Answered by a program\",\"license\":\"MIT\"}"
  ],
  "26-python-repl.ts": [
    ">>> x\n42",
    "[0, 1, 4, 9, 16]",
    "ZeroDivisionError: division by zero",
    "python exited with 0"
  ],
  "27-watch-directory.ts": [
    "create /tmp/site/assets/",
    "rename /tmp/site/index.html.part -> /tmp/site/index.html",
    "delete /tmp/site/scratch.tmp",
    /\d+ events, watch closed/
  ],
  "28-code-interpreter-agent.ts": [
    "error:  TypeError: unhashable type: 'slice'",
    "'best month': 'Jun'",
    /saved chart\.(png|svg) \(\d+ bytes\)/,
    "value:  4"
  ],
  "29-interrupt-long-computation.ts": [
    "first run: Timeout",
    /state kept: checked, primes = \(\d+, \d+\)/,
    "second run: KeyboardInterrupt",
    /resumed from where it stopped: \(\d+, \d+\)/
  ],
  "30-javascript-context.ts": [
    "totals: { ada: 37.5, bob: 12.5 }",
    "[stdout] processing order 3\nvalue: '3 orders processed'",
    "error as data: TypeError",
    "orders still defined: 3"
  ]
}

const exampleTimeout = Duration.seconds(90)
// Two examples at a time: each starts sandboxes and the machine is shared.
const slots = Effect.unsafeMakeSemaphore(2)

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** The environment of an example: no Koyeb credentials (local backend), its own TMPDIR. */
const exampleEnv = (tmpdir: string): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmpdir }
  delete env.KOYEB_API_TOKEN
  delete env.KOYEB_API_HOST
  return env
}

/** Runs a program to its end; interruption sends SIGTERM (its finalizers delete its sandboxes), then SIGKILL. */
const runNode = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv) =>
  Effect.async<Run>((resume) => {
    const child = ChildProcess.spawn(process.execPath, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("close", (code, signal) => resume(Effect.succeed({ code, signal, stdout, stderr })))
    return Effect.async<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done(Effect.void)
      child.once("exit", () => done(Effect.void))
      child.kill("SIGTERM")
      const force = setTimeout(() => child.kill("SIGKILL"), 5_000)
      child.once("exit", () => clearTimeout(force))
    })
  })

const readProc = (pid: string, file: string): string => {
  try {
    return Fs.readFileSync(`/proc/${pid}/${file}`, "utf8")
  } catch {
    return ""
  }
}

const readLink = (path: string): string => {
  try {
    return Fs.readlinkSync(path)
  } catch {
    return ""
  }
}

/** Live (non-zombie) processes whose command line, environment or cwd mention `marker`. */
const processesMentioning = (marker: string): Array<string> =>
  Fs.readdirSync("/proc").filter((pid) => {
    if (!/^\d+$/.test(pid) || pid === String(process.pid)) return false
    const stat = readProc(pid, "stat")
    if (stat === "" || /^\d+ \(.*\) Z /s.test(stat)) return false
    return readProc(pid, "cmdline").includes(marker) || readProc(pid, "environ").includes(marker) ||
      readLink(`/proc/${pid}/cwd`).startsWith(marker)
  }).map((pid) => `${pid}: ${readProc(pid, "cmdline").replaceAll("\0", " ").trim()}`)

/** The processes still mentioning `marker` after up to 5 seconds (reaping is asynchronous); empty when none. */
const leftoverProcesses = (marker: string) =>
  Effect.suspend(() => {
    const left = processesMentioning(marker)
    return left.length === 0 ? Effect.void : Effect.fail(left)
  }).pipe(
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("5 seconds"))),
    Effect.match({ onFailure: (left) => left, onSuccess: () => [] })
  )

/** A directory unique to one run, removed afterwards. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-koyeb-example-")))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const runExample = (file: string) =>
  Effect.scoped(Effect.gen(function*() {
    const patterns = expected[file]
    assert.isDefined(patterns, `examples/${file} has no expected output in Examples.test.ts`)
    const dir = yield* tempDir
    const run = yield* runNode([exampleBundle(file)], exampleEnv(dir)).pipe(
      Effect.timeoutFail({
        duration: exampleTimeout,
        onTimeout: () => new Error(`examples/${file} did not finish within ${Duration.format(exampleTimeout)}`)
      })
    )
    const output = `--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`
    assert.strictEqual(run.code, 0, `examples/${file} exited with ${run.code ?? run.signal}\n${output}`)
    for (const pattern of patterns!) {
      const found = typeof pattern === "string" ? run.stdout.includes(pattern) : pattern.test(run.stdout)
      assert.isTrue(found, `examples/${file}: expected ${String(pattern)} in its output\n${output}`)
    }
    assert.deepStrictEqual(yield* leftoverProcesses(dir), [], `examples/${file} left sandbox processes behind`)
    const sandboxDirs = Path.join(dir, "effect-koyeb")
    const leftDirs = Fs.existsSync(sandboxDirs) ? Fs.readdirSync(sandboxDirs) : []
    assert.deepStrictEqual(leftDirs, [], `examples/${file} left sandbox directories behind`)
  }))

describe("examples", () => {
  it("every expectation names an existing example", () => {
    assert.deepStrictEqual(Object.keys(expected).sort(), examples)
  })

  // Guards the leftover check itself: a process carrying the marker is seen, and gone once killed.
  it.live("the leftover check sees a process that carries the run's directory", () =>
    Effect.scoped(Effect.gen(function*() {
      const dir = yield* tempDir
      const child = ChildProcess.spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], {
        env: exampleEnv(dir),
        stdio: "ignore"
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      const seen = processesMentioning(dir)
      assert.strictEqual(seen.length, 1)
      assert.isTrue(seen[0]!.startsWith(`${child.pid}:`))
      child.kill("SIGKILL")
      assert.deepStrictEqual(yield* leftoverProcesses(dir), [])
    })))

  describe.concurrent("run on the local backend", () => {
    for (const file of examples) {
      it.live(file, () => slots.withPermits(1)(runExample(file)), Duration.toMillis(exampleTimeout) + 30_000)
    }
  })
})
