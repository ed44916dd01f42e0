/**
 * Unix domain sockets: {@link unix} dials, {@link listenUnix} listens.
 *
 * `listenUnix` replaces a stale socket file (left by a server killed with SIGKILL), refuses a
 * path held by a live server (`ADDRESS_IN_USE`), and never deletes a regular file, directory or
 * symlink found at the path (`UNSAFE_PATH`). After binding it sets the socket's mode to 0600.
 * Between bind and chmod the socket briefly has the mode the umask gives it, so put it in a
 * directory only its owner can enter (mode 0700); that directory is the real protection.
 *
 * @module
 */

import { TransportError } from "../protocol/errors.ts";
import { formatAddress, quote } from "./address.ts";
import { SocketConn, SocketListener } from "./conn.ts";
import { checkTimeout, connectDeadline, describeConnectError, listenError } from "./tcp.ts";
import type { Dialer, Listener } from "./types.ts";

/** Longest socket path in bytes: `sun_path` is 108 bytes on Linux, including the final NUL. */
export const MAX_UNIX_PATH_BYTES = 107;

/** Options of {@link unix}. */
export interface UnixOptions {
  /** The socket file's path. */
  path: string;
  /** Milliseconds allowed to connect; default 10 000. */
  connectTimeout?: number;
}

/** Options of {@link listenUnix}. */
export interface UnixListenOptions {
  /** The socket file's path; its directory should have mode 0700. */
  path: string;
}

function checkPath(path: string): string {
  if (typeof path !== "string" || path === "" || path.includes("\0")) {
    throw new TransportError("INVALID_ADDRESS", `Invalid Unix socket path ${quote(String(path))}`);
  }
  const bytes = new TextEncoder().encode(path).length;
  if (bytes > MAX_UNIX_PATH_BYTES) {
    throw new TransportError(
      "PATH_TOO_LONG",
      `Unix socket path is ${bytes} bytes, the limit is ${MAX_UNIX_PATH_BYTES}: ${quote(path)}`,
    );
  }
  return path;
}

async function lstatOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

function kindOf(info: Deno.FileInfo): string {
  if (info.isSymlink) return "a symlink";
  if (info.isDirectory) return "a directory";
  if (info.isFile) return "a regular file";
  return "not a socket";
}

/** Clears the way for a bind: removes a stale socket, refuses anything else at `path`. */
async function clearStaleSocket(path: string): Promise<void> {
  const info = await lstatOrUndefined(path);
  if (info === undefined) return;
  if (!info.isSocket) {
    throw new TransportError(
      "UNSAFE_PATH",
      `Refusing to listen on ${quote(path)}: it is ${kindOf(info)}, not a Unix socket`,
    );
  }
  let probe: Deno.UnixConn;
  try {
    probe = await Deno.connect({ transport: "unix", path });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return; // removed meanwhile
    if (!(err instanceof Deno.errors.ConnectionRefused)) {
      throw new TransportError(
        "ADDRESS_IN_USE",
        `Unix socket ${quote(path)} exists and cannot be probed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    // Nobody listens: a stale file left by a killed server. unlink(2) never follows symlinks.
    try {
      await Deno.remove(path);
    } catch (removeErr) {
      if (!(removeErr instanceof Deno.errors.NotFound)) throw removeErr;
    }
    return;
  }
  probe.close();
  throw new TransportError(
    "ADDRESS_IN_USE",
    `Unix socket ${quote(path)} is in use by another server`,
  );
}

/**
 * A dialer for a Unix domain socket.
 *
 * @example Dial a local server
 * ```ts
 * import { unix } from "@trust/rpc/transports";
 * const conn = await unix({ path: "/run/app/rpc.sock" }).dial();
 * conn.close();
 * ```
 *
 * @param options the socket path and how long to try
 * @returns the dialer
 * @throws {TransportError} `PATH_TOO_LONG` (over 107 bytes) or `INVALID_ADDRESS`
 */
export function unix(options: UnixOptions): Dialer {
  const path = checkPath(options.path);
  const timeout = checkTimeout(options.connectTimeout);
  const address = formatAddress({ transport: "unix", path });
  return {
    transport: "unix",
    address,
    async dial(dialOptions = {}) {
      const deadline = connectDeadline(timeout, dialOptions.signal, describeConnectError);
      // Deno's Unix connect takes no signal: race it, and close a connection that comes late.
      const connecting = Deno.connect({ transport: "unix", path });
      let onAbort = () => {};
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(deadline.signal.reason);
        deadline.signal.addEventListener("abort", onAbort, { once: true });
        if (deadline.signal.aborted) onAbort();
      });
      try {
        return new SocketConn(await Promise.race([connecting, aborted]), { transport: "unix" });
      } catch (err) {
        connecting.then((conn) => conn.close(), () => {});
        throw deadline.error(address, err);
      } finally {
        deadline.signal.removeEventListener("abort", onAbort);
        aborted.catch(() => {});
      }
    },
  };
}

/**
 * Listens on a Unix domain socket (see the module doc for the stale-socket and permission
 * rules). `close()` removes the socket file if it is still the one this listener created.
 *
 * @example Listen in a private directory
 * ```ts
 * import { listenUnix } from "@trust/rpc/transports";
 * const dir = await Deno.makeTempDir(); // mode 0700
 * const listener = await listenUnix({ path: `${dir}/rpc.sock` });
 * const conn = await listener.accept();
 * conn?.close();
 * listener.close(); // removes the socket file
 * ```
 *
 * @param options the socket path
 * @returns the listener
 * @throws {TransportError} `PATH_TOO_LONG`, `UNSAFE_PATH` (something other than a socket is at
 *   the path), `ADDRESS_IN_USE` (a live server answers)
 */
export async function listenUnix(options: UnixListenOptions): Promise<Listener> {
  const path = checkPath(options.path);
  const address = formatAddress({ transport: "unix", path });
  await clearStaleSocket(path);
  let listener: Deno.UnixListener;
  try {
    listener = Deno.listen({ transport: "unix", path });
  } catch (err) {
    throw listenError(address, err);
  }
  let created: Deno.FileInfo;
  try {
    await Deno.chmod(path, 0o600);
    created = await Deno.lstat(path);
  } catch (err) {
    listener.close();
    throw err;
  }
  return new SocketListener(listener, {
    transport: "unix",
    address,
    wrap: (conn) => new SocketConn(conn, { transport: "unix" }),
    // Deno 2.9.6 removes the file itself on close; this covers older versions and a drop
    // delayed by a pending accept, and never touches a file another server has put there.
    onClose: () => {
      try {
        const now = Deno.lstatSync(path);
        if (now.isSocket && now.ino === created.ino && now.dev === created.dev) {
          Deno.removeSync(path);
        }
      } catch {
        // already gone
      }
    },
  });
}
