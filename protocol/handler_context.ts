/**
 * The `this` of a handler ({@link CallContext}). What belongs to the call (its method,
 * deadline, metadata and running state) is on the object; what belongs to the session (its id,
 * the peer, calling back) is read through one prototype shared by every session, so a session
 * that serves calls holds no prototype or closures of its own for them.
 *
 * @module
 */

import type { RpcError } from "./errors.ts";
import type { ChunkBuffer, SendCredit } from "./flow.ts";
import type { CallContext, Params } from "./methods.ts";
import { TimeoutEntry } from "./timeout_lists.ts";

/** A running handler's state; it carries the handler's deadline, if any. */
export class Running extends TimeoutEntry {
  controller: AbortController | undefined = undefined;
  cancelled = false;
  reason: RpcError | undefined = undefined;
  /** Counted as an open stream, not as a call in flight (it waits on the peer's credit). */
  streaming = false;
  /** What the caller sends on a channel. */
  input: ChunkBuffer<unknown> | undefined = undefined;
  /** The stream being sent, to stop it on cancel. */
  iterator: AsyncIterator<unknown> | undefined = undefined;

  constructor(
    /** The call's id. */
    readonly id: number,
    /** The caller waits for an answer (a request, not a notification). */
    readonly reply: boolean,
    /** The method called. */
    readonly method: string,
    /** Answers are compressed (the request was). */
    readonly compress: boolean,
    /** Credit the caller granted for chunks (a `stream()` or `open()` call). */
    readonly credit: SendCredit | undefined,
  ) {
    super();
  }
}

/** What a handler context reads from its session. */
export interface ContextHost {
  /** Session id (hex). */
  readonly sessionId: string;
  /** On the server, the client calling (a `Peer`); undefined on a client. */
  readonly peer: unknown;
  /** Calls back the peer. */
  call(method: string, params?: Params): Promise<unknown>;
  /** Notifies the peer. */
  notify(method: string, params?: Params): void;
  /** Sends the caller an event. */
  emit(name: string, data?: unknown): void;
}

const HOST = Symbol("session");
const STATE = Symbol("call state");

const EMPTY_INPUT: AsyncIterable<unknown> = {
  [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ value: undefined, done: true }) }),
};

/**
 * A handler's context. `call`, `notify` and `emit` are getters that return functions bound to
 * the session, so `const { call } = this` works as it reads.
 */
class HandlerContext {
  readonly [HOST]: ContextHost;
  readonly [STATE]: Running;
  readonly method: string;
  readonly deadline: number | undefined;
  readonly meta: Readonly<Record<string, unknown>>;

  constructor(
    host: ContextHost,
    state: Running,
    method: string,
    deadline: number | undefined,
    meta: Record<string, unknown>,
  ) {
    this[HOST] = host;
    this[STATE] = state;
    this.method = method;
    this.deadline = deadline;
    this.meta = meta;
  }

  get sessionId(): string {
    return this[HOST].sessionId;
  }

  get peer(): unknown {
    return this[HOST].peer;
  }

  get call(): (method: string, params?: Params) => Promise<unknown> {
    const host = this[HOST];
    return (method, params) => host.call(method, params);
  }

  get notify(): (method: string, params?: Params) => void {
    const host = this[HOST];
    return (method, params) => host.notify(method, params);
  }

  get emit(): (name: string, data?: unknown) => void {
    const host = this[HOST];
    return (name, data) => host.emit(name, data);
  }

  get input(): AsyncIterable<unknown> {
    const input = this[STATE].input;
    if (input === undefined) return EMPTY_INPUT;
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => input.next(),
        return: () => {
          input.discard();
          return Promise.resolve({ value: undefined, done: true });
        },
      }),
    };
  }

  get signal(): AbortSignal {
    const state = this[STATE];
    if (state.controller === undefined) {
      state.controller = new AbortController();
      if (state.reason) state.controller.abort(state.reason);
    }
    return state.controller.signal;
  }
}

/** The context a handler runs with: `this` in the handler. */
export function handlerContext(
  host: ContextHost,
  state: Running,
  method: string,
  deadline: number | undefined,
  meta: Record<string, unknown>,
): CallContext {
  return new HandlerContext(host, state, method, deadline, meta) as unknown as CallContext;
}
