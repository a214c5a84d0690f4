/**
 * chronicle/toon: event histories and states as TOON (fewer tokens than JSON
 * for prompts), an entry of its own so the main entry never loads the TOON
 * encoder. Needs the optional peer `@toon-format/toon` (`npm i @toon-format/toon`).
 *
 * @since 0.1.0
 */

/** TOON for event histories and states: fewer tokens than JSON for prompts. */
export * as Toon from "./Toon.js"
