/**
 * Middleware on both sides of a call. The server's middleware refuses `admin.*` methods
 * unless the call carries `meta.token`, and logs how long every call took; a client
 * interceptor attaches the token to the calls it makes and logs them. A client without the
 * interceptor is refused (`PERMISSION_DENIED`); the one with it gets through. Uses TRUST_ID
 * when set, otherwise a one-time random secret.
 *
 *     deno run -A examples/middleware.ts
 *
 * @module
 */

import {
  connect,
  generateSecret,
  type Interceptor,
  type Middleware,
  RpcError,
  serve,
} from "../mod.ts";

const secret = Deno.env.get("TRUST_ID") || generateSecret();
const adminToken = crypto.randomUUID(); // in real life: from your config, per user

/** Server side: an auth check before the handler, timing after it. */
const auth: Middleware = (ctx, next) => {
  if (ctx.method.startsWith("admin.") && ctx.meta.token !== adminToken) {
    throw new RpcError("PERMISSION_DENIED", `'${ctx.method}' needs an admin token`);
  }
  return next();
};
const timing: Middleware = async (ctx, next) => {
  const started = performance.now();
  let outcome = "ok";
  try {
    return await next();
  } catch (err) {
    outcome = err instanceof RpcError ? err.code : "error";
    throw err;
  } finally {
    const ms = (performance.now() - started).toFixed(2);
    console.log(`  [server] ${ctx.method} ${outcome} in ${ms} ms`);
  }
};

await using server = await serve({
  listen: "tcp://127.0.0.1:0",
  secret,
  logger: "warn",
  middleware: [timing, auth], // outermost first: timing also sees the refusals
  methods: {
    "status": () => ({ uptime: Math.round(performance.now()) }),
    "admin.flush": async (what: string) => {
      await new Promise((r) => setTimeout(r, 5));
      return `flushed ${what}`;
    },
  },
});

/** Client side: attach the token to every call, and log it. */
const withToken: Interceptor = async (call, next) => {
  call.meta.token = adminToken;
  console.log(`  [client] → ${call.method} (token attached)`);
  const result = await next();
  console.log(`  [client] ← ${call.method}`);
  return result;
};

await using guest = await connect(server.addresses[0], { secret, timeout: 5000 });
await using admin = await connect(server.addresses[0], {
  secret,
  timeout: 5000,
  interceptors: [withToken],
});

console.log("guest calls status:");
console.log(`  → ${JSON.stringify(await guest.call("status"))}`);

console.log("guest calls admin.flush:");
try {
  await guest.call("admin.flush", ["cache"]);
} catch (err) {
  if (!(err instanceof RpcError)) throw err;
  console.log(`  refused: ${err.code}: ${err.message}`);
}

console.log("admin calls admin.flush:");
console.log(`  → ${await admin.call("admin.flush", ["cache"])}`);
