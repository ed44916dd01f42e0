import { assertEquals } from "@std/assert";
import { Deadlines } from "../../protocol/deadlines.ts";

const DEADLINES_URL = new URL("../../protocol/deadlines.ts", import.meta.url).href;
let timer: ReturnType<typeof setTimeout> | undefined;

Deno.test("Deadlines: fire in order, never early; deleted ones never fire", async () => {
  const d = new Deadlines<string>();
  const fired: string[] = [];
  const start = Date.now();
  const when: Record<string, number> = {};
  for (const [key, ms] of [["c", 60], ["a", 20], ["b", 40], ["x", 30]] as const) {
    d.add(key, ms, () => {
      fired.push(key);
      when[key] = Date.now() - start;
    });
  }
  d.delete("x");
  // Wait for the last one (a loaded machine runs timers late), then a little for a stray "x".
  const deadline = Date.now() + 2_000;
  while (fired.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 20));
  assertEquals(fired, ["a", "b", "c"]);
  for (const [key, ms] of [["a", 20], ["b", 40], ["c", 60]] as const) {
    assertEquals(when[key] >= ms - 1, true, `${key} fired early`);
  }
  assertEquals(d.size, 0);
});

Deno.test("Deadlines: due together after a late timer, they fire in deadline order", async () => {
  let now = 0;
  const d = new Deadlines<string>(() => now);
  const fired: string[] = [];
  for (const [key, ms] of [["c", 60], ["a", 20], ["b", 40]] as const) {
    d.add(key, ms, () => fired.push(key));
  }
  now = 100; // the clock has passed all three before the timer (armed for a) runs
  const deadline = Date.now() + 2_000;
  while (fired.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assertEquals(fired, ["a", "b", "c"]);
});

Deno.test("Deadlines: an earlier deadline added later re-arms the timer", async () => {
  const d = new Deadlines<number>();
  const fired: number[] = [];
  d.add(1, 10_000, () => fired.push(1));
  d.add(2, 10, () => fired.push(2));
  await new Promise((r) => setTimeout(r, 50));
  assertEquals(fired, [2]);
  d.clear();
  assertEquals(d.size, 0);
});

Deno.test("Deadlines: shared ones release the timer with their last entry", async () => {
  const d = new Deadlines<object>(Date.now, true);
  const first = {}, second = {};
  const fired: string[] = [];
  d.add(first, 10_000, () => fired.push("first"));
  d.add(second, 20, () => fired.push("second"));
  d.delete(first);
  await new Promise((r) => setTimeout(r, 60));
  assertEquals(fired, ["second"]);
  assertEquals(d.size, 0);
  // A process whose last deadline is gone is not kept alive by the timer (a one-minute one).
  const script = `import { Deadlines } from ${JSON.stringify(DEADLINES_URL)};
    const d = new Deadlines(Date.now, true); d.add(1, 60_000, () => {}); d.delete(1);`;
  const child = new Deno.Command(Deno.execPath(), { args: ["eval", script] }).spawn();
  const exited = await Promise.race([
    child.status.then(() => true),
    new Promise<false>((r) => timer = setTimeout(() => r(false), 30_000)),
  ]);
  clearTimeout(timer);
  if (!exited) child.kill();
  await child.status;
  assertEquals(exited, true, "the released timer still held the process");
});
