/**
 * The former name of `ShellCommand`, kept so that existing imports work.
 *
 * @deprecated Import `@effect-koyeb/core/ShellCommand`: this name clashes with `@effect/platform`'s
 * and `@effect/cli`'s `Command`.
 * @since 0.1.0
 */
import * as ShellCommand from "./ShellCommand.js"

export {
  /**
   * @since 0.1.0
   * @category constructors
   */
  argv,
  /**
   * @since 0.1.0
   * @category models
   */
  type Input,
  /**
   * @since 0.1.0
   * @category guards
   */
  isRaw,
  /**
   * @since 0.1.0
   * @category constructors
   */
  make,
  /**
   * @since 0.1.0
   * @category models
   */
  type Raw,
  /**
   * @since 0.1.0
   * @category constructors
   */
  raw,
  /**
   * @since 0.1.0
   * @category symbols
   */
  RawTypeId,
  /**
   * @since 0.1.0
   * @category constructors
   */
  sh,
  /**
   * @since 0.1.0
   * @category utils
   */
  toLine,
  /**
   * @since 0.1.0
   * @category symbols
   */
  TypeId,
  /**
   * @since 0.1.0
   * @category models
   */
  type Value,
  /**
   * @since 0.1.0
   * @category models
   */
  type Word
} from "./ShellCommand.js"

/**
 * A shell command line, run by `sh -c` in the sandbox.
 *
 * @deprecated Use `ShellCommand.ShellCommand`.
 * @since 0.1.0
 * @category models
 */
export type Command = ShellCommand.ShellCommand

/**
 * True for a `ShellCommand`.
 *
 * @deprecated Use `ShellCommand.isShellCommand`.
 * @since 0.1.0
 * @category guards
 */
export const isCommand: (u: unknown) => u is ShellCommand.ShellCommand = ShellCommand.isShellCommand
