/**
 * Finds a decider and its event codec in a user's module, for `replay` and
 * `validate`. The module is imported as it is (the CLI runs under tsx, so
 * TypeScript modules work). Conventions, in order:
 *
 * - `--decider path#Name`: the export `Name`, a decider or a `{ decider, codec }` pair;
 * - `--decider path`: the export `chronicle` (a `{ decider, codec }` pair),
 *   else the default export, else the module's only decider;
 * - the codec: `--codec Name`, else the pair's codec, else the module's codecs
 *   (`replay` takes the one that knows every type of the stream).
 *
 * A decider is any object with `initialState` and an `evolve` function; a
 * codec is what `EventCodec.make` returns.
 *
 * @since 0.1.0
 */
import * as NodePath from "node:path"
import { pathToFileURL } from "node:url"
import * as Effect from "effect/Effect"
import type * as Decider from "../Decider.js"
import type * as EventCodec from "../EventCodec.js"
import * as CliError from "./CliError.js"

/**
 * What replaying needs of a decider: its initial state and `evolve`.
 *
 * @category models
 */
export type Folder = Pick<Decider.Decider<unknown, EventCodec.Tagged, unknown, unknown, unknown>, "initialState" | "evolve">

/**
 * A codec and the export it came from.
 *
 * @category models
 */
export interface NamedCodec {
  readonly name: string
  readonly codec: EventCodec.EventCodec<EventCodec.Tagged>
}

/**
 * What a module offers.
 *
 * @category models
 */
export interface Found {
  readonly path: string
  readonly decider: { readonly name: string; readonly decider: Folder } | undefined
  /** The codecs to use: the chosen one, or every codec the module exports. */
  readonly codecs: ReadonlyArray<NamedCodec>
}

/**
 * Whether a value looks like a decider.
 *
 * @category predicates
 */
export const isDecider = (value: unknown): value is Folder =>
  typeof value === "object" && value !== null && "initialState" in value && typeof (value as Folder).evolve === "function"

/**
 * Whether a value looks like an event codec.
 *
 * @category predicates
 */
export const isCodec = (value: unknown): value is EventCodec.EventCodec<EventCodec.Tagged> =>
  typeof value === "object" && value !== null && Array.isArray((value as { types?: unknown }).types) &&
  typeof (value as { decodeEvents?: unknown }).decodeEvents === "function"

const isPair = (value: unknown): value is { readonly decider: unknown; readonly codec: unknown } =>
  typeof value === "object" && value !== null && "decider" in value && "codec" in value

/**
 * Splits `path#Name` into the path and the export name.
 *
 * @category constructors
 */
export const parseReference = (reference: string): { readonly path: string; readonly exportName: string | undefined } => {
  const hash = reference.lastIndexOf("#")
  return hash <= 0 ? { path: reference, exportName: undefined } : { path: reference.slice(0, hash), exportName: reference.slice(hash + 1) }
}

const typeScript = /\.[cm]?tsx?$/

/**
 * Registers tsx's loader once, for TypeScript modules, unless the process
 * already runs under tsx. Without tsx installed, importing TypeScript fails
 * with a hint.
 */
const loadTypeScript = async (): Promise<void> => {
  const flag = Symbol.for("chronicle/tsx")
  const global = globalThis as { [flag]?: boolean }
  if (global[flag] === true || process.execArgv.some((arg) => arg.includes("tsx"))) return
  try {
    const api = (await import("tsx/esm/api" as string)) as { readonly register: () => unknown }
    api.register()
    global[flag] = true
  } catch {
    // no tsx: the import below fails and says why
  }
}

const importModule = (path: string) =>
  Effect.tryPromise({
    try: async () => {
      if (typeScript.test(path)) await loadTypeScript()
      return (await import(pathToFileURL(NodePath.resolve(path)).href)) as Record<string, unknown>
    },
    catch: (error) => {
      const message = CliError.messageOf(error)
      const hint = typeScript.test(path) && /Unknown file extension/.test(message)
        ? " (TypeScript modules need tsx: npm install tsx, or run node --import tsx)"
        : ""
      return CliError.usage(`cannot import ${path}: ${message}${hint}`)
    }
  })

/**
 * Imports the module `reference` names and finds its decider (when `needDecider`)
 * and codecs.
 *
 * @category constructors
 */
export const load = (
  reference: string,
  options: { readonly codec?: string | undefined; readonly needDecider: boolean }
): Effect.Effect<Found, CliError.CliError> =>
  Effect.gen(function*() {
    const { exportName, path } = parseReference(reference)
    const module = yield* importModule(path)
    const exports = Object.entries(module)
    const fail = (message: string) => CliError.usage(`${reference}: ${message}`)
    const named = (predicate: (value: unknown) => boolean) =>
      exports.filter(([name, value]) => name !== "default" && predicate(value)).map(([name]) => name)

    let decider: Found["decider"]
    let pairCodec: NamedCodec | undefined
    const take = (name: string, value: unknown): boolean => {
      if (isPair(value)) {
        if (!isDecider(value.decider)) throw fail(`${name}.decider is not a decider (initialState, evolve)`)
        if (!isCodec(value.codec)) throw fail(`${name}.codec is not an event codec (EventCodec.make)`)
        decider = { name, decider: value.decider }
        pairCodec = { name: `${name}.codec`, codec: value.codec }
        return true
      }
      if (isDecider(value)) {
        decider = { name, decider: value }
        return true
      }
      return false
    }
    yield* Effect.try({
      try: () => {
        if (exportName !== undefined) {
          if (!(exportName in module)) throw fail(`no export named ${exportName} (exports: ${Object.keys(module).join(", ")})`)
          if (!take(exportName, module[exportName])) throw fail(`the export ${exportName} is neither a decider nor { decider, codec }`)
        } else if (!take("chronicle", module.chronicle) && !take("default", module.default)) {
          const deciders = named(isDecider)
          if (deciders.length === 1) take(deciders[0]!, module[deciders[0]!])
          else if (options.needDecider) {
            throw fail(
              deciders.length === 0
                ? "exports no decider (an object with initialState and evolve)"
                : `exports several deciders (${deciders.join(", ")}): pick one with ${path}#Name`
            )
          }
        }
      },
      catch: (error) => (error instanceof CliError.CliError ? error : fail(CliError.messageOf(error)))
    })

    let codecs: ReadonlyArray<NamedCodec>
    if (options.codec !== undefined) {
      const value = module[options.codec]
      if (!isCodec(value)) {
        return yield* fail(`--codec ${options.codec} is not an event codec of the module (codecs: ${named(isCodec).join(", ") || "none"})`)
      }
      codecs = [{ name: options.codec, codec: value }]
    } else if (pairCodec !== undefined) {
      codecs = [pairCodec]
    } else {
      codecs = named(isCodec).map((name) => ({ name, codec: module[name] as NamedCodec["codec"] }))
      if (codecs.length === 0) return yield* fail("exports no event codec (EventCodec.make)")
    }
    return { path, decider, codecs }
  })

/**
 * The codec that knows every one of `types`; the smallest when several do.
 *
 * @category combinators
 */
export const codecFor = (codecs: ReadonlyArray<NamedCodec>, types: Iterable<string>): NamedCodec | undefined => {
  const wanted = [...new Set(types)]
  return codecs
    .filter(({ codec }) => wanted.every((type) => (codec.types as ReadonlyArray<string>).includes(type)))
    .sort((a, b) => a.codec.types.length - b.codec.types.length)[0]
}
