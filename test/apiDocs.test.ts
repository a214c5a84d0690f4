import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import ts from "typescript"

/** The public modules: everything under src/ but the machinery (src/internal) and the CLI program (src/cli). */
const publicModules = (directory: string): ReadonlyArray<string> =>
  readdirSync(directory).flatMap((entry) => {
    const path = join(directory, entry)
    if (statSync(path).isDirectory()) return entry === "internal" || entry === "cli" ? [] : publicModules(path)
    return path.endsWith(".ts") ? [path] : []
  })

/** Exports whose doc comment lacks `@since` or `@category` (an overloaded function is documented once). */
const undocumented = (file: string): ReadonlyArray<string> => {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true)
  const found: Array<string> = []
  const documented = new Set<string>()
  for (const statement of source.statements) {
    const exported = ts.canHaveModifiers(statement) &&
      (ts.getModifiers(statement) ?? []).some((modifier) => modifier.kind === ts.SyntaxKind.ExportKeyword)
    if (!exported) continue
    const name = "name" in statement && statement.name !== undefined
      ? (statement.name as ts.Node).getText()
      : ts.isVariableStatement(statement)
      ? statement.declarationList.declarations.map((declaration) => declaration.name.getText()).join(",")
      : "?"
    if (ts.isFunctionDeclaration(statement) && documented.has(name)) continue
    const doc = ts.getJSDocCommentsAndTags(statement).map((node) => node.getText()).join("\n")
    const lacks = ["@since", "@category"].filter((tag) => !doc.includes(tag))
    if (lacks.length > 0) found.push(`${file}: ${name} lacks ${lacks.join(" and ")}`)
    else documented.add(name)
  }
  return found
}

describe("The public API is documented like Effect's", () => {
  it("every export of a public module has a doc comment with @since and @category", () => {
    const modules = publicModules("src")
    expect(modules.length).toBeGreaterThan(30)
    expect(modules.flatMap(undocumented)).toEqual([])
  })

  it("the check can fail: exports without the tags are reported, overloads once", () => {
    const file = join(mkdtempSync(join(tmpdir(), "chronicle-docs-")), "Bare.ts")
    writeFileSync(
      file,
      [
        "/** Bare. */\nexport const bare = 1",
        "/**\n * @since 0.1.0\n */\nexport type Half = string",
        "/**\n * @since 0.1.0\n * @category constructors\n */\nexport function both(a: string): string\nexport function both(a: string) { return a }"
      ].join("\n")
    )
    expect(undocumented(file)).toEqual([`${file}: bare lacks @since and @category`, `${file}: Half lacks @category`])
  })
})
