import { assert, assertEquals, assertNotStrictEquals } from "@std/assert";
import { decodeValue, encodeValue } from "../../protocol/codec.ts";
import { Flag, Kind } from "../../protocol/messages.ts";
import { Reassembler } from "../../protocol/reassembly.ts";
import { isSlabBytes, MAX_SLAB_PIECE, SLAB_SIZE, slabBytes } from "../../protocol/slab.ts";

Deno.test("slabs: small buffers are disjoint views, and what leaves for users is copied", async (t) => {
  await t.step("views never overlap, start zeroed, and move to a new slab when one is full", () => {
    const views: Uint8Array[] = [];
    let bytes = 0;
    while (bytes < 3 * SLAB_SIZE) {
      const v = slabBytes(100 + (views.length % 7) * 50);
      assert(v.every((x) => x === 0));
      v.fill(0xee);
      views.push(v);
      bytes += v.length;
    }
    const slabs = new Set(views.map((v) => v.buffer));
    assert(slabs.size >= 3, `${slabs.size} slabs`);
    for (const s of slabs) {
      const inIt = views.filter((v) => v.buffer === s).sort((a, b) => a.byteOffset - b.byteOffset);
      for (let i = 1; i < inIt.length; i++) {
        assert(inIt[i].byteOffset >= inIt[i - 1].byteOffset + inIt[i - 1].length, "overlap");
      }
    }
    assert(views.every(isSlabBytes));
    const own = slabBytes(MAX_SLAB_PIECE + 1);
    assertEquals(own.buffer.byteLength, MAX_SLAB_PIECE + 1);
    assert(!isSlabBytes(own));
    assert(!isSlabBytes(new Uint8Array(SLAB_SIZE)), "a buffer of the same size is not a slab");
  });

  await t.step("attachments decoded from a slab payload are copies, others views", () => {
    const { bytes } = encodeValue({ file: new Uint8Array([1, 2, 3]) });
    const inSlab = slabBytes(bytes.length);
    inSlab.set(bytes);
    const fromSlab = decodeValue(inSlab, true) as { file: Uint8Array };
    const fromOwn = decodeValue(bytes, true) as { file: Uint8Array };
    assertEquals(fromSlab.file, new Uint8Array([1, 2, 3]));
    assertNotStrictEquals(fromSlab.file.buffer, inSlab.buffer);
    assertEquals(fromSlab.file.buffer.byteLength, 3);
    assertEquals(fromOwn.file.buffer, bytes.buffer);
  });

  await t.step("pieces of a message kept for reassembly are copied out of a slab", () => {
    const reassembler = new Reassembler(1 << 20, 1 << 20);
    const piece = slabBytes(4);
    piece.set([1, 2, 3, 4]);
    assertEquals(reassembler.add({ kind: Kind.REQUEST, flags: Flag.MORE, id: 1, payload: piece }), {
      state: "partial",
    });
    piece.fill(0); // the slab's bytes are not the piece's any more
    const done = reassembler.add({
      kind: Kind.REQUEST,
      flags: 0,
      id: 1,
      payload: new Uint8Array([5]),
    });
    assertEquals(done, { state: "complete", payload: new Uint8Array([1, 2, 3, 4, 5]), flags: 0 });
  });
});
