/**
 * # @trust/rpc in the browser
 *
 * The same protocol, sessions, streams, events and typed API as the Deno entry, over
 * WebSocket (`ws://` / `wss://`, the standard `WebSocket`). Nothing in this entry's module
 * graph touches `Deno.*`: bundle it for a page, or import it from any runtime with Web
 * Crypto and WebSocket.
 *
 * **Who should hold the secret.** `TRUST_ID` authenticates *programs that trust each
 * other*. Code in a page runs on the user's machine, and anyone who can open the page's
 * developer tools can read a secret typed or embedded there. Give a browser the secret only
 * when the person using it is entitled to it (an operator's console, an internal tool on a
 * trusted machine) — never embed it in a page served to the public. For public pages put
 * your own login in front of a server-side program that holds the secret.
 *
 * @example Connect from a page
 * ```ts ignore
 * import { connect } from "@trust/rpc/browser";
 * const client = await connect("wss://example.com/rpc", { secret: prompt("TRUST_ID")! });
 * console.log(await client.call("greet", ["Alice"]));
 * client.on("peer_joined", (who) => console.log(who));
 * for await (const tick of client.stream("time", [3, 1000])) console.log(tick);
 * ```
 *
 * @module
 */

import type { Client } from "./protocol/client.ts";
import { createLogger, type Logger, type LogLevel } from "./protocol/logger.ts";
import { createMethodTable } from "./protocol/methods.ts";
import { openClient, type OpenClientOptions } from "./protocol/open_client.ts";
import { normalizeSecret, stretchSecret } from "./protocol/secret.ts";
import { webSocket } from "./transports/websocket_client.ts";

/** Options of {@link connect} in the browser. */
export interface BrowserConnectOptions extends OpenClientOptions {
  /** The shared secret (there is no environment to read it from here). */
  secret: string;
  /** Deadline for opening the WebSocket (ms). @default 10000 */
  connectTimeout?: number;
  /** Logger, or a level for the built-in one (to the console). @default level "warn" */
  logger?: Logger | LogLevel;
}

/**
 * Connects over WebSocket and authenticates with the shared secret (PBKDF2 runs once per
 * page, a second or so). Same client as in Deno: calls, streams, channels, events, typed API,
 * reconnect.
 *
 * @param address `ws://host[:port][/path]` or `wss://…`
 * @throws {SecretError} the secret is empty, too short or invalid
 * @throws {TransportError} the WebSocket did not open
 * @throws {AuthenticationError} `AUTH_FAILED` (the secrets differ), `SERVER_AUTH_FAILED`
 */
export async function connect(address: string, options: BrowserConnectOptions): Promise<Client> {
  const psk = await stretchSecret(normalizeSecret(options.secret ?? ""));
  createMethodTable(options.methods);
  const log = typeof options.logger === "object"
    ? options.logger
    : createLogger({ level: options.logger ?? "warn" });
  const dialer = webSocket(address, { connectTimeout: options.connectTimeout });
  return await openClient(dialer, psk, options, log);
}

export { Client } from "./protocol/client.ts";
export type { ClientStatus, ReconnectOptions, StatusEvent } from "./protocol/client.ts";
export { RpcChannel, RpcStream } from "./protocol/rpc_stream.ts";
export type { Api, ApiStream } from "./protocol/typed_api.ts";
export type { CallContext, Methods } from "./protocol/methods.ts";
export type { CallOptions, Params, StreamOptions } from "./protocol/session.ts";
export {
  AuthenticationError,
  CallTimeoutError,
  CancelledError,
  ConnectionClosedError,
  InvalidParamsError,
  MethodNotFoundError,
  ProtocolError,
  RemoteError,
  ResourceExhaustedError,
  RpcError,
  SecretError,
  TransportError,
  UnavailableError,
} from "./protocol/errors.ts";
export { fingerprint, generateSecret } from "./protocol/secret.ts";
