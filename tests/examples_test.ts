/** Every example runs to completion as its own process and prints what it promises. */
import { assert, assertEquals } from "@std/assert";
import { denoCommand } from "./_helpers.ts";

const root = new URL("../", import.meta.url).pathname;

async function runExample(file: string): Promise<{ code: number; out: string }> {
  const result = await denoCommand(["run", "-A", `${root}examples/${file}`], {
    signal: AbortSignal.timeout(60_000),
  }).output();
  const text = new TextDecoder();
  return { code: result.code, out: text.decode(result.stdout) + text.decode(result.stderr) };
}

const expected: Record<string, string[]> = {
  "rpc_demo.ts": [
    "Async 'greet' result: Hello, Alice!",
    "Error test successful: METHOD_NOT_FOUND: Method 'non_existent_function' not found",
  ],
  "in_process.ts": ["Hello, Deno!", "checksum: 256", "METHOD_NOT_FOUND"],
  "reconnect.ts": ["status: reconnecting", "status: connected", "after the restart:"],
  "pool.ts": ["all up: answered by", "server-b stopped", "one down: answered by", "back again:"],
  "events_broadcast.ts": [
    "alice got welcome: hello alice",
    'server: relayed "hi all!" from alice to 2 peers',
    "alice received: bob: hey alice",
    "bob received: alice: hi all!",
    "carol received: alice: hi all! | bob: hey alice",
    'alice: answered {"name":"alice","mood":"fine"}',
    'bob: answered {"name":"bob","mood":"fine"}',
    "carol: TIMEOUT (Call to 'get_status' timed out after 500 ms)",
  ],
  "streaming.ts": [
    "server: producer stopped after 3 of 3 ticks",
    "of 1000 ticks", // the cancelled generator ran its `finally`
    "client: stream cancelled (CANCELLED)",
    "readable gave 2 chunks",
    'result: {"sent":2}',
  ],
  "channel.ts": [
    "echo: hello",
    "echo: how are you?",
    "echo: bye",
    "chat result: 3 messages",
    "sum of 1..10 = 55",
    "CHANNELS! WORK! BOTH! WAYS!",
    "shout result: done shouting",
  ],
  "typed_api.ts": [
    "add(1, 2) = 3 (number)",
    'greet("Deno") = Hello, Deno! (4 letters)',
    "countdown(3) yielded 3, 2, 1",
    'countdown(2) yielded 2 values, then returned "liftoff"',
  ],
  "middleware.ts": [
    "[server] status ok",
    "refused: PERMISSION_DENIED: 'admin.flush' needs an admin token",
    "[server] admin.flush PERMISSION_DENIED",
    "[client] → admin.flush (token attached)",
    "[server] admin.flush ok",
    "→ flushed cache",
  ],
  "go_seed.ts": [
    "servers: tls://127.0.0.1:",
    "pool: 4 of 4 connections up",
    '/health → {"status":"healthy","server":"server-1"}',
    '/health → {"status":"healthy","server":"server-2"}',
    "198.1 KiB of JSON round-tripped intact",
    'stream ended after 3 chunks: {"sent":3}',
    "called the client back during /session/hello: it is go-seed-client",
    "/session/hello → Hello, go-seed-client! (from server-",
    'session: sent "Hello, server!", received: server-1 got "Hello, server!"',
    'session: sent "How are you?", received: server-1 got "How are you?"',
    "7 calls, 0 failures",
  ],
  "ws_seed.ts": [
    "server listening on ws://127.0.0.1:",
    'server → alice: get_client_status → {"name":"alice","status":"running"}',
    'server → bob: get_client_status → {"name":"bob","status":"running"}',
    'server → carol: get_client_status → {"name":"carol","status":"running"}',
    'alice → server: get_server_info → {"name":"ws-seed","clients":3,',
    'carol → server: get_server_info → {"name":"ws-seed","clients":3,',
    "alice → server: get_player_list → METHOD_NOT_FOUND",
    'server ← alice: event user_action {"action":"click","target":"start-button"}',
    "alice ← notification: alice, your click on start-button was recorded",
    'server.broadcast("announcement") sent to 3 clients',
    'alice ← announcement: {"text":"maintenance at 02:00"}',
    'bob ← announcement: {"text":"maintenance at 02:00"}',
    'carol ← announcement: {"text":"maintenance at 02:00"}',
    "ping_client: 3 of 3 clients answered",
    "alice: pong from alice",
    "bob: pong from bob",
    "carol: pong from carol",
    "[hook] disconnected: bob (normal close)",
  ],
  "chat.ts": ["server: listening on tcp://127.0.0.1:", " and unix:///"],
};

/** Lines that must appear in this order (each after the previous one). */
const ordered: Record<string, string[]> = {
  "streaming.ts": ["2. break after 2", "of 1000 ticks", "3. time(2, 20)"],
  "events_broadcast.ts": ["broadcastCall settled in", "carol: TIMEOUT"],
  "go_seed.ts": [
    '/stream/time [3, 100]:\n  chunk 1: {"timestamp":',
    '  chunk 2: {"timestamp":',
    '  chunk 3: {"timestamp":',
    "stream ended after 3 chunks",
  ],
  "ws_seed.ts": [
    // every client is greeted by the onConnect hook (a request to it) before the demo goes on
    "[hook] connected: ",
    "server → alice: get_client_status",
    "[hook] connected: ",
    "server → bob: get_client_status",
    "[hook] connected: ",
    "server → carol: get_client_status",
    "requests, client → server:",
    "leaving:",
    "[hook] disconnected: alice (normal close)\n  alice left; 2 still connected",
    "[hook] disconnected: bob (normal close)\n  bob left; 1 still connected",
    "[hook] disconnected: carol (normal close)\n  carol left; 0 still connected",
  ],
  // Each screen in full, in the room's order.
  "chat.ts": [
    [
      "alice's screen (tcp):",
      "  * alice joined (tcp)",
      "  * bob joined (unix)",
      "  <alice> hi bob! I'm on TCP",
      "  <bob> hey alice, Unix socket here",
      "  <alice> same room either way",
      "  <bob> gotta go, bye!",
      "  * bob left",
      "",
      "bob's screen (unix):",
      "  * bob joined (unix)",
      "  <alice> hi bob! I'm on TCP",
      "  <bob> hey alice, Unix socket here",
      "  <alice> same room either way",
      "  <bob> gotta go, bye!",
      "",
    ].join("\n"),
  ],
};

/** Further checks of an example's output. */
const checks: Record<string, (out: string) => void | Promise<void>> = {
  "go_seed.ts": (out) => {
    // The 198 KiB echo crossed the wire compressed, both ways.
    const ratio = Number(/\(deflate-raw, (\d+)× smaller\)/.exec(out)?.[1]);
    assert(ratio >= 5, `the echo was not compressed:\n${out}`);
  },
  "chat.ts": async (out) => {
    // The example removes its temp dir, Unix socket included.
    const socket = / and unix:\/\/(\S+)/.exec(out)?.[1];
    if (socket === undefined) throw new Error(`no Unix socket address in:\n${out}`);
    const dir = socket.slice(0, socket.lastIndexOf("/"));
    assertEquals(await Deno.stat(dir).then(() => "left behind", () => "removed"), "removed");
  },
};

for (const [file, lines] of Object.entries(expected)) {
  Deno.test(`example ${file} runs to completion`, async () => {
    const { code, out } = await runExample(file);
    assertEquals(code, 0, out);
    for (const line of lines) assert(out.includes(line), `missing "${line}" in:\n${out}`);
    let at = 0;
    for (const line of ordered[file] ?? []) {
      const found = out.indexOf(line, at);
      assert(found >= 0, `"${line}" missing or out of order in:\n${out}`);
      at = found + line.length;
    }
    await checks[file]?.(out);
  });
}

Deno.test("typed_api.ts type-checks, its @ts-expect-error lines included", async () => {
  // An unused @ts-expect-error is itself an error: this fails if a wrong call stops failing.
  const result = await denoCommand(["check", `${root}examples/typed_api.ts`], {
    cwd: root,
    inheritEnv: true,
    signal: AbortSignal.timeout(60_000),
  }).output();
  const text = new TextDecoder();
  assertEquals(result.code, 0, text.decode(result.stdout) + text.decode(result.stderr));
});

Deno.test("every example is covered by this test", async () => {
  const files: string[] = [];
  for await (const e of Deno.readDir(`${root}examples`)) {
    // Subdirectories (examples/browser/) are apps with their own entry points, not scripts.
    if (e.isFile && e.name.endsWith(".ts")) files.push(e.name);
  }
  assertEquals(files.sort(), Object.keys(expected).sort());
});
