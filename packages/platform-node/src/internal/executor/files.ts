/**
 * The file endpoints. The six of the stock (`/write_file`, `/read_file`, `/delete_file`,
 * `/delete_dir`, `/make_dir`, `/list_dir`) always reply 200, with the Go error text in `error`;
 * `content` and `entries` are omitted when empty. The `binary-files` extension streams raw bytes
 * (`/write_file_bytes`, `/read_file_bytes`), with the path in the query string.
 *
 * @internal
 */
import * as ExecutorWire from "@effect-koyeb/core/ExecutorWire"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { finished, Readable } from "node:stream"
import type * as GoFiles from "../goFiles.js"
import * as GoJson from "../goJson.js"
import type { AppContext } from "./context.js"
import { json, onlyMethod, queryParam, type Request, type Response, withBody } from "./http.js"

const decodePath = GoJson.decoder(ExecutorWire.PathRequest)
const decodeWriteFile = GoJson.decoder(ExecutorWire.WriteFileRequest)

const errorJson = (error: GoFiles.FileError): string => `{"error":${GoJson.string(error.text)}`

/** `{"success":true}`, or the error with `"success":false`. */
const successReply = (operation: Effect.Effect<void, GoFiles.FileError>): Effect.Effect<Response> =>
  Effect.match(operation, {
    onFailure: (error) => json(200, `${errorJson(error)},"success":false}`),
    onSuccess: () => json(200, `{"success":true}`)
  })

/** `/delete_file`, `/delete_dir`, `/make_dir`: an operation on the body's path. */
export const pathOp = (
  ctx: AppContext,
  request: Request,
  op: (path: string) => Effect.Effect<void, GoFiles.FileError>
) => withBody(ctx, request, decodePath, (body) => successReply(op(body.path)))

/** `/write_file`: `os.WriteFile` of the body's text. */
export const writeFile = (ctx: AppContext, request: Request) =>
  withBody(ctx, request, decodeWriteFile, (body) => successReply(ctx.files.writeFile(body.path, body.content)))

/** `/read_file`: the file as text (`{}` when empty). */
export const readFile = (ctx: AppContext, request: Request) =>
  withBody(ctx, request, decodePath, (body) =>
    Effect.match(ctx.files.readFile(body.path), {
      onFailure: (error) => json(200, `${errorJson(error)}}`),
      onSuccess: (content) => json(200, content === "" ? "{}" : `{"content":${GoJson.string(content)}}`)
    }))

/** `/list_dir`: the names in the directory, sorted (`{}` when empty). */
export const listDir = (ctx: AppContext, request: Request) =>
  withBody(ctx, request, decodePath, (body) =>
    Effect.match(ctx.files.listDir(body.path), {
      onFailure: (error) => json(200, `${errorJson(error)}}`),
      onSuccess: (names) => json(200, names.length === 0 ? "{}" : `{"entries":[${names.map(GoJson.string).join(",")}]}`)
    }))

/**
 * A `/write_file_bytes` error reply sent at once, whose response ends only once the rest of the
 * body has arrived (and been dropped): closing a connection (`Connection: close`) that still
 * receives data resets it, and the client may lose the reply.
 */
const refusedBody = (body: Readable, error: GoFiles.FileError): Response => {
  const text = Buffer.from(`${errorJson(error)},"success":false}\n`)
  const reply = new Readable({ read() {} })
  reply.push(text)
  finished(body, () => reply.push(null))
  body.resume()
  return HttpServerResponse.raw(reply, {
    contentType: "application/json",
    headers: { "content-length": String(text.length) }
  })
}

/** `/write_file_bytes?path=` (POST): the raw body is the file's bytes, with no body-size limit. */
export const writeFileBytes = (ctx: AppContext, request: Request) =>
  onlyMethod("POST", request, () => {
    const body = request.incoming
    return Effect.match(ctx.files.writeStream(queryParam(request, "path"), body), {
      onFailure: (error) => refusedBody(body, error),
      onSuccess: () => json(200, `{"success":true}`)
    })
  })

/** `/read_file_bytes?path=` (GET): the file's bytes; an error before the first byte is a 422 JSON reply. */
export const readFileBytes = (ctx: AppContext, request: Request) =>
  onlyMethod("GET", request, () =>
    Effect.match(ctx.files.readStream(queryParam(request, "path")), {
      onFailure: (error) => json(422, `${errorJson(error)}}`),
      onSuccess: (file) => {
        // the platform destroys the body once it pipes it; a client gone before that must close the file too
        const response = request.response
        if (response.destroyed) file.destroy()
        else response.once("close", () => file.destroy())
        // a read error once bytes were sent destroys the connection: the client sees a truncated body
        return HttpServerResponse.raw(file, { contentType: "application/octet-stream" })
      }
    }).pipe(Effect.uninterruptible))
