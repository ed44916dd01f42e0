/**
 * The demo server's chat room — the seed's socket chat on top of trust-rpc events. A client
 * joins with the method `chat.join(name?)` and talks with the event `chat` `{ text }`; the
 * server stamps each message and sends `chat` `{ from, text, at }` to every member, the sender
 * included (the seed's echo). Members hear `chat_joined` / `chat_left` `{ name }` when someone
 * else comes or goes. Bad input is logged and dropped, never fatal.
 *
 * @module
 */

import { InvalidParamsError } from "../protocol/errors.ts";
import type { Logger } from "../protocol/logger.ts";
import type { CallContext, Methods } from "../protocol/methods.ts";

/** Longest name (characters, i.e. code points). */
export const MAX_NAME_CHARS = 32;
/** Longest message text (UTF-8 bytes); longer ones are dropped and logged. */
export const MAX_TEXT_BYTES = 4096;

/** What the room needs of a peer (a `Peer` of server.ts). */
export interface ChatPeer {
  /** Session id (32 hex digits). */
  readonly id: string;
  /** Per-peer data: the room keeps the member's name in `data.chatName`. */
  readonly data: Record<string, unknown>;
  /** Resolves when the connection has closed: the member then leaves. */
  readonly closed: Promise<unknown>;
}

/** What the room needs of the server (a `Server` of server.ts). */
export interface ChatServer {
  /** Listens to an event clients send. */
  on(name: string, listener: (peer: ChatPeer, data: unknown) => void): () => void;
  /** Sends an event to the peers `filter` keeps, minus `exclude` (a peer id). */
  broadcast(
    name: string,
    data?: unknown,
    options?: { exclude?: string; filter?: (peer: ChatPeer) => boolean },
  ): number;
}

/** What `chat.join` answers. */
export interface JoinResult {
  /** The name given (the one asked for, made unique: `alice-2` when `alice` is taken). */
  name: string;
  /** The names of the other members, sorted. */
  peers: string[];
}

/** A chat message as the server sends it (event `chat`). */
export interface ChatMessage {
  /** The sender's name. */
  from: string;
  /** The text (control characters replaced by U+FFFD). */
  text: string;
  /** When the server received it (ISO 8601). */
  at: string;
}

/** The room: its method (for `serve({ methods })`) and the events it listens to. */
export interface ChatRoom {
  /** `chat.join`: add them to `serve({ methods })`. */
  readonly methods: Methods;
  /** Starts listening to `chat` events on the running server (call it once, after `serve`). */
  attach(server: ChatServer): void;
  /** The members' names now, sorted. */
  names(): string[];
}

/** Everything \p{C} and \p{Z} but the zero-width joiner (emoji sequences) and the space. */
const NOT_PRINTABLE = /(?![\u200D ])[\p{C}\p{Z}]/u;

/**
 * Control characters, line/paragraph separators and bidi overrides: replaced in message text
 * so that no message can move the cursor, forge lines or reorder other text. Tab is kept.
 */
const UNSAFE_IN_TEXT = /(?!\t)[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/gu;

/** Replaces the characters a terminal would act on with U+FFFD (tab kept). */
export function safeText(text: string): string {
  return text.replace(UNSAFE_IN_TEXT, "\uFFFD");
}

/**
 * Checks a requested name: a string of 1 to {@link MAX_NAME_CHARS} printable characters once
 * trimmed (spaces inside are fine; control, format and invisible characters are not).
 * Returns the trimmed, NFC-normalized name.
 *
 * @throws {InvalidParamsError} anything else
 */
export function checkChatName(value: unknown): string {
  if (typeof value !== "string") throw new InvalidParamsError("name must be a string");
  const name = value.trim().normalize("NFC");
  const chars = [...name].length;
  if (chars < 1 || chars > MAX_NAME_CHARS) {
    throw new InvalidParamsError(
      `name must be 1 to ${MAX_NAME_CHARS} characters (got ${chars})`,
    );
  }
  if (NOT_PRINTABLE.test(name)) {
    throw new InvalidParamsError("name must be printable (no control or invisible characters)");
  }
  return name;
}

/** Names compare case-insensitively and by compatibility form (`Alice` = `alice` = `ａｌｉｃｅ`). */
function nameKey(name: string): string {
  return name.normalize("NFKC").toLowerCase();
}

/** UTF-8 length of `text`, or `Infinity` when it obviously exceeds `limit`. */
function utf8Length(text: string, limit: number): number {
  // Every UTF-16 unit takes at least one UTF-8 byte.
  if (text.length > limit) return Infinity;
  return new TextEncoder().encode(text).length;
}

interface Member {
  peer: ChatPeer;
  name: string;
  key: string;
}

/**
 * Creates the chat room. `log` gets `chat_joined` / `chat_left` (info) and `chat_ignored`
 * (warn, rate-limited) lines; message text is never logged.
 *
 * @example
 * ```ts ignore
 * const room = createChatRoom(logger);
 * const server = await serve({ methods: { ...room.methods } });
 * room.attach(server);
 * ```
 */
export function createChatRoom(log: Logger): ChatRoom {
  let server: ChatServer | undefined;
  const members = new Map<string, Member>();
  const taken = new Set<string>();
  const isMember = (peer: ChatPeer) => members.has(peer.id);

  /** `base`, or `base-2`, `base-3`, … (cut to fit) when it is taken. */
  const unique = (base: string): string => {
    if (!taken.has(nameKey(base))) return base;
    for (let n = 2;; n++) {
      const suffix = `-${n}`;
      const stem = [...base].slice(0, MAX_NAME_CHARS - suffix.length).join("").trimEnd();
      const candidate = `${stem}${suffix}`;
      if (!taken.has(nameKey(candidate))) return candidate;
    }
  };

  const others = (id: string) =>
    [...members.values()].filter((m) => m.peer.id !== id).map((m) => m.name).sort();

  const leave = (peer: ChatPeer) => {
    const member = members.get(peer.id);
    if (member === undefined || member.peer !== peer) return;
    members.delete(peer.id);
    taken.delete(member.key);
    log.info("chat_left", { session: peer.id, name: member.name });
    server?.broadcast("chat_left", { name: member.name }, { exclude: peer.id, filter: isMember });
  };

  /** Adds `peer` under `requested` (checked) or its guest name; a member keeps its name. */
  const join = (peer: ChatPeer, requested: unknown): JoinResult => {
    const current = members.get(peer.id);
    if (current !== undefined) {
      if (
        requested === undefined || requested === null ||
        nameKey(checkChatName(requested)) === current.key
      ) {
        return { name: current.name, peers: others(peer.id) };
      }
      throw new InvalidParamsError(`already joined as ${current.name}`);
    }
    const base = requested === undefined || requested === null
      ? `guest-${peer.id.slice(0, 4)}`
      : checkChatName(requested);
    const name = unique(base);
    const member: Member = { peer, name, key: nameKey(name) };
    members.set(peer.id, member);
    taken.add(member.key);
    peer.data.chatName = name;
    log.info("chat_joined", { session: peer.id, name });
    server?.broadcast("chat_joined", { name }, { exclude: peer.id, filter: isMember });
    // Leaving follows the connection, whichever way it ends (already closed: at once).
    peer.closed.then(() => leave(peer), () => leave(peer));
    return { name, peers: others(peer.id) };
  };

  const ignore = (peer: ChatPeer, reason: string, fields: Record<string, number> = {}) =>
    log.limited("warn", `chat_ignored_${reason}`, "chat_ignored", {
      session: peer.id,
      reason,
      ...fields,
    });

  const onChat = (peer: ChatPeer, data: unknown) => {
    const text = (data as { text?: unknown } | null)?.text;
    if (typeof data !== "object" || data === null || typeof text !== "string") {
      return ignore(peer, "bad_payload");
    }
    const bytes = utf8Length(text, MAX_TEXT_BYTES);
    if (bytes > MAX_TEXT_BYTES) {
      return ignore(peer, "too_long", { bytes, max: MAX_TEXT_BYTES });
    }
    if (text.trim() === "") return ignore(peer, "empty");
    // Talking before joining joins under the guest name.
    const from = members.get(peer.id)?.name ?? join(peer, undefined).name;
    const message: ChatMessage = {
      from,
      text: safeText(text),
      at: new Date().toISOString(),
    };
    server?.broadcast("chat", message, { filter: isMember });
  };

  return {
    methods: {
      /**
       * `chat.join(name?)` → `{ name, peers }`: joins the room under `name` (made unique) or
       * `guest-<4 hex of the session id>`; the others hear `chat_joined`.
       */
      "chat.join"(this: CallContext, name?: unknown): JoinResult {
        const peer = this.peer;
        if (peer === undefined) throw new InvalidParamsError("chat.join is served by a server");
        return join(peer, name);
      },
    },
    attach(running) {
      if (server !== undefined) throw new Error("The chat room is already attached");
      server = running;
      running.on("chat", onChat);
    },
    names() {
      return [...members.values()].map((m) => m.name).sort();
    },
  };
}
