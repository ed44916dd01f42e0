/**
 * A `Map` that never empties. V8 reallocates a `Map`'s table each time its last entry goes:
 * ~150 bytes for every add and delete of a lone entry, which a session making one call at a
 * time pays per call (its pending call, its deadline). A table that keeps one entry of its own
 * under {@link KEEP} costs ~50. Its owner skips that entry when counting or iterating.
 *
 * @module
 */

/** The key of the entry a kept map holds for itself; no caller's key is ever equal to it. */
export const KEEP: unique symbol = Symbol("keep");

/** A new map holding only `kept` under {@link KEEP}. */
export function keptMap<K, V>(kept: V): Map<K | typeof KEEP, V> {
  return new Map<K | typeof KEEP, V>([[KEEP, kept]]);
}
