import { assertEquals } from "@std/assert";
import { TimeoutEntry, TimeoutLists } from "../../protocol/timeout_lists.ts";

class Item extends TimeoutEntry {
  constructor(readonly name: string) {
    super();
  }
}

/** Waits (bounded) until `done()` or two seconds have passed. */
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

Deno.test("TimeoutLists: entries come due in deadline order, never early", async (t) => {
  await t.step("one duration: in the order added; deleted ones never come", async () => {
    let now = 1_000;
    const fired: string[] = [];
    const lists = new TimeoutLists<Item>((item) => fired.push(item.name), () => now);
    const items = ["a", "b", "c", "d"].map((n) => new Item(n));
    for (const item of items) {
      lists.add(item, 50);
      now += 1;
    }
    assertEquals(lists.size, 4);
    assertEquals(lists.delete(items[1]), true);
    assertEquals(lists.delete(items[1]), false);
    assertEquals(lists.size, 3);
    now = 1_051; // a (due 1,050) and c (1,052)? Only a is due.
    await until(() => fired.length >= 1);
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(fired, ["a"]);
    now = 2_000;
    lists.add(new Item("e"), 0); // arms the timer again for the rest
    await until(() => fired.length >= 4);
    assertEquals(fired, ["a", "c", "d", "e"]);
    assertEquals(lists.size, 0);
  });

  await t.step("several durations due together fire by deadline, not by list", async () => {
    let now = 0;
    const fired: string[] = [];
    const lists = new TimeoutLists<Item>((item) => fired.push(item.name), () => now);
    for (const [name, ms] of [["c", 60], ["a", 20], ["c2", 60], ["b", 40], ["a2", 20]] as const) {
      lists.add(new Item(name), ms);
      now += 1;
    }
    now = 1_000; // the timer (armed for a) runs after all of them are due
    await until(() => fired.length >= 5);
    assertEquals(fired, ["a", "a2", "b", "c", "c2"]);
  });

  await t.step("a real timer: each fires at or after its deadline", async () => {
    const start = Date.now();
    const at: Record<string, number> = {};
    const lists = new TimeoutLists<Item>((item) => at[item.name] = Date.now() - start);
    lists.add(new Item("late"), 60);
    lists.add(new Item("early"), 15); // earlier than the armed timer: re-arms it
    await until(() => Object.keys(at).length >= 2);
    assertEquals(at.early >= 14 && at.late >= 59, true, JSON.stringify(at));
    assertEquals(at.early <= at.late, true);
  });
});

Deno.test("TimeoutLists: a clock stepped back keeps the order and fires nothing early", async () => {
  let now = 10_000;
  const fired: string[] = [];
  const lists = new TimeoutLists<Item>((item) => fired.push(item.name), () => now);
  const first = new Item("first"), second = new Item("second");
  lists.add(first, 100); // due 10,100
  now = 5_000; // the wall clock stepped back
  lists.add(second, 100); // due 5,100 by the clock; kept behind first, at 10,100
  assertEquals(second.dueAt, 10_100);
  now = 6_000;
  lists.add(new Item("probe"), 0); // arms a sweep now: nothing else is due
  await until(() => fired.length >= 1);
  await new Promise((r) => setTimeout(r, 20));
  assertEquals(fired, ["probe"]); // second is not due at 6,000, though 5,100 has passed
  assertEquals([lists.size, first.dueAt, second.dueAt], [2, 10_100, 10_100]);
});

Deno.test("TimeoutLists: re-adding replaces, clear() empties and entries can come back", async () => {
  let now = 0;
  const fired: string[] = [];
  const lists = new TimeoutLists<Item>((item) => fired.push(item.name), () => now);
  const item = new Item("x");
  lists.add(item, 10);
  lists.add(item, 500); // replaces the first deadline
  assertEquals(lists.size, 1);
  assertEquals(item.dueAt, 500);
  const other = new Item("y");
  lists.add(other, 10);
  lists.clear();
  assertEquals(lists.size, 0);
  assertEquals(lists.delete(item), false);
  now = 1_000;
  await new Promise((r) => setTimeout(r, 30));
  assertEquals(fired, []); // cleared: nothing fires, the timer is gone
  lists.add(other, 0);
  await until(() => fired.length >= 1);
  assertEquals(fired, ["y"]);
  assertEquals(lists.size, 0);
});
