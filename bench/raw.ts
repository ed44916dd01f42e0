/**
 * The raw-socket reference (no RPC, no crypto): 4-byte big-endian length-prefixed frames over
 * Deno sockets. The framing and receive buffer are shared by the echo server (`raw_echo.ts`)
 * and the client loops below, which `run.ts` drives.
 *
 * @module
 */

import { type BenchAddress, tlsFixtures } from "./common.ts";

/** Encodes one frame: u32be length ‖ payload. */
export function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

/** Writes every byte (Deno writes may be partial). */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await conn.write(data.subarray(offset));
}

/**
 * A growable receive buffer: {@link read} pulls bytes from the connection into free space,
 * {@link next} hands out complete frame payloads (views valid until the next read).
 */
export class FrameBuffer {
  buf: Uint8Array;
  start = 0;
  end = 0;

  constructor(initial = 64 * 1024, readonly minRead = Math.min(initial, 64 * 1024)) {
    this.buf = new Uint8Array(initial);
  }

  #reserve(need: number): void {
    if (this.buf.length - this.end >= need) return;
    const used = this.end - this.start;
    if (this.start > 0 && this.buf.length - used >= need && used < this.buf.length / 2) {
      this.buf.copyWithin(0, this.start, this.end);
    } else {
      let size = this.buf.length;
      while (size - used < need) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(this.start, this.end));
      this.buf = next;
    }
    this.end = used;
    this.start = 0;
  }

  /** Reads once; false at end of stream. */
  async read(conn: Deno.Conn): Promise<boolean> {
    if (this.start === this.end) this.start = this.end = 0;
    let need = this.minRead;
    if (this.end - this.start >= 4) {
      // A large frame partly buffered: make room for all of it at once.
      const len = new DataView(this.buf.buffer, this.buf.byteOffset + this.start, 4).getUint32(0);
      need = Math.max(need, Math.min(4 + len - (this.end - this.start), 8 * 1024 * 1024));
    }
    this.#reserve(need);
    const n = await conn.read(this.buf.subarray(this.end));
    if (n === null) return false;
    this.end += n;
    return true;
  }

  /** The next complete frame's payload, or null. */
  next(): Uint8Array | null {
    const avail = this.end - this.start;
    if (avail < 4) return null;
    const b = this.buf;
    const s = this.start;
    const len = ((b[s] << 24) | (b[s + 1] << 16) | (b[s + 2] << 8) | b[s + 3]) >>> 0;
    if (avail < 4 + len) return null;
    this.start = s + 4 + len;
    return b.subarray(s + 4, s + 4 + len);
  }
}

/** Opens a raw connection to a `raw_echo.ts` address (TCP_NODELAY on TCP and TLS). */
export async function rawConnect(address: BenchAddress): Promise<Deno.Conn> {
  if (address.transport === "unix") {
    return await Deno.connect({ transport: "unix", path: address.path });
  }
  const tcp = await Deno.connect({ hostname: address.hostname, port: address.port });
  tcp.setNoDelay(true);
  if (address.transport === "tcp") return tcp;
  const tls = await Deno.startTls(tcp, {
    hostname: address.hostname,
    caCerts: [tlsFixtures().ca],
  });
  await tls.handshake();
  return tls;
}

/** Result of a ping-pong run. */
export interface PingPongResult {
  /** Round trips completed. */
  count: number;
  /** Round trips per second. */
  perSecond: number;
  /** Latency percentiles (µs). */
  p50: number;
  /** Latency percentiles (µs). */
  p99: number;
  /** True when the time limit ended the run before the count. */
  timeLimited: boolean;
}

/** Result of a pipelined or bulk run. */
export interface ThroughputResult {
  /** Messages echoed. */
  count: number;
  /** Messages per second. */
  perSecond: number;
  /** Payload MB/s (10^6 bytes/s), one direction. */
  mbPerSecond: number;
  /** True when the time limit ended the run before the count. */
  timeLimited: boolean;
}

/**
 * Sequential round trips of a `size`-byte payload: at most `n`, and no new one after
 * `limitMs`. The read is submitted without waiting for the write (as an RPC client with a
 * standing reader does).
 */
export async function rawPingPong(
  conn: Deno.Conn,
  n: number,
  size: number,
  limitMs: number,
): Promise<PingPongResult> {
  const msg = frame(new Uint8Array(size).fill(120));
  const fb = new FrameBuffer(64 * 1024);
  const lat = new Float64Array(n);
  const start = performance.now();
  const stopAt = start + limitMs;
  let i = 0;
  for (; i < n; i++) {
    const t0 = performance.now();
    if (t0 > stopAt) break;
    const w = writeAll(conn, msg);
    let f;
    while (!(f = fb.next())) if (!(await fb.read(conn))) throw new Error("raw echo: end of stream");
    await w;
    if (f.length !== size) throw new Error("raw echo: bad frame");
    lat[i] = (performance.now() - t0) * 1000;
  }
  const secs = (performance.now() - start) / 1000;
  const s = lat.subarray(0, i).slice().sort();
  const pick = (p: number) =>
    s[Math.min(s.length - 1, Math.max(0, Math.ceil(p / 100 * s.length) - 1))];
  return { count: i, perSecond: i / secs, p50: pick(50), p99: pick(99), timeLimited: i < n };
}

/**
 * Echoes up to `n` frames of `size` bytes with `window` in flight. The writer sends everything
 * the window allows, at most `maxBatch` frames per write (1 = one write per frame). No new
 * frame is sent after `limitMs`; the ones in flight are awaited.
 */
export async function rawPipeline(
  conn: Deno.Conn,
  n: number,
  size: number,
  window: number,
  limitMs: number,
  maxBatch = window,
): Promise<ThroughputResult> {
  const one = frame(new Uint8Array(size).fill(121));
  const batchFrames = Math.min(window, maxBatch);
  const batch = new Uint8Array(one.length * batchFrames);
  for (let i = 0; i < batchFrames; i++) batch.set(one, i * one.length);
  const fb = new FrameBuffer(Math.max(64 * 1024, one.length * 2));
  let sent = 0;
  let recv = 0;
  let writerDone = false;
  let wake: (() => void) | undefined;
  const start = performance.now();
  const stopAt = start + limitMs;
  let failure: unknown;
  const reader = (async () => {
    try {
      while (!(writerDone && recv >= sent)) {
        if (!(await fb.read(conn))) {
          if (writerDone && recv >= sent) return;
          throw new Error("raw echo: end of stream");
        }
        let f;
        while ((f = fb.next())) {
          if (f.length !== size) throw new Error("raw echo: bad frame");
          recv++;
        }
        const w = wake;
        wake = undefined;
        w?.();
      }
    } catch (err) {
      failure ??= err;
      const w = wake;
      wake = undefined;
      w?.();
    }
  })();
  let timeLimited = false;
  try {
    while (sent < n && failure === undefined) {
      if (performance.now() > stopAt) {
        timeLimited = true;
        break;
      }
      const room = window - (sent - recv);
      if (room <= 0) {
        await new Promise<void>((resolve) => wake = resolve);
        continue;
      }
      const k = Math.min(room, n - sent, batchFrames);
      sent += k;
      await writeAll(conn, batch.subarray(0, k * one.length));
    }
  } finally {
    writerDone = true;
  }
  // The reader returns once every frame sent is back (it may be parked in a read when that
  // already happened: closing the connection ends it quietly).
  if (recv < sent && failure === undefined) await reader;
  if (failure !== undefined) throw failure;
  const secs = (performance.now() - start) / 1000;
  return {
    count: recv,
    perSecond: recv / secs,
    mbPerSecond: recv * size / secs / 1e6,
    timeLimited,
  };
}
