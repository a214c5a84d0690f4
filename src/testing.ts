/**
 * chronicle/testing: Given-When-Then test kits for deciders, DCB decisions and
 * projections. An entry of its own so the main entry carries no test code; it
 * needs nothing beyond the core's peers.
 *
 * @example
 * import { DeciderSpec } from "chronicle/testing"
 * const spec = DeciderSpec.make(BankAccount, { codec: AccountEvents })
 *
 * @since 0.1.0
 */

/** Given-When-Then specifications for deciders. */
export * as DeciderSpec from "./DeciderSpec.js"
/** Given-When-Then specifications for DCB decisions. */
export * as DecisionSpec from "./DecisionSpec.js"
/** Given-When-Then specifications for projections. */
export * as ProjectionSpec from "./ProjectionSpec.js"
