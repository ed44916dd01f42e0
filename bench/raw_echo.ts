/**
 * Raw-socket echo server, the physical reference of `deno task bench`: reads 4-byte
 * length-prefixed frames and writes every complete frame back unchanged, all the complete
 * frames one read gave in one write. No RPC, no crypto.
 *
 *     deno run -A bench/raw_echo.ts tcp://127.0.0.1:0 unix:///tmp/dir/raw.sock tls://127.0.0.1:0
 *
 * Prints `{"addresses":[...]}` (one JSON line) once listening; exits when its stdin closes
 * (the parent is gone) or on SIGTERM.
 *
 * @module
 */

import { exitWithParent, parseBenchAddress, tlsFixtures } from "./common.ts";
import { FrameBuffer, writeAll } from "./raw.ts";

function listen(text: string): { listener: Deno.Listener; address: string; tcp: boolean } {
  const a = parseBenchAddress(text);
  if (a.transport === "unix") {
    const listener = Deno.listen({ transport: "unix", path: a.path });
    return { listener, address: `unix://${a.path}`, tcp: false };
  }
  const listener = a.transport === "tls"
    ? Deno.listenTls({ hostname: a.hostname, port: a.port, ...tlsFixtures() })
    : Deno.listen({ hostname: a.hostname, port: a.port });
  const bound = listener.addr as Deno.NetAddr;
  const host = bound.hostname.includes(":") ? `[${bound.hostname}]` : bound.hostname;
  return {
    listener,
    address: `${a.transport}://${host}:${bound.port}`,
    tcp: a.transport === "tcp",
  };
}

async function echo(conn: Deno.Conn, tcp: boolean): Promise<void> {
  if (tcp) (conn as Deno.TcpConn).setNoDelay(true);
  const fb = new FrameBuffer(64 * 1024);
  try {
    while (await fb.read(conn)) {
      const from = fb.start;
      while (fb.next()) { /* skip over the complete frames */ }
      if (fb.start > from) await writeAll(conn, fb.buf.subarray(from, fb.start));
    }
  } catch { /* reset by the peer */ }
  try {
    conn.close();
  } catch { /* closed */ }
}

async function acceptLoop(listener: Deno.Listener, tcp: boolean): Promise<void> {
  try {
    for await (const conn of listener) echo(conn, tcp);
  } catch { /* listener closed */ }
}

const args = Deno.args.length ? Deno.args : ["tcp://127.0.0.1:0"];
const bound = args.map(listen);
exitWithParent(() => {
  for (const b of bound) {
    try {
      b.listener.close();
    } catch { /* closed */ }
  }
});
for (const b of bound) acceptLoop(b.listener, b.tcp);
console.log(JSON.stringify({ addresses: bound.map((b) => b.address) }));
