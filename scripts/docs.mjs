// `npm run docs`: the API reference of each package, generated from its JSDoc by @effect/docgen
// (configured by packages/<name>/docgen.json) and copied to docs/<name>/. docgen fails on an
// export without `@since` and on an `@example` that does not type-check or throws when run.
//
// docgen runs in packages/<name>/docs/ (its outDir), prepared here, rather than in the package:
// it requires `homepage` in package.json, which the packages do not declare (the staged copy gets
// one), and it rewrites an example's imports of its own package to `<outDir>/../src`, which the
// staged `src` link satisfies. The staging directory is removed afterwards.
import { spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import process from "node:process"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const packages = ["core", "platform-node"]
const docgen = path.join(root, "node_modules", "@effect", "docgen", "bin.cjs")
// docgen spawns `tsc` and `tsx` from PATH.
const env = { ...process.env, PATH: `${path.join(root, "node_modules", ".bin")}${path.delimiter}${process.env.PATH}` }

const readJson = async (file) => JSON.parse(await fs.readFile(file, "utf8"))
const writeJson = (file, value) => fs.writeFile(file, `${JSON.stringify(value, null, 2)}\n`)

const homepageOf = (pkg) =>
  pkg.homepage ??
    (typeof pkg.repository?.url === "string"
      ? pkg.repository.url.replace(/^git\+/, "").replace(/\.git$/, "")
      : `https://www.npmjs.com/package/${pkg.name}`)

// docgen's Jekyll header (front matter that its markdown formatting leaves broken) becomes a title
// naming the import path, for reading the pages on GitHub or in an editor.
const withTitle = (text, packageName, module) =>
  text.replace(
    /^(?:---|\*\*\*)\n+title: .*\nnav_order: .*\nparent: .*\n---\n/,
    `# ${module === "index" ? packageName : `${packageName}/${module}`}\n`
  )

const run = (cwd) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [docgen], { cwd, env, stdio: "inherit" })
    child.on("error", reject)
    child.on("exit", (code, signal) =>
      code === 0
        ? resolve()
        : reject(new Error(`docgen failed in ${path.relative(root, cwd)} (${signal ?? `exit ${code}`})`)))
  })

const generate = async (name) => {
  const dir = path.join(root, "packages", name)
  const config = await readJson(path.join(dir, "docgen.json"))
  const pkg = await readJson(path.join(dir, "package.json"))
  const srcDir = config.srcDir ?? "src"
  const work = path.join(dir, config.outDir ?? "docs")
  await fs.rm(work, { recursive: true, force: true })
  await fs.mkdir(work, { recursive: true })
  try {
    await writeJson(path.join(work, "package.json"), { ...pkg, homepage: homepageOf(pkg) })
    await writeJson(path.join(work, "docgen.json"), { ...config, srcDir, outDir: "." })
    await fs.symlink(path.relative(work, path.join(dir, srcDir)), path.join(work, srcDir), "dir")
    await run(work)
    const out = path.join(root, "docs", name)
    await fs.rm(out, { recursive: true, force: true })
    await fs.mkdir(out, { recursive: true })
    const modules = (await fs.readdir(path.join(work, "modules"))).filter((file) => file.endsWith(".ts.md"))
    for (const file of modules) {
      const text = await fs.readFile(path.join(work, "modules", file), "utf8")
      await fs.writeFile(path.join(out, file), withTitle(text, pkg.name, file.slice(0, -".ts.md".length)))
    }
    process.stdout.write(`docs/${name}: ${modules.length} modules\n`)
  } finally {
    await fs.rm(work, { recursive: true, force: true })
  }
}

try {
  for (const name of packages) await generate(name)
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
}
