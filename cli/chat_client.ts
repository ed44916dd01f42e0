/**
 * `client.ts chat` and `client.ts file`: the seed's chat client on the demo server's chat
 * room (see chat_room.ts). Both join with `chat.join`, send `chat` `{ text }` events and print
 * what the room sends as lines:
 *
 * ```text
 * [14:03:07] alice: hello bob      a message (the time is the server's stamp, local time)
 * * bob joined                     another member came
 * * bob left                       another member went
 * ```
 *
 * `chat` reads what is typed: on a terminal (stdin and stdout both TTYs) in raw mode with a
 * `> ` prompt and the line editor of line_editor.ts, else line by line from stdin with no
 * prompt, so that piped output holds only chat lines. `file` sends the lines of a file and
 * waits for their echo.
 *
 * @module
 */

import { checkChatName, type JoinResult, MAX_TEXT_BYTES, safeText } from "./chat_room.ts";
import { LineEditor } from "./line_editor.ts";
import { describeError, EXIT_CALL_FAILED } from "./output.ts";

/** Exit code of Ctrl+C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;
/** Messages `file` (and `chat` on a pipe) keeps in flight (sent, not echoed yet) at most. */
const SEND_WINDOW = 32;

/** The part of a connected client the chat uses. */
export interface ChatClient {
  readonly address: string;
  /** Resolves when the connection is gone (`undefined`: closed normally). */
  readonly closed: Promise<Error | undefined>;
  call<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  emit(name: string, data?: unknown): void;
  on(name: string, listener: (data: unknown) => void): () => void;
}

/** Options of {@link runChat} and {@link runFile}. */
export interface ChatOptions {
  /** The name to ask for (the server's guest name when absent). */
  name?: string;
  /** How long to wait for the echo of the messages sent (ms). */
  timeout: number;
}

/** Where lines go. */
interface Screen {
  /** A chat line (stdout). */
  print(line: string): void;
  /** A status line (stderr on a pipe). */
  note(line: string): void;
}

const encoder = new TextEncoder();

const plainScreen: Screen = {
  print: (line) => console.log(line),
  note: (line) => console.error(line),
};

/** `HH:MM:SS` (local time) of an ISO 8601 instant; now when it is not one. */
export function timeOfDay(at: unknown): string {
  const date = typeof at === "string" ? new Date(at) : new Date(NaN);
  const when = Number.isNaN(date.getTime()) ? new Date() : date;
  return [when.getHours(), when.getMinutes(), when.getSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
}

/** `[HH:MM:SS] from: text` for a `chat` event; `undefined` when it is not one. */
export function formatMessage(data: unknown): string | undefined {
  const { from, text, at } = (data ?? {}) as Record<string, unknown>;
  if (typeof from !== "string" || typeof text !== "string") return undefined;
  return `[${timeOfDay(at)}] ${safeText(from)}: ${safeText(text)}`;
}

/** `* NAME joined` / `* NAME left`; `undefined` when `data` has no name. */
export function formatNotice(what: "joined" | "left", data: unknown): string | undefined {
  const name = (data as { name?: unknown } | null)?.name;
  return typeof name === "string" ? `* ${safeText(name)} ${what}` : undefined;
}

/** True for a line that asks to leave: `exit`, spaces around it allowed. */
export function isExit(line: string): boolean {
  return line.trim() === "exit";
}

/** One message of a file: its text and line number (from 1). */
export interface FileMessage {
  line: number;
  text: string;
}

/**
 * The messages of a file: one per line, as is but for the line ending (`\n` or `\r\n`) and a
 * leading BOM; lines blank once trimmed are skipped; a line `exit` (trimmed) ends the list.
 */
export function messagesOf(content: string): FileMessage[] {
  const lines = content.replace(/^\uFEFF/, "").split("\n");
  const messages: FileMessage[] = [];
  for (const [i, raw] of lines.entries()) {
    const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (isExit(text)) break;
    if (text.trim() === "") continue;
    messages.push({ line: i + 1, text });
  }
  return messages;
}

/** Checks `--name` before connecting; returns the error message, or `undefined` when fine. */
export function nameProblem(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  try {
    checkChatName(name);
    return undefined;
  } catch (err) {
    return `--name: ${(err as Error).message}`;
  }
}

/** Membership in the room: prints what it sends and counts the echoes of what we send. */
class Membership {
  #client: ChatClient;
  #screen: Screen;
  #name: string | undefined;
  #sent = 0;
  #echoed = 0;
  /** Resolves (and is replaced) on each echo, and when the connection is gone. */
  #changed = Promise.withResolvers<void>();
  #gone = false;
  #off: (() => void)[];
  /** Lines that came before the banner, printed right after it. */
  #held: string[] | undefined = [];

  constructor(client: ChatClient, screen: Screen) {
    this.#client = client;
    this.#screen = screen;
    // Listening before joining: nothing sent once we are a member is missed.
    this.#off = [
      client.on("chat", (data) => {
        const line = formatMessage(data);
        if (line === undefined) return;
        if (this.#name !== undefined && (data as { from: string }).from === this.#name) {
          if (this.#echoed < this.#sent) this.#echoed++;
          this.#signal();
        }
        this.#show(line);
      }),
      client.on("chat_joined", (data) => this.#show(formatNotice("joined", data))),
      client.on("chat_left", (data) => this.#show(formatNotice("left", data))),
    ];
    client.closed.then(() => {
      this.#gone = true;
      this.#signal();
    });
  }

  #signal(): void {
    this.#changed.resolve();
    this.#changed = Promise.withResolvers();
  }

  /** Messages sent whose echo has not come back yet. */
  get pending(): number {
    return this.#sent - this.#echoed;
  }

  #show(line: string | undefined): void {
    if (line === undefined) return;
    if (this.#held !== undefined) this.#held.push(line);
    else this.#screen.print(line);
  }

  /** Joins the room as `name` (or the guest name). */
  async join(name: string | undefined): Promise<JoinResult> {
    const result = await this.#client.call<JoinResult>(
      "chat.join",
      name === undefined ? [] : [name],
    );
    this.#name = result.name;
    return result;
  }

  /** Prints the lines held until now (call it after the banner); then lines print at once. */
  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const line of held) this.#screen.print(line);
  }

  /**
   * Sends `text` (a blank one is not sent); returns the reason it was not sent, if it was
   * not.
   */
  send(text: string): string | undefined {
    if (text.trim() === "") return "blank";
    const bytes = encoder.encode(text).length;
    if (bytes > MAX_TEXT_BYTES) return `it is ${bytes} bytes long, at most ${MAX_TEXT_BYTES}`;
    try {
      this.#client.emit("chat", { text });
    } catch (err) {
      return describeError(err);
    }
    this.#sent++;
    return undefined;
  }

  /**
   * Waits until at most `limit` messages are pending, within `ms`; false on timeout (or when
   * the connection closed first).
   */
  async settle(limit: number, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (this.pending > limit && !this.#gone) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#changed.promise,
        new Promise((resolve) => timer = setTimeout(resolve, left)),
      ]);
      clearTimeout(timer);
    }
    return this.pending <= limit;
  }

  /** Stops listening. */
  dispose(): void {
    for (const off of this.#off) off();
  }
}

/** How a run ended. */
type Outcome = "leave" | "interrupt" | { lost: Error | undefined };

function lostMessage(reason: Error | undefined): string {
  return `* connection lost: ${
    reason === undefined ? "the server closed the connection" : describeError(reason)
  }`;
}

/**
 * How a run ends: `exit`, EOF or SIGTERM (leave), Ctrl+C or SIGINT (interrupt), or the
 * connection lost — whichever comes first.
 */
class Ending {
  readonly promise: Promise<Outcome>;
  /** Set once it has ended. */
  done = false;
  /** Set once the connection is gone. */
  lost: { reason: Error | undefined } | undefined;
  #resolve: (outcome: Outcome) => void;
  #off: () => void;

  constructor(client: ChatClient) {
    const { promise, resolve } = Promise.withResolvers<Outcome>();
    this.promise = promise;
    this.#resolve = resolve;
    client.closed.then((reason) => {
      this.lost = { reason };
      this.end({ lost: reason });
    });
    const interrupt = () => this.end("interrupt");
    const leave = () => this.end("leave");
    Deno.addSignalListener("SIGINT", interrupt);
    Deno.addSignalListener("SIGTERM", leave);
    this.#off = () => {
      Deno.removeSignalListener("SIGINT", interrupt);
      Deno.removeSignalListener("SIGTERM", leave);
    };
  }

  end(outcome: Outcome): void {
    this.done = true;
    this.#resolve(outcome);
  }

  dispose(): void {
    this.#off();
  }
}

/** Lines of `stream` without their line ending (`\n` or `\r\n`), the last one included. */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let partial = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    partial += chunk;
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) yield line.endsWith("\r") ? line.slice(0, -1) : line;
  }
  if (partial !== "") yield partial.endsWith("\r") ? partial.slice(0, -1) : partial;
}

/** Joins; on failure prints why and resolves `undefined`. */
async function join(room: Membership, name: string | undefined): Promise<JoinResult | undefined> {
  try {
    return await room.join(name);
  } catch (err) {
    console.error(`error: cannot join the chat: ${describeError(err)}`);
    return undefined;
  }
}

/**
 * `client.ts chat`: joins, prints a banner, then sends what is typed until `exit`, EOF
 * (Ctrl+D) or SIGTERM (exit 0, after waiting up to `timeout` ms for the echo of what was
 * sent), Ctrl+C (130 at once) or the connection is lost (1).
 */
export async function runChat(client: ChatClient, options: ChatOptions): Promise<number> {
  const tty = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const editor = tty
    ? new LineEditor((text) => void Deno.stdout.writeSync(encoder.encode(text)))
    : undefined;
  const screen: Screen = editor === undefined ? plainScreen : {
    print: (line) => editor.print(line),
    note: (line) => editor.print(line),
  };
  const room = new Membership(client, screen);
  const ending = new Ending(client);
  let raw = false;
  const restore = () => {
    editor?.stop();
    if (!raw) return;
    raw = false;
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // The terminal is gone: nothing to restore.
    }
  };
  try {
    const joined = await join(room, options.name);
    if (joined === undefined) return EXIT_CALL_FAILED;
    console.log(
      `Connected to ${client.address} as ${joined.name}. ` +
        "Type messages, 'exit' or Ctrl+D to leave.",
    );
    if (joined.peers.length > 0) console.log(`* also here: ${joined.peers.join(", ")}`);
    /** Sends a line; false when it asks to leave. */
    const onLine = (line: string): boolean => {
      if (ending.done || isExit(line)) return false;
      const problem = room.send(line);
      if (problem !== undefined && problem !== "blank") screen.note(`* not sent: ${problem}`);
      return true;
    };
    if (editor !== undefined) {
      Deno.stdin.setRaw(true);
      raw = true;
      editor.start();
    }
    room.release();
    // A pipe can deliver lines faster than the server echoes them: keep at most a window of
    // them waiting (what a person types never comes close).
    const pace = () => room.settle(SEND_WINDOW - 1, options.timeout);
    const reading = editor !== undefined ? readTerminal(editor, onLine) : readPiped(onLine, pace);
    reading.then((how) => ending.end(how), () => ending.end("leave"));
    const outcome = await ending.promise;
    restore();
    if (outcome === "interrupt") return EXIT_INTERRUPTED;
    if (outcome !== "leave") {
      console.error(lostMessage(outcome.lost));
      return EXIT_CALL_FAILED;
    }
    // Leaving: what was sent is on its way; wait (bounded) for its echo before closing.
    if (!(await room.settle(0, options.timeout))) {
      if (ending.lost !== undefined) {
        console.error(lostMessage(ending.lost.reason));
        return EXIT_CALL_FAILED;
      }
      console.error(
        `warning: ${room.pending} message(s) not echoed within ${options.timeout} ms`,
      );
    }
    return 0;
  } finally {
    restore();
    ending.dispose();
    room.dispose();
  }
}

/** Reads the terminal (raw mode) through `editor` until Enter on `exit`, Ctrl+D or Ctrl+C. */
async function readTerminal(
  editor: LineEditor,
  onLine: (line: string) => boolean,
): Promise<Outcome> {
  const buffer = new Uint8Array(4096);
  for (;;) {
    const n = await Deno.stdin.read(buffer);
    if (n === null) return "leave";
    for (const event of editor.feed(buffer.subarray(0, n))) {
      if (event.type === "interrupt") return "interrupt";
      if (event.type === "eof" || !onLine(event.text)) return "leave";
    }
  }
}

/** Reads stdin line by line until `exit` or EOF; waits for `pace()` before each line. */
async function readPiped(
  onLine: (line: string) => boolean,
  pace: () => Promise<unknown>,
): Promise<Outcome> {
  for await (const line of readLines(Deno.stdin.readable)) {
    await pace();
    if (!onLine(line)) return "leave";
  }
  return "leave";
}

/**
 * `client.ts file FILE`: joins, sends `messages` (at most 32 waiting for their echo at once),
 * prints what the room sends, and exits 0 once every message has come back — 1 when they
 * have not within `timeout` ms (of the last progress) or the connection is lost, 130 on
 * Ctrl+C.
 */
export async function runFile(
  client: ChatClient,
  options: ChatOptions & { file: string },
  messages: FileMessage[],
): Promise<number> {
  const room = new Membership(client, plainScreen);
  const ending = new Ending(client);
  try {
    const joined = await join(room, options.name);
    if (joined === undefined) return EXIT_CALL_FAILED;
    console.error(
      `Connected to ${client.address} as ${joined.name}: ` +
        `sending ${messages.length} message(s) from ${options.file}`,
    );
    room.release();
    (async () => {
      for (const message of messages) {
        if (ending.done || !(await room.settle(SEND_WINDOW - 1, options.timeout))) return;
        const problem = room.send(message.text);
        if (problem !== undefined) {
          console.error(`warning: line ${message.line} not sent: ${problem}`);
        }
      }
      await room.settle(0, options.timeout);
    })().then(() => ending.end("leave"), () => ending.end("leave"));
    const outcome = await ending.promise;
    if (outcome === "interrupt") return EXIT_INTERRUPTED;
    if (ending.lost !== undefined && (outcome !== "leave" || room.pending > 0)) {
      console.error(lostMessage(ending.lost.reason));
      return EXIT_CALL_FAILED;
    }
    if (room.pending > 0) {
      console.error(
        `error: ${room.pending} message(s) not echoed by the server within ${options.timeout} ms`,
      );
      return EXIT_CALL_FAILED;
    }
    return 0;
  } finally {
    ending.dispose();
    room.dispose();
  }
}
