/**
 * Store latency and throughput: get/set of a 10,000-tag repository value and of small
 * per-tag values, on each store (memory, sqlite, memcached, Redis, Redis Cluster) against
 * real servers started here. Writes bench/results/stores.json; prints ratios to memory.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "../src/cache/open-store.js";
import type { Store } from "../src/cache/store.js";
import { repositoryValue } from "../test/cache/stores/repository-value.js";
import { startMemcached } from "../test/support/memcached.js";
import { cleanupAll, makeTempDir } from "../test/support/processes.js";
import { startRedis, startRedisCluster } from "../test/support/redis.js";

const LARGE_ROUNDS = 30;
const SMALL_OPS = 4000;
const SMALL_CONCURRENCY = 16;

interface Timing {
  p50Ms: number;
  p95Ms: number;
  meanMs: number;
  opsPerSecond: number;
}

function summarise(samples: number[], wallMs: number): Timing {
  const sorted = [...samples].sort((x, y) => x - y);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return {
    p50Ms: round(at(0.5)),
    p95Ms: round(at(0.95)),
    meanMs: round(samples.reduce((s, x) => s + x, 0) / samples.length),
    opsPerSecond: round((samples.length / wallMs) * 1000),
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

async function timed(
  count: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<Timing> {
  const samples: number[] = [];
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const t = performance.now();
      await op(i);
      samples.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return summarise(samples, performance.now() - start);
}

function smallValue(i: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      tag: `v1.${i}`,
      digest: `sha256:${i.toString(16).padStart(64, "0")}`,
      createdAt: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
      platform: { os: "linux", architecture: "amd64" },
      labels: { "org.opencontainers.image.source": "https://github.com/example/app" },
      refreshMs: 3_600_000,
    }),
  );
}

interface StoreResult {
  large: { set: Timing; get: Timing };
  small: { set: Timing; get: Timing };
}

async function benchStore(store: Store): Promise<StoreResult> {
  const large = repositoryValue(10_000);
  const deadline = new Date(Date.now() + 3_600_000);
  const prefix = `bench:${process.pid}:`;
  // Warm up connections and JIT before measuring.
  await store.set(`${prefix}warm`, deadline, large);
  await store.get(`${prefix}warm`);
  const largeSet = await timed(LARGE_ROUNDS, 1, (i) =>
    store.set(`${prefix}repo:${i % 5}`, deadline, large),
  );
  const largeGet = await timed(LARGE_ROUNDS, 1, async (i) => {
    const got = await store.get(`${prefix}repo:${i % 5}`);
    if (!got || got.value.byteLength !== large.byteLength) throw new Error("large value lost");
  });
  const smallSet = await timed(SMALL_OPS, SMALL_CONCURRENCY, (i) =>
    store.set(`${prefix}tag:${i}`, deadline, smallValue(i)),
  );
  const smallGet = await timed(SMALL_OPS, SMALL_CONCURRENCY, async (i) => {
    if (!(await store.get(`${prefix}tag:${i}`))) throw new Error("small value lost");
  });
  return { large: { set: largeSet, get: largeGet }, small: { set: smallSet, get: smallGet } };
}

async function main() {
  const dir = makeTempDir("regscan-bench-stores-");
  const [memcached, redis, cluster] = await Promise.all([
    startMemcached({ memoryMb: 256 }),
    startRedis(),
    startRedisCluster(),
  ]);
  const urls: Record<string, string> = {
    memory: "memory:",
    sqlite: `sqlite:${join(dir, "cache.db")}`,
    memcached: `memcached://${memcached.address}`,
    redis: redis.url,
    "redis-cluster": cluster.url,
  };
  const results: Record<string, StoreResult> = {};
  for (const [name, url] of Object.entries(urls)) {
    const store = await openStore(url);
    try {
      results[name] = await benchStore(store);
    } finally {
      await store.close();
    }
  }
  const largeBytes = repositoryValue(10_000).byteLength;
  const base = results.memory!;
  const ratios: Record<string, Record<string, number>> = {};
  console.log(
    `value sizes: repository (10,000 tags) ${(largeBytes / 1048576).toFixed(2)} MiB, tag ~${smallValue(1).byteLength} B`,
  );
  console.log(
    "store           large set p50   large get p50   small set ops/s  small get ops/s   (x memory)",
  );
  for (const [name, r] of Object.entries(results)) {
    ratios[name] = {
      largeSetP50: round(r.large.set.p50Ms / base.large.set.p50Ms),
      largeGetP50: round(r.large.get.p50Ms / base.large.get.p50Ms),
      smallSetThroughput: round(r.small.set.opsPerSecond / base.small.set.opsPerSecond),
      smallGetThroughput: round(r.small.get.opsPerSecond / base.small.get.opsPerSecond),
    };
    const q = ratios[name]!;
    console.log(
      [
        name.padEnd(14),
        `${r.large.set.p50Ms.toFixed(2)} ms (${q.largeSetP50}x)`.padEnd(16),
        `${r.large.get.p50Ms.toFixed(2)} ms (${q.largeGetP50}x)`.padEnd(16),
        `${Math.round(r.small.set.opsPerSecond)} (${q.smallSetThroughput}x)`.padEnd(17),
        `${Math.round(r.small.get.opsPerSecond)} (${q.smallGetThroughput}x)`,
      ].join(" "),
    );
  }
  mkdirSync("bench/results", { recursive: true });
  writeFileSync(
    "bench/results/stores.json",
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        largeValueBytes: largeBytes,
        largeRounds: LARGE_ROUNDS,
        smallOps: SMALL_OPS,
        smallConcurrency: SMALL_CONCURRENCY,
        results,
        ratiosToMemory: ratios,
      },
      null,
      2,
    )}\n`,
  );
  console.log("wrote bench/results/stores.json");
}

try {
  await main();
} finally {
  await cleanupAll();
}
