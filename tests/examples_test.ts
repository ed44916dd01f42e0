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
};

/** Lines that must appear in this order (each after the previous one). */
const ordered: Record<string, string[]> = {
  "streaming.ts": ["2. break after 2", "of 1000 ticks", "3. time(2, 20)"],
  "events_broadcast.ts": ["broadcastCall settled in", "carol: TIMEOUT"],
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
    if (e.name.endsWith(".ts")) files.push(e.name);
  }
  assertEquals(files.sort(), Object.keys(expected).sort());
});
