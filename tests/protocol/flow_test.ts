/** Stream credit on the consumer's side: when `ChunkBuffer` gives credit back. */
import { assertEquals } from "@std/assert";
import { ChunkBuffer } from "../../protocol/flow.ts";

Deno.test("ChunkBuffer grants", async (t) => {
  const run = async (grantWhenDry: boolean) => {
    const grants: number[] = [];
    const buffer = new ChunkBuffer<number>(8, (n) => grants.push(n), grantWhenDry);
    for (let i = 0; i < 3; i++) buffer.push(i);
    for (let i = 0; i < 3; i++) assertEquals((await buffer.next()).value, i);
    const waiting = buffer.next(); // the reader runs dry after 3 of a window of 8
    const afterDry = [...grants];
    buffer.push(3);
    assertEquals((await waiting).value, 3);
    for (let i = 4; i < 8; i++) buffer.push(i);
    for (let i = 4; i < 8; i++) assertEquals((await buffer.next()).value, i);
    buffer.end();
    assertEquals((await buffer.next()).done, true);
    return { afterDry, grants };
  };
  await t.step("by default in batches of half the window", async () => {
    const { afterDry, grants } = await run(false);
    assertEquals(afterDry, [], "nothing granted while under half the window");
    assertEquals(grants, [4, 4]);
  });
  await t.step("with grantWhenDry also as soon as the reader finds nothing left", async () => {
    const { afterDry, grants } = await run(true);
    assertEquals(afterDry, [3], "what was read is granted when the reader runs dry");
    assertEquals(grants, [3, 4], "then half windows again; nothing once the stream ended");
  });
});
