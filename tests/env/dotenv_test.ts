import { assert, assertEquals, assertRejects } from "@std/assert";
import { loadDotenv, parseDotenv } from "../../env/dotenv.ts";
import { normalizeSecret } from "../../protocol/secret.ts";

/** PROTOCOL.md §13: its psk is d26d1b0c…353a (checked in tests/protocol/secret_test.ts). */
const S = "example-only-NOT-a-real-secret-0123456789abcdef";

Deno.test("parseDotenv()", async (t) => {
  await t.step("every variant of the same secret normalizes like the env var", () => {
    const variants: [string, string][] = [
      ["plain LF", `TRUST_ID=${S}\n`],
      ["no final newline", `TRUST_ID=${S}`],
      ["CRLF", `A=1\r\nTRUST_ID=${S}\r\nB=2\r\n`],
      ["CRLF, last line", `A=1\r\nTRUST_ID=${S}\r\n`],
      ["lone trailing CR", `TRUST_ID=${S}\r`],
      ["BOM", `\uFEFFTRUST_ID=${S}\n`],
      ["BOM and CRLF", `\uFEFFTRUST_ID=${S}\r\n`],
      ["export prefix", `export TRUST_ID=${S}\n`],
      ["export prefix with a tab", `export\tTRUST_ID=${S}\n`],
      ["single quotes", `TRUST_ID='${S}'\n`],
      ["double quotes", `TRUST_ID="${S}"\n`],
      ["double quotes, CRLF", `TRUST_ID="${S}"\r\n`],
      ["export and quotes", `export TRUST_ID="${S}"\r\n`],
      ["spaces around =", `TRUST_ID = ${S}\n`],
      ["leading spaces", `   TRUST_ID=${S}\n`],
      ["trailing spaces", `TRUST_ID=${S}   \n`],
      ["trailing tab and CR", `TRUST_ID=${S}\t\r\n`],
      ["comment after the value", `TRUST_ID=${S} # the shared secret\n`],
      ["comment after single quotes", `TRUST_ID='${S}'  # note\n`],
      ["comment after double quotes", `TRUST_ID="${S}"\t# note\r\n`],
      ["spaces inside quotes", `TRUST_ID="  ${S}  "\n`],
      ["escaped \\r inside double quotes", `TRUST_ID="${S}\\r"\n`],
      ["comment lines and blank lines", `# header\n\n   # indented\n\r\nTRUST_ID=${S}\n\n#end`],
      ["duplicated key, last wins", `TRUST_ID=first-value-that-loses-0123456789\nTRUST_ID=${S}\n`],
      ["malformed lines around it", `garbage\n=x\n1A=2\nTRUST_ID=${S}\nB="unclosed\n`],
    ];
    for (const [name, text] of variants) {
      const env = parseDotenv(text);
      assert(env.TRUST_ID !== undefined, name);
      assertEquals(normalizeSecret(env.TRUST_ID), normalizeSecret(S), name);
    }
    assertEquals(normalizeSecret(`${S}\r`), S);
  });

  await t.step("values", () => {
    const env = parseDotenv(
      [
        "EQ=a=b=c",
        "EMPTY=",
        "EMPTY_SPACES=   ",
        "EMPTY_QUOTED=''",
        'EMPTY_DQ=""',
        "HASH_INSIDE=a#b",
        "HASH_FIRST=#abc",
        "ONLY_COMMENT= # nothing",
        "SINGLE='a \\n $X # not a comment'",
        'DOUBLE="a\\nb\\tc\\rd\\\\e\\"f\\x"',
        'DOUBLE_HASH="a # b"',
        "DOLLAR=$HOME${X}",
        "INNER_QUOTES=say \"hi\" 'there'",
        "dotted.key-name=1",
        "_under=2",
      ].join("\n"),
    );
    assertEquals(env.EQ, "a=b=c");
    assertEquals(env.EMPTY, "");
    assertEquals(env.EMPTY_SPACES, "");
    assertEquals(env.EMPTY_QUOTED, "");
    assertEquals(env.EMPTY_DQ, "");
    assertEquals(env.HASH_INSIDE, "a#b");
    assertEquals(env.HASH_FIRST, "#abc");
    assertEquals(env.ONLY_COMMENT, "");
    assertEquals(env.SINGLE, "a \\n $X # not a comment");
    assertEquals(env.DOUBLE, 'a\nb\tc\rd\\e"f\\x');
    assertEquals(env.DOUBLE_HASH, "a # b");
    assertEquals(env.DOLLAR, "$HOME${X}");
    assertEquals(env.INNER_QUOTES, "say \"hi\" 'there'");
    assertEquals(env["dotted.key-name"], "1");
    assertEquals(env._under, "2");
  });

  await t.step("skips malformed lines without throwing", () => {
    const env = parseDotenv(
      [
        "NO_EQUALS",
        "1BAD=x",
        "BAD KEY=x",
        "=novalue",
        "UNCLOSED='abc",
        'UNCLOSED2="abc',
        "TRAILING='abc' junk",
        'TRAILING2="abc" junk',
        "export",
        "export =1",
        "OK=yes",
      ].join("\n"),
    );
    assertEquals(Object.keys(env).sort(), ["OK", "export"]);
    assertEquals(env.OK, "yes");
    assertEquals(env.export, "1");
  });

  await t.step("returns a null-prototype object", () => {
    const env = parseDotenv("__proto__=x\nconstructor=y\n");
    assertEquals(Object.getPrototypeOf(env), null);
    assertEquals(env.__proto__, "x");
    assertEquals(env.constructor, "y");
    assertEquals(parseDotenv("").toString, undefined);
  });

  await t.step("never throws on hostile content", () => {
    const chunks = ["=", "'", '"', "\\", "#", " ", "\r", "\n", "\0", "\uFEFF", "é", "export ", "A"];
    for (let i = 0; i < 500; i++) {
      let text = "";
      for (let j = 0; j < 20; j++) text += chunks[(i * 7 + j * j * 13 + j) % chunks.length];
      parseDotenv(text);
    }
  });
});

Deno.test("loadDotenv()", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "trust_dotenv_" });
  try {
    await t.step("returns undefined when the file does not exist", async () => {
      assertEquals(await loadDotenv(`${dir}/missing.env`), undefined);
    });

    await t.step("reads and parses a file with a BOM and CRLF", async () => {
      const path = `${dir}/.env`;
      await Deno.writeTextFile(path, `\uFEFFexport TRUST_ID="${S}"\r\nOTHER=1\r\n`);
      const env = await loadDotenv(path);
      assertEquals(env?.TRUST_ID, S);
      assertEquals(env?.OTHER, "1");
    });

    await t.step("propagates other read errors", async () => {
      await assertRejects(() => loadDotenv(dir));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
