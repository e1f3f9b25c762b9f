/**
 * Starts a real memcached on a free loopback port for tests, with stop / restart on the
 * same port for outage tests. Fails (never skips) when memcached is not installed.
 */
import { freePort } from "./ports.js";
import { type ManagedProcess, requireBinary, startProcess } from "./processes.js";

/** A memcached started by a test. */
export interface MemcachedServer {
  readonly host: string;
  readonly port: number;
  /** `127.0.0.1:PORT`. */
  readonly address: string;
  /** Stops the server (it can be restarted on the same port). */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty: memcached keeps nothing). */
  start(): Promise<void>;
}

export interface MemcachedOptions {
  /** Item size limit, passed as `-I` (e.g. `"2m"`); memcached's default (1 MiB) otherwise. */
  itemSize?: string;
  /** Memory in MiB (`-m`). Default 64. */
  memoryMb?: number;
}

/** Starts memcached on 127.0.0.1 and a free port. */
export async function startMemcached(opts: MemcachedOptions = {}): Promise<MemcachedServer> {
  const command = requireBinary("memcached", "memcached");
  let port = 0;
  let proc: ManagedProcess | undefined;
  const launch = async () => {
    const args = ["-p", String(port), "-l", "127.0.0.1", "-U", "0", "-m"];
    args.push(String(opts.memoryMb ?? 64));
    if (opts.itemSize) args.push("-I", opts.itemSize);
    // memcached refuses to run as root without being told which user to be.
    if (process.getuid?.() === 0) args.push("-u", "root");
    proc = await startProcess({
      name: "memcached",
      command,
      args,
      ready: { tcp: { host: "127.0.0.1", port } },
      readyTimeoutMs: 10_000,
    });
  };
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    port = await freePort();
    try {
      await launch();
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err;
    }
  }
  if (lastError) throw lastError;
  return {
    host: "127.0.0.1",
    port,
    address: `127.0.0.1:${port}`,
    stop: async () => {
      await proc?.stop();
    },
    start: async () => {
      if (proc && !proc.exited()) return;
      await launch();
    },
  };
}
