/**
 * The README's TypeScript blocks, type-checked against the sources.
 *
 * Every ```ts block is checked, as a module of its own, with the project's compiler options and
 * `chronicle`, `chronicle/postgres`, … resolved to the entries under `src/`, as a module at the project's
 * root held in memory (so `./examples/BankAccount.js` is the example). HTML comments on the
 * lines right before a block steer it:
 * - `<!-- ts-continue -->`: the block continues the one before (an earlier definition is used here):
 *   they are checked together, as one module;
 * - `<!-- ts-skip: reason -->`: not checked; the reason is required.
 * Any other `ts-…` comment is a mistake and reported as one.
 */
import { readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import ts from "typescript"

/** A fenced ```ts block of a markdown text. */
export interface Block {
  /** 1-based line of the block's first code line in the markdown. */
  readonly line: number
  readonly code: string
  readonly continues: boolean
  readonly skip: string | undefined
}

/** Blocks checked together as one module: a block and those that continue it. */
export interface Unit {
  readonly blocks: ReadonlyArray<Block>
}

/** What extraction found: the units to check, the skipped blocks, and mistakes in the markers. */
export interface Extracted {
  readonly units: ReadonlyArray<Unit>
  readonly skipped: ReadonlyArray<Block>
  readonly problems: ReadonlyArray<string>
}

const marker = /^<!--\s*(ts-[a-z-]+)\s*(?::\s*(.*?))?\s*-->$/

/** The ```ts blocks of `markdown` (named `file` in messages), grouped by their markers. */
export const extract = (markdown: string, file = "README.md"): Extracted => {
  const lines = markdown.split("\n")
  const units: Array<Array<Block>> = []
  const skipped: Array<Block> = []
  const problems: Array<string> = []
  let previousChecked = false
  for (let index = 0; index < lines.length; index++) {
    const fence = /^```(\S*)/.exec(lines[index]!)
    if (fence === null) continue
    const start = index
    let end = index + 1
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++
    index = end
    if (fence[1] !== "ts") continue
    let continues = false
    let skip: string | undefined
    for (let above = start - 1; above >= 0 && /^<!--.*-->$/.test(lines[above]!.trim()); above--) {
      const found = marker.exec(lines[above]!.trim())
      if (found === null) continue
      const where = `${file}:${above + 1}`
      if (found[1] === "ts-continue") continues = true
      else if (found[1] === "ts-skip") {
        if ((found[2] ?? "").length === 0) problems.push(`${where}: ts-skip needs a reason (<!-- ts-skip: why -->)`)
        skip = found[2] ?? ""
      } else problems.push(`${where}: unknown marker ${found[1]} (ts-continue or ts-skip: reason)`)
    }
    const block: Block = { line: start + 2, code: lines.slice(start + 1, end).join("\n"), continues, skip }
    if (skip !== undefined) {
      if (continues) problems.push(`${file}:${block.line - 1}: a block is either skipped or continued, not both`)
      skipped.push(block)
      previousChecked = false
    } else if (continues) {
      if (!previousChecked || units.length === 0) {
        problems.push(`${file}:${block.line - 1}: ts-continue, but the block before is not checked`)
      } else units[units.length - 1]!.push(block)
    } else {
      units.push([block])
      previousChecked = true
    }
  }
  return { units: units.map((blocks) => ({ blocks })), skipped, problems }
}

/** The compiler options of `tsconfig.json` at `root`, with chronicle's entries mapped to `src/`. */
const compilerOptions = (root: string): ts.CompilerOptions => {
  const parsed = ts.getParsedCommandLineOfConfigFile(join(root, "tsconfig.json"), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"))
    }
  })
  if (parsed === undefined) throw new Error(`cannot read ${root}/tsconfig.json`)
  const entries: Record<string, string> = {
    chronicle: "src/index.ts",
    "chronicle/postgres": "src/postgres.ts",
    "chronicle/nats": "src/nats.ts",
    "chronicle/testing": "src/testing.ts",
    "chronicle/toon": "src/toonFormat.ts",
    "chronicle/http": "src/http.ts"
  }
  return {
    ...parsed.options,
    noEmit: true,
    // a block without imports is still a module of its own, not a script sharing globals
    moduleDetection: ts.ModuleDetectionKind.Force,
    paths: Object.fromEntries(Object.entries(entries).map(([name, path]) => [name, [join(root, path)]]))
  }
}

/**
 * Type-checks the units, each as a module inside `root` (held in memory, never written), and returns
 * one message per error, located in the markdown (`file:line: message`).
 */
export const check = (units: ReadonlyArray<Unit>, root: string, file = "README.md"): ReadonlyArray<string> => {
  const sources = new Map<string, { readonly text: string; readonly unit: Unit }>()
  for (const unit of units) {
    // at the project's root, so that a block may import `./examples/…` as a reader of the README would
    const name = join(resolve(root), `${file.replace(/[^\w.-]/g, "_")}.block-${unit.blocks[0]!.line}.ts`)
    sources.set(name, { text: unit.blocks.map((block) => block.code).join("\n"), unit })
  }
  const options = compilerOptions(resolve(root))
  const host = ts.createCompilerHost(options, true)
  const getSourceFile = host.getSourceFile.bind(host)
  const fileExists = host.fileExists.bind(host)
  const readFile = host.readFile.bind(host)
  host.getSourceFile = (name, languageVersion, onError, shouldCreate) => {
    const source = sources.get(resolve(name))
    return source !== undefined
      ? ts.createSourceFile(name, source.text, languageVersion, true)
      : getSourceFile(name, languageVersion, onError, shouldCreate)
  }
  host.fileExists = (name) => sources.has(resolve(name)) || fileExists(name)
  host.readFile = (name) => sources.get(resolve(name))?.text ?? readFile(name)
  host.writeFile = () => {}
  const program = ts.createProgram([...sources.keys()], options, host)
  const messages: Array<string> = []
  for (const [name, { unit }] of sources) {
    const source = program.getSourceFile(name)
    if (source === undefined) {
      messages.push(`${file}:${unit.blocks[0]!.line}: not compiled`)
      continue
    }
    for (const diagnostic of [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]) {
      const at = diagnostic.start === undefined ? 0 : source.getLineAndCharacterOfPosition(diagnostic.start).line
      messages.push(`${file}:${markdownLine(unit, at)}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, " ")}`)
    }
  }
  return messages
}

/** The markdown line of line `at` (0-based) of a unit's module. */
const markdownLine = (unit: Unit, at: number): number => {
  let offset = at
  for (const block of unit.blocks) {
    const length = block.code.split("\n").length
    if (offset < length) return block.line + offset
    offset -= length
  }
  return unit.blocks[0]!.line
}

/** Every problem with the ```ts blocks of the markdown file at `path`, checked against the project at `root`. */
export const checkMarkdown = (path: string, root = dirname(path)): {
  readonly problems: ReadonlyArray<string>
  readonly checked: number
  readonly skipped: ReadonlyArray<Block>
} => {
  const name = path.slice(resolve(root).length + 1) || path
  const extracted = extract(readFileSync(path, "utf8"), name)
  return {
    problems: [...extracted.problems, ...check(extracted.units, root, name)],
    checked: extracted.units.reduce((sum, unit) => sum + unit.blocks.length, 0),
    skipped: extracted.skipped
  }
}
