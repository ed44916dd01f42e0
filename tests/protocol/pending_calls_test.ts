import { assert, assertEquals, assertRejects } from "@std/assert";
import { CallTimeoutError, CancelledError, ConnectionClosedError } from "../../protocol/errors.ts";
import { PendingCalls } from "../../protocol/pending_calls.ts";

Deno.test("PendingCalls: size counts the calls waiting, each settles once", async (t) => {
  const givenUp: number[] = [];
  const pending = new PendingCalls((id) => givenUp.push(id));

  await t.step("one call at a time: added, answered, gone", async () => {
    for (let id = 1; id < 40; id += 2) {
      const answer = pending.add(id, "echo", 30_000);
      assertEquals(pending.size, 1);
      assertEquals(pending.resolve(id, id * 10), true);
      assertEquals(pending.size, 0);
      assertEquals(await answer, id * 10);
      assertEquals(pending.resolve(id, 0), false, "a second answer finds nothing");
    }
  });

  await t.step("a timeout rejects, gives up the call, and empties the table", async () => {
    const answer = pending.add(101, "slow", 20);
    await assertRejects(() => answer, CallTimeoutError);
    assertEquals(pending.size, 0);
    assertEquals(givenUp, [101]);
  });

  await t.step("abort and rejectWhere settle only the calls they name", async () => {
    const a = pending.add(201, "a", 0);
    const b = pending.add(203, "b", 0);
    const c = pending.add(205, "c", 0);
    assertEquals(pending.size, 3);
    pending.abort(203);
    await assertRejects(() => b, CancelledError);
    pending.rejectWhere((id) => id > 202, (method) => new ConnectionClosedError(`${method} lost`));
    const err = await c.then(() => undefined, (e) => e);
    assert(err instanceof ConnectionClosedError && err.message === "c lost", String(err));
    assertEquals(pending.size, 1);
    pending.rejectWhere(() => true, () => new ConnectionClosedError("closed"));
    await assertRejects(() => a, ConnectionClosedError);
    assertEquals(pending.size, 0);
    pending.clear();
  });
});
