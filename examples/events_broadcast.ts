/**
 * Events both ways, and broadcasts: three clients join a chat room. A client emits `chat`;
 * the server's `server.on("chat", …)` relays it with `server.broadcast(…, { exclude })` to
 * everyone else. Then `server.broadcastCall("get_status")` asks every client at once with a
 * 500 ms deadline: two answer, one never does and gets `TIMEOUT` — without delaying the
 * others. Uses TRUST_ID when set, otherwise a one-time random secret.
 *
 *     deno run -A examples/events_broadcast.ts
 *
 * @module
 */

import { type Client, connect, generateSecret, RpcError, serve } from "../mod.ts";

const secret = Deno.env.get("TRUST_ID") || generateSecret();

await using server = await serve({ listen: "tcp://127.0.0.1:0", secret, logger: "warn" });

// The server learns each client's name from a `join` event (events on one connection keep
// their order, so `join` always arrives before that client's `chat`).
const names = new Map<string, string>(); // peer id → name
server.on("join", (peer, name) => {
  names.set(peer.id, String(name));
  peer.emit("welcome", `hello ${name}, ${server.peers.length} here`); // server → one client
});
server.on("chat", (peer, text) => {
  const from = names.get(peer.id) ?? peer.id;
  const sent = server.broadcast("chat", { from, text }, { exclude: peer });
  console.log(`server: relayed ${JSON.stringify(text)} from ${from} to ${sent} peers`);
});

/** A chat client; `silent` never answers `get_status` (until the caller gives up). */
async function join(name: string, silent = false): Promise<Client> {
  const client = await connect(server.addresses[0], {
    secret,
    timeout: 5000,
    methods: {
      get_status() {
        if (!silent) return { name, mood: "fine" };
        // Busy forever — but it listens to `this.signal`, which aborts when the caller's
        // deadline passes, so the handler ends instead of leaking.
        const signal = this.signal;
        return new Promise((_, reject) =>
          signal.addEventListener("abort", () => {
            console.log(`${name}: get_status abandoned (${signal.reason?.code ?? "aborted"})`);
            reject(signal.reason);
          }, { once: true })
        );
      },
    },
  });
  client.on("welcome", (text) => console.log(`${name} got welcome: ${text}`));
  client.emit("join", name);
  return client;
}

await using alice = await join("alice");
await using bob = await join("bob");
await using carol = await join("carol", true);
const clients = { alice, bob, carol };

// Each client records the chat lines it receives; wait (bounded) until the expected ones came.
const received: Record<string, string[]> = { alice: [], bob: [], carol: [] };
const arrived = Promise.withResolvers<void>();
for (const [name, client] of Object.entries(clients)) {
  client.on("chat", (data) => {
    const { from, text } = data as { from: string; text: string };
    received[name].push(`${from}: ${text}`);
    if (Object.values(received).flat().length === 4) arrived.resolve();
  });
}
// Make sure every `join` reached the server before chatting.
for (let i = 0; i < 500 && names.size < 3; i++) await new Promise((r) => setTimeout(r, 10));
if (names.size < 3) throw new Error("not every client joined within 5 s");

alice.emit("chat", "hi all!"); // → bob and carol
bob.emit("chat", "hey alice"); // → alice and carol: 4 lines in all
const timer = setTimeout(() => arrived.reject(new Error("chat lines missing after 5 s")), 5000);
await arrived.promise.finally(() => clearTimeout(timer));
for (const [name, lines] of Object.entries(received)) {
  // Sorted: alice's and bob's lines travel on different connections, in either order.
  console.log(`${name} received: ${lines.length ? lines.sort().join(" | ") : "(nothing)"}`);
}

// Ask everyone at once; each peer has its own 500 ms deadline.
const started = performance.now();
const statuses = await server.broadcastCall("get_status", [], { timeout: 500 });
console.log(`broadcastCall settled in ${Math.round(performance.now() - started)} ms:`);
for (const [peer, outcome] of statuses) {
  const name = names.get(peer.id) ?? peer.id;
  if (outcome.status === "fulfilled") {
    console.log(`  ${name}: answered ${JSON.stringify(outcome.value)}`);
  } else {
    const err = outcome.reason as RpcError;
    console.log(`  ${name}: ${err instanceof RpcError ? err.code : "error"} (${err.message})`);
  }
}
