/**
 * The browser demo: one port on 127.0.0.1 serves a page (`/`), its script (`/app.js`, the
 * page script and `browser.ts` bundled once at start) and the trust-rpc WebSocket (`/rpc`).
 * The server offers the demo methods (`greet`, `time`, …), emits `welcome` `{ peers }` to
 * each new peer and broadcasts `tick` `{ n, at }` to all peers every second.
 *
 *     deno run -A examples/browser/server.ts [--port 8080] [--print-secret]
 *
 * Uses TRUST_ID when set (`--print-secret` prints it too); otherwise it makes a one-time
 * random secret and prints it, to paste into the page. Ctrl+C stops it.
 *
 * @module
 */

import { demoServices } from "../../cli/demo_services.ts";
import { generateSecret, normalizeSecret } from "../../protocol/secret.ts";
import { serve } from "../../server.ts";
import { listenWebSocket } from "../../transports/websocket.ts";

const USAGE = "Usage: deno run -A examples/browser/server.ts [--port N] [--print-secret]";
const here = new URL("./", import.meta.url);
const root = new URL("../../", import.meta.url);

/** The command line: `--port N` (0: any free port) and `--print-secret`. */
function parseFlags(args: string[]): { port: number; printSecret: boolean } {
  let port = 8080;
  let printSecret = false;
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    if (flag === "--print-secret" && inline === undefined) printSecret = true;
    else if (flag === "--port") {
      const value = inline ?? args[++i];
      port = Number(value);
      if (!/^\d+$/.test(value ?? "") || port > 65535) usage(`invalid port: ${value}`);
    } else if (flag === "--help" || flag === "-h") {
      console.log(USAGE);
      Deno.exit(0);
    } else usage(`unknown argument: ${args[i]}`);
  }
  return { port, printSecret };
}

function usage(message: string): never {
  console.error(`${message}\n${USAGE}`);
  Deno.exit(2);
}

/** Bundles `app.ts` (with `browser.ts`) into one ES module for the browser. */
async function bundle(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "trust-rpc-browser-" });
  try {
    const out = `${dir}/app.js`;
    const result = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        "--platform",
        "browser",
        "-o",
        out,
        new URL("app.ts", here).pathname,
      ],
      cwd: root.pathname,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    if (!result.success) {
      throw new Error(`deno bundle failed:\n${new TextDecoder().decode(result.stderr)}`);
    }
    return await Deno.readTextFile(out);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const { port, printSecret } = parseFlags(Deno.args);
const given = Deno.env.get("TRUST_ID");
const secret = given || generateSecret();
if (!given) {
  console.log(
    "TRUST_ID is not set: this run uses a one-time random secret. Paste it into the page:",
  );
  console.log(`  ${secret}`);
} else if (printSecret) {
  console.log(`TRUST_ID (from the environment): ${secret}`);
}
try {
  normalizeSecret(secret); // a weak or invalid TRUST_ID fails here, before any work
} catch (err) {
  console.error((err as Error).message);
  Deno.exit(1);
}

const [page, script] = await Promise.all([
  Deno.readTextFile(new URL("index.html", here)),
  bundle(),
]);
const headers = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  // Same-origin script and WebSocket only; the page's CSS is inline.
  "content-security-policy":
    "default-src 'none'; script-src 'self'; connect-src 'self' ws: wss:; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'",
};

const listener = await listenWebSocket({
  hostname: "127.0.0.1",
  port,
  path: "/rpc",
  handler(request) {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("Method not allowed", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    switch (new URL(request.url).pathname) {
      case "/":
      case "/index.html":
        return new Response(page, {
          headers: { ...headers, "content-type": "text/html; charset=utf-8" },
        });
      case "/app.js":
        return new Response(script, {
          headers: { ...headers, "content-type": "text/javascript; charset=utf-8" },
        });
      default:
        return new Response("Not found", { status: 404, headers });
    }
  },
});

const server = await serve({
  listen: listener,
  secret,
  methods: demoServices(),
  logger: "warn",
  onConnect(peer) {
    peer.emit("welcome", { peers: server.peers.length });
  },
}).catch((err) => {
  listener.close(); // serve() did not take it: close it, or it keeps the process alive
  throw err;
});

let n = 0;
const ticker = setInterval(() => {
  server.broadcast("tick", { n: ++n, at: new Date().toISOString() });
}, 1000);

const url = new URL(listener.address.replace(/^ws/, "http"));
console.log(`WebSocket at ${listener.address}`);
console.log(`Open http://${url.host}/ in a browser`);

const stop = Promise.withResolvers<string>();
const signals = ["SIGINT", "SIGTERM"] as const;
const onSignal = { SIGINT: () => stop.resolve("SIGINT"), SIGTERM: () => stop.resolve("SIGTERM") };
for (const sig of signals) Deno.addSignalListener(sig, onSignal[sig]);

const signal = await stop.promise;
for (const sig of signals) Deno.removeSignalListener(sig, onSignal[sig]);
console.log(`${signal}: stopping`);
clearInterval(ticker);
await server.close({ timeout: 2000 });
console.log("stopped");
