/** Every example runs to completion as its own process and prints what it promises. */
import { assert, assertEquals } from "@std/assert";

const root = new URL("../", import.meta.url).pathname;

async function runExample(file: string): Promise<{ code: number; out: string }> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}examples/${file}`],
    env: { NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
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
};

for (const [file, lines] of Object.entries(expected)) {
  Deno.test(`example ${file} runs to completion`, async () => {
    const { code, out } = await runExample(file);
    assertEquals(code, 0, out);
    for (const line of lines) assert(out.includes(line), `missing "${line}" in:\n${out}`);
  });
}

Deno.test("every example is covered by this test", async () => {
  const files: string[] = [];
  for await (const e of Deno.readDir(`${root}examples`)) {
    if (e.name.endsWith(".ts")) files.push(e.name);
  }
  assertEquals(files.sort(), Object.keys(expected).sort());
});
