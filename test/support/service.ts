/**
 * Whether a real service the tests need (PostgreSQL, NATS) answers on its
 * port. Tests of an unreachable service are skipped with a warning, except
 * under CI=true, where they fail the run instead: CI never skips them.
 */
import { execFileSync } from "node:child_process"

/** Whether a TCP connection to host:port opens within 3 s (checked once, synchronously, at load). */
const reachable = (host: string, port: number): boolean => {
  try {
    execFileSync(process.execPath, [
      "-e",
      `const s = require("node:net").connect({ host: ${JSON.stringify(host)}, port: ${port} }); s.on("connect", () => process.exit(0)); s.on("error", () => process.exit(1)); setTimeout(() => process.exit(1), 3000)`
    ])
    return true
  } catch {
    return false
  }
}

/** A check for `describe.runIf`: true when the service answers; under CI=true an unreachable one throws. */
export const serviceAvailable = (name: string, address: string, host: string, port: number): () => boolean => {
  const up = reachable(host, port)
  return () => {
    if (up) return true
    if (process.env.CI === "true") {
      throw new Error(`${name} is not reachable at ${address}; CI=true, so the ${name} tests fail rather than skip`)
    }
    console.warn(`${name} is not reachable at ${address}: skipping its tests (they fail under CI=true)`)
    return false
  }
}
