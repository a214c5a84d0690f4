#!/usr/bin/env node
/* global process */
/**
 * Rewrites imports from the barrels of `effect` and `@effect/platform` into
 * deep imports, the way Effect's own packages import them:
 * `import { Effect, Layer } from "effect"` becomes
 * `import * as Effect from "effect/Effect"` and
 * `import * as Layer from "effect/Layer"`. Importing a deep path loads that
 * module and what it needs; a barrel loads all of its package's modules
 * (effect's 362, and through `effect/Arbitrary` fast-check's; 92 of
 * `@effect/platform`).
 *
 * - Type-only imports stay type-only: `import type { Scope } from "effect"`
 *   and `import { type Scope }` become `import type * as Scope from "effect/Scope"`.
 * - Renames keep their local name: `{ Array as Arr }` becomes `import * as Arr from "effect/Array"`.
 * - Names the barrel re-exports from a module (`pipe`, `flow`, `identity`, …
 *   from `effect/Function`) become named imports of that module.
 * Which is which is read from each installed package's own index, so a
 * name it adds later is found too; a name it does not know stops the run.
 *
 * Re-runnable (after other branches merge): files without barrel imports are
 * left as they are.
 *
 *   node scripts/deep-effect-imports.mjs [--check] [paths…]   (default: src)
 *
 * `--check` writes nothing and exits 1 when a file would change.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, relative } from "node:path"
import ts from "typescript"

const require = createRequire(import.meta.url)

/** The barrels rewritten. */
const barrels = ["effect", "@effect/platform"]

/** What a package's barrel exports: a name to its module, `asModule` when the name is the module's namespace. */
const barrelExports = (barrel) => {
  const packageJson = require.resolve(`${barrel}/package.json`)
  const indexPath = join(dirname(packageJson), "dist", "dts", "index.d.ts")
  const exported = JSON.parse(readFileSync(packageJson, "utf8")).exports
  const index = ts.createSourceFile(indexPath, readFileSync(indexPath, "utf8"), ts.ScriptTarget.Latest, false)
  const names = new Map()
  const moduleOf = (specifier) => {
    const module = specifier.text.replace(/^\.\//, "").replace(/\.js$/, "")
    if (exported[`./${module}`] === undefined) throw new Error(`${barrel}'s index names ./${module}, which its package.json does not export`)
    return module
  }
  for (const statement of index.statements) {
    if (!ts.isExportDeclaration(statement) || statement.moduleSpecifier === undefined) continue
    const module = moduleOf(statement.moduleSpecifier)
    const clause = statement.exportClause
    if (clause !== undefined && ts.isNamespaceExport(clause)) {
      names.set(clause.name.text, { module, asModule: true })
    } else if (clause !== undefined && ts.isNamedExports(clause)) {
      for (const element of clause.elements) {
        names.set(element.name.text, { module, asModule: false, imported: (element.propertyName ?? element.name).text })
      }
    }
  }
  return names
}

/** The TypeScript files below `path` (or `path` itself), declaration files aside. */
const sourceFiles = (path) => {
  if (statSync(path).isFile()) return [path]
  return readdirSync(path, { withFileTypes: true }).flatMap((entry) => {
    const child = join(path, entry.name)
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : sourceFiles(child)
    return /\.(m|c)?tsx?$/.test(entry.name) && !/\.d\.(m|c)?ts$/.test(entry.name) ? [child] : []
  })
}

/** The deep imports that replace one barrel import. */
const deepImports = (declaration, barrel, names, file) => {
  const clause = declaration.importClause
  const where = `${file}: ${declaration.getText()}`
  if (clause === undefined || clause.name !== undefined || clause.namedBindings === undefined || !ts.isNamedImports(clause.namedBindings)) {
    throw new Error(`${where}\n  only named imports ({ … }) from "${barrel}" are rewritten`)
  }
  const lines = []
  /** Named imports of one module, by module and type-onlyness, in the order first met. */
  const named = new Map()
  for (const element of clause.namedBindings.elements) {
    const name = (element.propertyName ?? element.name).text
    const local = element.name.text
    const typeOnly = clause.isTypeOnly || element.isTypeOnly
    const target = names.get(name)
    if (target === undefined) throw new Error(`${where}\n  "${name}" is not exported by ${barrel}'s index`)
    if (target.asModule) {
      lines.push(`import ${typeOnly ? "type " : ""}* as ${local} from "${barrel}/${target.module}"`)
      continue
    }
    const key = `${typeOnly ? "type " : ""}${target.module}`
    if (!named.has(key)) {
      named.set(key, { typeOnly, module: target.module, specifiers: [] })
      lines.push(key)
    }
    named.get(key).specifiers.push(target.imported === local ? local : `${target.imported} as ${local}`)
  }
  return lines.map((line) => {
    const group = named.get(line)
    if (group === undefined) return line
    return `import ${group.typeOnly ? "type " : ""}{ ${group.specifiers.join(", ")} } from "${barrel}/${group.module}"`
  })
}

/** The file's text with its barrel imports rewritten, and how many there were. */
const rewrite = (file, text, names) => {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const edits = []
  for (const statement of source.statements) {
    const specifier = (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) ? statement.moduleSpecifier : undefined
    if (specifier === undefined || !ts.isStringLiteral(specifier) || !names.has(specifier.text)) continue
    const barrel = specifier.text
    if (ts.isExportDeclaration(statement)) throw new Error(`${file}: ${statement.getText()}\n  re-exports from "${barrel}" are not rewritten`)
    // `import "effect"`, for its effects only: nothing to rewrite into
    if (statement.importClause === undefined) continue
    const semicolon = statement.getText().trimEnd().endsWith(";") ? ";" : ""
    const replacement = deepImports(statement, barrel, names.get(barrel), file).map((line) => line + semicolon).join("\n")
    edits.push({ start: statement.getStart(), end: statement.getEnd(), replacement })
  }
  let result = text
  for (const edit of edits.reverse()) result = result.slice(0, edit.start) + edit.replacement + result.slice(edit.end)
  return { text: result, count: edits.length }
}

const args = process.argv.slice(2)
const check = args.includes("--check")
const paths = args.filter((arg) => arg !== "--check")
const names = new Map(barrels.map((barrel) => [barrel, barrelExports(barrel)]))
let files = 0
let declarations = 0
for (const file of (paths.length > 0 ? paths : ["src"]).flatMap(sourceFiles)) {
  const text = readFileSync(file, "utf8")
  const result = rewrite(file, text, names)
  if (result.count === 0) continue
  files++
  declarations += result.count
  if (check) process.stdout.write(`${relative(process.cwd(), file)}: ${result.count} barrel import(s)\n`)
  else writeFileSync(file, result.text)
}
process.stdout.write(`${check ? "would rewrite" : "rewrote"} ${declarations} import(s) from ${barrels.join(" and ")} in ${files} file(s)\n`)
if (check && files > 0) process.exitCode = 1
