import * as Predicate from "effect/Predicate"
import { StoreError } from "../../EventStore.js"

const pgCode = (u: unknown): string | undefined =>
  Predicate.hasProperty(u, "code") && typeof u.code === "string" ? u.code : undefined

const messageOf = (u: unknown): string =>
  Predicate.hasProperty(u, "message") && typeof u.message === "string" ? u.message : String(u)

/** The innermost cause: SqlError wraps the driver's error. */
const rootCause = (error: unknown): unknown => {
  let current = error
  for (let depth = 0; depth < 5 && Predicate.hasProperty(current, "cause") && current.cause !== undefined; depth++) {
    current = current.cause
  }
  return current
}

/** The PostgreSQL error code (SQLSTATE) or Node error code behind a failure. */
export const errorCode = (error: unknown): string | undefined => pgCode(rootCause(error)) ?? pgCode(error)

/** The name of the constraint a unique violation broke, if any. */
export const violatedConstraint = (error: unknown): string | undefined => {
  const cause = rootCause(error)
  return Predicate.hasProperty(cause, "constraint") && typeof cause.constraint === "string"
    ? cause.constraint
    : undefined
}

const explain = (code: string | undefined, message: string): string => {
  switch (code) {
    case "ECONNREFUSED":
      return `cannot connect to PostgreSQL (connection refused): ${message}`
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `cannot resolve the PostgreSQL host: ${message}`
    case "ECONNRESET":
    case "EPIPE":
    case "57P01":
    case "57P02":
    case "57P03":
    case "08000":
    case "08003":
    case "08006":
      return `the connection to PostgreSQL was lost: ${message}`
    case "57014":
      return `the statement was cancelled (statement timeout): ${message}`
    case "53300":
      return `PostgreSQL has no connection slots left: ${message}`
    case "3D000":
      return `the database does not exist: ${message}`
    case "28P01":
    case "28000":
      return `PostgreSQL refused the credentials: ${message}`
  }
  if (/timeout exceeded when trying to connect/i.test(message)) {
    return `no pooled connection became free in time (pool exhausted): ${message}`
  }
  if (/Connection terminated/i.test(message)) return `the connection to PostgreSQL was lost: ${message}`
  return message
}

/** Turns a driver failure into a StoreError that says what happened. */
export const storeError = (operation: string, error: unknown): StoreError => {
  if (error instanceof StoreError) return error
  const cause = rootCause(error)
  return new StoreError({ operation, reason: explain(errorCode(error), messageOf(cause)), cause: error })
}

const connectionLost = new Set(["ECONNRESET", "EPIPE", "57P01", "57P02", "57P03", "08000", "08003", "08006"])

/**
 * Whether a failure is a lost connection, which a fresh pooled connection may
 * not suffer. (`@effect/sql-pg` can hand out a client whose backend was just
 * terminated, before the pool has evicted it.)
 */
export const isConnectionLost = (error: unknown): boolean => {
  const code = errorCode(error)
  if (code !== undefined && connectionLost.has(code)) return true
  return /Connection terminated/i.test(messageOf(rootCause(error)))
}
