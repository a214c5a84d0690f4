/**
 * Queries over the global log for Dynamic Consistency Boundaries (after the
 * DCB specification, dcb.events): a query is a list of items; an event
 * matches an item when its type is one of the item's types (if it names any)
 * and it carries every one of the item's tags; it matches the query when it
 * matches any item. The item `{}` (`Query.all`) matches every event. Stores
 * refuse, with `InvalidArgument`, a query without items (it would match
 * nothing) and an item whose type and tag lists are both empty
 * (`{ types: [], tags: [] }`, `Query.tagged()`: it would match every event).
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * One alternative of a query.
 *
 * @since 0.1.0
 * @category models
 */
export const QueryItem = Schema.Struct({
  types: Schema.optional(Schema.Array(Schema.String)),
  tags: Schema.optional(Schema.Array(Schema.String))
})

/**
 * @since 0.1.0
 * @category models
 */
export type QueryItem = typeof QueryItem.Type

/**
 * A query: events matching any of its items.
 *
 * @since 0.1.0
 * @category models
 */
export const Query = Schema.Struct({ items: Schema.Array(QueryItem) })

/**
 * @since 0.1.0
 * @category models
 */
export type Query = typeof Query.Type

/**
 * What matching needs of an event.
 *
 * @since 0.1.0
 * @category models
 */
export interface Taggable {
  readonly type: string
  readonly tags: ReadonlyArray<string>
}

/**
 * A query of the given items.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (...items: ReadonlyArray<QueryItem>): Query => ({ items })

/**
 * Every event.
 *
 * @since 0.1.0
 * @category constructors
 */
export const all: Query = make({})

/**
 * Events carrying every one of `tags`, of any type.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tagged = (...tags: ReadonlyArray<string>): Query => make({ tags })

/**
 * Events of any of `types` carrying every one of `tags`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const item = (types: ReadonlyArray<string>, tags: ReadonlyArray<string> = []): QueryItem => ({ types, tags })

/**
 * Events matching any of the queries.
 *
 * @since 0.1.0
 * @category combinators
 */
export const or = (...queries: ReadonlyArray<Query>): Query => make(...queries.flatMap((query) => query.items))

/**
 * Whether an event matches one item.
 *
 * @since 0.1.0
 * @category predicates
 */
export const matchesItem = (item: QueryItem, event: Taggable): boolean =>
  (item.types === undefined || item.types.length === 0 || item.types.includes(event.type)) &&
  (item.tags === undefined || item.tags.every((tag) => event.tags.includes(tag)))

/**
 * Whether an event matches a query: any of its items.
 *
 * @since 0.1.0
 * @category predicates
 */
export const matches = (query: Query, event: Taggable): boolean => query.items.some((item) => matchesItem(item, event))

/**
 * A readable rendering: `(types: A|B, tags: course:c1) or (…)`.
 *
 * @since 0.1.0
 * @category destructors
 */
export const format = (query: Query): string =>
  query.items.length === 0 ? "nothing" : query.items.map((item) => {
    const parts = [
      item.types !== undefined && item.types.length > 0 ? `types: ${item.types.join("|")}` : "",
      item.tags !== undefined && item.tags.length > 0 ? `tags: ${item.tags.join(", ")}` : ""
    ].filter((part) => part.length > 0)
    return parts.length === 0 ? "(every event)" : `(${parts.join("; ")})`
  }).join(" or ")
