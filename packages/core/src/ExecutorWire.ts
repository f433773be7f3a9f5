/**
 * The executor's wire protocol: the JSON request bodies its endpoints accept, shared by the
 * clients that send them and the executor server that decodes them, and the JSON replies the
 * clients decode.
 *
 * The stock executor reads each body with Go's `encoding/json`, and so does effect-koyeb's own
 * executor: a field that is missing or `null` keeps Go's zero value (`""` for a string, an empty
 * map for `env`), which these schemas encode as defaults. The rules that belong to the JSON
 * reader rather than to a body's shape (only the first JSON value counts, field names also match
 * case-insensitively, unknown fields are ignored, lone surrogates become U+FFFD) are applied by
 * the server before it decodes with these schemas.
 *
 * `/unbind_port` ignores its body, `/health` and `/list_processes` take none, and
 * `/process_logs_streaming`, `/write_file_bytes`, `/read_file_bytes` and `/watch` take their `id`
 * or `path` from the query string.
 *
 * @since 0.2.0
 */
import * as Schema from "effect/Schema"
import { FileEvent, ProcessInfo, ProcessLogLine } from "./SandboxSchema.js"

// Go leaves a field that is missing, or `null`, at its zero value: here `""`.
const GoString = Schema.optionalWith(Schema.String, { default: () => "", nullable: true })

/**
 * The environment variables of a command, added to (and overriding) the executor's own. Go stores
 * a `null` value as the zero value, an empty string.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Environment = Schema.Record({
  key: Schema.String,
  value: Schema.transform(Schema.NullOr(Schema.String), Schema.String, {
    strict: true,
    decode: (value) => value ?? "",
    encode: (value) => value
  })
})
/**
 * @see Environment
 * @since 0.2.0
 * @category models
 */
export type Environment = typeof Environment.Type

/**
 * The body of `/run`, `/run_streaming` and `/start_process`: `sh -c cmd`, in `cwd` (the
 * executor's own directory when empty; relative paths resolve against it), with `env` added to the
 * executor's environment. An empty `cmd` runs nothing on `/run` and `/run_streaming`, and is
 * refused by `/start_process`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const CommandRequest = Schema.Struct({
  cmd: GoString,
  cwd: GoString,
  // Go's zero value for a map: no variables added
  env: Schema.optionalWith(Environment, { default: () => ({}), nullable: true })
})
/**
 * @see CommandRequest
 * @since 0.2.0
 * @category models
 */
export type CommandRequest = typeof CommandRequest.Type

/**
 * The body of `/read_file`, `/delete_file`, `/delete_dir`, `/make_dir` and `/list_dir`: a path,
 * absolute or relative to the executor's working directory.
 *
 * @since 0.2.0
 * @category schemas
 */
export const PathRequest = Schema.Struct({
  path: GoString
})
/**
 * @see PathRequest
 * @since 0.2.0
 * @category models
 */
export type PathRequest = typeof PathRequest.Type

/**
 * The body of `/write_file`: the file's new content as text (a missing `content` writes an empty file).
 *
 * @since 0.2.0
 * @category schemas
 */
export const WriteFileRequest = Schema.Struct({
  path: GoString,
  content: GoString
})
/**
 * @see WriteFileRequest
 * @since 0.2.0
 * @category models
 */
export type WriteFileRequest = typeof WriteFileRequest.Type

/**
 * The body of `/kill_process`: the id `/start_process` returned (an empty id is refused).
 *
 * @since 0.2.0
 * @category schemas
 */
export const KillProcessRequest = Schema.Struct({
  id: GoString
})
/**
 * @see KillProcessRequest
 * @since 0.2.0
 * @category models
 */
export type KillProcessRequest = typeof KillProcessRequest.Type

/**
 * The body of `/bind_port`: the port the TCP proxy forwards to, as a JSON string (a number is
 * refused); not validated further (an empty port is refused).
 *
 * @since 0.2.0
 * @category schemas
 */
export const BindPortRequest = Schema.Struct({
  port: GoString
})
/**
 * @see BindPortRequest
 * @since 0.2.0
 * @category models
 */
export type BindPortRequest = typeof BindPortRequest.Type

/**
 * The reply of `/run` (200). Go always writes `stdout`, `stderr` and `code`; `error` only when the code is not 0.
 *
 * @since 0.2.0
 * @category schemas
 */
export const RunReply = Schema.Struct({
  stdout: Schema.optionalWith(Schema.String, { default: () => "" }),
  stderr: Schema.optionalWith(Schema.String, { default: () => "" }),
  code: Schema.Number
})

/**
 * @see RunReply
 * @since 0.2.0
 * @category models
 */
export type RunReply = typeof RunReply.Type

/**
 * The reply of the six JSON file endpoints (always 200): `error` on failure; `content` / `entries` omitted when empty.
 *
 * @since 0.2.0
 * @category schemas
 */
export const FileReply = Schema.Struct({
  success: Schema.optional(Schema.Boolean),
  error: Schema.optional(Schema.String),
  content: Schema.optional(Schema.String),
  entries: Schema.optional(Schema.NullOr(Schema.Array(Schema.String)))
})

/**
 * @see FileReply
 * @since 0.2.0
 * @category models
 */
export type FileReply = typeof FileReply.Type

/**
 * A `{success, error?}` reply: `/bind_port`, `/unbind_port`, `/kill_process` (200).
 *
 * @since 0.2.0
 * @category schemas
 */
export const SuccessReply = Schema.Struct({
  success: Schema.optional(Schema.Boolean),
  error: Schema.optional(Schema.String)
})

/**
 * @see SuccessReply
 * @since 0.2.0
 * @category models
 */
export type SuccessReply = typeof SuccessReply.Type

/**
 * The reply of `/bind_port` when another port is bound (409).
 *
 * @since 0.2.0
 * @category schemas
 */
export const PortConflictReply = Schema.Struct({
  current_port: Schema.String
})

/**
 * @see PortConflictReply
 * @since 0.2.0
 * @category models
 */
export type PortConflictReply = typeof PortConflictReply.Type

/**
 * The reply of `/start_process` (201).
 *
 * @since 0.2.0
 * @category schemas
 */
export const StartProcessReply = Schema.Struct({
  id: Schema.String,
  pid: Schema.Number,
  status: Schema.String
})

/**
 * @see StartProcessReply
 * @since 0.2.0
 * @category models
 */
export type StartProcessReply = typeof StartProcessReply.Type

/**
 * The reply of `/list_processes` (200); extra fields of newer executors are ignored.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ProcessListReply = Schema.Struct({
  processes: Schema.optional(Schema.NullOr(Schema.Array(ProcessInfo)))
})

/**
 * @see ProcessListReply
 * @since 0.2.0
 * @category models
 */
export type ProcessListReply = typeof ProcessListReply.Type

/**
 * The reply of `/health` (200, JSON sent as text/plain); `capabilities` lists the extensions of effect-koyeb's executor.
 *
 * @since 0.2.0
 * @category schemas
 */
export const HealthReply = Schema.Struct({
  status: Schema.String,
  capabilities: Schema.optional(Schema.Array(Schema.String))
})

/**
 * @see HealthReply
 * @since 0.2.0
 * @category models
 */
export type HealthReply = typeof HealthReply.Type

/**
 * The `data` of a `/process_logs_streaming` `log` event.
 *
 * @since 0.2.0
 * @category schemas
 */
export const LogEvent = ProcessLogLine

// A terminal dimension: 1 to 65535 characters (the kernel's `winsize` holds 16 bits).
const TerminalCells = Schema.Int.pipe(Schema.between(1, 65535))

/**
 * The size of a pseudo-terminal, in characters.
 *
 * @since 0.2.0
 * @category schemas
 */
export const PtySize = Schema.Struct({
  cols: TerminalCells,
  rows: TerminalCells
})
/**
 * @see PtySize
 * @since 0.2.0
 * @category models
 */
export type PtySize = typeof PtySize.Type

/**
 * The body of `/spawn` (the `interactive` extension): the command as for `/run_streaming`, started
 * with a stdin pipe. The reply is an SSE stream: `started` (`SpawnStartedEvent`), then `output`
 * events of raw bytes (`SpawnOutputEvent`), then `complete` (`{"code":n}`). With `pty` (executors
 * advertising `pty`) the command runs on a pseudo-terminal of that size: its stdin, stdout and
 * stderr are the terminal, and all its output comes as `stdout`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const SpawnRequest = Schema.Struct({
  ...CommandRequest.fields,
  pty: Schema.optional(Schema.NullOr(PtySize))
})
/**
 * @see SpawnRequest
 * @since 0.2.0
 * @category models
 */
export type SpawnRequest = typeof SpawnRequest.Type

/**
 * The body of `/stdin_end` (close the command's stdin) and `/signal` (send `signal`, a name such
 * as `SIGINT`, to the command's process group; ignored by `/stdin_end`): the `id` of the
 * `started` event of `/spawn`. `/stdin?id=` takes the bytes to write as its raw body instead.
 *
 * @since 0.2.0
 * @category schemas
 */
export const SpawnControlRequest = Schema.Struct({
  id: GoString,
  signal: GoString
})
/**
 * @see SpawnControlRequest
 * @since 0.2.0
 * @category models
 */
export type SpawnControlRequest = typeof SpawnControlRequest.Type

/**
 * The body of `/resize` (the `pty` extension): the new size of the terminal of the command `id`
 * (spawned with `pty`); the terminal's foreground process group gets `SIGWINCH`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ResizeRequest = Schema.Struct({
  id: GoString,
  ...PtySize.fields
})
/**
 * @see ResizeRequest
 * @since 0.2.0
 * @category models
 */
export type ResizeRequest = typeof ResizeRequest.Type

/**
 * The `data` of the first event of `/spawn`, `started`: the id naming the command in `/stdin`,
 * `/stdin_end` and `/signal`, and its process group.
 *
 * @since 0.2.0
 * @category schemas
 */
export const SpawnStartedEvent = Schema.Struct({
  id: Schema.String,
  pid: Schema.Number
})
/**
 * @see SpawnStartedEvent
 * @since 0.2.0
 * @category models
 */
export type SpawnStartedEvent = typeof SpawnStartedEvent.Type

/**
 * The `data` of an `output` event of `/spawn`: bytes read from one pipe, base64-encoded, not split
 * into lines.
 *
 * @since 0.2.0
 * @category schemas
 */
export const SpawnOutputEvent = Schema.Struct({
  stream: Schema.Literal("stdout", "stderr"),
  data: Schema.String
})
/**
 * @see SpawnOutputEvent
 * @since 0.2.0
 * @category models
 */
export type SpawnOutputEvent = typeof SpawnOutputEvent.Type

/**
 * The reply of `/stdin` (200): `closed` when the command had closed its stdin and the bytes were
 * discarded.
 *
 * @since 0.2.0
 * @category schemas
 */
export const StdinReply = Schema.Struct({
  success: Schema.optional(Schema.Boolean),
  closed: Schema.optional(Schema.Boolean)
})
/**
 * @see StdinReply
 * @since 0.2.0
 * @category models
 */
export type StdinReply = typeof StdinReply.Type

/**
 * The `data` of a `change` event of `GET /watch?path=&recursive=` (the `watch` extension). The
 * reply is an SSE stream: `ready` (`{}`) once the watch is set, then one `change` per event, and
 * `complete` (`{}`) after the `delete` of the watched directory itself; an `error` event
 * (`{"error"}`) ends a failed watch. A missing path, or one that is not a directory, is refused
 * before the stream with 422 and `{"error": "<Go path error>"}`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const WatchEvent = FileEvent
