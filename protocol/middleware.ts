/**
 * Middleware around calls, on either side of a connection:
 *
 * - {@link Middleware} wraps the handlers this side serves (the peer's requests and
 *   notifications): checks before (auth on method names, metadata), timing and logging after.
 * - {@link Interceptor} wraps the calls this side makes (`call()`, `stream()`, `open()`, and
 *   so the typed facade): add metadata, log, measure. For a stream, `next()` resolves with its
 *   final result once it has ended.
 *
 * Both are `(context, next) => result` onions, run in the order given; not calling `next`
 * short-circuits (throw to refuse the call with that error).
 *
 * @module
 */

import type { CallContext, MethodHandler, Params } from "./methods.ts";

/** What a {@link Middleware} sees: the handler's context plus its arguments. */
export interface MiddlewareContext extends CallContext {
  /** The arguments the handler will be called with (replace items to change them). */
  readonly args: unknown[];
  /** False for a notification (nobody waits for the result). */
  readonly expectsReply: boolean;
}

/**
 * Wraps the handlers this side serves. `next()` runs the rest of the chain and the handler
 * and resolves with its result (for a streaming handler: the stream, before it is sent).
 *
 * @example Refuse admin methods without a token, and time every call
 * ```ts ignore
 * const middleware: Middleware[] = [
 *   async (ctx, next) => {
 *     if (ctx.method.startsWith("admin.") && ctx.meta.token !== "s3cret") {
 *       throw new RpcError("PERMISSION_DENIED", "Not allowed");
 *     }
 *     const started = performance.now();
 *     try {
 *       return await next();
 *     } finally {
 *       console.log(ctx.method, performance.now() - started);
 *     }
 *   },
 * ];
 * ```
 */
export type Middleware = (ctx: MiddlewareContext, next: () => Promise<unknown>) => unknown;

/** What an {@link Interceptor} sees of an outgoing call. */
export interface OutgoingCall {
  /** The method called. */
  method: string;
  /** Its params. */
  params: Params;
  /** Metadata (headers) sent with it: add or change entries. */
  meta: Record<string, unknown>;
}

/**
 * Wraps the calls this side makes; `next()` sends the call and resolves with its result (for
 * a stream or channel: its final result, once it has ended).
 */
export type Interceptor = (call: OutgoingCall, next: () => Promise<unknown>) => Promise<unknown>;

/**
 * Runs `handler` with `ctx` as `this` through `middleware` (outermost first). Always
 * returns a promise.
 */
export function runMiddleware(
  middleware: readonly Middleware[],
  ctx: CallContext,
  args: unknown[],
  expectsReply: boolean,
  handler: MethodHandler,
): Promise<unknown> {
  const mctx = Object.create(ctx, {
    args: { value: args, enumerable: true },
    expectsReply: { value: expectsReply, enumerable: true },
  }) as MiddlewareContext;
  const step = (i: number): Promise<unknown> => {
    try {
      if (i === middleware.length) return Promise.resolve(handler.apply(ctx, args));
      let called = false;
      return Promise.resolve(middleware[i](mctx, () => {
        if (called) return Promise.reject(new TypeError("next() called twice"));
        called = true;
        return step(i + 1);
      }));
    } catch (err) {
      return Promise.reject(err);
    }
  };
  return step(0);
}

/** Sends `call` through `interceptors` (outermost first), `send` at the end. */
export function runInterceptors(
  interceptors: readonly Interceptor[],
  call: OutgoingCall,
  send: (call: OutgoingCall) => Promise<unknown>,
): Promise<unknown> {
  const step = (i: number): Promise<unknown> => {
    try {
      if (i === interceptors.length) return send(call);
      return interceptors[i](call, () => step(i + 1));
    } catch (err) {
      return Promise.reject(err);
    }
  };
  return step(0);
}
