/**
 * Small buffers cut from shared slabs. In V8 every `ArrayBuffer` above 64 bytes gets a backing
 * store of its own (a `malloc`, external-memory accounting, and sweeping after each young-
 * generation GC); two such buffers per message on each side of a sequential call doubled the
 * 99th-percentile latency of a raw Deno echo here. A view into a slab is a small heap object.
 * Slab bytes are never handed out twice: a slab is freed by the GC once nothing views it.
 *
 * @module
 */

/** Bytes per slab. */
export const SLAB_SIZE = 16 * 1024;
/** Larger requests get a buffer of their own. */
export const MAX_SLAB_PIECE = 2048;

let slab = new Uint8Array(SLAB_SIZE);
let used = 0;
/** Every slab, to tell slab views from buffers of their own. */
const SLABS = new WeakSet<ArrayBufferLike>([slab.buffer]);

/**
 * `n` zeroed bytes: a view into the current slab when `n` is at most {@link MAX_SLAB_PIECE},
 * a new buffer otherwise. A view keeps its whole slab alive: copy bytes that are kept long
 * (`slice()`), as `decodeValue` does for attachments and the reassembler for pieces.
 */
export function slabBytes(n: number): Uint8Array {
  if (n > MAX_SLAB_PIECE) return new Uint8Array(n);
  if (used + n > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    SLABS.add(slab.buffer);
    used = 0;
  }
  const out = slab.subarray(used, used + n);
  used += n;
  return out;
}

/**
 * True when `bytes` is a view into a slab: bytes that must be copied before they are kept
 * beyond the message being handled (or handed to user code), lest they hold the slab.
 */
export function isSlabBytes(bytes: Uint8Array): boolean {
  return bytes.buffer.byteLength === SLAB_SIZE && SLABS.has(bytes.buffer);
}
