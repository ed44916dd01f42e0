import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { TransportError } from "../../protocol/errors.ts";
import { parseAddress } from "../../transports/address.ts";
import { listen } from "../../transports/mod.ts";
import { listenTls, tls, type TlsOptions } from "../../transports/tls.ts";
import type { Listener } from "../../transports/types.ts";
import { readExactly } from "./_io.ts";
import { HAS_IPV6 } from "../_helpers.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url));
const CA = fixture("ca.pem");
const MiB = 1 << 20;

function portOf(listener: Listener | Deno.TcpListener): number {
  if ("addr" in listener) return listener.addr.port;
  const address = parseAddress(listener.address);
  if (address.transport === "unix") throw new Error(`Not a TCP address: ${listener.address}`);
  return address.port;
}

/** A TLS listener serving the fixture cert `name` (`server`, `expired`, `wrong_host`, …). */
function serve(name: string, hostname = "127.0.0.1"): Listener {
  return listenTls({
    hostname,
    port: 0,
    cert: fixture(`${name}.pem`),
    key: fixture(`${name}.key.pem`),
  });
}

/** Dials `listener` as `hostname`; returns the client's failure and the server's. */
async function failedHandshake(
  listener: Listener,
  options: Partial<TlsOptions> = {},
): Promise<{ client: TransportError; server: unknown }> {
  const accepted = listener.accept();
  const dialing = tls({ hostname: "localhost", port: portOf(listener), caCerts: [CA], ...options })
    .dial();
  const server = await accepted;
  if (server === null) throw new Error("accept() resolved null");
  const [clientResult, serverResult] = await Promise.allSettled([dialing, server.handshake()]);
  server.close();
  if (clientResult.status === "fulfilled") {
    clientResult.value.close();
    throw new Error("The TLS handshake unexpectedly succeeded");
  }
  assertInstanceOf(clientResult.reason, TransportError);
  assertEquals(clientResult.reason.code, "TLS_ERROR");
  assertEquals(serverResult.status, "rejected");
  return {
    client: clientResult.reason,
    server: serverResult.status === "rejected" ? serverResult.reason : undefined,
  };
}

async function echoRoundTrip(listenHost: string, dialHost: string) {
  const listener = serve("server", listenHost);
  const accepted = listener.accept();
  const client = await tls({ hostname: dialHost, port: portOf(listener), caCerts: [CA] }).dial();
  const server = await accepted;
  try {
    if (server === null) throw new Error("accept() resolved null");
    assertEquals(server.transport, "tls");
    assertEquals(server.remoteHost, listenHost);
    const data = new Uint8Array(MiB).map((_, i) => i % 251);
    // The server never calls handshake(): its first read drives it.
    const echo = readExactly(server, MiB).then((got) => server.write(got));
    const [, , back] = await Promise.all([client.write(data), echo, readExactly(client, MiB)]);
    assertEquals(back, data);
    await client.closeWrite();
    assertEquals(await server.read(new Uint8Array(8)), null);
  } finally {
    client.close();
    server?.close();
    listener.close();
  }
}

Deno.test("tls transport", async (t) => {
  await t.step("good CA: 1 MiB echo by name", () => echoRoundTrip("127.0.0.1", "localhost"));
  await t.step("good CA: 1 MiB echo by IP SAN", () => echoRoundTrip("127.0.0.1", "127.0.0.1"));
  await t.step({
    name: "good CA: 1 MiB echo over [::1]",
    ignore: !HAS_IPV6,
    fn: () => echoRoundTrip("::1", "::1"),
  });

  await t.step("wrong CA, expired cert and hostname mismatch: three distinct errors", async () => {
    const messages: string[] = [];
    for (
      const [cert, expected] of [
        [
          "other_ca_server",
          "certificate is signed by an unknown CA: pass the CA with --ca / caCerts",
        ],
        ["expired", "certificate has expired"],
        ["wrong_host", 'certificate is not valid for hostname "localhost"'],
      ]
    ) {
      const listener = serve(cert);
      try {
        const { client, server } = await failedHandshake(listener);
        assertEquals(
          client.message,
          `TLS handshake with tls://localhost:${portOf(listener)} failed: ${expected}`,
        );
        assertInstanceOf(server, TransportError);
        messages.push(client.message.replace(/:\d+/, ""));
      } finally {
        listener.close();
      }
    }
    assertEquals(new Set(messages).size, 3);
  });

  await t.step("insecureSkipHostnameVerification skips only the name check", async () => {
    const listener = serve("wrong_host");
    try {
      const accepted = listener.accept();
      const dialer = tls({
        hostname: "localhost",
        port: portOf(listener),
        caCerts: [CA],
        insecureSkipHostnameVerification: true,
      });
      const [client, server] = await Promise.all([dialer.dial(), accepted]);
      client.close();
      server?.close();
    } finally {
      listener.close();
    }
    const other = serve("other_ca_server");
    try {
      const { client } = await failedHandshake(other, { insecureSkipHostnameVerification: true });
      assertStringIncludes(client.message, "unknown CA");
    } finally {
      other.close();
    }
  });

  await t.step("a plain TCP client on the TLS port does not hang", async () => {
    const listener = serve("server");
    try {
      const accepted = listener.accept();
      const raw = await Deno.connect({ hostname: "127.0.0.1", port: portOf(listener) });
      const server = await accepted;
      if (server === null) throw new Error("accept() resolved null");
      await raw.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
      const err = await assertRejects(() => server.handshake(), TransportError);
      assertStringIncludes(err.message, "the client does not speak TLS");
      await assertRejects(() => server.read(new Uint8Array(8)), TransportError);
      const buffer = new Uint8Array(1024);
      let reads = 0;
      while ((await raw.read(buffer)) !== null) assert(++reads < 100, "no end of stream");
      raw.close();
    } finally {
      listener.close();
    }
  });

  await t.step("a TLS client on a plain server fails clearly", async () => {
    const plain = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const accepted = plain.accept();
      const dialing = tls({ hostname: "localhost", port: portOf(plain), caCerts: [CA] }).dial();
      const server = await accepted;
      await server.write(new TextEncoder().encode("SSH-2.0-OpenSSH_9.6\r\nnot tls at all\r\n"));
      const err = await assertRejects(() => dialing, TransportError);
      assertEquals(err.code, "TLS_ERROR");
      assertStringIncludes(err.message, "the server does not speak TLS");
      server.close();
    } finally {
      plain.close();
    }
  });

  await t.step("a silent server: connect timeout and abort cover the handshake", async () => {
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted: Deno.Conn[] = [];
    const accepting = (async () => {
      for (let i = 0; i < 2; i++) accepted.push(await silent.accept());
    })();
    try {
      const port = portOf(silent);
      const dialer = tls({ hostname: "localhost", port, caCerts: [CA], connectTimeout: 100 });
      const timedOut = await assertRejects(() => dialer.dial(), TransportError);
      assertEquals(timedOut.code, "CONNECT_FAILED");
      assertEquals(
        timedOut.message,
        `Cannot connect to tls://localhost:${port}: timed out after 100 ms`,
      );
      const controller = new AbortController();
      const dialing = tls({ hostname: "localhost", port, caCerts: [CA] }).dial({
        signal: controller.signal,
      });
      const timer = setTimeout(() => controller.abort(), 20);
      const aborted = await assertRejects(() => dialing, TransportError);
      clearTimeout(timer);
      assertEquals(aborted.message, `Cannot connect to tls://localhost:${port}: aborted`);
      await accepting;
    } finally {
      for (const conn of accepted) conn.close();
      silent.close();
    }
  });

  await t.step("closing a conn interrupts the server handshake of a silent client", async () => {
    const listener = serve("server");
    try {
      const accepted = listener.accept();
      const raw = await Deno.connect({ hostname: "127.0.0.1", port: portOf(listener) });
      const server = await accepted;
      if (server === null) throw new Error("accept() resolved null");
      const handshake = server.handshake();
      const reading = server.read(new Uint8Array(8));
      server.close();
      const err = await assertRejects(() => handshake, TransportError);
      assertEquals(err.code, "TLS_ERROR");
      assertStringIncludes(err.message, "interrupted");
      assertEquals(await reading, null);
      // Deno 2.9.6 keeps the socket itself open until the client speaks or leaves (see tls.ts),
      // so the raw client sees no end of stream here: it closes first.
      raw.close();
    } finally {
      listener.close();
    }
  });

  await t.step("accept() resolves null after close", async () => {
    const listener = serve("server");
    const pending = listener.accept();
    listener.close();
    assertEquals(await pending, null);
    assertEquals(await listener.accept(), null);
  });

  await t.step("listen options and bad key material", async () => {
    const err = assertThrows(
      () => listenTls({ port: 0, cert: "not a cert", key: fixture("server.key.pem") }),
      TransportError,
    );
    assertEquals(err.code, "TLS_ERROR");
    const listener = await listen("tls://127.0.0.1:0", {
      cert: fixture("server.pem"),
      key: fixture("server.key.pem"),
    });
    assertNotEquals(portOf(listener), 0);
    assertEquals(listener.transport, "tls");
    listener.close();
  });
});
