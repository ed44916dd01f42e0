/**
 * The client's side of the HTTP/1.1 upgrade that opens a WebSocket (RFC 6455 §4.1): the
 * request, and the checks of the server's answer. No `Deno.*` here.
 *
 * @module
 */

/** The GUID RFC 6455 §1.3 appends to the key before hashing it. */
const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The most bytes the server's response head may take. */
export const MAX_UPGRADE_RESPONSE = 16 * 1024;

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** A fresh `Sec-WebSocket-Key`: 16 random bytes, base64. */
export function newWebSocketKey(): string {
  return base64(crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * The `Sec-WebSocket-Accept` a server must answer to `key`: base64 of SHA-1(key + GUID).
 *
 * @param key the request's `Sec-WebSocket-Key`
 * @returns the expected header value
 */
export async function expectedAccept(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(key + ACCEPT_GUID),
  );
  return base64(new Uint8Array(digest));
}

/**
 * The upgrade request's bytes.
 *
 * @param host the `Host` header (`example.com:8443`, `[::1]:80`)
 * @param path the request target (`/rpc`)
 * @param key a fresh {@link newWebSocketKey}
 * @returns the request, ASCII
 */
export function upgradeRequest(host: string, path: string, key: string): Uint8Array {
  return new TextEncoder().encode(
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
}

/**
 * Where the response head ends (just after its blank line) in the bytes received so far.
 *
 * @param bytes received bytes, from the start of the response
 * @param end how many of them there are
 * @returns the head's length, or -1 when its end has not arrived yet
 */
export function responseHeadLength(bytes: Uint8Array, end: number): number {
  for (let i = 3; i < end; i++) {
    if (
      bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13
    ) return i + 1;
  }
  return -1;
}

/**
 * Checks the server's response head: status 101, `Upgrade: websocket`, `Connection: upgrade`,
 * the right `Sec-WebSocket-Accept`, and no extension or subprotocol (none was offered).
 *
 * @param head the response head (status line and headers), latin1
 * @param accept the {@link expectedAccept} of the request's key
 * @throws {Error} saying what the server answered instead
 */
export function checkUpgradeResponse(head: string, accept: string): void {
  const lines = head.split("\r\n");
  const status = lines[0];
  if (!/^HTTP\/1\.1 101(?: |$)/.test(status)) {
    throw new Error(`the server answered "${status.slice(0, 100)}" instead of upgrading`);
  }
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  if (headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new Error("the server's 101 response lacks Upgrade: websocket");
  }
  const connection = (headers.get("connection") ?? "").toLowerCase().split(",");
  if (!connection.some((token) => token.trim() === "upgrade")) {
    throw new Error("the server's 101 response lacks Connection: upgrade");
  }
  if (headers.get("sec-websocket-accept") !== accept) {
    throw new Error("the server's Sec-WebSocket-Accept does not match the key sent");
  }
  for (const name of ["sec-websocket-extensions", "sec-websocket-protocol"]) {
    if (headers.has(name)) throw new Error(`the server chose ${name}, which was not offered`);
  }
}
