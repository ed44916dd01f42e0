/**
 * The layering rules of ARCHITECTURE.md, checked on the source: `protocol/` is Web-platform
 * only and imports nothing above it; `transports/` imports only itself and the error family;
 * nothing reachable from `mod.ts` imports `node:`, `npm:` or `jsr:` modules.
 */
import { assert, assertEquals } from "@std/assert";

const root = new URL("../", import.meta.url);
const IMPORT =
  /(?:import|export)\s[^'"]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(new URL(dir, root))) {
    if (entry.isFile && entry.name.endsWith(".ts")) out.push(`${dir}/${entry.name}`);
  }
  return out.sort();
}

/** Source text without comments (doc examples import the package by name). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
}

async function importsOf(file: string): Promise<string[]> {
  const text = code(await Deno.readTextFile(new URL(file, root)));
  return [...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2]);
}

function resolve(from: string, spec: string): string {
  return new URL(spec, new URL(from, root)).pathname.slice(root.pathname.length);
}

Deno.test("protocol/ uses no Deno APIs and imports only protocol/", async () => {
  const offences: string[] = [];
  for (const file of await sourceFiles("protocol")) {
    const text = await Deno.readTextFile(new URL(file, root));
    if (/\bDeno\./.test(code(text))) {
      offences.push(`${file} uses Deno.*`);
    }
    for (const spec of await importsOf(file)) {
      if (!spec.startsWith("./")) offences.push(`${file} imports ${spec}`);
    }
  }
  assertEquals(offences, []);
});

Deno.test("transports/ imports only transports/ and protocol/errors.ts", async () => {
  const offences: string[] = [];
  for (const file of await sourceFiles("transports")) {
    for (const spec of await importsOf(file)) {
      const target = resolve(file, spec);
      if (!target.startsWith("transports/") && target !== "protocol/errors.ts") {
        offences.push(`${file} imports ${spec}`);
      }
    }
  }
  assertEquals(offences, []);
});

Deno.test("nothing reachable from the entry points imports node:, npm: or jsr:", async () => {
  const seen = new Set<string>();
  const offences: string[] = [];
  const queue = [
    "mod.ts",
    "client.ts",
    "server.ts",
    "browser.ts",
    "protocol/mod.ts",
    "transports/mod.ts",
  ];
  while (queue.length > 0 && seen.size < 500) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of await importsOf(file)) {
      if (/^(node|npm|jsr):/.test(spec) || !spec.startsWith(".")) {
        offences.push(`${file} imports ${spec}`);
      } else queue.push(resolve(file, spec));
    }
  }
  assertEquals(offences, []);
});

Deno.test("the browser entry's whole module graph uses no Deno APIs", async () => {
  const seen = new Set<string>();
  const offences: string[] = [];
  const queue = ["browser.ts"];
  while (queue.length > 0 && seen.size < 500) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (/\bDeno\./.test(code(await Deno.readTextFile(new URL(file, root))))) {
      offences.push(`${file} uses Deno.*`);
    }
    for (const spec of await importsOf(file)) queue.push(resolve(file, spec));
  }
  assertEquals(offences, []);
  assert(seen.has("transports/websocket_client.ts") && seen.has("protocol/session.ts"));
});

Deno.test("cli/ and env/ do not import client.ts or server.ts (no cycles)", async () => {
  const offences: string[] = [];
  for (const dir of ["cli", "env"]) {
    for (const file of await sourceFiles(dir)) {
      for (const spec of await importsOf(file)) {
        const target = resolve(file, spec);
        if (target === "client.ts" || target === "server.ts" || target === "mod.ts") {
          offences.push(`${file} imports ${spec}`);
        }
      }
    }
  }
  assertEquals(offences, []);
});
