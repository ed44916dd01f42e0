/**
 * Server-side admission before any X25519 work (PROTOCOL.md §10): caps on connections not yet
 * authenticated (in total and per peer address), and the per-peer budget of failed proofs
 * after which a peer is answered RATE_LIMITED at once for a while.
 *
 * @module
 */

import {
  DEFAULT_AUTH_FAILURE_BUDGET,
  DEFAULT_AUTH_FAILURE_WINDOW,
  DEFAULT_MAX_PREAUTH,
  DEFAULT_MAX_PREAUTH_PER_PEER,
} from "./limits.ts";

/** Options of {@link Admission}. */
export interface AdmissionOptions {
  /** Connections not yet authenticated, in total. @default 256 */
  maxPreauth?: number;
  /** Connections not yet authenticated, per peer address. @default 32 */
  maxPreauthPerPeer?: number;
  /** Failed proofs per peer within the window before RATE_LIMITED. @default 10 */
  authFailureBudget?: number;
  /** The window, and the lockout that follows (ms). @default 60000 */
  authFailureWindow?: number;
  /** Clock (tests). */
  now?: () => number;
}

/** Peers tracked at most; the oldest entries are dropped beyond it. */
const MAX_TRACKED_PEERS = 10_000;

/** Tracks pre-authentication connections and failed proofs per peer. */
export class Admission {
  #maxPreauth: number;
  #maxPerPeer: number;
  #budget: number;
  #window: number;
  #now: () => number;
  #preauth = 0;
  #perPeer = new Map<string, number>();
  #failures = new Map<string, { times: number[]; lockedUntil: number }>();
  #checking = new Map<string, number>();
  #waiters: (() => void)[] = [];

  /** @param options caps and budget */
  constructor(options: AdmissionOptions = {}) {
    this.#maxPreauth = options.maxPreauth ?? DEFAULT_MAX_PREAUTH;
    this.#maxPerPeer = options.maxPreauthPerPeer ?? DEFAULT_MAX_PREAUTH_PER_PEER;
    this.#budget = options.authFailureBudget ?? DEFAULT_AUTH_FAILURE_BUDGET;
    this.#window = options.authFailureWindow ?? DEFAULT_AUTH_FAILURE_WINDOW;
    this.#now = options.now ?? Date.now;
  }

  /** Connections currently in their handshake. */
  get preauth(): number {
    return this.#preauth;
  }

  /**
   * Takes a pre-authentication slot for a peer (`undefined` host: Unix, global cap only).
   * Returns false when a cap is reached (answer BUSY).
   */
  enter(host: string | undefined): boolean {
    if (this.#preauth >= this.#maxPreauth) return false;
    if (host !== undefined) {
      const n = this.#perPeer.get(host) ?? 0;
      if (n >= this.#maxPerPeer) return false;
      this.#perPeer.set(host, n + 1);
    }
    this.#preauth++;
    return true;
  }

  /** Releases the slot taken by {@link enter}. */
  leave(host: string | undefined): void {
    this.#preauth--;
    if (host === undefined) return;
    const n = (this.#perPeer.get(host) ?? 1) - 1;
    if (n <= 0) this.#perPeer.delete(host);
    else this.#perPeer.set(host, n);
  }

  /**
   * True while the peer is locked out after too many failed proofs. Unix peers have no
   * address and are never locked out (one local client must not lock out the others).
   */
  isRateLimited(host: string | undefined): boolean {
    if (host === undefined) return false;
    const entry = this.#failures.get(host);
    return entry !== undefined && this.#now() < entry.lockedUntil;
  }

  /**
   * Takes a slot to check one proof from `host`. At most `budget − recent failures` proofs of
   * one address are checked at once, so a burst of guesses cannot outrun the budget; extra
   * attempts wait for a slot (the handshake deadline bounds the wait). Resolves false when the
   * peer is locked out. Pair every `true` with {@link endProof}.
   */
  async beginProof(host: string | undefined): Promise<boolean> {
    if (host === undefined) return true;
    for (;;) {
      if (this.isRateLimited(host)) return false;
      const checking = this.#checking.get(host) ?? 0;
      if (this.#recentFailures(host) + checking < this.#budget) {
        this.#checking.set(host, checking + 1);
        return true;
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Releases a slot from {@link beginProof}; a failed proof counts against the budget. */
  endProof(host: string | undefined, ok: boolean): void {
    if (host === undefined) return;
    const checking = (this.#checking.get(host) ?? 1) - 1;
    if (checking <= 0) this.#checking.delete(host);
    else this.#checking.set(host, checking);
    if (!ok) this.recordFailure(host);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  #recentFailures(host: string): number {
    const now = this.#now();
    const entry = this.#failures.get(host);
    return entry ? entry.times.filter((t) => now - t < this.#window).length : 0;
  }

  /** Counts one failed proof for the peer. */
  recordFailure(host: string | undefined): void {
    if (host === undefined) return;
    const now = this.#now();
    const entry = this.#failures.get(host) ?? { times: [], lockedUntil: 0 };
    entry.times = entry.times.filter((t) => now - t < this.#window);
    entry.times.push(now);
    if (entry.times.length >= this.#budget) entry.lockedUntil = now + this.#window;
    this.#failures.delete(host);
    this.#failures.set(host, entry);
    if (this.#failures.size > MAX_TRACKED_PEERS) {
      this.#failures.delete(this.#failures.keys().next().value!);
    }
  }
}
