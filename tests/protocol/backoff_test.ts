import { assert, assertEquals } from "@std/assert";
import { backoffDelay } from "../../protocol/backoff.ts";

Deno.test("backoffDelay: full jitter under a doubling ceiling capped at the maximum", () => {
  assertEquals(backoffDelay(0, 100, 30_000, () => 0.999), 99);
  assertEquals(backoffDelay(3, 100, 30_000, () => 0.5), 400);
  assertEquals(backoffDelay(20, 100, 30_000, () => 0.999), 29_970);
  assertEquals(backoffDelay(5000, 100, 30_000, () => 0), 0);
  for (let attempt = 0; attempt < 40; attempt++) {
    const d = backoffDelay(attempt);
    assert(d >= 0 && d < 30_000 && Number.isInteger(d), `attempt ${attempt}: ${d}`);
  }
});
