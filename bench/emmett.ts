/**
 * Emmett's PostgreSQL store for the benchmarks. Emmett's pg layer (dumbo)
 * replaces node-postgres's global type parsers for int8, json and jsonb
 * (BigInt, and JSON.parse with a reviver) the first time a store is built.
 * chronicle's pool reads through those globals too, so left alone this would
 * slow chronicle's reads by Emmett's choice. Emmett gets its own pool carrying
 * dumbo's parsers, and the defaults are put back.
 */
import { getPostgreSQLEventStore } from "@event-driven-io/emmett-postgresql"
import type { PostgresEventStore } from "@event-driven-io/emmett-postgresql"
import pg from "pg"
import { databaseUrl } from "./support.js"

const parsedTypes = [20, 114, 3802] as const

/** Emmett's store on its own pool of `maxConnections`, its tables in `schema`. */
export const makeEmmettStore = (schema: string, maxConnections: number): { store: PostgresEventStore; pool: pg.Pool } => {
  const defaults = new Map(parsedTypes.map((oid) => [oid as number, pg.types.getTypeParser(oid, "text")]))
  const emmettParsers = new Map<number, (value: string) => unknown>()
  const types = {
    getTypeParser: (oid: number, format?: "text" | "binary") =>
      (format !== "binary" && emmettParsers.get(oid)) || pg.types.getTypeParser(oid, format ?? "text")
  } as pg.CustomTypesConfig
  const pool = new pg.Pool({ connectionString: databaseUrl, max: maxConnections, options: `-c search_path=${schema}`, types })
  const store = getPostgreSQLEventStore(databaseUrl, { connectionOptions: { pool } })
  for (const oid of parsedTypes) {
    emmettParsers.set(oid, pg.types.getTypeParser(oid, "text"))
    pg.types.setTypeParser(oid, "text", defaults.get(oid)!)
  }
  return { store, pool }
}
