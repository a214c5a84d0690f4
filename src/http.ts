/**
 * chronicle/http: commands over HTTP with `@effect/platform`'s `HttpApi`
 * (conditional requests as expected versions, failures as problem responses).
 *
 * @example
 * import { CommandHttp } from "chronicle/http"
 *
 * @since 0.2.0
 */

/** Commands over HTTP: preconditions, ETags, problem responses. */
export * as CommandHttp from "./CommandHttp.js"
