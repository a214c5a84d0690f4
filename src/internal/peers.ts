/**
 * Loads an entry whose optional peer dependencies may be missing, failing with
 * a message that names the packages to install rather than Node's "Cannot find
 * package" for whichever one it met first.
 *
 * @since 0.1.0
 */

/** An entry that needs optional peers: its name, the packages and a loader of the module. */
export interface Guarded<A> {
  readonly entry: string
  readonly peers: ReadonlyArray<string>
  readonly load: () => Promise<A>
}

/** The peers of `peers` that do not resolve from this package's place in node_modules. */
export const missing = (peers: ReadonlyArray<string>): ReadonlyArray<string> =>
  peers.filter((peer) => {
    try {
      import.meta.resolve(peer)
      return false
    } catch {
      return true
    }
  })

/** The error thrown when peers are missing: names them and the install line. */
export const missingPeersError = (entry: string, absent: ReadonlyArray<string>): Error =>
  new Error(
    `${entry} needs ${absent.join(", ")}, not installed in this project (optional peer ${
      absent.length === 1 ? "dependency" : "dependencies"
    } of chronicle): npm i ${absent.join(" ")}`
  )

/**
 * Loads the module; when that fails because a peer is not installed, fails
 * with `missingPeersError` instead.
 */
export const load = async <A>(guarded: Guarded<A>): Promise<A> => {
  const absent = missing(guarded.peers)
  if (absent.length > 0) throw missingPeersError(guarded.entry, absent)
  return guarded.load()
}
