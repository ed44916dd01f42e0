/**
 * loadSecret() runs in child processes, so the environment and the Deno permissions are real.
 * The child prints one JSON line: `{ code, message }` on error, otherwise `{ source, warnings,
 * sha256, leaks }` (a digest of the secret and whether the result object leaks it when
 * logged or serialized, never the secret itself).
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";

const MODULE = new URL("../../env/secret_source.ts", import.meta.url).href;
const CHILD = `
import { loadSecret } from ${JSON.stringify(MODULE)};
const options = JSON.parse(Deno.args[0] ?? "{}");
try {
  const result = await loadSecret(options);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(result.secret));
  const sha256 = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  const leaks = JSON.stringify(result).includes(result.secret) ||
    Deno.inspect(result).includes(result.secret);
  console.log(JSON.stringify({ source: result.source, warnings: result.warnings, sha256, leaks }));
} catch (err) {
  console.log(JSON.stringify({ name: err.name, code: err.code, message: err.message }));
}
`;
const TIMEOUT_MS = 30_000;
const ENV_SECRET = "env-secret-for-tests-0123456789-abcdefghij";
const FILE_SECRET = "file-secret-for-tests-0123456789-abcdefghij";

interface ChildResult {
  code?: string;
  name?: string;
  message?: string;
  source?: string;
  warnings?: string[];
  sha256?: string;
  leaks?: boolean;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Runs the child in `dir` with exactly `env` and `flags`; no stdin, killed after a timeout. */
async function runChild(
  dir: string,
  flags: string[],
  env: Record<string, string>,
  options: Record<string, unknown> = { dotenv: true },
): Promise<ChildResult> {
  const base: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["HOME", "DENO_DIR", "PATH"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) base[name] = value;
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-config", ...flags, "child.ts", JSON.stringify(options)],
      cwd: dir,
      clearEnv: true,
      env: { ...base, ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: controller.signal,
    }).output();
    assert(!controller.signal.aborted, "the child hung (an interactive prompt?)");
    const stdout = new TextDecoder().decode(output.stdout).trim();
    const stderr = new TextDecoder().decode(output.stderr);
    assert(output.success, `child failed: ${stderr}`);
    const lines = stdout.split("\n");
    return JSON.parse(lines[lines.length - 1]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("loadSecret() in a child process", async (t) => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "trust_secret_source_" }));
  const envPath = `${dir}/.env`;
  const allow = ["--allow-env=TRUST_ID", "--allow-read=.env"];
  const writeEnv = async (text: string, mode = 0o600) => {
    await Deno.writeTextFile(envPath, text);
    await Deno.chmod(envPath, mode);
  };
  const removeEnv = () => Deno.remove(envPath).catch(() => {});
  try {
    await Deno.writeTextFile(`${dir}/child.ts`, CHILD);

    await t.step("missing everywhere: SECRET_MISSING with the absolute .env path", async () => {
      await removeEnv();
      const r = await runChild(dir, allow, {});
      assertEquals(r.code, "SECRET_MISSING");
      assertEquals(r.name, "SecretError");
      assertEquals(
        r.message,
        `TRUST_ID is not set: set the TRUST_ID environment variable or add TRUST_ID=… to ${envPath}`,
      );
    });

    await t.step(".env without TRUST_ID: the same SECRET_MISSING", async () => {
      await writeEnv("OTHER=1\n# TRUST_ID=commented-out-0123456789-0123456789\n");
      const r = await runChild(dir, allow, {});
      assertEquals(r.code, "SECRET_MISSING");
      assertStringIncludes(r.message ?? "", envPath);
    });

    await t.step("empty env var while .env has a value: SECRET_EMPTY, no fallback", async () => {
      await writeEnv(`TRUST_ID=${FILE_SECRET}\n`);
      for (const value of ["", "  \r\n"]) {
        const r = await runChild(dir, allow, { TRUST_ID: value });
        assertEquals(r.code, "SECRET_EMPTY");
        assertStringIncludes(r.message ?? "", "TRUST_ID environment variable");
      }
    });

    await t.step("env and .env differ: the env var wins", async () => {
      await writeEnv(`TRUST_ID=${FILE_SECRET}\n`);
      const r = await runChild(dir, allow, { TRUST_ID: ENV_SECRET });
      assertEquals(r.source, "env");
      assertEquals(r.sha256, await sha256Hex(ENV_SECRET));
      assertEquals(r.warnings, []);
      assertEquals(r.leaks, false);
    });

    await t.step("only .env: source dotenv", async () => {
      await writeEnv(`TRUST_ID=${FILE_SECRET}\n`);
      const r = await runChild(dir, allow, {});
      assertEquals(r.source, "dotenv");
      assertEquals(r.sha256, await sha256Hex(FILE_SECRET));
      assertEquals(r.leaks, false);
    });

    await t.step(
      "a CRLF .env and an env var with a trailing \\r give the same secret",
      async () => {
        await writeEnv(`\uFEFFexport TRUST_ID="${FILE_SECRET}" # shared\r\n`);
        const fromFile = await runChild(dir, allow, {});
        await removeEnv();
        const fromEnv = await runChild(dir, allow, { TRUST_ID: `${FILE_SECRET}\r` });
        assertEquals(fromFile.source, "dotenv");
        assertEquals(fromEnv.source, "env");
        assertEquals(fromFile.sha256, await sha256Hex(FILE_SECRET));
        assertEquals(fromEnv.sha256, fromFile.sha256);
      },
    );

    await t.step("a weak secret in .env: SECRET_WEAK naming the file, not the value", async () => {
      await writeEnv("TRUST_ID=short-canary-value\n");
      const r = await runChild(dir, allow, {});
      assertEquals(r.code, "SECRET_WEAK");
      assertStringIncludes(r.message ?? "", envPath);
      assert(!(r.message ?? "").includes("short-canary"));
    });

    await t.step("no --allow-env: PERMISSION_DENIED naming the flag, no hang", async () => {
      await writeEnv(`TRUST_ID=${FILE_SECRET}\n`);
      const r = await runChild(dir, ["--allow-read=.env"], { TRUST_ID: ENV_SECRET });
      assertEquals(r.code, "PERMISSION_DENIED");
      assertStringIncludes(r.message ?? "", "--allow-env=TRUST_ID");
    });

    await t.step("no --allow-read and no env var: PERMISSION_DENIED naming the flag", async () => {
      await writeEnv(`TRUST_ID=${FILE_SECRET}\n`);
      const r = await runChild(dir, ["--allow-env=TRUST_ID"], {});
      assertEquals(r.code, "PERMISSION_DENIED");
      assertStringIncludes(r.message ?? "", "--allow-read=.env");
    });

    await t.step("no --allow-read is fine when the env var is set", async () => {
      const r = await runChild(dir, ["--allow-env=TRUST_ID"], { TRUST_ID: ENV_SECRET });
      assertEquals(r.source, "env");
    });

    await t.step("library default (dotenv: false) does not read .env", async () => {
      await writeEnv(`TRUST_ID=${FILE_SECRET}\n`);
      const r = await runChild(dir, ["--allow-env=TRUST_ID"], {}, {});
      assertEquals(r.code, "SECRET_MISSING");
      assertStringIncludes(r.message ?? "", "TRUST_ID environment variable");
      assertStringIncludes(r.message ?? "", ".env");
    });

    if (Deno.build.os !== "windows") {
      await t.step(".env with mode 0644 gives a warning, 0600 none", async () => {
        await writeEnv(`TRUST_ID=${FILE_SECRET}\n`, 0o644);
        const open = await runChild(dir, allow, {});
        assertEquals(open.source, "dotenv");
        assertEquals(open.warnings?.length, 1);
        assertStringIncludes(open.warnings?.[0] ?? "", "0644");
        assertStringIncludes(open.warnings?.[0] ?? "", envPath);
        await writeEnv(`TRUST_ID=${FILE_SECRET}\n`, 0o600);
        const closed = await runChild(dir, allow, {});
        assertEquals(closed.warnings, []);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
