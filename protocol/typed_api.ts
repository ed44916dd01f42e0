/**
 * A typed facade over a connection, without code generation: `client.api<typeof methods>()`
 * turns the server's method table *type* into functions whose params and results TypeScript
 * checks. Methods that stream (async generators, or handlers returning an async iterable or
 * a `ReadableStream`) are typed as {@link ApiStream}s: iterate them with `for await`.
 *
 * At run time every call is sent as one that may stream (it grants credit): a plain
 * handler answers with its value, a streaming one with chunks. Awaiting a call gives the
 * value — or, for a streaming method, the {@link RpcStream} itself.
 *
 * @module
 */

import type { MethodDefinition, Methods, Params } from "./methods.ts";
import type { StreamOptions } from "./outgoing_calls.ts";
import type { RpcStream } from "./rpc_stream.ts";

/** The handler type of a method-table entry (a function, or a definition's `handler`). */
export type HandlerOf<E> = E extends MethodDefinition<infer H> ? H : E;

/** The final value of a generator (its `return`), or `undefined`. */
export type StreamResultOf<S> = S extends AsyncGenerator<unknown, infer R, unknown> ? R
  : undefined;

/** A streaming call: iterate it; awaiting it gives the {@link RpcStream} once it streams. */
export type ApiStream<T, R = unknown> = RpcStream<T, R> & PromiseLike<RpcStream<T, R>>;

/** What a call to a method returning `R` gives on the caller's side. */
export type ApiResult<R> = Awaited<R> extends AsyncIterable<infer T>
  ? ApiStream<T, StreamResultOf<Awaited<R>>>
  : Promise<Awaited<R>>;

/** The caller's view of one method. */
export type ApiMethod<F> = F extends (...args: infer A) => infer R ? (...args: A) => ApiResult<R>
  : never;

/** The caller's view of a method table: `Api<typeof methods>`. */
export type Api<M> = { readonly [K in keyof M & string]: ApiMethod<HandlerOf<M[K]>> };

/** Starts a call that may stream: `client.stream` or `session.stream` bound to a side. */
export type OpenCall = (method: string, params: Params, options?: StreamOptions) => RpcStream;

/**
 * Builds the typed facade. Any property name is a method name; `then` and symbols are not,
 * so the facade itself is never mistaken for a promise.
 *
 * @example
 * ```ts ignore
 * const api = createApi<typeof methods>((m, p, o) => client.stream(m, p, o));
 * const greeting: string = await api.greet("Alice");
 * for await (const tick of api.time(3, 100)) console.log(tick.timestamp);
 * ```
 */
export function createApi<M extends Methods = Methods>(
  open: OpenCall,
  options: StreamOptions = {},
): Api<M> {
  const cache = new Map<string, unknown>();
  const target = Object.create(null) as Record<string, unknown>;
  return new Proxy(target, {
    get(_target, key) {
      if (typeof key !== "string" || key === "then") return undefined;
      let fn = cache.get(key);
      if (fn === undefined) {
        fn = (...args: unknown[]) => apiCall(open(key, args, options));
        cache.set(key, fn);
      }
      return fn;
    },
    has: () => false,
    set: () => false,
    ownKeys: () => [],
  }) as Api<M>;
}

/**
 * Makes a stream awaitable: the plain value, or the stream itself when it streams (its
 * `then` is removed first, so awaiting it stops there).
 */
function apiCall(stream: RpcStream): RpcStream & PromiseLike<unknown> {
  let answer: Promise<unknown> | undefined;
  const awaitable = stream as RpcStream & { then?: unknown };
  Object.defineProperty(awaitable, "then", {
    configurable: true,
    value: (onFulfilled?: (v: unknown) => unknown, onRejected?: (e: unknown) => unknown) => {
      answer ??= stream.streaming.then((streamed) => {
        if (!streamed) return stream.result;
        delete awaitable.then;
        return stream;
      });
      return answer.then(onFulfilled, onRejected);
    },
  });
  return awaitable as RpcStream & PromiseLike<unknown>;
}
