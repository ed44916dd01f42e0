/**
 * The browser demo in a real browser: `examples/browser/server.ts` runs as a process, and
 * headless Chromium (driven by playwright-core, never downloading a browser) loads its page,
 * connects with the secret, greets, sees the `welcome` and `tick` events, streams
 * `time(5, 200)`, and in a second context fails with a wrong secret (`AUTH_FAILED`).
 *
 * Needs `/usr/bin/chromium` (`apt-get install chromium`); skipped without it. With
 * `SCREENSHOT=1` it also saves the connected page to `docs/browser-demo.png`.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
// Types only: the module itself is loaded by the test (not at all when it is skipped).
import type { Browser } from "npm:playwright-core@1.65.1";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = new URL("../", import.meta.url).pathname;
const SECRET = "browser-test-secret-0123456789-abcdefghijkl";
const WRONG_SECRET = "browser-test-wrong-secret-0123456789-abcdef";
/** Every Playwright wait (ms). */
const WAIT = 20_000;

const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
if (!hasChromium) {
  console.warn(
    `browser_test.ts: skipped, ${CHROMIUM} is missing. Install it with ` +
      "`sudo apt-get install chromium` (Debian/Ubuntu) to run the browser test.",
  );
}

/** The demo server as a child process, once it has printed its page address. */
interface DemoServer {
  child: Deno.ChildProcess;
  url: string;
  /** Everything it printed so far (stdout and stderr), for failure messages. */
  output(): string;
  /** SIGTERM, then its exit status (bounded: SIGKILL after 10 s). */
  stop(): Promise<Deno.CommandStatus>;
}

async function startDemoServer(): Promise<DemoServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}examples/browser/server.ts`, "--port", "0"],
    cwd: ROOT,
    env: { TRUST_ID: SECRET, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let err = "";
  const drain = async (stream: ReadableStream<Uint8Array>, add: (text: string) => void) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) add(text);
  };
  const drained = Promise.all([
    drain(child.stdout, (t) => out += t),
    drain(child.stderr, (t) => err += t),
  ]);
  const output = () => `--- stdout\n${out}--- stderr\n${err}`;
  let stopping: Promise<Deno.CommandStatus> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, 10_000);
      try {
        const status = await child.status;
        await drained;
        return status;
      } finally {
        clearTimeout(timer);
      }
    })();
  // Bundling at start takes a few seconds (longer with a cold cache).
  const deadline = Date.now() + 60_000;
  let url: string | undefined;
  while (url === undefined && Date.now() < deadline) {
    url = /^Open (http:\/\/\S+) in a browser$/m.exec(out)?.[1];
    if (url === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (url === undefined) {
    await stop();
    throw new Error(`the demo server did not print its address within 60 s\n${output()}`);
  }
  return { child, url, output, stop };
}

Deno.test({
  name: "browser demo: connect, greet, events, stream, and AUTH_FAILED with a wrong secret",
  ignore: !hasChromium,
  async fn() {
    const { chromium } = await import("npm:playwright-core@1.65.1");
    const server = await startDemoServer();
    let browser: Browser | undefined;
    const pageErrors: string[] = [];
    try {
      const launched = browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        timeout: WAIT,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });

      // The right secret.
      const context = await launched.newContext({ viewport: { width: 900, height: 640 } });
      context.setDefaultTimeout(WAIT);
      const page = await context.newPage();
      page.on("pageerror", (e) => pageErrors.push(String(e)));
      page.on("console", (m) => {
        if (m.type() === "error") pageErrors.push(m.text());
      });
      const response = await page.goto(server.url);
      assertEquals(response?.status(), 200);
      assertEquals(await page.title(), "@trust/rpc in the browser");
      await page.locator("#connect:enabled").waitFor(); // the script has loaded

      await page.fill("#secret", SECRET);
      await page.click("#connect");
      const status = page.locator("#status", { hasText: /^Connected, session [0-9a-f]{8}$/ });
      await status.waitFor();
      assert(await page.locator("#error").isHidden(), "no error is shown");

      await page.fill("#name", "Alice");
      await page.click("#greet");
      await page.locator("#greeting", { hasText: "Hello, Alice!" }).waitFor();
      assertEquals(await page.textContent("#greeting"), "Hello, Alice!");

      await page.locator("#events li[data-event=welcome]").waitFor();
      assertMatch(
        (await page.textContent("#events li[data-event=welcome]")) ?? "",
        /^welcome 1 peer connected$/,
      );
      await page.locator("#events li[data-event=tick]").first().waitFor();
      assertMatch(
        (await page.locator("#events li[data-event=tick]").first().textContent()) ?? "",
        /^tick #\d+ at /,
      );

      await page.click("#stream");
      await page.locator("#times li").nth(4).waitFor();
      await page.locator("#stream:enabled").waitFor(); // the stream has ended
      const stamps = await page.locator("#times li").allTextContents();
      assertEquals(stamps.length, 5, `timestamps: ${stamps.join(", ")}`);
      for (const stamp of stamps) assertMatch(stamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const times = stamps.map((s) => Date.parse(s));
      assert(times.every((t, i) => i === 0 || t >= times[i - 1]), "timestamps in order");
      assert(times[4] - times[0] >= 700, `about 200 ms apart: ${stamps.join(", ")}`);
      assert(await page.locator("#error").isHidden(), "no error after the stream");

      if (Deno.env.get("SCREENSHOT") === "1") {
        await page.screenshot({ path: `${ROOT}docs/browser-demo.png`, fullPage: true });
      }

      // A wrong secret, in a fresh context (its own storage, its own connection).
      const other = await launched.newContext();
      other.setDefaultTimeout(WAIT);
      const wrong = await other.newPage();
      await wrong.goto(server.url);
      await wrong.locator("#connect:enabled").waitFor();
      await wrong.fill("#secret", WRONG_SECRET);
      await wrong.click("#connect");
      await wrong.locator("#error", { hasText: "AUTH_FAILED" }).waitFor();
      assertMatch((await wrong.textContent("#error")) ?? "", /^AUTH_FAILED: /);
      assertEquals(await wrong.textContent("#status"), "Not connected");
      assert(await wrong.locator("#connected").isHidden(), "nothing past the login is shown");

      // The first page is still connected and still receives ticks.
      assertMatch((await page.textContent("#status")) ?? "", /^Connected, session /);
      assertEquals(pageErrors, [], "the connected page logged no errors");
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${server.output()}`, { cause: err });
    } finally {
      await browser?.close().catch(() => {});
      await server.stop();
    }
    const exit = await server.stop();
    assertEquals(exit.code, 0, `the server exits cleanly on SIGTERM\n${server.output()}`);
    assertMatch(server.output(), /SIGTERM: stopping\nstopped\n/);
  },
});
