/**
 * The seed's RPC demo in one command: starts `server.ts` and runs `client.ts demo` against
 * it, as two processes sharing one TRUST_ID. With TRUST_ID unset, a one-time random secret is
 * made for this run (never written anywhere).
 *
 *     deno task demo
 *
 * @module
 */

import { generateSecret } from "../protocol/secret.ts";

const root = new URL("../", import.meta.url).pathname;
const given = Deno.env.get("TRUST_ID");
const secret = given || generateSecret();
if (!given) console.log("TRUST_ID is not set: this demo uses a one-time random secret.\n");
const env = { TRUST_ID: secret };

const server = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", `${root}server.ts`, "--listen", "tcp://127.0.0.1:0", "--log-level", "warn"],
  env,
  stdin: "null",
  stdout: "piped",
  stderr: "inherit",
}).spawn();

let code = 1;
try {
  const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let address: string | undefined;
  const deadline = Date.now() + 20_000;
  while (address === undefined && Date.now() < deadline) {
    const { value, done } = await lines.read();
    if (done) break;
    seen += value;
    address = /Serving on (\S+)/.exec(seen)?.[1];
  }
  lines.releaseLock();
  if (address === undefined) throw new Error("the server did not start");
  console.log(`$ deno run -A server.ts   →   Serving on ${address}`);
  console.log(`$ deno run -A client.ts demo --connect ${address}\n`);
  const client = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}client.ts`, "demo", "--connect", address],
    env,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  code = client.code;
} finally {
  server.kill("SIGTERM");
  await server.status;
  await server.stdout.cancel().catch(() => {});
}
Deno.exit(code);
