/**
 * The Python WebSocket seed's demo (siyi-py-protocol: `ProtocolServer` and
 * `ProtocolClient`) in one program: a server on `ws://127.0.0.1:0/ws` and three clients
 * connecting over WebSocket.
 *
 * - Both sides send requests: clients call `get_server_info` on the server; the server calls
 *   `get_client_status` on each client as it connects (`peer.call` in `onConnect`, the seed's
 *   `send_request` in `on_client_connect`). An unknown command is answered with an error.
 * - Events both ways: `client.emit("user_action", …)`; the server answers that client with
 *   `peer.emit("notification", …)`.
 * - `server.broadcast("announcement", …)` reaches every client (`broadcast_event`), and
 *   `server.broadcastCall("ping_client", [], { timeout })` collects every client's answer
 *   (`broadcast_request`).
 * - Hooks: `onConnect` / `onDisconnect` print each client coming and going.
 *
 * Heartbeats and reconnecting are on by default (see `examples/reconnect.ts`). Uses TRUST_ID
 * when set, otherwise a one-time random secret.
 *
 *     deno run -A examples/ws_seed.ts
 *
 * @module
 */

import { type Client, connect, generateSecret, RpcError, serve } from "../mod.ts";

const secret = Deno.env.get("TRUST_ID") || generateSecret();

/** One promise per key, created by whichever side gets there first (hooks vs. main). */
const signals = new Map<string, PromiseWithResolvers<void>>();
function signal(key: string): PromiseWithResolvers<void> {
  let s = signals.get(key);
  if (s === undefined) signals.set(key, s = Promise.withResolvers<void>());
  return s;
}

/** Waits for `key` to be signalled, at most 5 s. */
async function until(key: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for ${key} after 5 s`)), 5000);
  });
  try {
    await Promise.race([signal(key).promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const startedAt = Date.now();

await using server = await serve({
  listen: "ws://127.0.0.1:0/ws",
  secret,
  logger: "warn",
  methods: {
    get_server_info: () => ({
      name: "ws-seed",
      clients: server.peers.length,
      uptime_ms: Date.now() - startedAt,
    }),
  },
  // The seed's on_client_connect: ask the new client for its status.
  async onConnect(peer) {
    console.log(`[hook] connected: ${peer.id.slice(0, 8)} over ${peer.transport}`);
    const status = await peer.call<{ name: string }>("get_client_status", [], { timeout: 2000 });
    peer.data.name = status.name;
    console.log(`  server → ${status.name}: get_client_status → ${JSON.stringify(status)}`);
    signal(`ready:${peer.id}`).resolve();
  },
  onDisconnect(peer, reason) {
    console.log(`[hook] disconnected: ${peer.data.name} (${reason?.message ?? "normal close"})`);
    signal(`gone:${peer.id}`).resolve();
  },
});
console.log(`server listening on ${server.addresses[0]}`);

// The seed's handle_event: answer the sender with a notification.
server.on("user_action", (peer, data) => {
  const { action, target } = data as { action: string; target: string };
  console.log(`  server ← ${peer.data.name}: event user_action ${JSON.stringify(data)}`);
  peer.emit("notification", `${peer.data.name}, your ${action} on ${target} was recorded`);
});

/** A client: serves the server's requests, records the events it gets. */
async function join(name: string): Promise<Client> {
  const client = await connect(server.addresses[0], {
    secret,
    timeout: 5000,
    methods: {
      get_client_status: () => ({ name, status: "running" }),
      ping_client: () => `pong from ${name}`,
    },
  });
  client.on("notification", (text) => {
    console.log(`  ${name} ← notification: ${text}`);
    signal(`notification:${name}`).resolve();
  });
  client.on("announcement", (data) => {
    announcements[name] = JSON.stringify(data);
    signal(`announcement:${name}`).resolve();
  });
  await until(`ready:${client.sessionId}`); // the server has asked for our status
  return client;
}

const announcements: Record<string, string> = {};
await using alice = await join("alice");
await using bob = await join("bob");
await using carol = await join("carol");
const clients = { alice, bob, carol };

console.log("requests, client → server:");
for (const [name, client] of Object.entries(clients)) {
  const info = await client.call("get_server_info");
  console.log(`  ${name} → server: get_server_info → ${JSON.stringify(info)}`);
}
try {
  await alice.call("get_player_list", [{ world: "overworld" }]);
} catch (err) {
  const code = err instanceof RpcError ? err.code : "error";
  console.log(`  alice → server: get_player_list → ${code} (${(err as Error).message})`);
}

console.log("events, both ways:");
alice.emit("user_action", { action: "click", target: "start-button" });
await until("notification:alice");

console.log("broadcast:");
const reached = server.broadcast("announcement", { text: "maintenance at 02:00" });
console.log(`  server.broadcast("announcement") sent to ${reached} clients`);
for (const name of Object.keys(clients)) {
  await until(`announcement:${name}`);
  console.log(`  ${name} ← announcement: ${announcements[name]}`);
}

console.log("broadcastCall:");
const answers = await server.broadcastCall<string>("ping_client", [], { timeout: 1000 });
const lines = [...answers].map(([peer, outcome]) =>
  `  ${peer.data.name}: ${outcome.status === "fulfilled" ? outcome.value : outcome.reason}`
);
const answered = [...answers.values()].filter((o) => o.status === "fulfilled").length;
console.log(`  ping_client: ${answered} of ${answers.size} clients answered`);
for (const line of lines.sort()) console.log(line);

console.log("leaving:");
for (const [name, client] of Object.entries(clients)) {
  const id = client.sessionId;
  await client.close();
  await until(`gone:${id}`);
  console.log(`  ${name} left; ${server.peers.length} still connected`);
}
