/**
 * The chat seeds (Async Socket Chat, and the Python socket framework) in one program: one
 * server listening on TCP and on a Unix socket at once, and a tiny chat room built on events.
 * alice joins over TCP, bob over the Unix socket; both end up in the same room:
 *
 * - a client sends `emit("join", name)`, then `emit("chat", { text })`;
 * - the server broadcasts `chat_joined`, and every chat line as `{ from, text }`, to everyone —
 *   the sender included, so each screen shows the room's order;
 * - when a client leaves, `onDisconnect` broadcasts a `chat_left` notice to the others.
 *
 * The demo server (`deno run -A server.ts`) serves the same kind of room for
 * `client.ts chat` and `client.ts file` (`cli/chat_room.ts`: names are checked and made
 * unique, joining is a `chat.join` call, messages carry the time).
 *
 * The transcript is printed as each client saw it. (The interactive chat lives in the CLI;
 * this is the whole room in a few lines.) Uses TRUST_ID when set, otherwise a one-time random
 * secret.
 *
 *     deno run -A examples/chat.ts
 *
 * @module
 */

import { type Client, connect, generateSecret, serve } from "../mod.ts";

const secret = Deno.env.get("TRUST_ID") || generateSecret();

// The Unix socket lives in a fresh temp dir, removed at the end (after the server closes:
// `await using` disposes in reverse order).
const dir = await Deno.makeTempDir({ prefix: "trust-rpc-chat-" });
await using _tempDir = {
  [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
};

// ── The room ─────────────────────────────────────────────────────────────────────────────────

await using server = await serve({
  listen: ["tcp://127.0.0.1:0", `unix://${dir}/chat.sock`],
  secret,
  logger: "warn",
  onDisconnect(peer) {
    // The peer is already out of `server.peers`: the notice goes to the others.
    if (typeof peer.data.name === "string") server.broadcast("chat_left", { name: peer.data.name });
  },
});
server.on("join", (peer, name) => {
  peer.data.name = String(name);
  server.broadcast("chat_joined", { name: peer.data.name, via: peer.transport });
});
server.on("chat", (peer, data) => {
  if (typeof peer.data.name !== "string") return; // not in the room yet
  server.broadcast("chat", { from: peer.data.name, text: (data as { text: string }).text });
});
console.log(`server: listening on ${server.addresses.join(" and ")}`);

// ── The clients ──────────────────────────────────────────────────────────────────────────────

/** A chat client and what its screen shows. */
interface Member extends AsyncDisposable {
  name: string;
  via: string;
  client: Client;
  screen: string[];
}

async function join(name: string, address: string): Promise<Member> {
  const client = await connect(address, { secret, timeout: 5000 });
  const screen: string[] = [];
  client.on("chat_joined", (data) => {
    const { name, via } = data as { name: string; via: string };
    screen.push(`* ${name} joined (${via})`);
  });
  client.on("chat", (data) => {
    const { from, text } = data as { from: string; text: string };
    screen.push(`<${from}> ${text}`);
  });
  client.on("chat_left", (data) => screen.push(`* ${(data as { name: string }).name} left`));
  client.emit("join", name);
  const via = address.split(":")[0];
  return { name, via, client, screen, [Symbol.asyncDispose]: () => client.close() };
}

/** Waits (at most 5 s) until every member's screen shows `line`. */
async function seenBy(members: Member[], line: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (members.every((m) => m.screen.includes(line))) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`"${line}" did not reach everyone within 5 s`);
}

await using alice = await join("alice", server.addresses[0]); // TCP
await seenBy([alice], "* alice joined (tcp)");
await using bob = await join("bob", server.addresses[1]); // Unix socket
await seenBy([alice, bob], "* bob joined (unix)");

/** One chat line, sent and seen by everyone before the next (so the screens are in order). */
async function say(member: Member, text: string): Promise<void> {
  member.client.emit("chat", { text });
  await seenBy([alice, bob], `<${member.name}> ${text}`);
}

await say(alice, "hi bob! I'm on TCP");
await say(bob, "hey alice, Unix socket here");
await say(alice, "same room either way");
await say(bob, "gotta go, bye!");

await bob.client.close();
await seenBy([alice], "* bob left");

for (const member of [alice, bob]) {
  console.log(`\n${member.name}'s screen (${member.via}):`);
  for (const line of member.screen) console.log(`  ${line}`);
}
