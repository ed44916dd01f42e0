/**
 * A tiny line editor for `client.ts chat` on a terminal in raw mode: printable characters
 * (UTF-8, split across reads or not), Backspace (one grapheme), Ctrl+U (clear the line),
 * Ctrl+W (delete a word), Enter (submit), Ctrl+D (leave, on an empty line), Ctrl+C
 * (interrupt). Escape sequences (arrow keys, function keys) are swallowed. Lines printed
 * with {@link LineEditor.print} go above the prompt without garbling what is being typed.
 *
 * It knows no terminal: it turns bytes into {@link EditorEvent}s and writes through the
 * function it was given, so it can be tested with plain strings. Every line it writes ends
 * with `\r\n`, right whether or not the terminal still translates `\n` in raw mode.
 *
 * Limitation: a line longer than the terminal is wide wraps, and redrawing clears only its
 * last row.
 *
 * @module
 */

/** What the keys typed amount to. */
export type EditorEvent =
  | { type: "line"; text: string }
  | { type: "eof" }
  | { type: "interrupt" };

/** Erase the whole row, cursor to column 0. */
const CLEAR_ROW = "\r\x1b[2K";

const segmenter = new Intl.Segmenter();

/** See the module documentation. */
export class LineEditor {
  #write: (text: string) => void;
  #prompt: string;
  #text = "";
  #decoder = new TextDecoder();
  #escape: "none" | "esc" | "csi" | "ss3" = "none";
  #afterCr = false;
  #active = false;

  /**
   * @param write writes to the terminal (synchronously, in order)
   * @param prompt shown before the line being typed
   */
  constructor(write: (text: string) => void, prompt = "> ") {
    this.#write = write;
    this.#prompt = prompt;
  }

  /** The line being typed. */
  get line(): string {
    return this.#text;
  }

  /** Shows the prompt: input is expected from now on. */
  start(): void {
    this.#active = true;
    this.#write(this.#prompt + this.#text);
  }

  /** Erases the prompt line; later {@link print}s are plain lines. Idempotent. */
  stop(): void {
    if (!this.#active) return;
    this.#active = false;
    this.#write(CLEAR_ROW);
  }

  /** Prints `line` above the prompt, then redraws the prompt and what is being typed. */
  print(line: string): void {
    if (!this.#active) return this.#write(`${line}\r\n`);
    this.#write(`${CLEAR_ROW}${line}\r\n${this.#prompt}${this.#text}`);
  }

  /**
   * Feeds bytes read from the terminal; returns what they complete, in order. Input after an
   * `eof` or `interrupt` is dropped.
   */
  feed(bytes: Uint8Array): EditorEvent[] {
    const events: EditorEvent[] = [];
    for (const ch of this.#decoder.decode(bytes, { stream: true })) {
      const event = this.#key(ch);
      if (event === undefined) continue;
      events.push(event);
      if (event.type !== "line") break;
    }
    return events;
  }

  #key(ch: string): EditorEvent | undefined {
    const afterCr = this.#afterCr;
    this.#afterCr = ch === "\r";
    switch (this.#escape) {
      case "esc":
        this.#escape = ch === "[" ? "csi" : ch === "O" ? "ss3" : "none";
        return;
      case "csi":
        // Parameter and intermediate bytes, then one final byte in @ … ~.
        if (ch >= "@" && ch <= "~") this.#escape = "none";
        return;
      case "ss3":
        this.#escape = "none";
        return;
    }
    switch (ch) {
      case "\x1b":
        this.#escape = "esc";
        return;
      case "\r":
        return this.#submit();
      case "\n":
        // \r\n (a paste) is one Enter.
        return afterCr ? undefined : this.#submit();
      case "\x03": // Ctrl+C
        return { type: "interrupt" };
      case "\x04": // Ctrl+D: leaves on an empty line only
        return this.#text === "" ? { type: "eof" } : undefined;
      case "\x7f":
      case "\b": {
        const last = [...segmenter.segment(this.#text)].at(-1);
        if (last === undefined) return;
        this.#text = this.#text.slice(0, last.index);
        return this.#redraw();
      }
      case "\x15": // Ctrl+U
        this.#text = "";
        return this.#redraw();
      case "\x17": // Ctrl+W
        this.#text = this.#text.replace(/\S*\s*$/u, "");
        return this.#redraw();
    }
    // Other control characters (tab included) do nothing.
    if (/\p{Cc}/u.test(ch)) return;
    this.#text += ch;
    if (this.#active) this.#write(ch);
    return undefined;
  }

  #submit(): EditorEvent {
    const text = this.#text;
    this.#text = "";
    // The line typed is erased: the server's echo shows it, stamped.
    this.#redraw();
    return { type: "line", text };
  }

  #redraw(): undefined {
    if (this.#active) this.#write(`${CLEAR_ROW}${this.#prompt}${this.#text}`);
    return undefined;
  }
}
