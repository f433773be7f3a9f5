import * as Command from "@effect-koyeb/core/Command"
import * as ShellCommand from "@effect-koyeb/core/ShellCommand"
import { assert, describe, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"

/**
 * Splits a command line into words the way a POSIX shell does for the subset the quoting uses:
 * blanks separate words, `'...'` is literal, a backslash outside quotes escapes the next character.
 * Anything else a shell would interpret (`$`, backticks, globs, `;`, ...) is an error here, so a
 * successful parse proves the line has no unquoted special character.
 */
const words = (line: string): Array<string> => {
  const out: Array<string> = []
  let current: string | undefined
  let i = 0
  while (i < line.length) {
    const c = line[i]!
    if (c === " ") {
      if (current !== undefined) out.push(current)
      current = undefined
      i++
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1)
      if (end < 0) throw new Error(`unterminated quote in ${line}`)
      current = (current ?? "") + line.slice(i + 1, end)
      i = end + 1
    } else if (c === "\\" && i + 1 < line.length) {
      current = (current ?? "") + line[i + 1]
      i += 2
    } else if (/[A-Za-z0-9_\-./=]/.test(c)) {
      current = (current ?? "") + c
      i++
    } else {
      throw new Error(`unquoted special character ${JSON.stringify(c)} in ${line}`)
    }
  }
  if (current !== undefined) out.push(current)
  return out
}

const hostile = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: fc.constantFrom("'", "\"", "$", "`", "\\", "\n", " ", "-", "*", ";", "|", "&", "!", "a") })
)

describe("ShellCommand", () => {
  describe("argv", () => {
    it("quotes every element as one word", () => {
      assert.strictEqual(ShellCommand.argv(["echo", "a b", "it's"]).line, `'echo' 'a b' 'it'\\''s'`)
      assert.strictEqual(ShellCommand.argv(["printf", ""]).line, `'printf' ''`)
      assert.strictEqual(ShellCommand.argv([]).line, "")
    })

    it.prop("round-trips through shell word splitting", [fc.array(hostile, { minLength: 1 })], ([args]) => {
      assert.deepStrictEqual(words(ShellCommand.argv(args).line), args)
    })
  })

  describe("sh", () => {
    it("keeps the literal parts and quotes interpolated values", () => {
      const file = "it's $HOME `x`"
      assert.strictEqual(ShellCommand.sh`cat ${file} | wc -l`.line, `cat 'it'\\''s $HOME \`x\`' | wc -l`)
      assert.strictEqual(ShellCommand.sh`sleep ${1.5}`.line, `sleep '1.5'`)
      assert.strictEqual(ShellCommand.sh`test ${true} ${10n}`.line, `test 'true' '10'`)
      assert.strictEqual(ShellCommand.sh`no values`.line, "no values")
      assert.strictEqual(ShellCommand.sh``.line, "")
    })

    it("interpolates an array as several words, an empty one as none", () => {
      assert.strictEqual(ShellCommand.sh`ls ${["-l", "a b"]} end`.line, `ls '-l' 'a b' end`)
      assert.strictEqual(ShellCommand.sh`ls ${[]}`.line, "ls ")
    })

    it("inserts raw fragments and nested commands verbatim", () => {
      assert.strictEqual(ShellCommand.sh`echo ${ShellCommand.raw("$HOME")} ${"$HOME"}`.line, `echo $HOME '$HOME'`)
      const inner = ShellCommand.sh`cd ${"/tmp/a b"}`
      assert.strictEqual(
        ShellCommand.sh`${inner} && ls ${[ShellCommand.raw("*"), "*"]}`.line,
        `cd '/tmp/a b' && ls * '*'`
      )
    })

    it.prop("quotes hostile values into exactly one word each", [hostile, hostile], ([a, b]) => {
      assert.deepStrictEqual(words(ShellCommand.sh`echo ${a} x${b}`.line), ["echo", a, `x${b}`])
    })

    it.prop("quotes array elements into one word each", [fc.array(hostile)], ([args]) => {
      assert.deepStrictEqual(words(ShellCommand.sh`printf ${args}`.line), ["printf", ...args])
    })
  })

  describe("toLine", () => {
    it("accepts a string, an argv array or a ShellCommand", () => {
      assert.strictEqual(ShellCommand.toLine("echo $HOME | tr a b"), "echo $HOME | tr a b")
      assert.strictEqual(ShellCommand.toLine(["echo", "$HOME"]), `'echo' '$HOME'`)
      assert.strictEqual(ShellCommand.toLine(ShellCommand.sh`echo ${"$HOME"}`), `echo '$HOME'`)
      assert.strictEqual(ShellCommand.toLine(ShellCommand.make("ls -l")), "ls -l")
    })
  })

  it("guards and prints commands", () => {
    const command = ShellCommand.make("ls")
    assert.isTrue(ShellCommand.isShellCommand(command))
    assert.isFalse(ShellCommand.isShellCommand("ls"))
    assert.isFalse(ShellCommand.isShellCommand(ShellCommand.raw("ls")))
    assert.isTrue(ShellCommand.isRaw(ShellCommand.raw("ls")))
    assert.strictEqual(String(command), "ls")
    assert.deepStrictEqual(JSON.parse(JSON.stringify(command)), { _id: "ShellCommand", line: "ls" })
  })

  it("keeps the deprecated Command module working", () => {
    const command = Command.sh`ls ${"a b"}`
    assert.strictEqual(command.line, `ls 'a b'`)
    assert.isTrue(Command.isCommand(command))
    assert.isTrue(ShellCommand.isShellCommand(Command.make("ls")))
    assert.strictEqual(Command.TypeId, ShellCommand.TypeId)
    assert.strictEqual(Command.toLine(["echo", "$HOME"]), ShellCommand.toLine(["echo", "$HOME"]))
  })
})
