/**
 * Two linked in-memory byte channels (tier-1 and tier-2 tests): what one writes, the other
 * reads. Closing either ends both.
 */
import type { ByteChannel } from "../protocol/channel.ts";

class MemoryEnd implements ByteChannel {
  chunks: Uint8Array[] = [];
  waiter: (() => void) | undefined;
  peer!: MemoryEnd;
  closed = false;
  /** Every byte written by this end, in order (a wire capture). */
  written: Uint8Array[] = [];
  /** Acts as a TLS connection would (`ByteChannel.nagle`). */
  nagle = false;
  /** Transforms what this end writes before the peer sees it (a test MITM). */
  tamper: ((data: Uint8Array) => Uint8Array | null) | undefined;

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.chunks.length === 0) {
      if (this.closed) return null;
      await new Promise<void>((resolve) => this.waiter = resolve);
    }
    const head = this.chunks[0];
    const n = Math.min(head.length, buffer.length);
    buffer.set(head.subarray(0, n));
    if (n === head.length) this.chunks.shift();
    else this.chunks[0] = head.subarray(n);
    return n;
  }

  write(data: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new Error("closed"));
    const copy = data.slice();
    this.written.push(copy);
    const out = this.tamper ? this.tamper(copy) : copy;
    if (out !== null) this.peer.deliver(out);
    return Promise.resolve();
  }

  deliver(data: Uint8Array): void {
    this.chunks.push(data);
    this.wake();
  }

  wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  close(): void {
    for (const end of [this, this.peer]) {
      end.closed = true;
      end.wake();
    }
  }
}

/** A linked pair: `[a, b]`. */
export function memoryPair(): [MemoryEnd, MemoryEnd] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
