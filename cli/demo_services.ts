/**
 * The demo server's methods: the services the seed system offered (`greet`,
 * `long_running_task`, the `time` stream) plus `echo` and `health`, and the `peer_joined` /
 * `peer_left` events it broadcasts ({@link presenceEvents}).
 *
 * @module
 */

import { CancelledError, InvalidParamsError } from "../protocol/errors.ts";
import type { CallContext, Methods } from "../protocol/methods.ts";

/** Longest task the demo accepts (seconds). */
const MAX_TASK_SECONDS = 3600;
/** Most ticks one `time` stream may ask for. */
const MAX_TIME_COUNT = 1_000_000;
/** Longest interval between two ticks of `time` (ms): one hour. */
const MAX_TIME_INTERVAL_MS = 3_600_000;

/** Resolves after `ms`, or rejects with CANCELLED as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new CancelledError("Task cancelled"));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError("Task cancelled", { cause: signal.reason }));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Builds the demo methods. `started` is the server's start time (for `health`). */
export function demoServices(started = Date.now()): Methods {
  return {
    /** `greet(name)` → `"Hello, <name>!"`; a non-string name is a TypeError, as in the seed. */
    greet(name: unknown): string {
      if (typeof name !== "string") throw new TypeError("Name must be a string");
      return `Hello, ${name}!`;
    },
    /** Waits `seconds` (default 2) and reports it; cancelling the call stops it. */
    async long_running_task(this: CallContext, seconds: unknown = 2): Promise<string> {
      if (
        typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0 ||
        seconds > MAX_TASK_SECONDS
      ) {
        throw new InvalidParamsError(`seconds must be a number from 0 to ${MAX_TASK_SECONDS}`);
      }
      await sleep(seconds * 1000, this.signal);
      return `Task completed after ${seconds} seconds.`;
    },
    /**
     * Streams `count` (default 5) ticks `{ timestamp: <ISO 8601> }`, the first at once, then
     * one every `interval_ms` (default 1000). Cancelling the stream stops it at once.
     */
    time(
      this: CallContext,
      count: unknown = 5,
      interval_ms: unknown = 1000,
    ): AsyncGenerator<{ timestamp: string }, void> {
      if (
        typeof count !== "number" || !Number.isInteger(count) || count < 1 ||
        count > MAX_TIME_COUNT
      ) {
        throw new InvalidParamsError(`count must be an integer from 1 to ${MAX_TIME_COUNT}`);
      }
      if (
        typeof interval_ms !== "number" || !Number.isFinite(interval_ms) || interval_ms < 0 ||
        interval_ms > MAX_TIME_INTERVAL_MS
      ) {
        throw new InvalidParamsError(
          `interval_ms must be a number from 0 to ${MAX_TIME_INTERVAL_MS}`,
        );
      }
      // Checked here, before the stream starts: bad params are answered INVALID_PARAMS.
      return ticks(count, interval_ms, this.signal);
    },
    /** Returns its argument unchanged (bytes included). */
    echo(value: unknown): unknown {
      return value;
    },
    /** Liveness: status and uptime. */
    health(): { status: string; uptime_s: number } {
      return { status: "ok", uptime_s: Math.round((Date.now() - started) / 1000) };
    },
  };
}

/** The ticks of `time`: one now, then one per `intervalMs`; the wait ends when `signal` aborts. */
async function* ticks(
  count: number,
  intervalMs: number,
  signal: AbortSignal,
): AsyncGenerator<{ timestamp: string }, void> {
  for (let i = 0; i < count; i++) {
    if (i > 0) await sleep(intervalMs, signal);
    yield { timestamp: new Date().toISOString() };
  }
}

/** What the presence events need to know of a peer (a `Peer` of server.ts). */
export interface PresencePeer {
  /** Session id. */
  readonly id: string;
  /** `tcp`, `tls`, `unix`, … */
  readonly transport: string;
}

/** What the presence events need of the server (a `Server` of server.ts). */
export interface PresenceServer {
  /** The authenticated peers now. */
  readonly peers: readonly unknown[];
  /** Sends an event to every peer but `exclude` (a peer id). */
  broadcast(name: string, data?: unknown, options?: { exclude?: string }): number;
}

/** `serve()` hooks that announce peers joining and leaving. */
export interface PresenceEvents {
  /** For `serve({ onConnect })`: broadcasts `peer_joined` to every other peer. */
  onConnect(peer: PresencePeer): void;
  /** For `serve({ onDisconnect })`: broadcasts `peer_left` to the remaining peers. */
  onDisconnect(peer: PresencePeer, reason: Error | undefined): void;
  /** Gives the hooks the running server (events before that are not sent). */
  attach(server: PresenceServer): void;
}

/**
 * The demo server's join/leave events: `peer_joined` `{ id, transport, peers }` when a peer
 * has authenticated (to every other peer) and `peer_left` `{ id, reason, peers }` when one has
 * gone (`reason`: the error code, or `"closed"` for a normal close); `peers` counts the peers
 * connected after the change.
 */
export function presenceEvents(): PresenceEvents {
  let server: PresenceServer | undefined;
  return {
    attach(running) {
      server = running;
    },
    onConnect(peer) {
      server?.broadcast(
        "peer_joined",
        { id: peer.id, transport: peer.transport, peers: server.peers.length },
        { exclude: peer.id },
      );
    },
    onDisconnect(peer, reason) {
      const code = reason === undefined
        ? "closed"
        : (reason as { code?: unknown }).code ?? reason.name;
      server?.broadcast(
        "peer_left",
        {
          id: peer.id,
          reason: typeof code === "string" ? code : "error",
          peers: server.peers.length,
        },
        { exclude: peer.id },
      );
    },
  };
}
