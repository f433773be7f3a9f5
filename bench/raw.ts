/**
 * The baselines' client: what a user would write by hand with the global `fetch` (keep-alive on
 * by default) and a minimal Server-Sent Events split, against the same executor as the SDK.
 */

/** An executor and its secret. */
export interface Endpoint {
  readonly url: string
  readonly secret: string
}

const headers = (endpoint: Endpoint) => ({
  authorization: `Bearer ${endpoint.secret}`,
  "content-type": "application/json"
})

const post = (endpoint: Endpoint, path: string, body: unknown): Promise<Response> =>
  fetch(`${endpoint.url}${path}`, { method: "POST", headers: headers(endpoint), body: JSON.stringify(body) })

const failed = async (path: string, response: Response): Promise<never> => {
  throw new Error(`${path}: status ${response.status}: ${(await response.text()).slice(0, 200)}`)
}

/** `POST /run_streaming`, reading the whole reply as text; returns the exit code. */
export const runText = async (endpoint: Endpoint, cmd: string): Promise<number> => {
  const response = await post(endpoint, "/run_streaming", { cmd })
  if (response.status !== 200) return failed("/run_streaming", response)
  const text = await response.text()
  const at = text.lastIndexOf("event: complete\ndata: ")
  if (at === -1) throw new Error("/run_streaming: no complete event")
  const data = text.slice(at + 22, text.indexOf("\n", at + 22))
  return (JSON.parse(data) as { code: number }).code
}

/**
 * `POST /run_streaming`, splitting the body into events as it arrives and parsing each `output`
 * event's JSON; `onLine` gets every line. Returns the exit code.
 */
export const runLines = async (
  endpoint: Endpoint,
  cmd: string,
  onLine: (data: string, stream: string) => void
): Promise<number> => {
  const response = await post(endpoint, "/run_streaming", { cmd })
  if (response.status !== 200) return failed("/run_streaming", response)
  const decoder = new TextDecoder()
  let pending = ""
  let code: number | undefined
  const reader = response.body!.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    const text = pending + decoder.decode(value, { stream: true })
    let start = 0
    let end = text.indexOf("\n\n", start)
    while (end !== -1) {
      // "event: <name>\ndata: <json>"
      const nl = text.indexOf("\n", start)
      const name = text.slice(start + 7, nl)
      const data = text.slice(nl + 7, end)
      if (name === "output") {
        const event = JSON.parse(data) as { data: string; stream: string }
        onLine(event.data, event.stream)
      } else if (name === "complete") {
        code = (JSON.parse(data) as { code: number }).code
      } else {
        throw new Error(`/run_streaming: ${name} ${data}`)
      }
      start = end + 2
      end = text.indexOf("\n\n", start)
    }
    pending = text.slice(start)
  }
  if (code === undefined) throw new Error("/run_streaming: no complete event")
  return code
}

/**
 * `POST /run_streaming`, counting events without decoding them (the cheapest client, so that a
 * server's own cost is what is measured); checks the final `complete` event. Returns the number
 * of `output` events.
 */
export const countOutputEvents = async (endpoint: Endpoint, cmd: string): Promise<number> => {
  const response = await post(endpoint, "/run_streaming", { cmd })
  if (response.status !== 200) return failed("/run_streaming", response)
  let events = 0
  // an event ends with "\n\n": one byte is kept across reads so a split terminator is seen
  let previous = 0
  let tail = Buffer.alloc(0)
  const reader = response.body!.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength)
    if (previous === 10 && bytes[0] === 10) events++
    for (let at = bytes.indexOf("\n\n"); at !== -1; at = bytes.indexOf("\n\n", at + 2)) events++
    previous = bytes[bytes.length - 1]!
    tail = bytes.length >= 256 ? bytes.subarray(bytes.length - 256) : Buffer.concat([tail, bytes]).subarray(-256)
  }
  const text = tail.toString("latin1")
  const at = text.lastIndexOf("event: complete\ndata: ")
  if (at === -1 || !text.endsWith("\n\n")) throw new Error("/run_streaming: no complete event at the end")
  const code = (JSON.parse(text.slice(at + 22, -2)) as { code: number }).code
  if (code !== 0) throw new Error(`/run_streaming: exit code ${code}`)
  return events - 1
}

/** `POST /run`: the buffered reply. */
export const run = async (
  endpoint: Endpoint,
  cmd: string
): Promise<{ stdout: string; stderr: string; code: number }> => {
  const response = await post(endpoint, "/run", { cmd })
  if (response.status !== 200) return failed("/run", response)
  return await response.json() as { stdout: string; stderr: string; code: number }
}

/** `POST /write_file` (UTF-8 text). */
export const writeFile = async (endpoint: Endpoint, path: string, content: string): Promise<void> => {
  const response = await post(endpoint, "/write_file", { path, content })
  if (response.status !== 200) return failed("/write_file", response)
  const reply = await response.json() as { success?: boolean; error?: string }
  if (reply.error !== undefined || reply.success !== true) throw new Error(`/write_file: ${reply.error ?? "failed"}`)
}

// A 64 MiB file is 85 MiB as base64, above the executor's 64 MiB body limit: stage it in pieces.
const pieceBytes = 24 * 1024 * 1024

/**
 * Writes bytes by hand the way the SDKs' users do it on the stock executor: base64 text through
 * `/write_file` (in pieces of 24 MiB of data), then `base64 -d` in the sandbox.
 */
export const writeBytesByHand = async (endpoint: Endpoint, path: string, bytes: Uint8Array): Promise<void> => {
  const pieces: Array<string> = []
  for (let offset = 0, i = 0; offset < bytes.length || i === 0; offset += pieceBytes, i++) {
    const piece = `${path}.b64.${String(i).padStart(4, "0")}`
    await writeFile(
      endpoint,
      piece,
      Buffer.from(bytes.buffer, bytes.byteOffset + offset, Math.min(pieceBytes, bytes.length - offset)).toString(
        "base64"
      )
    )
    pieces.push(piece)
  }
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`
  const reply = await run(
    endpoint,
    `cat ${pieces.map(q).join(" ")} | base64 -d > ${q(path)} && rm -f ${pieces.map(q).join(" ")}`
  )
  if (reply.code !== 0) throw new Error(`base64 -d failed: ${reply.stderr}`)
}

/** Reads bytes by hand: `base64 -w0` through `/run`, decoded here. */
export const readBytesByHand = async (endpoint: Endpoint, path: string): Promise<Uint8Array> => {
  const reply = await run(endpoint, `base64 -w0 '${path.replaceAll("'", `'\\''`)}'`)
  if (reply.code !== 0) throw new Error(`base64 failed: ${reply.stderr}`)
  const buffer = Buffer.from(reply.stdout, "base64")
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
}
