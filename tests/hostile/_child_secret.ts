/**
 * Child process of secret_test.ts (cases 1 and 2): run with a controlled environment, it calls
 * `serve()` and `connect()` without a `secret` option and reports, as one JSON line on stdout,
 * what they threw and whether any socket work happened first:
 *
 * - `portFree`: the port `serve()` was asked to bind can still be bound afterwards;
 * - `dialed`: a listener `connect()` was aimed at received a connection before our sentinel.
 *
 * Usage: `deno run -A --no-config --no-lock _child_secret.ts`
 */
import { connect } from "../../client.ts";
import { serve } from "../../server.ts";
import { loadSecret } from "../../env/secret_source.ts";

function describe(err: unknown) {
  const e = err as { name?: string; code?: string; message?: string; stack?: string };
  return { name: e?.name, code: e?.code, message: e?.message, stack: e?.stack };
}

const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const freePort = (probe.addr as Deno.NetAddr).port;
probe.close();

const result: Record<string, unknown> = { trustIdDefined: Deno.env.get("TRUST_ID") !== undefined };

try {
  const server = await serve({ listen: `tcp://127.0.0.1:${freePort}`, logger: "silent" });
  await server.close();
  result.serve = { resolved: true };
} catch (err) {
  result.serve = describe(err);
}
try {
  Deno.listen({ hostname: "127.0.0.1", port: freePort }).close();
  result.portFree = true;
} catch {
  result.portFree = false;
}

const target = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const targetPort = (target.addr as Deno.NetAddr).port;
try {
  const client = await connect(`tcp://127.0.0.1:${targetPort}`, {
    logger: "silent",
    connectTimeout: 2000,
    handshakeTimeout: 500,
  });
  await client.close();
  result.connect = { resolved: true };
} catch (err) {
  result.connect = describe(err);
}
// The accept queue is FIFO: if connect() had dialed, its connection would come before ours.
const sentinel = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
const first = await target.accept();
result.dialed =
  (first.remoteAddr as Deno.NetAddr).port !== (sentinel.localAddr as Deno.NetAddr).port;
first.close();
sentinel.close();
target.close();

try {
  await loadSecret({ dotenv: true });
  result.loadSecret = { resolved: true };
} catch (err) {
  result.loadSecret = describe(err);
}

console.log(JSON.stringify(result));
