import { assertEquals } from "@std/assert";
import { Deadlines } from "../../protocol/deadlines.ts";

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
  await new Promise((r) => setTimeout(r, 120));
  assertEquals(fired, ["a", "b", "c"]);
  for (const [key, ms] of [["a", 20], ["b", 40], ["c", 60]] as const) {
    assertEquals(when[key] >= ms - 1, true, `${key} fired early`);
  }
  assertEquals(d.size, 0);
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
