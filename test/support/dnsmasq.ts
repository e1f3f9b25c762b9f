/**
 * Starts dnsmasq as a DNS server on a loopback port serving SRV records, for the
 * `memcached+srv://` tests. dnsmasq does not re-read `--srv-host` on SIGHUP, so changing
 * the records restarts it on the same port.
 */
import { Resolver } from "node:dns/promises";
import { type ManagedProcess, requireBinary, startProcess } from "./processes.js";

/** One SRV record: `_SERVICE._tcp.NAME` pointing at `target:port`. */
export interface SrvRecord {
  /** The full record name, e.g. `_memcached._tcp.cache.test`. */
  name: string;
  /** An IP address or a name (give names an `a` record). */
  target: string;
  port: number;
}

/** A dnsmasq started by a test. */
export interface DnsServer {
  readonly port: number;
  /** `127.0.0.1:PORT`, for a Resolver's `setServers` or a `dns=` URL parameter. */
  readonly address: string;
  /** Serves `records` instead of the current ones (restarts dnsmasq on the same port). */
  setRecords(records: SrvRecord[], hosts?: Record<string, string>): Promise<void>;
  stop(): Promise<void>;
}

async function freeUdpPort(): Promise<number> {
  const { createSocket } = await import("node:dgram");
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/** Starts dnsmasq answering `records` (and A records for `hosts`: name -> IPv4). */
export async function startDnsmasq(
  records: SrvRecord[],
  hosts: Record<string, string> = {},
): Promise<DnsServer> {
  const command = requireBinary("dnsmasq", "dnsmasq-base");
  let port = 0;
  let proc: ManagedProcess | undefined;
  const launch = async (recs: SrvRecord[], hs: Record<string, string>) => {
    const args = [
      "--no-daemon",
      "--no-resolv",
      "--no-hosts",
      "--conf-file=/dev/null",
      "--pid-file=",
      `--port=${port}`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      // No caching of our own answers beyond what the records say; tests change them.
      "--cache-size=0",
      "--local-ttl=1",
    ];
    if (process.getuid?.() === 0) args.push("--user=root");
    for (const r of recs) args.push(`--srv-host=${r.name},${r.target},${r.port}`);
    for (const [name, ip] of Object.entries(hs)) args.push(`--host-record=${name},${ip}`);
    const probe = recs[0]?.name;
    proc = await startProcess({
      name: "dnsmasq",
      command,
      args,
      ready: {
        check: async () => {
          const r = new Resolver({ timeout: 300, tries: 1 });
          r.setServers([`127.0.0.1:${port}`]);
          if (probe) return (await r.resolveSrv(probe)).length > 0;
          await r.resolve4("probe.invalid").catch((e: { code?: string }) => {
            if (e.code !== "ENOTFOUND") throw e;
          });
          return true;
        },
      },
      readyTimeoutMs: 10_000,
    });
  };
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    port = await freeUdpPort();
    try {
      await launch(records, hosts);
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err;
    }
  }
  if (lastError) throw lastError;
  return {
    port,
    address: `127.0.0.1:${port}`,
    setRecords: async (recs, hs = {}) => {
      await proc?.stop();
      await launch(recs, hs);
    },
    stop: async () => {
      await proc?.stop();
    },
  };
}
