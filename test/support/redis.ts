/**
 * Starts real Redis servers for tests: a single node, or a three-master Redis Cluster made
 * with `redis-cli --cluster create`. Nodes can be stopped and restarted on the same port.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./ports.js";
import {
  type ManagedProcess,
  makeTempDir,
  requireBinary,
  startProcess,
  tcpOpen,
  waitFor,
} from "./processes.js";

const run = promisify(execFile);

/** A redis-server started by a test. */
export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  stop(): Promise<void>;
  /** Starts it again on the same port (empty: nothing is saved). */
  start(): Promise<void>;
}

/** A three-master Redis Cluster started by a test. */
export interface RedisCluster {
  readonly nodes: RedisServer[];
  /** `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`. */
  readonly url: string;
  stop(): Promise<void>;
}

/** How one redis-server node is started (and restarted). */
interface NodeLaunch {
  command: string;
  port: number;
  /** Arguments after `--port` (TLS, cluster mode). */
  extra: string[];
  /** The node's working directory. */
  dir: string;
}

async function launchNode({ command, port, extra, dir }: NodeLaunch): Promise<ManagedProcess> {
  // With TLS the plain port is off and the TLS port is `port` (set in `extra`).
  const plain = extra.includes("--tls-port") ? ["--port", "0"] : ["--port", String(port)];
  return startProcess({
    name: `redis-server:${port}`,
    command,
    args: [
      ...plain,
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      ...extra,
    ],
    ready: { tcp: { host: "127.0.0.1", port } },
    readyTimeoutMs: 10_000,
  });
}

function nodeHandle(launch: NodeLaunch, first: ManagedProcess): RedisServer {
  const { port, extra } = launch;
  let proc = first;
  const tls = extra.includes("--tls-port");
  return {
    host: "127.0.0.1",
    port,
    url: `${tls ? "rediss" : "redis"}://127.0.0.1:${port}`,
    stop: async () => {
      await proc.stop();
    },
    start: async () => {
      if (!proc.exited()) return;
      proc = await launchNode(launch);
    },
  };
}

/** TLS files for a redis-server that speaks only TLS. */
export interface RedisTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/**
 * Starts one redis-server on 127.0.0.1 and a free port, persisting nothing; with `tls`,
 * the port speaks TLS only (clients are not asked for certificates).
 */
export async function startRedis(opts: { tls?: RedisTls } = {}): Promise<RedisServer> {
  const command = requireBinary("redis-server", "redis-server");
  const dir = makeTempDir("regscan-redis-");
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const extra = opts.tls
      ? [
          "--tls-port",
          String(port),
          "--tls-cert-file",
          opts.tls.certFile,
          "--tls-key-file",
          opts.tls.keyFile,
          "--tls-ca-cert-file",
          opts.tls.caFile,
          "--tls-auth-clients",
          "no",
        ]
      : [];
    try {
      const launch = { command, port, extra, dir };
      return nodeHandle(launch, await launchNode(launch));
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

/**
 * A port whose cluster bus port (port + 10000) is free too. Both lie below the usual
 * ephemeral range (32768 and up), where outgoing connections would take them at random.
 */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 12_000 + Math.floor(Math.random() * 10_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if (await tcpOpen("127.0.0.1", port, 200)) continue;
    if (await tcpOpen("127.0.0.1", port + 10_000, 200)) continue;
    taken.add(port);
    taken.add(port + 10_000);
    return port;
  }
  throw new Error("no free port pair for a Redis Cluster node");
}

/** Starts three cluster-enabled redis-servers and joins them into one cluster of masters. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const command = requireBinary("redis-server", "redis-server");
  const cli = requireBinary("redis-cli", "redis-tools");
  const dir = makeTempDir("regscan-redis-cluster-");
  const taken = new Set<number>();
  const nodes: RedisServer[] = [];
  for (let i = 0; i < 3; i++) {
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await clusterPort(taken);
      const extra = [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(dir, `nodes-${port}.conf`),
        "--cluster-node-timeout",
        "2000",
      ];
      try {
        const launch = { command, port, extra, dir };
        nodes.push(nodeHandle(launch, await launchNode(launch)));
        lastError = undefined;
        break;
      } catch (err) {
        // Another process took the port between the check and the bind: pick again.
        lastError = err;
      }
    }
    if (lastError) throw lastError;
  }
  await run(
    cli,
    [
      "--cluster",
      "create",
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ],
    { timeout: 30_000 },
  );
  for (const n of nodes) {
    await waitFor(
      async () => {
        const { stdout } = await run(cli, ["-p", String(n.port), "cluster", "info"], {
          timeout: 2000,
        });
        return /cluster_state:ok/.test(stdout) && /cluster_slots_assigned:16384/.test(stdout);
      },
      { what: `redis cluster node ${n.port} to be ok`, timeoutMs: 20_000, intervalMs: 200 },
    );
  }
  return {
    nodes,
    url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(",")}`,
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}
