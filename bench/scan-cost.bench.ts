/**
 * What one repository scan of the warmer costs the store and this process (issue 13: one
 * replica keeping 10,000 repositories fresh), written to bench/results/scan-cost.json.
 *
 * Repositories of 10 tags over 10 images, scanned by a Warmer over an in-process scripted
 * registry (no HTTP: what is left is the scan's own work and the store's), on Redis started
 * by the harness and, as the baseline of the same run, on the memory store (no protocol):
 * - cold: every tag new;
 * - steady: every tag due (its deadline passed, as the loop's polling makes it), none moved;
 * - one moved: every tag due, one of them moved to another image;
 * - nothing due: a forced rescan right after the last one (lease, record, index only).
 * Per scan kind: commands the store sends per scan (MONITOR, in a round of its own), those
 * Redis runs (`INFO commandstats`, a script's own included), this process's
 * CPU per scan on Redis and on memory (and their ratio), and Redis's own CPU per scan.
 * `SCAN_COST_REPOS` changes the number of repositories per round (default 1000).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { Redis } from "ioredis";
import { Registry as MetricsRegistry } from "prom-client";
import { Keys } from "../src/cache/keys.js";
import { openStore } from "../src/cache/open-store.js";
import type { Store } from "../src/cache/store.js";
import { Warmer } from "../src/cache/warmer.js";
import { type ImageName, parseImageName } from "../src/image/ref.js";
import {
  FakeClock,
  FakeFactory,
  type FakeRepository,
  fakeDigest,
  fakeRepository,
} from "../test/cache/support/fake-registry.js";
import { cleanupAll } from "../test/support/processes.js";
import { startRedis } from "../test/support/redis.js";

const REPOS = Number(process.env.SCAN_COST_REPOS ?? 1000);
const TAGS = 10;
const ROUNDS = 3;
const HOUR = 3_600_000;

type Kind = "cold" | "steady" | "oneMoved" | "nothingDue";
const KINDS: Kind[] = ["cold", "steady", "oneMoved", "nothingDue"];

interface KindCost {
  /** Commands the store sent per scan, by command (Redis only; MONITOR, scripts' own left out). */
  sent?: Record<string, number>;
  sentPerScan?: number;
  /** Commands Redis ran per scan, by command, those scripts ran included (`INFO commandstats`). */
  commands?: Record<string, number>;
  commandsPerScan?: number;
  /** This process's CPU per scan (ms), the median of the rounds. */
  cpuMsPerScan: number;
  /** Redis's CPU per scan (ms). */
  serverCpuMsPerScan?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** Command counts and CPU of a Redis server, read with its own connection. */
class RedisStats {
  readonly #client: Redis;
  constructor(port: number) {
    this.#client = new Redis(port, "127.0.0.1", { maxRetriesPerRequest: 1 });
  }
  async reset(): Promise<number> {
    await this.#client.config("RESETSTAT");
    return this.#cpu();
  }
  async #cpu(): Promise<number> {
    const info = await this.#client.info("cpu");
    const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]);
    const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]);
    return (user + sys) * 1000;
  }
  /** Calls per command since the reset (this client's own INFO and CONFIG left out), and CPU. */
  async read(): Promise<{ calls: Record<string, number>; cpuMs: number }> {
    const info = await this.#client.info("commandstats");
    const calls: Record<string, number> = {};
    for (const m of info.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) {
      const name = m[1] as string;
      if (name === "info" || name.startsWith("config")) continue;
      calls[name] = Number(m[2]);
    }
    return { calls, cpuMs: await this.#cpu() };
  }
  close(): void {
    this.#client.disconnect();
    this.#monitor?.disconnect();
  }

  #monitor: Awaited<ReturnType<Redis["monitor"]>> | undefined;
  /** Commands clients sent since `count` started (those scripts ran left out), by name. */
  readonly sent = new Map<string, number>();
  #counting = false;

  /** Starts counting what clients send (MONITOR; only in the counting round, it costs CPU). */
  async count(): Promise<void> {
    this.#monitor ??= await this.#client.monitor();
    this.#monitor.removeAllListeners("monitor");
    this.#monitor.on("monitor", (_time: string, args: string[], source: string) => {
      if (!this.#counting || source === "lua") return;
      const name = (args[0] ?? "").toLowerCase();
      if (name === "info" || name === "config" || name === "ping") return;
      this.sent.set(name, (this.sent.get(name) ?? 0) + 1);
    });
  }

  /** Counts from now (after what MONITOR still has to show arrived: a PING marks it). */
  async startCounting(): Promise<void> {
    await this.#settle();
    this.sent.clear();
    this.#counting = true;
  }

  async stopCounting(): Promise<Record<string, number>> {
    await this.#settle();
    this.#counting = false;
    return Object.fromEntries(this.sent);
  }

  async #settle(): Promise<void> {
    const marker = `settle-${Math.random()}`;
    const seen = new Promise<void>((resolve) => {
      const on = (_t: string, args: string[]) => {
        if (args[0]?.toLowerCase() === "ping" && args[1] === marker) {
          this.#monitor?.off("monitor", on);
          resolve();
        }
      };
      this.#monitor?.on("monitor", on);
    });
    await this.#client.ping(marker);
    await seen;
  }
}

/** One store's run: ROUNDS rounds of every scan kind over fresh repositories. */
async function runStore(url: string, stats: RedisStats | undefined) {
  const store: Store = await openStore(url, { timeoutMs: 5000 });
  const costs = new Map<
    Kind,
    { cpu: number[]; server: number[]; calls: Record<string, number>; sent: Record<string, number> }
  >();
  for (const kind of KINDS) costs.set(kind, { cpu: [], server: [], calls: {}, sent: {} });
  // The last round counts the commands clients send (MONITOR), outside the CPU figures.
  const rounds = stats ? ROUNDS + 1 : ROUNDS;
  try {
    for (let round = 0; round < rounds; round++) {
      const counting = round === ROUNDS;
      if (counting) await stats?.count();
      const clock = new FakeClock(Date.now());
      const names: ImageName[] = [];
      const repos = new Map<string, FakeRepository>();
      for (let r = 0; r < REPOS; r++) {
        const name = parseImageName(`registry.test/scan-cost/r${round}-${r}`);
        names.push(name);
        repos.set(name.toString(), fakeRepository(name, TAGS, TAGS));
      }
      const warmer = new Warmer({
        store,
        keys: new Keys(`scan-cost:${round}:${Date.now()}:`),
        factory: new FakeFactory(repos),
        owner: "bench",
        now: clock.now,
        metricsRegistry: new MetricsRegistry(),
      });
      const targets = names.map((name) => ({ name }));
      // The host's sharing record and the first connections, outside what is measured.
      const warm = parseImageName(`registry.test/scan-cost/warm-${round}`);
      repos.set(warm.toString(), fakeRepository(warm, TAGS, TAGS));
      await warmer.scan([{ name: warm }]);
      for (const kind of KINDS) {
        // Past every deadline: an hour after the cold scan, two after the steady one (whose
        // unchanged tags doubled their intervals).
        if (kind === "steady") clock.advance(HOUR + 60_000);
        if (kind === "oneMoved") clock.advance(2 * HOUR + 60_000);
        if (kind === "oneMoved") {
          for (const repo of repos.values()) repo.tags.set("v0", fakeDigest(TAGS));
        }
        globalThis.gc?.();
        if (counting) await stats?.startCounting();
        const serverBefore = await stats?.reset();
        const cpu = process.cpuUsage();
        const results = await warmer.scan(targets);
        const used = process.cpuUsage(cpu);
        const read = await stats?.read();
        const sent = counting ? await stats?.stopCounting() : undefined;
        for (const r of results) {
          if (r.outcome !== "scanned" || r.errors > 0) {
            throw new Error(`${kind}: ${r.repository} ${r.outcome} ${JSON.stringify(r.error)}`);
          }
        }
        const cost = costs.get(kind) as NonNullable<ReturnType<typeof costs.get>>;
        if (sent) {
          cost.sent = Object.fromEntries(
            Object.entries(sent).map(([c, n]) => [c, round3(n / REPOS)]),
          );
          continue;
        }
        cost.cpu.push((used.user + used.system) / 1000 / REPOS);
        if (read && serverBefore !== undefined) {
          cost.server.push((read.cpuMs - serverBefore) / REPOS);
          cost.calls = Object.fromEntries(
            Object.entries(read.calls).map(([c, n]) => [c, round3(n / REPOS)]),
          );
        }
      }
    }
  } finally {
    await store.close();
  }
  const out: Partial<Record<Kind, KindCost>> = {};
  for (const [kind, c] of costs) {
    const cost: KindCost = { cpuMsPerScan: round3(median(c.cpu)) };
    if (stats) {
      cost.sent = c.sent;
      cost.sentPerScan = round3(Object.values(c.sent).reduce((a, b) => a + b, 0));
      cost.commands = c.calls;
      cost.commandsPerScan = round3(Object.values(c.calls).reduce((a, b) => a + b, 0));
      cost.serverCpuMsPerScan = round3(median(c.server));
    }
    out[kind] = cost;
  }
  return out as Record<Kind, KindCost>;
}

async function main() {
  const redis = await startRedis();
  const stats = new RedisStats(redis.port);
  try {
    const memory = await runStore("memory:", undefined);
    const onRedis = await runStore(redis.url, stats);
    const report: Record<string, unknown> = {
      repositories: REPOS,
      tagsPerRepository: TAGS,
      rounds: ROUNDS,
    };
    for (const kind of KINDS) {
      const r = onRedis[kind];
      const m = memory[kind];
      const ratio = round3(r.cpuMsPerScan / m.cpuMsPerScan);
      report[kind] = { redis: r, memory: m, cpuRedisOverMemory: ratio };
      console.log(
        `${kind.padEnd(10)} ${String(r.sentPerScan).padStart(6)} commands sent/scan ` +
          `(${Object.entries(r.sent ?? {})
            .map(([c, n]) => `${c} ${n}`)
            .join(
              ", ",
            )}), ${r.commandsPerScan} run by Redis; CPU/scan ${r.cpuMsPerScan} ms on Redis, ${m.cpuMsPerScan} ms on ` +
          `memory (${ratio}x); Redis CPU/scan ${r.serverCpuMsPerScan} ms`,
      );
    }
    mkdirSync("bench/results", { recursive: true });
    writeFileSync("bench/results/scan-cost.json", `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    stats.close();
    await redis.stop();
    await cleanupAll();
  }
}

await main();
