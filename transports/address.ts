/**
 * Transport address strings: `tcp://host:port`, `tls://host:port`, `unix:///absolute/path`,
 * and `ws://host[:port][/path]` / `wss://…` for WebSocket. This file uses no `Deno.*` (the
 * browser entry parses addresses too).
 *
 * @module
 */

import { TransportError } from "../protocol/errors.ts";

/** A parsed transport address. IPv6 hostnames are kept without brackets. */
export type Address =
  | { transport: "tcp" | "tls"; hostname: string; port: number }
  | { transport: "unix"; path: string }
  | { transport: "ws" | "wss"; hostname: string; port: number; path: string };

/** The path a WebSocket address gets when it names none. */
export const DEFAULT_WEBSOCKET_PATH = "/";

const FORMS =
  "expected tcp://host:port, tls://host:port, unix:///absolute/path or ws(s)://host[:port][/path]";
const WS_PATH = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/;
const HOSTNAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$/;
const PORT = /^[0-9]{1,5}$/;

/**
 * Quotes a value for an error message: escapes quotes, backslashes and every character outside
 * printable ASCII, and truncates it to 64 characters, so hostile input cannot forge log lines.
 *
 * @param value the text to quote
 * @returns the quoted, escaped text
 */
export function quote(value: string): string {
  const head = value.length > 64 ? value.slice(0, 64) : value;
  const escaped = head.replace(/[^\x20-\x7e]|["\\]/g, (c) => {
    if (c === '"' || c === "\\") return "\\" + c;
    return "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0");
  });
  return `"${escaped}${value.length > 64 ? "…" : ""}"`;
}

function invalid(input: string, reason: string): TransportError {
  return new TransportError(
    "INVALID_ADDRESS",
    `Invalid address ${quote(input)} (${reason}): ${FORMS}`,
  );
}

/** True for an IPv6 literal without brackets or zone (`::1`, `2001:db8::7`, `::ffff:1.2.3.4`). */
function isIpv6(host: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(host)) return false;
  const halves = host.split("::");
  if (halves.length > 2) return false;
  const groups = halves.flatMap((half) => (half === "" ? [] : half.split(":")));
  let count = 0;
  for (const [i, group] of groups.entries()) {
    if (/^[0-9A-Fa-f]{1,4}$/.test(group)) count += 1;
    else if (i === groups.length - 1 && isIpv4(group)) count += 2;
    else return false;
  }
  return halves.length === 2 ? count <= 7 : count === 8;
}

function isIpv4(host: string): boolean {
  const parts = host.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && +p <= 255);
}

function parseHostPort(input: string, rest: string): { hostname: string; port: number } {
  let hostname: string;
  let portText: string;
  if (rest.startsWith("[")) {
    const end = rest.indexOf("]");
    if (end < 0) throw invalid(input, 'unclosed "["');
    hostname = rest.slice(1, end);
    if (!isIpv6(hostname)) throw invalid(input, "not an IPv6 address inside [ ]");
    if (rest[end + 1] !== ":") throw invalid(input, "the port is missing");
    portText = rest.slice(end + 2);
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon < 0) throw invalid(input, "the port is missing");
    hostname = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (hostname.includes(":")) throw invalid(input, "an IPv6 address needs brackets: [::1]");
    if (hostname === "") throw invalid(input, "the host is missing");
    if (!HOSTNAME.test(hostname) || (/^[0-9.]+$/.test(hostname) && !isIpv4(hostname))) {
      throw invalid(input, "the host is not a valid name or IP address");
    }
  }
  if (portText === "") throw invalid(input, "the port is missing");
  if (!PORT.test(portText) || +portText > 65535) {
    throw invalid(input, "the port must be a number from 0 to 65535");
  }
  return { hostname, port: +portText };
}

/**
 * Parses a transport address. Accepted forms (the scheme is case-insensitive):
 *
 * - `tcp://host:port` and `tls://host:port`, where host is a name, an IPv4 address, or an IPv6
 *   address in brackets (`tcp://[::1]:8888`); the port (0 to 65535) is required.
 * - `unix:///absolute/path`, and the short form `unix:/absolute/path`. The path is taken
 *   literally (no percent-decoding); it must be absolute, must not end with `/`, and must not
 *   contain control characters.
 *
 * - `ws://host[:port][/path]` and `wss://…`: the port defaults to 80 / 443 and the path to `/`;
 *   no user info, query or fragment.
 *
 * Nothing else is accepted: no user info, path, query or fragment on tcp/tls addresses.
 *
 * @example Parse addresses
 * ```ts
 * import { parseAddress } from "@trust/rpc/transports";
 * parseAddress("tcp://[::1]:8888"); // { transport: "tcp", hostname: "::1", port: 8888 }
 * parseAddress("unix:///run/app/rpc.sock"); // { transport: "unix", path: "/run/app/rpc.sock" }
 * ```
 *
 * @param url the address string
 * @returns the parsed address
 * @throws {TransportError} `INVALID_ADDRESS`, quoting the input and listing the accepted forms
 */
export function parseAddress(url: string): Address {
  if (typeof url !== "string") throw invalid(String(url), "not a string");
  const match = /^([A-Za-z]+):(.*)$/s.exec(url);
  const scheme = match?.[1].toLowerCase();
  const rest = match?.[2] ?? "";
  if (scheme === "tcp" || scheme === "tls") {
    if (!rest.startsWith("//")) throw invalid(url, `use ${scheme}://host:port`);
    const authority = rest.slice(2);
    if (/[/?#@\s]/.test(authority)) {
      throw invalid(url, "only host and port are allowed after the scheme");
    }
    return { transport: scheme, ...parseHostPort(url, authority) };
  }
  if (scheme === "ws" || scheme === "wss") {
    if (!rest.startsWith("//")) throw invalid(url, `use ${scheme}://host:port/path`);
    const afterSlashes = rest.slice(2);
    const slash = afterSlashes.search(/[/?#]/);
    const authority = slash < 0 ? afterSlashes : afterSlashes.slice(0, slash);
    const path = slash < 0 ? DEFAULT_WEBSOCKET_PATH : afterSlashes.slice(slash);
    if (/[@\s]/.test(authority)) throw invalid(url, "user info is not allowed");
    if (!WS_PATH.test(path)) {
      throw invalid(url, "the path may not hold a query, fragment or spaces");
    }
    const defaultPort = scheme === "ws" ? 80 : 443;
    const hasPort = authority.startsWith("[") ? authority.includes("]:") : authority.includes(":");
    const { hostname, port } = parseHostPort(
      url,
      hasPort ? authority : `${authority}:${defaultPort}`,
    );
    return { transport: scheme, hostname, port, path };
  }
  if (scheme === "unix") {
    let path: string;
    if (rest.startsWith("///")) path = rest.slice(2);
    else if (rest.startsWith("/") && !rest.startsWith("//")) path = rest;
    else throw invalid(url, "a Unix socket path must be absolute");
    if (path.length < 2 || path.endsWith("/")) throw invalid(url, "the path names no file");
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x1f\x7f]/.test(path)) throw invalid(url, "the path contains control characters");
    return { transport: "unix", path };
  }
  throw invalid(url, match ? "unknown scheme" : "no scheme");
}

/**
 * Formats an address as a URL string, the inverse of {@link parseAddress}. IPv6 hostnames are
 * put in brackets.
 *
 * @param address the address
 * @returns `tcp://127.0.0.1:8888`, `tls://[::1]:443`, `unix:///run/app/rpc.sock` or
 *   `ws://127.0.0.1:8080/rpc`
 */
export function formatAddress(address: Address): string {
  if (address.transport === "unix") return `unix://${address.path}`;
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  const base = `${address.transport}://${host}:${address.port}`;
  return address.transport === "ws" || address.transport === "wss" ? base + address.path : base;
}
