/** Test data shared by the protocol tests (no sockets, no server). */

/** `n` incompressible bytes from a fixed-seed LCG: the same bytes for the same seed. */
export function bytesOf(n: number, seed = 7): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
