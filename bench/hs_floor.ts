/**
 * The handshake floor of `deno task bench`: what any handshake with a fresh X25519 exchange
 * per connection costs in Deno before a line of protocol logic runs. Plain TCP, the same
 * message sizes and round trips as trust-rpc/1 (M1 124 bytes →, ← M2 140 bytes, M3 52 bytes →,
 * then the client closes), and on each side the four Web Crypto X25519 calls trust-rpc makes
 * (generate, export the public key, import the peer's, derive). No hashing, no key schedule,
 * no proofs, no session: a handshake that authenticates nothing, so no real one can be faster.
 *
 *     deno run -A bench/hs_floor.ts tcp://127.0.0.1:0     # the server side
 *
 * Prints `{"addresses":[...]}` (one JSON line) once listening; exits when its stdin closes.
 *
 * @module
 */

import { exitWithParent, parseBenchAddress } from "./common.ts";

const M1 = 124;
const M2 = 140;
const M3 = 52;
/** Where the X25519 public key sits in M1 and M2 (after the 20-byte header and a random). */
const SHARE_AT = 52;

async function readExactly(conn: Deno.TcpConn, buf: Uint8Array, n: number): Promise<void> {
  for (let got = 0; got < n;) {
    const r = await conn.read(buf.subarray(got, n));
    if (r === null) throw new Error("handshake floor: connection ended early");
    got += r;
  }
}

/** A fresh X25519 key pair and its raw public key (generate + export). */
async function ephemeral(): Promise<{ key: CryptoKeyPair; share: Uint8Array }> {
  const key = await crypto.subtle.generateKey({ name: "X25519" }, false, [
    "deriveBits",
  ]) as CryptoKeyPair;
  return { key, share: new Uint8Array(await crypto.subtle.exportKey("raw", key.publicKey)) };
}

/** The shared secret with the peer's raw public key (import + derive). */
async function agree(key: CryptoKeyPair, peerShare: Uint8Array<ArrayBuffer>): Promise<void> {
  const peer = await crypto.subtle.importKey("raw", peerShare, { name: "X25519" }, false, []);
  await crypto.subtle.deriveBits({ name: "X25519", public: peer }, key.privateKey, 256);
}

/** One floor handshake as the client, then close. */
export async function floorHandshake(hostname: string, port: number): Promise<void> {
  const conn = await Deno.connect({ hostname, port });
  try {
    conn.setNoDelay(true);
    const buf = new Uint8Array(M2);
    await readExactly(conn, buf, M1);
    const mine = await ephemeral();
    await agree(mine.key, buf.slice(SHARE_AT, SHARE_AT + 32));
    const m2 = new Uint8Array(M2);
    m2.set(mine.share, SHARE_AT);
    await conn.write(m2);
    await readExactly(conn, buf, M3);
  } finally {
    conn.close();
  }
}

async function serveOne(conn: Deno.TcpConn): Promise<void> {
  try {
    conn.setNoDelay(true);
    const mine = await ephemeral();
    const m1 = new Uint8Array(M1);
    m1.set(mine.share, SHARE_AT);
    await conn.write(m1);
    const buf = new Uint8Array(M2);
    await readExactly(conn, buf, M2);
    await agree(mine.key, buf.slice(SHARE_AT, SHARE_AT + 32));
    await conn.write(new Uint8Array(M3));
    await conn.read(buf); // the client's close
  } catch { /* reset by the client */ }
  try {
    conn.close();
  } catch { /* closed */ }
}

if (import.meta.main) {
  const a = parseBenchAddress(Deno.args[0] ?? "tcp://127.0.0.1:0");
  if (a.transport !== "tcp") throw new Error("hs_floor serves tcp only");
  const listener = Deno.listen({ hostname: a.hostname, port: a.port });
  exitWithParent(() => listener.close());
  (async () => {
    try {
      for await (const conn of listener) serveOne(conn);
    } catch { /* listener closed */ }
  })();
  const { hostname, port } = listener.addr as Deno.NetAddr;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  console.log(JSON.stringify({ addresses: [`tcp://${host}:${port}`] }));
}
