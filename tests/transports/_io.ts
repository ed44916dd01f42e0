/** Byte helpers shared by the transport tests. */
import type { Conn } from "../../transports/types.ts";

/** Reads exactly `n` bytes (bounded: every read returns at least one byte or ends the loop). */
export async function readExactly(conn: Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let offset = 0;
  while (offset < n) {
    const count = await conn.read(out.subarray(offset, Math.min(n, offset + 65536)));
    if (count === null) throw new Error(`End of stream after ${offset} of ${n} bytes`);
    offset += count;
  }
  return out;
}
