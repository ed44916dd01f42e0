/**
 * Liveness of one session (PROTOCOL.md §11, M.4): PINGs this side sends and the PONGs that
 * answer them, the heartbeat that presumes a silent peer dead, and the rate limit on the
 * peer's PINGs. The heartbeats of every session share one interval timer per tick period
 * (idle connections cost no timer of their own).
 *
 * @module
 */

import type { Timer } from "./bytes.ts";
import { ConnectionClosedError, ProtocolError } from "./errors.ts";
import { Kind } from "./messages.ts";

/** What {@link Heartbeat} needs from its session. */
export interface HeartbeatHost {
  /** Queues a PING or PONG. */
  send(kind: number, payload: Uint8Array): void;
  /** The peer is presumed dead: close with this error. */
  dead(err: ProtocolError): void;
  /** True while reading waits on this side's own backpressure (silence is then ours). */
  paused(): boolean;
}

/** Heartbeat settings (ms, counts). */
export interface HeartbeatLimits {
  /** A PING after this much inbound silence; 0 disables the heartbeat. */
  heartbeatInterval: number;
  /** Dead after this many intervals of silence. */
  heartbeatMisses: number;
  /** PINGs per second accepted from the peer. */
  maxPingsPerSecond: number;
}

/** The heartbeats ticking at one period, and the interval timer they share. */
interface Clock {
  timer: Timer;
  members: Set<Heartbeat>;
}

/** Shared clocks by tick period (ms). */
const clocks = new Map<number, Clock>();

function joinClock(period: number, heartbeat: Heartbeat): void {
  let clock = clocks.get(period);
  if (clock === undefined) {
    const members = new Set<Heartbeat>();
    const timer = setInterval(() => {
      const now = Date.now();
      for (const member of members) member.tick(now);
    }, period);
    clocks.set(period, clock = { timer, members });
  }
  clock.members.add(heartbeat);
}

function leaveClock(period: number, heartbeat: Heartbeat): void {
  const clock = clocks.get(period);
  if (clock?.members.delete(heartbeat) && clock.members.size === 0) {
    clearInterval(clock.timer);
    clocks.delete(period);
  }
}

/** PING/PONG and the heartbeat of one session. */
export class Heartbeat {
  #host: HeartbeatHost;
  #limits: HeartbeatLimits;
  #pings: Map<string, (err?: Error) => void> | undefined;
  #windowStart = 0;
  #windowCount = 0;
  #lastInbound = Date.now();
  #lastPingSent = 0;
  /** The shared clock's period, or 0 without a heartbeat (or once stopped). */
  #period = 0;

  /**
   * Starts the heartbeat: a PING after `interval` ms of inbound silence; after `misses`
   * intervals the peer is presumed dead (frozen, or a path that dropped it without a FIN).
   * Ticks at a quarter interval (at most 1 s), so detection stays within misses × interval
   * + 1 s.
   */
  constructor(host: HeartbeatHost, limits: HeartbeatLimits) {
    this.#host = host;
    this.#limits = limits;
    const interval = limits.heartbeatInterval;
    if (!(interval > 0)) return;
    this.#period = Math.max(10, Math.min(interval / 4, 1000));
    joinClock(this.#period, this);
  }

  /** One tick of the shared clock (not for callers: the clock calls it). */
  tick(now: number): void {
    try {
      const interval = this.#limits.heartbeatInterval;
      if (this.#host.paused()) this.#lastInbound = now;
      const idle = now - this.#lastInbound;
      if (idle >= interval * this.#limits.heartbeatMisses) {
        this.#host.dead(
          new ProtocolError(
            "PEER_TIMEOUT",
            `The peer sent nothing for ${idle} ms: connection presumed dead`,
          ),
        );
      } else if (idle >= interval && now - this.#lastPingSent >= interval) {
        this.#lastPingSent = now;
        this.#host.send(Kind.PING, crypto.getRandomValues(new Uint8Array(8)));
      }
    } catch {
      // A closing session may refuse the PING; the other sessions on this clock tick on.
    }
  }

  /** Something arrived from the peer. */
  touch(): void {
    this.#lastInbound = Date.now();
  }

  /** Sends a PING and resolves with the round-trip time in ms. */
  ping(timeout = 10_000): Promise<number> {
    const token = crypto.getRandomValues(new Uint8Array(8));
    const key = token.join(",");
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const pings = this.#pings ??= new Map<string, (err?: Error) => void>();
      const timer = setTimeout(() => {
        pings.delete(key);
        reject(new ProtocolError("PEER_TIMEOUT", "No PONG within the timeout"));
      }, timeout);
      pings.set(key, (err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(performance.now() - started);
      });
      this.#host.send(Kind.PING, token);
    });
  }

  /** The peer's PING: answered with a PONG. Throws `RATE_LIMITED` past the rate limit. */
  onPing(payload: Uint8Array): void {
    const now = Date.now();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    if (++this.#windowCount > this.#limits.maxPingsPerSecond) {
      throw new ProtocolError("RATE_LIMITED", "Too many PINGs from the peer");
    }
    this.#host.send(Kind.PONG, payload.slice());
  }

  /** A PONG: settles the PING it answers (unknown ones are ignored). */
  onPong(payload: Uint8Array): void {
    const key = payload.join(",");
    this.#pings?.get(key)?.();
    this.#pings?.delete(key);
  }

  /** The session closed: the timer stops and pending PINGs fail. */
  stop(message: string, sessionId: string): void {
    if (this.#period) leaveClock(this.#period, this);
    this.#period = 0;
    for (const settle of this.#pings?.values() ?? []) {
      settle(new ConnectionClosedError(`Ping failed: ${message}`, { sessionId }));
    }
    this.#pings = undefined;
  }
}
