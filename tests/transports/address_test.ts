import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { TransportError } from "../../protocol/errors.ts";
import { formatAddress, parseAddress, quote } from "../../transports/address.ts";
import { dial, listen } from "../../transports/mod.ts";

function assertInvalid(input: string): TransportError {
  const err = assertThrows(() => parseAddress(input), TransportError);
  assertEquals(err.code, "INVALID_ADDRESS");
  assertStringIncludes(err.message, "tcp://host:port, tls://host:port, unix:///absolute/path");
  return err;
}

Deno.test("parseAddress", async (t) => {
  await t.step("tcp and tls with names, IPv4 and bracketed IPv6", () => {
    assertEquals(parseAddress("tcp://127.0.0.1:8888"), {
      transport: "tcp",
      hostname: "127.0.0.1",
      port: 8888,
    });
    assertEquals(parseAddress("tls://localhost:443"), {
      transport: "tls",
      hostname: "localhost",
      port: 443,
    });
    assertEquals(parseAddress("tcp://[::1]:0"), { transport: "tcp", hostname: "::1", port: 0 });
    assertEquals(parseAddress("TLS://[2001:db8::7]:65535"), {
      transport: "tls",
      hostname: "2001:db8::7",
      port: 65535,
    });
    assertEquals(parseAddress("tcp://[::ffff:10.0.0.1]:1").transport, "tcp");
  });

  await t.step("unix, long and short form", () => {
    assertEquals(parseAddress("unix:///run/app/rpc.sock"), {
      transport: "unix",
      path: "/run/app/rpc.sock",
    });
    assertEquals(parseAddress("unix:/tmp/x.sock"), { transport: "unix", path: "/tmp/x.sock" });
  });

  await t.step("rejects everything else with INVALID_ADDRESS", () => {
    for (
      const input of [
        "",
        "localhost:8888",
        "http://localhost:80",
        "tcp://localhost",
        "tcp://localhost:",
        "tcp://:8888",
        "tcp://localhost:65536",
        "tcp://localhost:-1",
        "tcp://localhost:80a",
        "tcp://localhost:8888/path",
        "tcp://user@localhost:8888",
        "tcp://localhost:8888?x=1",
        "tcp:localhost:8888",
        "tcp://::1:8888",
        "tcp://[::1]",
        "tcp://[::1:8888",
        "tcp://[nothex]:1",
        "tcp://[1:2:3:4:5:6:7:8:9]:1",
        "tcp://[1::2::3]:1",
        "tcp://256.1.1.1:1",
        "tcp://local host:1",
        " tcp://localhost:1",
        "unix://relative/path",
        "unix:relative.sock",
        "unix:///",
        "unix:///tmp/dir/",
        "unix:///tmp/a\nb",
      ]
    ) assertInvalid(input);
  });

  await t.step("quotes the input escaped and truncated", () => {
    const err = assertInvalid("evil://\x1b[31m\u202e" + "x".repeat(200));
    assertStringIncludes(err.message, '"evil://\\u001b[31m\\u202exxx');
    assertStringIncludes(err.message, "…");
    assert(!err.message.includes("\x1b"));
    assert(!err.message.includes("x".repeat(100)));
    assertEquals(quote('a"b\\c'), '"a\\"b\\\\c"');
  });

  await t.step("formatAddress round-trips and brackets IPv6", () => {
    for (
      const input of [
        "tcp://127.0.0.1:8888",
        "tls://localhost:443",
        "tcp://[::1]:0",
        "unix:///run/app/rpc.sock",
      ]
    ) assertEquals(formatAddress(parseAddress(input)), input);
    assertEquals(formatAddress(parseAddress("unix:/x.sock")), "unix:///x.sock");
  });
});

Deno.test("dial and listen pick the transport from the address", async (t) => {
  await t.step("dialers", () => {
    assertEquals(dial("tcp://127.0.0.1:1").transport, "tcp");
    assertEquals(dial("tls://localhost:1").address, "tls://localhost:1");
    assertEquals(dial("unix:///tmp/x.sock").transport, "unix");
    assertThrows(() => dial("nope"), TransportError);
  });

  await t.step("tls listen without cert or key is a TypeError", async () => {
    const err = await listen("tls://127.0.0.1:0").then(() => null, (e) => e);
    assert(err instanceof TypeError);
    assertStringIncludes(err.message, "cert");
  });

  await t.step("tcp listen resolves port 0", async () => {
    const listener = await listen("tcp://127.0.0.1:0");
    try {
      assert(/^tcp:\/\/127\.0\.0\.1:[1-9][0-9]*$/.test(listener.address), listener.address);
    } finally {
      listener.close();
    }
  });
});
