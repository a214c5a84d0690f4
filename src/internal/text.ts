/**
 * Text a store cannot keep as given: U+0000 (PostgreSQL text and jsonb refuse
 * it) and lone UTF-16 surrogates (not Unicode: PostgreSQL refuses or replaces
 * them). Checked the same for every store, so all of them behave alike.
 */

/** What is wrong with `text` for storage, if anything: a NUL or a lone surrogate. */
export const unstorable = (text: string): string | undefined => {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0) return "U+0000 (NUL), which stores cannot keep in text"
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++
      else return `a lone UTF-16 surrogate (\\u${c.toString(16)}), which is not Unicode text`
    }
  }
  return undefined
}

/**
 * The longest stream id, in UTF-8 bytes: every store indexes ids, and
 * PostgreSQL's btree refuses index rows over about 2.7 KB.
 */
export const maxIdBytes = 1024

/** The UTF-8 length of well-formed text (a surrogate pair is 4 bytes). */
export const utf8Length = (text: string): number => {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) bytes += 1
    else if (c < 0x800) bytes += 2
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4
      i++
    } else bytes += 3
  }
  return bytes
}

/** Like `unstorable`, and also refusing control characters (C0, DEL, C1) and more than `maxIdBytes`: for identifiers. */
export const unfitForId = (text: string): string | undefined => {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return `a control character (\\u${c.toString(16).padStart(4, "0")})`
  }
  const problem = unstorable(text)
  if (problem !== undefined) return problem
  // three bytes at most per UTF-16 unit: short ids need no count
  if (text.length * 3 > maxIdBytes) {
    const bytes = utf8Length(text)
    if (bytes > maxIdBytes) return `more than ${maxIdBytes} bytes of UTF-8 (${bytes})`
  }
  return undefined
}

/**
 * Whether JSON text (as `JSON.stringify` writes it) holds U+0000 or a lone
 * surrogate: `JSON.stringify` writes both as `\u` escapes, and no other
 * character a store refuses, so one `indexOf` pass over the text decides.
 */
export const hasUnstorableEscape = (json: string): boolean => {
  for (let at = json.indexOf("\\u"); at !== -1; at = json.indexOf("\\u", at + 2)) {
    let slashes = 0
    for (let k = at - 1; k >= 0 && json.charCodeAt(k) === 92; k--) slashes++
    if (slashes % 2 === 1) continue // an escaped backslash followed by the letter u
    const hex = json.slice(at + 2, at + 6)
    if (hex === "0000" || (hex >= "d800" && hex <= "dfff")) return true
  }
  return false
}

const identifier = /^[A-Za-z_$][\w$]*$/

/** A value's problem found at `path` (`data.items[1].name`), and what it is. */
export interface Found {
  readonly path: string
  readonly reason: string
}

/**
 * The first problem `check` finds in `value` or, depth first, in its items,
 * keys (`checkKey`) and values; objects with a `toJSON` are left alone.
 */
const findIn = (
  value: unknown,
  path: string,
  check: (value: unknown) => string | undefined,
  checkKey: (key: string) => string | undefined
): Found | undefined => {
  const reason = check(value)
  if (reason !== undefined) return { path, reason }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findIn(value[i], `${path}[${i}]`, check, checkKey)
      if (found !== undefined) return found
    }
    return undefined
  }
  if (typeof value === "object" && value !== null && typeof (value as { toJSON?: unknown }).toJSON !== "function") {
    for (const [key, item] of Object.entries(value)) {
      const at = identifier.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`
      const keyReason = checkKey(key)
      if (keyReason !== undefined) return { path: at, reason: keyReason }
      const found = findIn(item, at, check, checkKey)
      if (found !== undefined) return found
    }
  }
  return undefined
}

const fineKey = (): undefined => undefined

/** The first key or string in `value` that `unstorable` refuses, and why. */
export const findUnstorable = (value: unknown, path: string): Found | undefined =>
  findIn(
    value,
    path,
    (item) => typeof item === "string" ? unstorable(item) : undefined,
    (key) => {
      const reason = unstorable(key)
      return reason === undefined ? undefined : `its key holds ${reason}`
    }
  )

/** The first number in `value` that JSON cannot hold (NaN, ±Infinity: `JSON.stringify` writes `null`), if any. */
export const findNonFinite = (value: unknown, path: string): Found | undefined =>
  findIn(
    value,
    path,
    (item) => typeof item === "number" && !Number.isFinite(item) ? `${item}, which JSON cannot hold (it would be stored as null)` : undefined,
    fineKey
  )
