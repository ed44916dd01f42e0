/**
 * ALERT codes of trust-rpc/1 (PROTOCOL.md §9) and the mapping between them and the
 * library's error codes. An ALERT body is `code u16 ‖ ASCII message (printable, ≤ 128 bytes)`.
 *
 * @module
 */

import { AuthenticationError, ProtocolError, RpcError } from "./errors.ts";

/** Alert codes on the wire. */
export const AlertCode = {
  PROTOCOL_ERROR: 1,
  UNSUPPORTED_VERSION: 2,
  AUTH_FAILED: 3,
  HANDSHAKE_TIMEOUT: 4,
  BUSY: 5,
  FRAME_TOO_LARGE: 6,
  TRANSPORT_MISMATCH: 7,
  SELF_CONNECTION: 8,
  BAD_RECORD: 9,
  PEER_TIMEOUT: 10,
  SHUTDOWN: 11,
  RATE_LIMITED: 12,
  CLOSE: 13,
  RESOURCE_EXHAUSTED: 14,
} as const;

/** The name of an alert code. */
export type AlertName = keyof typeof AlertCode;

const NAME_BY_CODE: Record<number, AlertName | undefined> = Object.assign(
  Object.create(null),
  Object.fromEntries(Object.entries(AlertCode).map(([name, code]) => [code, name])),
);

/** Longest alert message in bytes. */
export const MAX_ALERT_MESSAGE = 128;

/** The alert to send when closing because of `err` (error codes without an alert of their own map to PROTOCOL_ERROR). */
export function alertFor(err: unknown): { code: number; message: string } {
  const code = err instanceof RpcError ? err.code : "PROTOCOL_ERROR";
  switch (code) {
    case "SEQUENCE":
      return { code: AlertCode.BAD_RECORD, message: "bad record" };
    case "BAD_RECORD":
      return { code: AlertCode.BAD_RECORD, message: "bad record" };
    case "CONNECTION_CLOSED":
    case "CLOSE":
      return { code: AlertCode.CLOSE, message: "closed" };
  }
  const alert = (AlertCode as Record<string, number>)[code];
  const message = err instanceof RpcError ? err.message : "protocol error";
  return alert === undefined
    ? { code: AlertCode.PROTOCOL_ERROR, message: sanitizeAscii(message) }
    : { code: alert, message: sanitizeAscii(message) };
}

/** Encodes an alert body. The message is reduced to printable ASCII and truncated. */
export function encodeAlertBody(code: number, message: string): Uint8Array {
  const text = sanitizeAscii(message).slice(0, MAX_ALERT_MESSAGE);
  const body = new Uint8Array(2 + text.length);
  new DataView(body.buffer).setUint16(0, code);
  for (let i = 0; i < text.length; i++) body[2 + i] = text.charCodeAt(i);
  return body;
}

/** Decodes an alert body; non-printable bytes are escaped (alerts are attacker text). */
export function decodeAlertBody(body: Uint8Array): { code: number; name: string; message: string } {
  const code = body.length >= 2 ? (body[0] << 8) | body[1] : 0;
  let message = "";
  for (let i = 2; i < body.length && i < 2 + MAX_ALERT_MESSAGE; i++) {
    const b = body[i];
    message += b >= 0x20 && b < 0x7F
      ? String.fromCharCode(b)
      : `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return { code, name: NAME_BY_CODE[code] ?? `ALERT_${code}`, message };
}

/** Printable ASCII only: anything else becomes `?`. */
export function sanitizeAscii(text: string): string {
  return text.replace(/[^\x20-\x7E]/g, "?");
}

/**
 * Escapes and truncates attacker-supplied text for logs and error messages (§10: 64 bytes,
 * control characters escaped).
 */
export function escapeForLog(text: string, max = 64): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  const escaped = cut.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x1F\x7F-\x9F\u2028\u2029]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return text.length > max ? `${escaped}…` : escaped;
}

/**
 * The error raised locally when the peer sends an ALERT. `phase` tells whether the
 * connection was authenticated (then the alert is trusted) or not (a hint only).
 */
export function errorFromAlert(
  alert: { code: number; name: string; message: string },
  phase: "handshake" | "session",
  sessionId?: string,
): RpcError {
  const from = phase === "handshake" && alert.code !== AlertCode.PROTOCOL_ERROR
    ? "The server"
    : "The peer";
  switch (alert.code) {
    case AlertCode.AUTH_FAILED:
      return new AuthenticationError(
        "AUTH_FAILED",
        "Authentication failed: the server rejected this client's TRUST_ID; the two sides hold " +
          "different secrets (compare the fingerprints printed by `client.ts fingerprint` on both machines)",
        { sessionId },
      );
    case AlertCode.RATE_LIMITED:
      return new AuthenticationError(
        "RATE_LIMITED",
        `${from} is rate-limiting this peer after too many failures: wait and retry later`,
        { sessionId },
      );
    case AlertCode.BUSY:
      return new ProtocolError("BUSY", `${from} is busy: too many pending connections`, {
        retryable: true,
        sessionId,
      });
    case AlertCode.SHUTDOWN:
    case AlertCode.CLOSE:
      return new RpcError("CONNECTION_CLOSED", `${from} closed the connection (${alert.name})`, {
        sessionId,
      });
    case AlertCode.RESOURCE_EXHAUSTED:
      return new RpcError("RESOURCE_EXHAUSTED", `${from} closed the connection: ${alert.message}`, {
        sessionId,
      });
  }
  return new ProtocolError(alert.name, `${from} sent alert ${alert.name}: ${alert.message}`, {
    sessionId,
  });
}
