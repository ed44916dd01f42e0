/**
 * The chat room of the demo server and the client's `chat` and `file` commands, as a user
 * runs them: `server.ts` and `client.ts` spawned as processes (TRUST_ID in their environment)
 * on a loopback port 0 and a Unix socket in a temp dir, interactive clients driven through
 * piped stdin. Every wait is bounded; nothing asserts on speed; every child is killed and
 * awaited.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { connect } from "../client.ts";
import { type ChatMessage, createChatRoom, MAX_TEXT_BYTES } from "../cli/chat_room.ts";
import { formatMessage, messagesOf } from "../cli/chat_client.ts";
import { type EditorEvent, LineEditor } from "../cli/line_editor.ts";
import { silentLogger } from "../protocol/logger.ts";
import type { Client } from "../protocol/client.ts";
import { CANARY_SECRET, startServer } from "./_helpers.ts";
import {
  type CliProcess,
  spawnCli,
  type SpawnCliOptions,
  WAIT_MS,
  within,
} from "./_cli_process.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MESSAGES_FILE = new URL("./fixtures/chat/messages.txt", import.meta.url).pathname;
const ENV = { TRUST_ID: CANARY_SECRET };
/** `[HH:MM:SS] ` */
const STAMP = String.raw`\[\d\d:\d\d:\d\d\] `;

/** What messages.txt sends: the lines before `exit`, blank ones skipped, spaces kept. */
const FILE_MESSAGES = [
  "Hello from the file",
  "  indented line keeps its spaces",
  "héllo wörld ✓ 👋",
  "last message before exit",
];

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** `^[HH:MM:SS] from: text$` */
function messageLine(from: string, text: string): RegExp {
  return new RegExp(`^${STAMP}${escapeRegExp(from)}: ${escapeRegExp(text)}$`);
}

/** {@link spawnCli} with TRUST_ID in the environment. */
function spawn(script: string, args: string[], options: SpawnCliOptions = {}): CliProcess {
  return spawnCli(script, args, { env: ENV, ...options });
}

/** The demo `server.ts` on a TCP port 0 and a Unix socket in a fresh temp dir. */
interface DemoServer extends AsyncDisposable {
  tcp: string;
  unix: string;
  process: CliProcess;
}

async function startDemoServer(): Promise<DemoServer> {
  const dir = await Deno.makeTempDir({ prefix: "trust-rpc-chat-" });
  const unix = `unix://${dir}/chat.sock`;
  const process = spawn("server.ts", [
    "--listen",
    "tcp://127.0.0.1:0",
    "--listen",
    unix,
    "--log-level",
    "warn",
  ]);
  const cleanup = async () => {
    await process[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await process.until((l) => l.length >= 2, "two Serving on lines");
    const tcp = process.lines[0].match(/^Serving on (tcp:\/\/127\.0\.0\.1:\d+)$/)?.[1];
    if (tcp === undefined) throw new Error(`unexpected first line: ${process.lines[0]}`);
    assertEquals(process.lines[1], `Serving on ${unix}`);
    return { tcp, unix, process, [Symbol.asyncDispose]: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** An interactive `client.ts chat` with piped stdin; resolves once its banner is printed. */
async function startChat(address: string, name?: string): Promise<CliProcess> {
  const args = ["chat", "--connect", address, ...(name === undefined ? [] : ["--name", name])];
  const chat = spawn("client.ts", args, { stdin: true });
  try {
    await chat.expect(/^Connected to .* as .*\. Type messages, 'exit' or Ctrl\+D to leave\.$/);
    return chat;
  } catch (err) {
    await chat[Symbol.asyncDispose]();
    throw err;
  }
}

/** Connects in-process to `address` with the test secret. */
function connectTo(address: string): Promise<Client> {
  return connect(address, { secret: CANARY_SECRET, logger: "silent", reconnect: false });
}

/** Resolves with the first `count` events `name` the client receives (bounded). */
function collect(client: Client, name: string, count: number): Promise<unknown[]> {
  const seen: unknown[] = [];
  const done = Promise.withResolvers<unknown[]>();
  const off = client.on(name, (data) => {
    seen.push(data);
    if (seen.length === count) {
      off();
      done.resolve(seen);
    }
  });
  return within(done.promise, WAIT_MS, `${count} ${name} event(s)`).finally(off);
}

Deno.test("chat: two interactive clients over pipes, one on TCP and one on Unix", async () => {
  await using server = await startDemoServer();
  await using alice = await startChat(server.tcp, "alice");
  assertEquals(
    alice.lines[0],
    `Connected to ${server.tcp} as alice. ` +
      "Type messages, 'exit' or Ctrl+D to leave.",
  );
  await using bob = await startChat(server.unix, "bob");
  // Alice was in the room first: she must hear of Bob, and Bob sees her listed.
  await alice.expect(/^\* bob joined$/);
  await bob.expect(/^\* also here: alice$/);

  await alice.write("hello bob\n");
  await bob.expect(messageLine("alice", "hello bob"));
  await alice.expect(messageLine("alice", "hello bob"));
  await bob.write("hi alice, ça va ? 👋\r\n");
  await alice.expect(messageLine("bob", "hi alice, ça va ? 👋"));
  await bob.expect(messageLine("bob", "hi alice, ça va ? 👋"));

  await alice.write("   \n\nexit\n");
  const aliceOut = await alice.exited();
  assertEquals(aliceOut.code, 0, aliceOut.stderr);
  await bob.expect(/^\* alice left$/);
  await bob.write("exit\n");
  const bobOut = await bob.exited();
  assertEquals(bobOut.code, 0, bobOut.stderr);

  // Piped: no prompt, only the banner, notices and messages; the blank lines sent nothing.
  for (const out of [aliceOut, bobOut]) {
    assert(!out.stdout.includes("> "), `a prompt on a pipe:\n${out.stdout}`);
    assert(!out.stdout.includes("\x1b"), `escape codes on a pipe:\n${out.stdout}`);
    assert(!out.stdout.includes(CANARY_SECRET) && !out.stderr.includes(CANARY_SECRET));
  }
  const aliceMessages = aliceOut.stdout.split("\n").filter((l) => new RegExp(STAMP).test(l));
  assertEquals(aliceMessages.length, 2, aliceOut.stdout);
  assertMatch(aliceMessages[0], messageLine("alice", "hello bob"));
  assertMatch(aliceMessages[1], messageLine("bob", "hi alice, ça va ? 👋"));
  // EOF (Ctrl+D on a terminal, stdin closed on a pipe) leaves cleanly too.
  await using carol = await startChat(server.tcp, "carol");
  await carol.write("bye\n");
  await carol.expect(messageLine("carol", "bye"));
  await carol.end();
  assertEquals((await carol.exited()).code, 0);
});

for (const transport of ["tcp", "unix"] as const) {
  Deno.test(`chat file: sends the lines before 'exit' over ${transport}, a listener gets exactly those`, async () => {
    await using server = await startDemoServer();
    const address = server[transport];
    await using watcher = await startChat(address, "watcher");
    let file = MESSAGES_FILE;
    const dir = await Deno.makeTempDir({ prefix: "trust-rpc-chat-file-" });
    try {
      if (transport === "unix") {
        // The same lines with Windows line endings: the \r is not part of the message.
        file = `${dir}/messages_crlf.txt`;
        const text = await Deno.readTextFile(MESSAGES_FILE);
        await Deno.writeTextFile(file, text.replaceAll("\n", "\r\n"));
      }
      await using sender = spawn("client.ts", [
        "file",
        file,
        "--connect",
        address,
        "--name",
        "filer",
      ]);
      const out = await sender.exited();
      assertEquals(out.code, 0, out.stderr);
      const lines = out.stdout.split("\n");
      assertEquals(lines.pop(), "", "the output ends with a newline");
      assertEquals(lines.length, FILE_MESSAGES.length, out.stdout);
      lines.forEach((line, i) => assertMatch(line, messageLine("filer", FILE_MESSAGES[i])));
      assertMatch(out.stderr, /^Connected to .* as filer: sending 4 message\(s\) from /);

      await watcher.expect(/^\* filer left$/);
      const seen = watcher.lines.slice(1);
      assertEquals(seen.length, FILE_MESSAGES.length + 2, seen.join("\n"));
      assertEquals(seen[0], "* filer joined");
      FILE_MESSAGES.forEach((text, i) => assertMatch(seen[i + 1], messageLine("filer", text)));
      assertEquals(seen.at(-1), "* filer left");
      await watcher.write("exit\n");
      assertEquals((await watcher.exited()).code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("chat file: a missing file is exit 2 with a clear error (no server needed)", async () => {
  await using missing = spawn("client.ts", [
    "file",
    `${ROOT}tests/fixtures/chat/no-such-file.txt`,
    "--connect",
    "tcp://127.0.0.1:1",
  ]);
  const out = await missing.exited();
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /^error: cannot read .*no-such-file\.txt: NotFound/);
  await using noFile = spawn("client.ts", ["file"]);
  const usage = await noFile.exited();
  assertEquals(usage.code, 2);
  assertMatch(usage.stderr, /file needs a FILE/);
});

Deno.test("chat names: unique-ified when taken, guest by default, refused when bad", async () => {
  await using server = await startDemoServer();
  await using sam = await connectTo(server.tcp);
  assertEquals(await sam.call("chat.join", ["sam"]), { name: "sam", peers: [] });
  // Joining again under the same name (any case) keeps it; another name is refused.
  assertEquals(await sam.call("chat.join", ["SAM"]), { name: "sam", peers: [] });
  await assertRejects(() => sam.call("chat.join", ["other"]), Error, "already joined as sam");

  // The CLI: the name is taken (case-insensitively), so it gets SAM-2.
  await using second = await startChat(server.unix, "SAM");
  assertMatch(second.lines[0], / as SAM-2\. Type messages/);
  await second.expect(/^\* also here: sam$/);

  await using third = await connectTo(server.tcp);
  assertEquals(await third.call("chat.join", [" sam "]), {
    name: "sam-3",
    peers: ["SAM-2", "sam"],
  });
  await using guest = await connectTo(server.tcp);
  const joined = await guest.call<{ name: string }>("chat.join", []);
  assertEquals(joined.name, `guest-${guest.sessionId.slice(0, 4)}`);
  await using longName = await connectTo(server.tcp);
  const long = "x".repeat(32);
  assertEquals((await longName.call<{ name: string }>("chat.join", [long])).name, long);
  await using longName2 = await connectTo(server.tcp);
  // Made unique within 32 characters.
  assertEquals(
    (await longName2.call<{ name: string }>("chat.join", [long])).name,
    `${"x".repeat(30)}-2`,
  );

  await using bad = await connectTo(server.tcp);
  for (
    const [name, message] of [
      ["x".repeat(33), "name must be 1 to 32 characters (got 33)"],
      ["   ", "name must be 1 to 32 characters (got 0)"],
      ["bell\u0007", "name must be printable"],
      ["two\nlines", "name must be printable"],
      ["zero\u200Bwidth", "name must be printable"],
      [42, "name must be a string"],
    ] as const
  ) {
    const err = await assertRejects(() => bad.call("chat.join", [name]));
    assertEquals((err as { code?: string }).code, "INVALID_PARAMS", String(name));
    assertMatch((err as Error).message, new RegExp(escapeRegExp(message)));
  }

  // The CLI checks --name before connecting: a clear usage error, exit 2.
  await using refused = spawn("client.ts", ["chat", "--connect", server.tcp, "--name", long + "y"]);
  const out = await refused.exited();
  assertEquals(out.code, 2);
  assertMatch(out.stderr, /^error: --name: name must be 1 to 32 characters \(got 33\)/);
  await using misplaced = spawn("client.ts", ["call", "health", "--name", "x"]);
  const misplacedOut = await misplaced.exited();
  assertEquals(misplacedOut.code, 2);
  assertMatch(misplacedOut.stderr, /--name goes with chat and file only/);

  await second.write("exit\n");
  assertEquals((await second.exited()).code, 0);
});

Deno.test("chat: misbehaving input is dropped and never hurts the server", async () => {
  await using server = await startDemoServer();
  await using member = await connectTo(server.tcp);
  await member.call("chat.join", ["member"]);
  await using rude = await connectTo(server.unix);
  const received = collect(member, "chat", 3);
  // Talking before joining joins under the guest name (the others hear it).
  const guestJoined = collect(member, "chat_joined", 1);
  for (
    const data of [
      null,
      "just a string",
      [1, 2, 3],
      { text: 5 },
      { nope: "x" },
      { text: "" },
      { text: " \t " },
      { text: "x".repeat(MAX_TEXT_BYTES + 1) },
      { text: "é".repeat(MAX_TEXT_BYTES / 2 + 1) }, // 4098 bytes in UTF-8
    ]
  ) rude.emit("chat", data);
  rude.emit("unknown_event", { whatever: true });
  rude.emit("chat", { text: "é".repeat(MAX_TEXT_BYTES / 2) }); // exactly 4096 bytes: fine
  rude.emit("chat", { text: "\x1b[2J\x1b[31mred\r\nforged line\u202Eevil\tok" });
  rude.emit("chat", { text: "still talking" });
  const guest = `guest-${rude.sessionId.slice(0, 4)}`;
  assertEquals(await guestJoined, [{ name: guest }]);
  const messages = (await received) as ChatMessage[];
  assertEquals(messages.map((m) => [m.from, m.text]), [
    [guest, "é".repeat(MAX_TEXT_BYTES / 2)],
    [guest, "\uFFFD[2J\uFFFD[31mred\uFFFD\uFFFDforged line\uFFFDevil\tok"],
    [guest, "still talking"],
  ]);
  for (const m of messages) {
    assertEquals(new Date(m.at).toISOString(), m.at, "at is ISO 8601");
  }
  // The server still serves.
  assertEquals((await member.call<{ status: string }>("health")).status, "ok");
  assertEquals(await member.call("greet", ["Alice"]), "Hello, Alice!");
});

Deno.test("chat: Ctrl+C (SIGINT) quits at once with exit 130", async () => {
  await using server = await startDemoServer();
  await using watcher = await startChat(server.tcp, "watcher");
  await using quitter = await startChat(server.tcp, "quitter");
  await watcher.expect(/^\* quitter joined$/);
  const out = await quitter.stop("SIGINT");
  assertEquals(out.code, 130, out.stderr);
  await watcher.expect(/^\* quitter left$/);
  await watcher.write("exit\n");
  assertEquals((await watcher.exited()).code, 0);
});

Deno.test("chat: the connection lost prints '* connection lost' and exits 1", async () => {
  const room = createChatRoom(silentLogger);
  await using ts = await startServer("tcp", { methods: room.methods });
  room.attach(ts.server);
  await using chat = await startChat(ts.address, "dropped");
  assertEquals(room.names(), ["dropped"]);
  ts.server.peers[0].close();
  const out = await chat.exited();
  assertEquals(out.code, 1, out.stderr);
  assertMatch(out.stderr, /^\* connection lost: /m);
});

Deno.test("chat: --help texts document chat, file and the Unix socket", async () => {
  await using client = spawn("client.ts", ["--help"]);
  const clientHelp = await client.exited();
  assertEquals(clientHelp.code, 0);
  for (const word of ["chat ", "file FILE", "--name NAME", "unix:///tmp/trust-rpc.sock", "> "]) {
    assert(clientHelp.stdout.includes(word), `missing ${word} in:\n${clientHelp.stdout}`);
  }
  await using server = spawn("server.ts", ["--help"]);
  const serverHelp = await server.exited();
  assertEquals(serverHelp.code, 0);
  for (const word of ["chat.join(name?)", "chat_joined", "unix:///tmp/trust-rpc.sock"]) {
    assert(serverHelp.stdout.includes(word), `missing ${word} in:\n${serverHelp.stdout}`);
  }
});

Deno.test("chat client: messages of a file, and how messages print", () => {
  const content = "\uFEFFone\r\n\n  \n  two  \r\n\t\nthree\n  exit \nfour\n";
  assertEquals(messagesOf(content), [
    { line: 1, text: "one" },
    { line: 4, text: "  two  " },
    { line: 6, text: "three" },
  ]);
  assertEquals(messagesOf("no newline at the end"), [{ line: 1, text: "no newline at the end" }]);
  assertEquals(messagesOf(""), []);
  const line = formatMessage({ from: "alice", text: "hi\x1b[2J", at: "2024-01-02T03:04:05.000Z" });
  assertMatch(line!, /^\[\d\d:\d\d:05\] alice: hi\uFFFD\[2J$/);
  assertEquals(formatMessage({ text: "no sender" }), undefined);
  assertEquals(formatMessage(null), undefined);
});

Deno.test("line editor: keys, UTF-8 split across reads, and printing above the prompt", () => {
  let out = "";
  const editor = new LineEditor((text) => out += text);
  const feed = (input: string | number[]): EditorEvent[] =>
    editor.feed(
      typeof input === "string" ? new TextEncoder().encode(input) : new Uint8Array(input),
    );
  editor.start();
  assertEquals(out, "> ");
  // "é" split across two reads.
  assertEquals(feed([0x68, 0xc3]), []);
  assertEquals(feed([0xa9, 0x6c, 0x6c, 0x6f]), []);
  assertEquals(editor.line, "héllo");
  out = "";
  editor.print("[12:00:00] bob: hi");
  assertEquals(out, "\r\x1b[2K[12:00:00] bob: hi\r\n> héllo");
  feed("\x7f"); // Backspace
  assertEquals(editor.line, "héll");
  feed("o w\x1b[D\x1bOHorld"); // arrow keys and Home are swallowed
  assertEquals(editor.line, "héllo world");
  feed("\x17"); // Ctrl+W
  assertEquals(editor.line, "héllo ");
  feed("👍🏽\x7f"); // Backspace removes a whole grapheme
  assertEquals(editor.line, "héllo ");
  out = "";
  assertEquals(feed("there\r\n"), [{ type: "line", text: "héllo there" }]);
  assert(out.endsWith("\r\x1b[2K> "), JSON.stringify(out));
  assertEquals(feed("a\nb\r"), [{ type: "line", text: "a" }, { type: "line", text: "b" }]);
  feed("typed\x15"); // Ctrl+U
  assertEquals(editor.line, "");
  feed("x\t\x01\x04"); // tab and Ctrl+A ignored; Ctrl+D ignored on a non-empty line
  assertEquals(editor.line, "x");
  feed("\x7f");
  assertEquals(feed("\x04rest"), [{ type: "eof" }]);
  assertEquals(feed("\x03"), [{ type: "interrupt" }]);
  out = "";
  editor.stop();
  assertEquals(out, "\r\x1b[2K");
  out = "";
  editor.print("after");
  assertEquals(out, "after\r\n");
});
