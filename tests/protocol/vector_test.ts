import { assert, assertEquals, assertRejects } from "@std/assert";
import { fromHex, toHex, utf8 } from "../../protocol/bytes.ts";
import { AuthenticationError } from "../../protocol/errors.ts";
import { FrameReader } from "../../protocol/frame_reader.ts";
import { clientHandshake, serverHandshake } from "../../protocol/handshake.ts";
import {
  deriveSessionKeys,
  ephemeralFromPrivate,
  signClientProof,
  transcriptHash,
} from "../../protocol/handshake_messages.ts";
import { encodeMessages, Kind } from "../../protocol/messages.ts";
import { nextKey, RecordOpener, RecordSealer } from "../../protocol/record.ts";
import { stretchSecret } from "../../protocol/secret.ts";
import { memoryPair } from "../_memory_pair.ts";

const V = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/vector_tcp.json", import.meta.url)),
);
const hex = (name: string) => fromHex(V[name]);

/** A random source that hands out the vector's fixed values in order. */
function scripted(...values: Uint8Array[]): (n: number) => Uint8Array {
  return (n) => {
    const next = values.shift();
    if (next === undefined || next.length !== n) throw new Error(`unexpected random(${n})`);
    return next;
  };
}

Deno.test("trust-rpc/1 test vector (PROTOCOL.md §13)", async (t) => {
  const psk = await stretchSecret(V.trust_id);

  await t.step("PBKDF2 stretch gives the vector's psk", () => {
    assertEquals(toHex(psk), V.psk);
  });

  await t.step("both roles generate M1, M2, M3 and keys byte for byte", async () => {
    const [c, s] = memoryPair();
    // The §13 vector predates the ChaCha20-Poly1305 flag: M1 and M2 carry flags 0.
    const common = { psk, transport: "tcp" as const, maxFrame: V.max_frame, chacha: false };
    const [server, client] = await Promise.all([
      serverHandshake(s, new FrameReader(s, 140), {
        ...common,
        instance: hex("server_instance"),
        sessionId: hex("session_id"),
        random: scripted(hex("server_random")),
        ephemeral: () => ephemeralFromPrivate(hex("server_eph_priv")),
      }),
      clientHandshake(c, new FrameReader(c), {
        ...common,
        instance: hex("client_instance"),
        random: scripted(hex("client_random")),
        ephemeral: () => ephemeralFromPrivate(hex("client_eph_priv")),
      }),
    ]);
    assertEquals(toHex(s.written[0]), V.m1);
    assertEquals(toHex(c.written[0]), V.m2);
    assertEquals(toHex(s.written[1]), V.m3);
    assertEquals(toHex(client.sendKey), V.c2s_key);
    assertEquals(toHex(client.sendIv), V.c2s_iv);
    assertEquals(toHex(client.recvKey), V.s2c_key);
    assertEquals(toHex(client.recvIv), V.s2c_iv);
    assertEquals(toHex(server.recvKey), V.c2s_key);
    assertEquals(toHex(server.sendKey), V.s2c_key);
    assertEquals(client.sessionIdHex, V.session_id);
    assertEquals(server.peerMaxFrame, V.max_frame);
  });

  await t.step("transcript, key schedule and proofs match", async () => {
    const th = await transcriptHash("tcp", hex("m1"), hex("m2"));
    assertEquals(toHex(th), V.th);
    const keys = await deriveSessionKeys(psk, hex("dh"), th);
    assertEquals(toHex(keys.cpk), V.cpk);
    assertEquals(toHex(keys.spk), V.spk);
    assertEquals(toHex(await signClientProof(keys.cpk, th)), V.client_proof);
    const wrongPsk = await stretchSecret(V.trust_id + "X");
    const wrong = await deriveSessionKeys(wrongPsk, hex("dh"), th);
    assertEquals(toHex(await signClientProof(wrong.cpk, th)), V.client_proof_if_trust_id_plus_X);
  });

  await t.step("the server rejects the wrong-secret client after the fixed delay", async () => {
    const [c, s] = memoryPair();
    const wrongPsk = await stretchSecret(V.trust_id + "X");
    const started = performance.now();
    const serverSide = serverHandshake(s, new FrameReader(s, 140), {
      psk,
      transport: "tcp",
      maxFrame: V.max_frame,
      instance: hex("server_instance"),
      authFailureDelayMs: 50,
    });
    const clientSide = clientHandshake(c, new FrameReader(c), {
      psk: wrongPsk,
      transport: "tcp",
      maxFrame: V.max_frame,
      instance: hex("client_instance"),
    });
    const [sr, cr] = await Promise.allSettled([serverSide, clientSide]);
    if (sr.status !== "rejected" || cr.status !== "rejected") throw new Error("both must fail");
    assert(sr.reason instanceof AuthenticationError);
    assert(cr.reason instanceof AuthenticationError);
    assertEquals(cr.reason.code, "AUTH_FAILED");
    assert(performance.now() - started >= 45, "the alert waits for the fixed delay");
    s.close();
  });

  await t.step("record 0 seals and opens as in the vector", async () => {
    const sealer = new RecordSealer(hex("c2s_key"), hex("c2s_iv"));
    const frame = await sealer.seal(0x10, utf8(V.c2s_record0_plaintext));
    assertEquals(toHex(frame), V.c2s_record0);
    const opener = new RecordOpener(hex("c2s_key"), hex("c2s_iv"));
    opener.accept(0);
    const plain = await opener.open(0, frame.subarray(0, 20), frame.subarray(20));
    assertEquals(new TextDecoder().decode(plain), V.c2s_record0_plaintext);
  });

  await t.step("message-layer vector (D.14): two REQUESTs in one record", async () => {
    const plaintext = encodeMessages([
      { kind: Kind.REQUEST, flags: 0, id: 1, payload: utf8('{"method":"echo","params":["hi"]}') },
      {
        kind: Kind.REQUEST,
        flags: 0,
        id: 3,
        payload: utf8('{"method":"greet","params":["Alice"]}'),
      },
    ]);
    assertEquals(toHex(plaintext), V.messages_plaintext);
    const sealer = new RecordSealer(hex("c2s_key"), hex("c2s_iv"));
    assertEquals(toHex(await sealer.seal(0x10, plaintext)), V.messages_record);
  });

  await t.step("KEY_UPDATE derives the vector's next key", () => {
    const next = nextKey(hex("c2s_key"));
    assertEquals(toHex(next.key), V.c2s_key_update_key);
    assertEquals(toHex(next.iv), V.c2s_key_update_iv);
  });

  await t.step("a tampered record fails to open", async () => {
    const frame = fromHex(V.c2s_record0);
    frame[30] ^= 1;
    const opener = new RecordOpener(hex("c2s_key"), hex("c2s_iv"));
    opener.accept(0);
    await assertRejects(() => opener.open(0, frame.subarray(0, 20), frame.subarray(20)));
  });
});
