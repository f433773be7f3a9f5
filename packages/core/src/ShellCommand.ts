/**
 * Shell commands for the sandbox: a shell command line, an argv array whose elements are quoted,
 * or the `sh` tagged template that quotes every interpolated value. (Named so that it does not
 * clash with `@effect/platform`'s and `@effect/cli`'s `Command`; `@effect-koyeb/core/Command` is
 * its deprecated alias.)
 *
 * ```ts
 * import * as ShellCommand from "@effect-koyeb/core/ShellCommand"
 *
 * const file = "it's here.txt"
 * ShellCommand.sh`cat ${file} | wc -l`        // cat 'it'\''s here.txt' | wc -l
 * ShellCommand.sh`ls ${["-l", "a b"]}`        // ls '-l' 'a b'
 * ShellCommand.sh`echo ${ShellCommand.raw("$HOME")}` // echo $HOME
 * ShellCommand.argv(["printf", "%s\n", file])  // 'printf' '%s\n' 'it'\''s here.txt'
 * ```
 *
 * @since 0.1.0
 */
import { quote, quoteArgs } from "./internal/shell.js"

/**
 * The brand of a `ShellCommand`.
 *
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = Symbol.for("@effect-koyeb/core/ShellCommand")
/**
 * @see TypeId
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * The brand of a `Raw` shell fragment.
 *
 * @since 0.1.0
 * @category symbols
 */
export const RawTypeId: unique symbol = Symbol.for("@effect-koyeb/core/ShellCommand/Raw")
/**
 * @see RawTypeId
 * @since 0.1.0
 * @category symbols
 */
export type RawTypeId = typeof RawTypeId

/**
 * A shell command line, run by `sh -c` in the sandbox.
 *
 * @since 0.1.0
 * @category models
 */
export interface ShellCommand {
  readonly [TypeId]: TypeId
  /** The command line as the shell will read it. */
  readonly line: string
}

/**
 * What every `Executor` method accepts: a shell command line, an argv array (each element quoted), or a `ShellCommand`.
 *
 * @since 0.1.0
 * @category models
 */
export type Input = string | ReadonlyArray<string> | ShellCommand

/**
 * A piece of shell text that `sh` interpolates verbatim, without quoting.
 *
 * @since 0.1.0
 * @category models
 */
export interface Raw {
  readonly [RawTypeId]: RawTypeId
  readonly text: string
}

/**
 * A single value `sh` can interpolate: scalars are quoted as one word, `Raw` and `ShellCommand` are inserted verbatim.
 *
 * @since 0.1.0
 * @category models
 */
export type Word = string | number | bigint | boolean | Raw | ShellCommand

/**
 * A value `sh` can interpolate: a word, or an array of words (several words, none when empty).
 *
 * @since 0.1.0
 * @category models
 */
export type Value = Word | ReadonlyArray<Word>

const ShellCommandProto = {
  [TypeId]: TypeId,
  toString(this: ShellCommand) {
    return this.line
  },
  toJSON(this: ShellCommand) {
    return { _id: "ShellCommand", line: this.line }
  }
}

/**
 * A command from a shell command line, used as is (pipes, redirections and expansions apply).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (line: string): ShellCommand => {
  const self = Object.create(ShellCommandProto)
  self.line = line
  return self
}

/**
 * A command from an argv array: every element is quoted, so none of them is interpreted by the shell.
 *
 * @since 0.1.0
 * @category constructors
 */
export const argv = (args: ReadonlyArray<string>): ShellCommand => make(quoteArgs(args))

/**
 * Marks shell text that `sh` inserts unquoted. Never pass untrusted input.
 *
 * @since 0.1.0
 * @category constructors
 */
export const raw = (text: string): Raw => ({ [RawTypeId]: RawTypeId, text })

/**
 * True for a `ShellCommand`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isShellCommand = (u: unknown): u is ShellCommand => typeof u === "object" && u !== null && TypeId in u

/**
 * True for a `Raw` fragment.
 *
 * @since 0.1.0
 * @category guards
 */
export const isRaw = (u: unknown): u is Raw => typeof u === "object" && u !== null && RawTypeId in u

const word = (value: Word): string =>
  isRaw(value) ? value.text : isShellCommand(value) ? value.line : quote(String(value))

const interpolate = (value: Value): string =>
  Array.isArray(value) ? (value as ReadonlyArray<Word>).map(word).join(" ") : word(value as Word)

/**
 * The shell template: the literal parts are kept as written (their JavaScript escapes applied), and
 * every interpolated value is quoted as one word; an array gives one quoted word per element (none
 * when empty); `ShellCommand.raw(text)` and nested commands are inserted verbatim.
 *
 * @example
 * ```ts
 * import * as ShellCommand from "@effect-koyeb/core/ShellCommand"
 * import * as Executor from "@effect-koyeb/core/Executor"
 * import { Effect } from "effect"
 *
 * const branch = "fix/it's-done" // untrusted input stays one word
 * const files = ["a b.txt", "c.txt"] // an array gives one word per element
 * const command = ShellCommand.sh`git checkout ${branch} && wc -l ${files} | tail -n 1`
 * console.log(command.line)
 * // git checkout 'fix/it'\''s-done' && wc -l 'a b.txt' 'c.txt' | tail -n 1
 *
 * const program = Effect.flatMap(Executor.Executor, (executor) => executor.run(command, { cwd: "/repo" }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const sh = (strings: TemplateStringsArray, ...values: ReadonlyArray<Value>): ShellCommand => {
  // An invalid escape leaves the cooked part undefined: fall back to the raw text.
  const literal = (i: number) => strings[i] ?? strings.raw[i] ?? ""
  let line = literal(0)
  for (let i = 0; i < values.length; i++) {
    line += interpolate(values[i]!) + literal(i + 1)
  }
  return make(line)
}

/**
 * The command line of any `Input`: a string as is, an argv array quoted and joined with spaces.
 *
 * @since 0.1.0
 * @category utils
 */
export const toLine = (input: Input): string =>
  typeof input === "string" ? input : isShellCommand(input) ? input.line : argv(input as ReadonlyArray<string>).line
