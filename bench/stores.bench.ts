/**
 * Store latency and throughput: get/set of a 10,000-tag repository value and of small
 * per-tag values, and reading a repository's 10,000 per-tag values with one getMany against
 * 10,000 gets (sequential, and concurrent), on each store (memory, sqlite, memcached, Redis,
 * Redis Cluster) against real servers started here. Writes bench/results/stores.json.
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
/** Per-tag values read in one go, as the Cache reads a repository's tags. */
const MANY_KEYS = 10_000;
const MANY_ROUNDS = 5;
const MANY_GET_CONCURRENCY = 64;
/** The Cache's way (src/cache/chunked-read.ts): getMany calls of 1,000 keys, 2 in flight. */
const CHUNK_KEYS = 1000;
const CHUNKS_IN_FLIGHT = 2;

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

interface ManyResult {
  keys: number;
  /** One getMany of every key, per call. */
  getMany: Timing;
  /** getMany calls of `CHUNK_KEYS` keys, `CHUNKS_IN_FLIGHT` at once, over every key, per pass. */
  chunkedGetMany: Timing;
  /** One get after another over every key, per pass. */
  sequentialGets: Timing;
  /** Gets with `MANY_GET_CONCURRENCY` in flight over every key, per pass. */
  concurrentGets: Timing;
  /** Time of the sequential gets over time of getMany (p50s, same run). */
  speedupVsSequential: number;
  /** Time of the concurrent gets over time of getMany (p50s, same run). */
  speedupVsConcurrent: number;
}

interface StoreResult {
  large: { set: Timing; get: Timing };
  small: { set: Timing; get: Timing };
  many: ManyResult;
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
  return {
    large: { set: largeSet, get: largeGet },
    small: { set: smallSet, get: smallGet },
    many: await benchMany(store, `${prefix}many:`, deadline),
  };
}

/** A repository's per-tag values read back: one getMany against 10,000 gets. */
async function benchMany(store: Store, prefix: string, deadline: Date): Promise<ManyResult> {
  const keys = Array.from({ length: MANY_KEYS }, (_, i) => `${prefix}tag:v1.${i}`);
  await timed(MANY_KEYS, SMALL_CONCURRENCY, (i) => store.set(keys[i]!, deadline, smallValue(i)));
  const check = (entries: ReadonlyArray<unknown>) => {
    if (entries.length !== MANY_KEYS || entries.some((e) => e === undefined)) {
      throw new Error("per-tag values lost");
    }
  };
  // Warm-up pass of each way, so none pays for first use.
  check(await store.getMany(keys));
  const getMany = await timed(MANY_ROUNDS, 1, async () => check(await store.getMany(keys)));
  const chunkedGetMany = await timed(MANY_ROUNDS, 1, async () => {
    const out: unknown[] = new Array(MANY_KEYS);
    const chunks = Math.ceil(MANY_KEYS / CHUNK_KEYS);
    await timed(chunks, CHUNKS_IN_FLIGHT, async (c) => {
      const got = await store.getMany(keys.slice(c * CHUNK_KEYS, (c + 1) * CHUNK_KEYS));
      got.forEach((entry, j) => {
        out[c * CHUNK_KEYS + j] = entry;
      });
    });
    check(out);
  });
  const sequentialGets = await timed(MANY_ROUNDS, 1, async () => {
    const out: unknown[] = [];
    for (const key of keys) out.push(await store.get(key));
    check(out);
  });
  const concurrentGets = await timed(MANY_ROUNDS, 1, async () => {
    const out: unknown[] = new Array(MANY_KEYS);
    await timed(MANY_KEYS, MANY_GET_CONCURRENCY, async (i) => {
      out[i] = await store.get(keys[i]!);
    });
    check(out);
  });
  return {
    keys: MANY_KEYS,
    getMany,
    chunkedGetMany,
    sequentialGets,
    concurrentGets,
    speedupVsSequential: round(sequentialGets.p50Ms / getMany.p50Ms),
    speedupVsConcurrent: round(concurrentGets.p50Ms / getMany.p50Ms),
  };
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
  console.log(
    `\nreading ${MANY_KEYS} per-tag values (p50 per pass; speedup of getMany in the same run)`,
  );
  console.log(
    `store           getMany     getMany x${CHUNK_KEYS} keys (${CHUNKS_IN_FLIGHT} in flight)  sequential gets      concurrent gets (${MANY_GET_CONCURRENCY} in flight)`,
  );
  for (const [name, { many }] of Object.entries(results)) {
    console.log(
      [
        name.padEnd(14),
        `${many.getMany.p50Ms.toFixed(1)} ms`.padEnd(11),
        `${many.chunkedGetMany.p50Ms.toFixed(1)} ms`.padEnd(34),
        `${many.sequentialGets.p50Ms.toFixed(1)} ms (${many.speedupVsSequential}x)`.padEnd(20),
        `${many.concurrentGets.p50Ms.toFixed(1)} ms (${many.speedupVsConcurrent}x)`,
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
        manyKeys: MANY_KEYS,
        manyRounds: MANY_ROUNDS,
        manyGetConcurrency: MANY_GET_CONCURRENCY,
        chunkKeys: CHUNK_KEYS,
        chunksInFlight: CHUNKS_IN_FLIGHT,
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
