/**
 * The @trust/rpc server process of `deno task bench`: serves `echo(x) → x` on the addresses
 * given on the command line, with the secret from `TRUST_ID` and the TLS fixture certificates.
 *
 *     TRUST_ID=… deno run -A bench/server.ts tcp://127.0.0.1:0 unix:///tmp/dir/rpc.sock tls://127.0.0.1:0
 *
 * Prints `{"addresses":[...]}` (one JSON line) once listening; exits when its stdin closes
 * (the parent is gone) or on SIGTERM.
 *
 * @module
 */

import { serve } from "../server.ts";
import { exitWithParent, tlsFixtures } from "./common.ts";

const { cert, key } = tlsFixtures();
const server = await serve({
  listen: Deno.args.length ? Deno.args : ["tcp://127.0.0.1:0"],
  tls: { cert, key },
  logger: "silent",
  methods: { echo: (x: unknown) => x },
});
exitWithParent(() => server.close({ timeout: 200 }));
console.log(JSON.stringify({ addresses: server.addresses }));
