/**
 * RFC 6455 framing for the client side, on bytes: a client frame (masked, header and payload in
 * one buffer, so it leaves in one `write()`), and the header of a frame the server sent. No
 * `Deno.*` here.
 *
 * @module
 */

/** Frame opcodes (RFC 6455 §5.2). */
export const OPCODE = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** Masks are drawn from a pool of random bytes, refilled from the CSPRNG when used up. */
const maskPool = new Uint8Array(4096);
let maskAt = maskPool.length;
/** A 4-byte aligned home for the current mask, read as one 32-bit word for the XOR. */
const maskWord = new Uint32Array(1);
const maskBytes = new Uint8Array(maskWord.buffer);
/** Below this many payload bytes, masking goes byte by byte (no typed-array view to make). */
const WORD_MASK_MIN = 256;

function nextMask(): void {
  if (maskAt === maskPool.length) {
    crypto.getRandomValues(maskPool);
    maskAt = 0;
  }
  for (let i = 0; i < 4; i++) maskBytes[i] = maskPool[maskAt + i];
  maskAt += 4;
}

/**
 * Builds one client frame (FIN set) carrying `parts` back to back, masked with a fresh random
 * key as RFC 6455 §5.3 requires of a client. The header and the payload share one buffer.
 *
 * @param opcode the frame's opcode ({@link OPCODE})
 * @param parts the payload, in pieces that are joined (e.g. a record's header and body)
 * @returns the frame's bytes
 */
export function clientFrame(opcode: number, ...parts: Uint8Array[]): Uint8Array {
  return buildFrame(undefined, opcode, parts)!;
}

/**
 * {@link clientFrame}, built in `scratch` (a view into it is returned), or `undefined` when it
 * does not fit: a caller that writes many small frames reuses one buffer instead of making an
 * `ArrayBuffer` per frame.
 */
export function clientFrameIn(
  scratch: Uint8Array,
  opcode: number,
  ...parts: Uint8Array[]
): Uint8Array | undefined {
  return buildFrame(scratch, opcode, parts);
}

function buildFrame(
  scratch: Uint8Array | undefined,
  opcode: number,
  parts: Uint8Array[],
): Uint8Array | undefined {
  let length = 0;
  for (const part of parts) length += part.length;
  const lengthBytes = length < 126 ? 0 : length < 0x10000 ? 2 : 8;
  const headerLength = 2 + lengthBytes + 4;
  // A large payload is masked a 32-bit word at a time: pad in front so it starts 4-byte aligned.
  const pad = length < WORD_MASK_MIN
    ? 0
    : (4 - ((headerLength + (scratch?.byteOffset ?? 0)) & 3)) & 3;
  let frame: Uint8Array;
  if (scratch !== undefined) {
    if (pad + headerLength + length > scratch.length) return undefined;
    frame = scratch.subarray(pad, pad + headerLength + length);
  } else {
    frame = pad === 0
      ? new Uint8Array(headerLength + length)
      : new Uint8Array(new ArrayBuffer(pad + headerLength + length), pad);
  }
  frame[0] = 0x80 | opcode;
  if (lengthBytes === 0) {
    frame[1] = 0x80 | length;
  } else if (lengthBytes === 2) {
    frame[1] = 0x80 | 126;
    frame[2] = length >>> 8;
    frame[3] = length & 0xff;
  } else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer, frame.byteOffset + 2, 8).setBigUint64(0, BigInt(length));
  }
  nextMask();
  frame.set(maskBytes, headerLength - 4);
  let at = headerLength;
  for (const part of parts) {
    frame.set(part, at);
    at += part.length;
  }
  applyMask(frame, headerLength, length);
  return frame;
}

/** XORs the `length` bytes of `frame` from `at` with the current mask. */
function applyMask(frame: Uint8Array, at: number, length: number): void {
  let i = 0;
  if (length >= WORD_MASK_MIN) {
    const words = length >>> 2;
    const view = new Uint32Array(frame.buffer, frame.byteOffset + at, words);
    const mask = maskWord[0];
    for (let w = 0; w < words; w++) view[w] ^= mask;
    i = words * 4;
  }
  for (; i < length; i++) frame[at + i] ^= maskBytes[i & 3];
}

/** A frame header read from the server. */
export interface ServerFrameHeader {
  /** The last frame of its message. */
  fin: boolean;
  /** {@link OPCODE}. */
  opcode: number;
  /** Payload bytes that follow the header. */
  length: number;
  /** Bytes the header took. */
  headerLength: number;
}

/**
 * Reads the header of a frame the server sent, checking what RFC 6455 requires of it: no
 * reserved bits (no extension was negotiated), no mask (§5.1), a known opcode, and control
 * frames that are whole and at most 125 bytes (§5.5).
 *
 * @param bytes received bytes
 * @param start where the header begins
 * @param end where the received bytes end
 * @returns the header, or `undefined` when more bytes are needed to read it
 * @throws {Error} with the violation in words
 */
export function readServerFrameHeader(
  bytes: Uint8Array,
  start: number,
  end: number,
): ServerFrameHeader | undefined {
  if (end - start < 2) return undefined;
  const b0 = bytes[start];
  const b1 = bytes[start + 1];
  if ((b0 & 0x70) !== 0) throw new Error("reserved bits set (no extension was negotiated)");
  if ((b1 & 0x80) !== 0) throw new Error("a server frame must not be masked");
  const fin = (b0 & 0x80) !== 0;
  const opcode = b0 & 0x0f;
  const control = (opcode & 0x8) !== 0;
  if ((opcode > OPCODE.binary && !control) || opcode > OPCODE.pong) {
    throw new Error(`unknown opcode ${opcode}`);
  }
  let length = b1 & 0x7f;
  let headerLength = 2;
  if (length === 126) {
    if (end - start < 4) return undefined;
    length = (bytes[start + 2] << 8) | bytes[start + 3];
    headerLength = 4;
  } else if (length === 127) {
    if (end - start < 10) return undefined;
    const view = new DataView(bytes.buffer, bytes.byteOffset + start + 2, 8);
    const high = view.getUint32(0);
    if (high > 0x1fffff) throw new Error("frame length out of range");
    length = high * 0x1_0000_0000 + view.getUint32(4);
    headerLength = 10;
  }
  if (control && (!fin || length > 125)) {
    throw new Error("a control frame must be whole and at most 125 bytes");
  }
  return { fin, opcode, length, headerLength };
}
