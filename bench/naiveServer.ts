/**
 * The baseline of the "ExecutorServer streaming" figure: a tiny `node:http` server that serves
 * `/run_streaming` the way the stock Go executor does — `sh -c cmd`, and one write (flushed at
 * once) per SSE event, i.e. per output line; a full socket pauses the command's pipe, as Go's
 * blocking write does. Run as a child process by `run.ts`; prints
 * `{"event":"listening","url":…}` and exits when its stdin closes (the bench ended).
 */
import * as ChildProcess from "node:child_process"
import * as Http from "node:http"
import type { Readable } from "node:stream"

const secret = process.env.SANDBOX_SECRET ?? ""

const frame = (event: string, data: string) => `event: ${event}\ndata: ${data}\n\n`

const server = Http.createServer((request, response) => {
  if (request.url !== "/run_streaming") {
    response.writeHead(404).end("404 page not found\n")
    return
  }
  if (request.headers.authorization !== `Bearer ${secret}`) {
    response.writeHead(401).end("Unauthorized\n")
    return
  }
  const body: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => body.push(chunk))
  request.on("end", () => {
    const { cmd } = JSON.parse(Buffer.concat(body).toString("utf8")) as { cmd: string }
    const child = ChildProcess.spawn("sh", ["-c", cmd], { stdio: ["ignore", "pipe", "pipe"] })
    response.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive"
    })
    let open = 2
    const pump = (stream: Readable, name: "stdout" | "stderr") => {
      let pending = ""
      let paused = false
      const emit = (line: string) => {
        if (
          !response.write(frame("output", JSON.stringify({ data: line.replace(/\r+$/, ""), stream: name }))) && !paused
        ) {
          paused = true
          stream.pause()
          response.once("drain", () => {
            paused = false
            stream.resume()
          })
        }
      }
      stream.setEncoding("utf8")
      stream.on("data", (text: string) => {
        let start = 0
        let nl = text.indexOf("\n")
        if (nl !== -1 && pending.length > 0) {
          emit(pending + text.slice(0, nl))
          pending = ""
          start = nl + 1
          nl = text.indexOf("\n", start)
        }
        while (nl !== -1) {
          emit(text.slice(start, nl))
          start = nl + 1
          nl = text.indexOf("\n", start)
        }
        pending += text.slice(start)
      })
      stream.on("end", () => {
        if (pending.length > 0) emit(pending)
        if (--open === 0) finish()
      })
    }
    let exitCode: number | undefined
    let ended = false
    const finish = () => {
      if (exitCode === undefined || open > 0 || ended) return
      ended = true
      response.end(frame("complete", JSON.stringify({ code: exitCode, error: exitCode !== 0 })))
    }
    child.on("exit", (code) => {
      exitCode = code ?? -1
      finish()
    })
    pump(child.stdout, "stdout")
    pump(child.stderr, "stderr")
    response.on("close", () => {
      if (!ended) child.kill("SIGKILL")
    })
  })
})

server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  process.stdout.write(`${JSON.stringify({ event: "listening", url: `http://127.0.0.1:${port}` })}\n`)
})

process.stdin.on("end", () => process.exit(0))
process.stdin.resume()
