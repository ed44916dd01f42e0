/**
 * The @trust/rpc server process of `deno task bench`: serves, with default options and limits,
 * on the addresses given on the command line, with the secret from `TRUST_ID` and the TLS
 * fixture certificates:
 *
 * - `echo(x) → x` (the 64-character string, the 1 MiB `Uint8Array`);
 * - `items(n)`: a server stream yielding the same 64-character string `n` times
 *   (n ≤ 10,000,000; the client cancels it when its time is up);
 * - `memory()`: this process' `Deno.memoryUsage()` (the `mem` scenario splits its RSS with it).
 *
 *     TRUST_ID=… deno run -A bench/server.ts tcp://127.0.0.1:0 unix:///tmp/dir/rpc.sock \
 *       tls://127.0.0.1:0 ws://127.0.0.1:0
 *
 * Prints `{"addresses":[...]}` (one JSON line) once listening; exits when its stdin closes
 * (the parent is gone) or on SIGTERM.
 *
 * @module
 */

import { serve } from "../server.ts";
import { exitWithParent, tlsFixtures } from "./common.ts";

const ITEM = "x".repeat(64);
const MAX_ITEMS = 10_000_000;

const { cert, key } = tlsFixtures();
const server = await serve({
  listen: Deno.args.length ? Deno.args : ["tcp://127.0.0.1:0"],
  tls: { cert, key },
  logger: "silent",
  methods: {
    echo: (x: unknown) => x,
    async *items(n: number) {
      const count = Math.min(MAX_ITEMS, Math.max(0, Math.floor(Number(n) || 0)));
      for (let i = 0; i < count; i++) yield ITEM;
    },
    memory: () => Deno.memoryUsage(),
  },
});
exitWithParent(() => server.close({ timeout: 200 }));
console.log(JSON.stringify({ addresses: server.addresses }));
