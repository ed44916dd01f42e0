/**
 * The page script of the browser demo (bundled by `server.ts` into `/app.js`): connects to
 * the page's own origin at `/rpc` with the secret typed into the page, then greets, lists the
 * server's `welcome` and `tick` events, and streams `time(5, 200)`.
 *
 * @module
 */

import { type Client, connect, RpcError } from "../../browser.ts";

// The few DOM types this script needs, declared here rather than with
// `/// <reference lib="dom" />`: that directive applies to every module `deno check` checks
// together with this one, and the DOM's `WebSocket` then clashes with Deno's in the library's
// Deno transports (which `examples/browser/server.ts` imports).

/** An element of the page, as far as this script uses it. */
interface Elem {
  textContent: string | null;
  hidden: boolean;
  disabled: boolean;
  value: string;
  readonly dataset: Record<string, string | undefined>;
  readonly childElementCount: number;
  readonly lastElementChild: Elem | null;
  addEventListener(type: string, listener: (event: Event) => void): void;
  append(...nodes: (Elem | string)[]): void;
  prepend(...nodes: (Elem | string)[]): void;
  replaceChildren(...nodes: (Elem | string)[]): void;
  remove(): void;
  focus(): void;
  select(): void;
}
declare const document: {
  getElementById(id: string): Elem | null;
  createElement(tag: string): Elem;
};

/** Most events kept in the list (newest first). */
const MAX_EVENTS = 50;

function $(id: string): Elem {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`#${id} is missing from the page`);
  return el;
}

const form = $("login");
const secretInput = $("secret");
const connectButton = $("connect");
const statusLine = $("status");
const errorLine = $("error");
const panel = $("connected");
const greetForm = $("greet-form");
const nameInput = $("name");
const greetButton = $("greet");
const greeting = $("greeting");
const events = $("events");
const streamButton = $("stream");
const times = $("times");

/** The WebSocket address on this page's own origin. */
const address = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/rpc`;

let client: Client | undefined;

function showError(err: unknown): void {
  errorLine.textContent = err instanceof RpcError
    ? `${err.code}: ${err.message}`
    : String((err as Error)?.message ?? err);
  errorLine.hidden = false;
}

function clearError(): void {
  errorLine.textContent = "";
  errorLine.hidden = true;
}

function setStatus(text: string, state: "idle" | "busy" | "ok" | "bad"): void {
  statusLine.textContent = text;
  statusLine.dataset.state = state;
}

function addEvent(name: string, detail: string): void {
  const li = document.createElement("li");
  const tag = document.createElement("b");
  tag.textContent = name;
  li.append(tag, ` ${detail}`);
  li.dataset.event = name;
  events.prepend(li);
  while (events.childElementCount > MAX_EVENTS) events.lastElementChild!.remove();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (client !== undefined) return;
  clearError();
  connectButton.disabled = true;
  secretInput.disabled = true;
  setStatus("Connecting… (deriving the key takes a second)", "busy");
  try {
    // `reconnect: false`: a wrong secret fails here at once instead of retrying; a lost
    // connection later is shown and the Connect button comes back.
    const connected = await connect(address, {
      secret: secretInput.value,
      reconnect: false,
      connectTimeout: 5000,
    });
    client = connected;
    // Listeners first, before any await: the server sends `welcome` right after the handshake.
    connected.on("welcome", (data) => {
      const { peers } = data as { peers: number };
      addEvent("welcome", `${peers} peer${peers === 1 ? "" : "s"} connected`);
    });
    connected.on("tick", (data) => {
      const { n, at } = data as { n: number; at: string };
      addEvent("tick", `#${n} at ${new Date(at).toLocaleTimeString()}`);
    });
    connected.closed.then((reason) => {
      if (client !== connected) return;
      client = undefined;
      panel.hidden = true;
      connectButton.disabled = false;
      secretInput.disabled = false;
      setStatus("Disconnected", "bad");
      if (reason) showError(reason);
    });
    secretInput.value = ""; // the client holds the derived key; the page need not keep the text
    setStatus(`Connected, session ${connected.sessionId.slice(0, 8)}`, "ok");
    panel.hidden = false;
    nameInput.focus();
  } catch (err) {
    setStatus("Not connected", "bad");
    showError(err);
    connectButton.disabled = false;
    secretInput.disabled = false;
    secretInput.select();
  }
});

greetForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (client === undefined) return;
  clearError();
  greetButton.disabled = true;
  try {
    greeting.textContent = String(await client.call("greet", [nameInput.value]));
  } catch (err) {
    showError(err);
  } finally {
    greetButton.disabled = false;
  }
});

streamButton.addEventListener("click", async () => {
  if (client === undefined) return;
  clearError();
  streamButton.disabled = true;
  times.replaceChildren();
  try {
    for await (const tick of client.stream<{ timestamp: string }>("time", [5, 200])) {
      const li = document.createElement("li");
      li.textContent = tick.timestamp;
      times.append(li);
    }
  } catch (err) {
    showError(err);
  } finally {
    streamButton.disabled = false;
  }
});

setStatus("Not connected", "idle");
connectButton.disabled = false; // enabled once this script runs
