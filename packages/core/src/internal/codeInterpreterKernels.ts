/**
 * The kernels of the code interpreter, written into the sandbox on first use. Each is one program
 * that needs nothing but its language (Python's standard library; `node`) and speaks the protocol
 * described in the package README: JSON requests on stdin, JSON messages on stdout, one per line.
 *
 * @internal
 */

/** The Python kernel (`python3`, standard library only). */
export const python = String
  .raw`# effect-koyeb python kernel: JSON lines on stdin (requests) and stdout (messages); stdlib only.
import ast, base64, codecs, fcntl, io, json, linecache, os, select, signal, sys, threading, time, traceback
MAX_LINE = 1 << 20
proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
proto_out = os.dup(1)
diag = os.dup(2)
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
os.close(null)
out_lock = threading.Lock()
def send(msg):
    data = (json.dumps(msg, ensure_ascii=True, default=repr) + "\n").encode("ascii")
    with out_lock:
        view = memoryview(data)
        while view:
            view = view[os.write(proto_out, view):]
state = {"cell": None, "running": False}
class Pump(threading.Thread):
    # Turns what the cell writes on fds 1 and 2 (print, C code, subprocesses) into stream messages.
    def __init__(self):
        super().__init__(daemon=True)
        self.fds = {}
        for fd, name in ((1, "stdout"), (2, "stderr")):
            r, w = os.pipe()
            os.dup2(w, fd)
            os.close(w)
            fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_NONBLOCK)
            try:
                # A larger pipe lets the cell write on while the pump gathers output (Linux only).
                fcntl.fcntl(r, 1031, 1 << 20)
            except OSError:
                pass
            self.fds[r] = [name, codecs.getincrementaldecoder("utf-8")("replace"), ""]
        self.wake_r, self.wake_w = os.pipe()
        self.flushed = threading.Event()
    def drain(self, fd, final):
        # At most about 1 MiB per message while the cell runs (so output streams as it comes); all that is left at its end.
        name, decoder, _ = entry = self.fds[fd]
        while True:
            data = b""
            while len(data) < MAX_LINE:
                try:
                    more = os.read(fd, 1 << 16)
                except BlockingIOError:
                    break
                if not more:
                    break
                data += more
            entry[2] += decoder.decode(data)
            lines = entry[2].split("\n")
            rest = lines.pop()
            if final and not data and rest:
                lines.append(rest)
                rest = ""
            while len(rest) > MAX_LINE:
                lines.append(rest[:MAX_LINE])
                rest = rest[MAX_LINE:]
            entry[2] = rest
            if any(len(l) > MAX_LINE for l in lines):
                lines = [l[i:i + MAX_LINE] for l in lines for i in range(0, max(len(l), 1), MAX_LINE)]
            if lines:
                send({"type": "stream", "cell": state["cell"], "name": name, "lines": [l[:-1] if l.endswith("\r") else l for l in lines]})
            if not final or not data:
                break
    def run(self):
        while True:
            ready, _, _ = select.select(list(self.fds) + [self.wake_r], [], [])
            final = self.wake_r in ready
            if final:
                os.read(self.wake_r, 1)
            else:
                # Lets output gather: a few large messages rather than one per line.
                time.sleep(0.002)
            for fd in self.fds:
                if final or fd in ready:
                    self.drain(fd, final)
            if final:
                self.flushed.set()
    def flush(self):
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:
                pass
        self.flushed.clear()
        os.write(self.wake_w, b"x")
        self.flushed.wait()
pump = Pump()
pump.start()
sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True)
sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True)
sys.stdin = io.StringIO("")
os.environ.setdefault("MPLBACKEND", "Agg")
REPRS = (("text/html", "_repr_html_"), ("text/markdown", "_repr_markdown_"), ("image/svg+xml", "_repr_svg_"),
         ("image/png", "_repr_png_"), ("image/jpeg", "_repr_jpeg_"), ("application/json", "_repr_json_"))
def formats(value):
    data = {}
    bundle = getattr(value, "_repr_mimebundle_", None)
    if callable(bundle):
        try:
            got = bundle()
            if isinstance(got, tuple):
                got = got[0]
            if isinstance(got, dict):
                data.update(got)
        except Exception:
            pass
    for mime, name in REPRS:
        method = getattr(value, name, None)
        if mime in data or not callable(method) or isinstance(value, type):
            continue
        try:
            got = method()
        except Exception:
            continue
        if isinstance(got, tuple):
            got = got[0]
        if got is not None:
            data[mime] = got
    if "image/png" not in data and type(value).__module__.startswith("matplotlib") and hasattr(value, "savefig"):
        buf = io.BytesIO()
        value.savefig(buf, format="png")
        data["image/png"] = buf.getvalue()
    for mime in ("image/png", "image/jpeg"):
        if isinstance(data.get(mime), (bytes, bytearray)):
            data[mime] = base64.b64encode(data[mime]).decode("ascii")
    if "text/plain" not in data:
        try:
            data["text/plain"] = repr(value)
        except Exception as error:
            data["text/plain"] = "<repr failed: %r>" % (error,)
    return data
def display(*values):
    """Shows values as results of the running cell (not the main result)."""
    for value in values:
        sys.stdout.flush()
        pump.flush()
        send({"type": "result", "cell": state["cell"], "main": False, "data": formats(value)})
def figures():
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    for num in plt.get_fignums():
        display(plt.figure(num))
    plt.close("all")
user = {"__name__": "__main__", "__builtins__": __builtins__, "display": display}
def on_sigint(signum, frame):
    # Only a running cell is interrupted: the kernel's own steps (reading, replying) are not.
    if state["running"]:
        raise KeyboardInterrupt
signal.signal(signal.SIGINT, on_sigint)
def execute(cell, code, count):
    name = "<cell-%d>" % count
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    value = None
    try:
        state["running"] = True
        try:
            tree = ast.parse(code, name)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, name, "exec"), user)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), name, "eval"), user)
            figures()
        finally:
            state["running"] = False
    except BaseException as error:
        state["running"] = False
        if isinstance(error, SystemExit):
            raise
        report = traceback.TracebackException(type(error), error, error.__traceback__)
        report.stack = traceback.StackSummary.from_list([f for f in report.stack if f.filename != __file__])
        pump.flush()
        send({"type": "error", "cell": cell, "name": type(error).__name__, "value": str(error),
              "traceback": "".join(report.format())})
        return
    if value is not None:
        user["_"] = value
        pump.flush()
        send({"type": "result", "cell": cell, "main": True, "data": formats(value)})
send({"type": "ready", "pid": os.getpid(), "language": "python", "version": sys.version.split()[0]})
count = 0
while True:
    try:
        line = proto_in.readline()
    except KeyboardInterrupt:
        continue
    if not line:
        break
    request = json.loads(line)
    count += 1
    state["cell"] = request["cell"]
    try:
        execute(request["cell"], request["code"], count)
    except SystemExit:
        pass
    except KeyboardInterrupt:
        pass
    pump.flush()
    send({"type": "done", "cell": request["cell"]})
    state["cell"] = None
`

/** The JavaScript kernel (`node`: one `vm` context kept across cells). */
export const javascript = String
  .raw`// effect-koyeb javascript kernel: JSON lines on stdin (requests) and stdout (messages); node only.
"use strict"
const fs = require("fs")
const readline = require("readline")
const util = require("util")
const vm = require("vm")
const { Console } = require("console")
const { Writable } = require("stream")
const { createRequire } = require("module")
const MAX_LINE = 1 << 20
const send = (message) => {
  const data = Buffer.from(JSON.stringify(message) + "\n")
  let offset = 0
  while (offset < data.length) {
    try {
      offset += fs.writeSync(1, data, offset)
    } catch (error) {
      if (error.code !== "EAGAIN") throw error
    }
  }
}
let cell = null
const makeSink = (name) => {
  let partial = ""
  let lines = []
  let size = 0
  let last = Date.now()
  const flush = (final) => {
    if (final && partial !== "") {
      lines.push(partial)
      partial = ""
    }
    if (lines.length > 0) send({ type: "stream", cell, name, lines })
    lines = []
    size = 0
    last = Date.now()
  }
  const write = (chunk) => {
    const text = partial + (typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"))
    const parts = text.split("\n")
    partial = parts.pop()
    while (partial.length > MAX_LINE) {
      parts.push(partial.slice(0, MAX_LINE))
      partial = partial.slice(MAX_LINE)
    }
    for (const line of parts) {
      lines.push(line.endsWith("\r") ? line.slice(0, -1) : line)
      size += line.length
    }
    // A busy cell still streams: batches go out by size or every 50 ms.
    if (size > 65536 || Date.now() - last > 50) flush(false)
  }
  const stream = new Writable({
    decodeStrings: false,
    write: (chunk, encoding, callback) => {
      write(chunk)
      callback()
    }
  })
  return { flush, stream }
}
const stdout = makeSink("stdout")
const stderr = makeSink("stderr")
const timer = setInterval(() => { stdout.flush(false); stderr.flush(false) }, 50)
timer.unref()
const sandboxProcess = Object.create(process, {
  stdout: { value: stdout.stream },
  stderr: { value: stderr.stream }
})
const REPRS = [["text/html", "_repr_html_"], ["text/markdown", "_repr_markdown_"], ["image/svg+xml", "_repr_svg_"],
  ["image/png", "_repr_png_"], ["image/jpeg", "_repr_jpeg_"], ["application/json", "_repr_json_"]]
const formats = (value) => {
  const data = {}
  for (const [mime, name] of REPRS) {
    if (value !== null && (typeof value === "object" || typeof value === "function") && typeof value[name] === "function") {
      try {
        let got = value[name]()
        if (got instanceof Uint8Array) got = Buffer.from(got).toString("base64")
        if (got !== undefined && got !== null) data[mime] = got
      } catch (error) {}
    }
  }
  data["text/plain"] = util.inspect(value)
  return data
}
const display = (...values) => {
  stdout.flush(true)
  stderr.flush(true)
  for (const value of values) send({ type: "result", cell, main: false, data: formats(value) })
}
const context = vm.createContext({
  console: new Console({ stdout: stdout.stream, stderr: stderr.stream }),
  process: sandboxProcess,
  require: createRequire(process.cwd() + "/"),
  display,
  Buffer, URL, URLSearchParams, TextEncoder, TextDecoder, AbortController, AbortSignal, structuredClone, performance,
  setTimeout, clearTimeout, setInterval, clearInterval, setImmediate, clearImmediate, queueMicrotask,
  fetch: globalThis.fetch
})
let interrupt = null
process.on("SIGINT", () => {
  if (interrupt !== null) interrupt()
})
const interrupted = () => {
  const error = new Error("Script execution was interrupted by SIGINT")
  error.name = "Interrupted"
  error.stack = "Interrupted: " + error.message
  return error
}
const settle = (value) => {
  if (value === null || typeof value !== "object" || typeof value.then !== "function") return Promise.resolve(value)
  return new Promise((resolve, reject) => {
    interrupt = () => reject(interrupted())
    value.then(resolve, reject)
  }).finally(() => { interrupt = null })
}
// Frames of the kernel and of node's vm are not the cell's.
const ownFrame = /\(node:(vm|internal\/process\/task_queues):|at sigintHandlersWrap/
let count = 0
const execute = async (request) => {
  cell = request.cell
  count += 1
  try {
    let value
    try {
      value = new vm.Script(request.code, { filename: "<cell-" + count + ">" }).runInContext(context, { breakOnSigint: true })
    } catch (error) {
      if (error && error.code === "ERR_SCRIPT_EXECUTION_INTERRUPTED") throw interrupted()
      throw error
    }
    value = await settle(value)
    stdout.flush(true)
    stderr.flush(true)
    if (value !== undefined) {
      context._ = value
      send({ type: "result", cell, main: true, data: formats(value) })
    }
  } catch (error) {
    stdout.flush(true)
    stderr.flush(true)
    const isError = error !== null && typeof error === "object" && typeof error.stack === "string"
    send({
      type: "error",
      cell,
      name: isError ? String(error.name) : "Error",
      value: isError ? String(error.message) : util.inspect(error),
      traceback: isError ? error.stack.split("\n").filter((line) => !ownFrame.test(line) && !line.includes(__filename)).join("\n") : ""
    })
  }
  send({ type: "done", cell })
  cell = null
}
const main = async () => {
  send({ type: "ready", pid: process.pid, language: "javascript", version: process.versions.node })
  for await (const line of readline.createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (line !== "") await execute(JSON.parse(line))
  }
  process.exit(0)
}
main()
`
