/**
 * The client rides through losing its server: it reconnects by itself, calls made meanwhile
 * wait within their timeout, calls cut off in flight fail unless declared idempotent (no
 * method runs twice behind the caller's back), and every call settles.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { type ClientStatus, connect, type StatusEvent } from "../client.ts";
import {
  AuthenticationError,
  CallTimeoutError,
  ConnectionClosedError,
  ResourceExhaustedError,
  RpcError,
} from "../protocol/errors.ts";
import type { CallContext, Methods } from "../protocol/methods.ts";
import { serve } from "../server.ts";
import { CANARY_SECRET } from "./_helpers.ts";

const reconnect = { initialDelay: 20, maxDelay: 100, authRetryDelay: 300 };

function counters() {
  const runs: Record<string, number> = {};
  const methods = {
    echo: (v: unknown) => v,
    charge(this: CallContext, id: string) {
      runs[id] = (runs[id] ?? 0) + 1;
      return new Promise((resolve) => setTimeout(() => resolve(id), 200));
    },
  };
  return { runs, methods };
}

function startOn(
  listen: string,
  methods: Methods,
  secret = CANARY_SECRET,
) {
  return serve({ listen, secret, methods, logger: "silent" });
}

const root = new URL("../", import.meta.url).pathname;
const env = { TRUST_ID: CANARY_SECRET, NO_COLOR: "1" };

/** Starts `server.ts` as a process; `ready` resolves with the address it printed. */
function spawn(listen: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}server.ts`, "--listen", listen, "--log-level", "silent"],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const ready = (async () => {
    let text = "";
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      const m = /Serving on (\S+)/.exec(text);
      if (m) {
        reader.releaseLock();
        child.stdout.cancel().catch(() => {});
        return m[1];
      }
    }
    throw new Error("the server did not start");
  })();
  return { child, ready };
}

Deno.test("reconnect: a restarted server is found again; calls during the outage wait", async () => {
  const { runs, methods } = counters();
  let server = await startOn("tcp://127.0.0.1:0", methods);
  const address = server.addresses[0];
  const client = await connect(address, { secret: CANARY_SECRET, reconnect, timeout: 5000 });
  const statuses: ClientStatus[] = [];
  client.onStatus((e) => statuses.push(e.status));
  const firstSession = client.sessionId;
  assertEquals(await client.call("echo", [1]), 1);

  await server.close({ timeout: 100 });
  const duringOutage = client.call("echo", ["waited"]);
  await new Promise((r) => setTimeout(r, 150)); // a few failed attempts
  server = await startOn(address, methods);
  assertEquals(await duringOutage, "waited");
  assertEquals(client.status, "connected");
  assert(client.sessionId !== firstSession, "a fresh handshake gives a new session");
  assert(client.reconnects >= 1);
  assertEquals(statuses[0], "disconnected");
  assert(statuses.includes("reconnecting") && statuses.includes("connecting"));
  assertEquals(statuses.at(-1), "connected");
  assertEquals(runs, {});
  await client.close();
  await server.close();
  assertEquals(client.status, "closed");
});

Deno.test("reconnect: a call cut off in flight fails unless idempotent; none runs twice", async () => {
  const { runs, methods } = counters();
  const server = await startOn("tcp://127.0.0.1:0", methods);
  const client = await connect(server.addresses[0], {
    secret: CANARY_SECRET,
    reconnect,
    idempotent: ["echo"],
    timeout: 5000,
  });
  const plain = client.call("charge", ["plain"]);
  const safe = client.call("charge", ["safe"], { idempotent: true });
  await new Promise((r) => setTimeout(r, 50));
  for (const peer of server.peers) peer.close(); // the connection drops under both calls
  const err = await assertRejects(() => plain, ConnectionClosedError);
  assert(!err.retryable, "an executed call is not marked retryable");
  assertEquals(await safe, "safe");
  assertEquals(runs, { plain: 1, safe: 2 }, "only the idempotent call ran again");
  await client.close();
  await server.close();
});

Deno.test("reconnect: a retry starts over from what the caller sent, interceptors and all", async () => {
  const seen: unknown[] = [];
  const server = await startOn("tcp://127.0.0.1:0", {
    slowEcho(v: unknown) {
      seen.push(v);
      return new Promise((resolve) => setTimeout(() => resolve(v), 200));
    },
  });
  const client = await connect(server.addresses[0], {
    secret: CANARY_SECRET,
    reconnect,
    timeout: 5000,
    idempotent: ["slowEcho"],
    interceptors: [(call, next) => {
      call.params = [`${(call.params as string[])[0]}+i`];
      return next();
    }],
  });
  const answer = client.call("slowEcho", ["a"]);
  await new Promise((r) => setTimeout(r, 50));
  for (const peer of server.peers) peer.close();
  assertEquals(await answer, "a+i");
  assertEquals(seen, ["a+i", "a+i"], "rewritten once per attempt, never twice");
  await client.close();
  await server.close();
});

Deno.test("reconnect: a retried call keeps its first deadline", async () => {
  const runs: number[] = [];
  let server = await startOn("tcp://127.0.0.1:0", {
    hang: () => new Promise(() => {}),
  });
  const address = server.addresses[0];
  const client = await connect(address, { secret: CANARY_SECRET, reconnect, idempotent: ["hang"] });
  const started = Date.now();
  const call = client.call("hang", [], { timeout: 600 });
  await new Promise((r) => setTimeout(r, 100));
  await server.close({ timeout: 50 }); // cut off in flight: idempotent, so it waits to retry
  server = await startOn(address, {
    hang: () => (runs.push(Date.now() - started), new Promise(() => {})),
  });
  await assertRejects(() => call, CallTimeoutError);
  const took = Date.now() - started;
  assert(took >= 590 && took < 1_500, `failed after ${took} ms, not at its first deadline`);
  assertEquals(runs.length, 1, "sent again once, on the new connection");
  await client.close();
  await server.close();
});

Deno.test("reconnect: a server killed with SIGKILL and restarted; no call hangs", async () => {
  const first = spawn("tcp://127.0.0.1:0");
  const address = await first.ready;
  const client = await connect(address, { secret: CANARY_SECRET, reconnect, timeout: 3000 });
  const outcomes = { ok: 0, failed: new Map<string, number>() };
  let stop = false;
  const callers = Array.from({ length: 8 }, async (_, i) => {
    for (let n = 0; n < 2000 && !stop; n++) {
      try {
        assertEquals(await client.call("greet", [`c${i}`]), `Hello, c${i}!`);
        outcomes.ok++;
      } catch (err) {
        const code = err instanceof RpcError ? err.code : String(err);
        outcomes.failed.set(code, (outcomes.failed.get(code) ?? 0) + 1);
      }
    }
  });
  await new Promise((r) => setTimeout(r, 300));
  first.child.kill("SIGKILL");
  await first.child.status;
  const okBefore = outcomes.ok;
  await new Promise((r) => setTimeout(r, 300));
  const second = spawn(address);
  await second.ready;
  await client.waitConnected({ timeout: 10_000 });
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await Promise.all(callers); // every call settled: none hung
  assert(outcomes.ok > okBefore, "calls succeed again after the restart");
  for (const code of outcomes.failed.keys()) {
    assert(["CONNECTION_CLOSED", "TIMEOUT"].includes(code), `unexpected failure ${code}`);
  }
  assert(client.reconnects >= 1);
  await client.close();
  second.child.kill("SIGTERM");
  assertEquals((await second.child.status).code, 0);
});

Deno.test("reconnect: limits and failures while the server is away", async (t) => {
  const { methods } = counters();
  let server = await startOn("tcp://127.0.0.1:0", methods);
  const address = server.addresses[0];
  const events: StatusEvent[] = [];
  const client = await connect(address, {
    secret: CANARY_SECRET,
    reconnect: { ...reconnect, maxQueuedCalls: 2 },
    timeout: 5000,
  });
  const gone = Promise.withResolvers<void>();
  client.onStatus((e) => {
    events.push(e);
    if (e.status === "disconnected") gone.resolve();
  });
  await server.close({ timeout: 100 });
  await gone.promise;

  await t.step("waitConnected times out while the server is down", async () => {
    await assertRejects(() => client.waitConnected({ timeout: 100 }), CallTimeoutError);
  });

  await t.step("calls waiting for the connection are bounded", async () => {
    const waiting = [
      client.call("echo", [1], { timeout: 150 }),
      client.call("echo", [2], { timeout: 150 }),
    ];
    await assertRejects(() => client.call("echo", [3]), ResourceExhaustedError);
    for (const w of waiting) await assertRejects(() => w, CallTimeoutError);
  });

  await t.step("an authentication failure is retried only slowly", async () => {
    server = await startOn(address, methods, `${CANARY_SECRET}-rotated`);
    const deadline = Date.now() + 5000;
    while (!events.some((e) => e.reason instanceof AuthenticationError) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const next = events.find((e) =>
      e.status === "reconnecting" && e.reason instanceof AuthenticationError
    );
    assert(next !== undefined, "an AUTH_FAILED attempt is reported");
    assertEquals(next?.delay, reconnect.authRetryDelay);
  });

  await client.close();
  await server.close();
  await assertRejects(() => client.call("echo", [1]), ConnectionClosedError);
});

Deno.test("reconnect: graceful restart (SIGTERM) under 32 callers loses no call", async () => {
  const first = spawn("tcp://127.0.0.1:0");
  const address = await first.ready;
  const client = await connect(address, { secret: CANARY_SECRET, reconnect, timeout: 10_000 });
  let ok = 0;
  const failures: string[] = [];
  let stop = false;
  const callers = Array.from({ length: 32 }, async (_, i) => {
    for (let n = 0; n < 500 && !stop; n++) {
      try {
        const done = await client.call("long_running_task", [0.02]);
        assertEquals(done, "Task completed after 0.02 seconds.");
        ok++;
      } catch (err) {
        failures.push(`${i}: ${err instanceof RpcError ? err.code : err}`);
      }
    }
  });
  await new Promise((r) => setTimeout(r, 300));
  first.child.kill("SIGTERM"); // drains: calls in flight finish, later ones are refused
  const second = spawn(address);
  await second.ready;
  assertEquals((await first.child.status).code, 0, "the old server exits cleanly");
  const okAtRestart = ok;
  await client.waitConnected({ timeout: 10_000 });
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await Promise.all(callers);
  assertEquals(failures, [], "no call was lost");
  assert(ok > okAtRestart, "calls continue on the new server");
  await client.close();
  second.child.kill("SIGTERM");
  assertEquals((await second.child.status).code, 0);
});
