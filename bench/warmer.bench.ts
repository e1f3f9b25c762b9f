/**
 * The warmer and the cache, measured in one run (bench/results/warmer.json):
 * 1. a cold scan of 1,000 tags, each on its own image, against a raw undici loop making the
 *    same requests (HEAD, manifest GET, config GET per tag) with the same concurrency on
 *    the same registry, as a ratio;
 * 2. requests and bytes of a second scan with nothing changed (recording proxy);
 * 3. peak memory of the warmer while it scans 100,000 tags and then rescans them cached;
 * 4. getImageRepositoryMetadata latency for a 10,000-tag repository from each store.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry as MetricsRegistry } from "prom-client";
import { Agent, request } from "undici";
import { Cache } from "../src/cache/cache.js";
import { Keys } from "../src/cache/keys.js";
import { openStore } from "../src/cache/open-store.js";
import { Warmer } from "../src/cache/warmer.js";
import { parseImageName } from "../src/image/ref.js";
import { Credentials } from "../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../src/registry/factory.js";
import { FakeFactory, fakeRepository } from "../test/cache/support/fake-registry.js";
import {
  ACCEPT_ALL_MANIFESTS,
  ImageBuilder,
  type PushedImage,
} from "../test/support/image-builder.js";
import { startMemcached } from "../test/support/memcached.js";
import { cleanupAll } from "../test/support/processes.js";
import { startRedis } from "../test/support/redis.js";
import { startRegistry } from "../test/support/registry.js";

const COLD_TAGS = 1000;
const CONCURRENCY = 16;
const MEMORY_TAGS = 100_000;
const LATENCY_TAGS = 10_000;
const LATENCY_ROUNDS = 7;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** Samples RSS and heap every 20 ms while `fn` runs; the peaks above the level before. */
async function peakMemory(fn: () => Promise<unknown>) {
  globalThis.gc?.();
  const base = process.memoryUsage();
  let rss = base.rss;
  let heap = base.heapUsed;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
  }, 20);
  const ms = await timed(fn);
  clearInterval(timer);
  const m = process.memoryUsage();
  rss = Math.max(rss, m.rss);
  heap = Math.max(heap, m.heapUsed);
  // What the scan left behind once garbage is gone (timers, caches, listeners).
  globalThis.gc?.();
  const after = process.memoryUsage().heapUsed;
  const mib = (b: number) => Math.round((b / 1024 / 1024) * 10) / 10;
  return {
    ms: Math.round(ms),
    peakRssMiB: mib(rss),
    peakHeapMiB: mib(heap),
    heapGrowthMiB: mib(heap - base.heapUsed),
    retainedAfterGcMiB: mib(after - base.heapUsed),
  };
}

async function coldScanVersusRaw() {
  const reg = await startRegistry({ mode: "anonymous" });
  const builder = new ImageBuilder(reg);
  const images: PushedImage[] = [];
  for (let i = 0; i < COLD_TAGS; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, COLD_TAGS - i) }, (_, j) =>
        builder.pushImage("bench/cold", `t${i + j}`, {
          seed: `cold-${i + j}`,
          labels: { n: String(i + j) },
        }),
      ),
    );
    images.push(...batch);
  }
  await builder.close();

  // The raw loop: the same requests the warmer makes for a cold tag, nothing else.
  const raw = async () => {
    const agent = new Agent({ connections: CONCURRENCY });
    let next = 0;
    let bytes = 0;
    const base = reg.url;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < images.length) {
          const image = images[next++]!;
          const tag = image.tags[0]!;
          const head = await request(`${base}/v2/bench/cold/manifests/${tag}`, {
            method: "HEAD",
            dispatcher: agent,
            headers: { accept: ACCEPT_ALL_MANIFESTS },
            // As the warmer does: undici otherwise closes the connection after every HEAD,
            // and the raw loop would pay a new connection per tag.
            reset: false,
          });
          await head.body.dump();
          const digest = String(head.headers["docker-content-digest"]);
          const manifest = await request(`${base}/v2/bench/cold/manifests/${digest}`, {
            dispatcher: agent,
            headers: { accept: ACCEPT_ALL_MANIFESTS },
          });
          const body = (await manifest.body.json()) as { config: { digest: string } };
          const config = await request(`${base}/v2/bench/cold/blobs/${body.config.digest}`, {
            dispatcher: agent,
          });
          bytes += (await config.body.arrayBuffer()).byteLength;
        }
      }),
    );
    await agent.close();
    return bytes;
  };
  const name = parseImageName(`${reg.host}/bench/cold`);
  const warm = async (url: string, keys: Keys) => {
    const store = await openStore(url);
    const factory = new RemoteClientFactory({
      insecureHosts: [reg.host],
      limiters: { rps: 1_000_000, burst: 10_000 },
    });
    const warmer = new Warmer({
      store,
      keys,
      factory,
      burst: CONCURRENCY,
      metricsRegistry: new MetricsRegistry(),
    });
    try {
      const [result] = await warmer.scan([{ name, creds: Credentials.none() }]);
      if (result?.refreshed !== COLD_TAGS && result?.fresh !== COLD_TAGS) {
        throw new Error(`scan did not cover every tag: ${JSON.stringify(result)}`);
      }
    } finally {
      await factory.close();
      await store.close();
    }
  };

  await raw(); // warm the registry's own caches, so neither side pays for that
  const rounds: Array<{ warmerMs: number; rawMs: number }> = [];
  for (let round = 0; round < 3; round++) {
    const rawMs = await timed(raw);
    const warmerMs = await timed(() => warm("memory:", new Keys(`cold${round}:`)));
    rounds.push({ warmerMs, rawMs });
  }
  const warmerMs = median(rounds.map((r) => r.warmerMs));
  const rawMs = median(rounds.map((r) => r.rawMs));

  // A second scan with nothing changed, counted by the recording proxy.
  const dir = mkdtempSync(join(tmpdir(), "regscan-bench-"));
  const url = `sqlite:${join(dir, "cache.db")}`;
  const keys = new Keys("second:");
  await warm(url, keys);
  reg.resetRequests();
  await warm(url, keys);
  const seen = reg.requests();
  const byMethod: Record<string, number> = {};
  // The proxy records no body sizes: replay the same requests straight to the registry.
  let responseBytes = 0;
  for (const r of seen) {
    byMethod[r.method] = (byMethod[r.method] ?? 0) + 1;
    const res = await request(`${reg.directUrl}${r.url}`, {
      method: r.method === "HEAD" ? "HEAD" : "GET",
      headers: { accept: ACCEPT_ALL_MANIFESTS },
    });
    responseBytes += (await res.body.arrayBuffer()).byteLength;
  }
  rmSync(dir, { recursive: true, force: true });
  await reg.stop();
  return {
    coldScan: {
      tags: COLD_TAGS,
      distinctImages: COLD_TAGS,
      concurrency: CONCURRENCY,
      warmerMs: Math.round(warmerMs),
      rawUndiciMs: Math.round(rawMs),
      ratio: Math.round((warmerMs / rawMs) * 100) / 100,
      rounds: rounds.map((r) => ({ warmerMs: Math.round(r.warmerMs), rawMs: Math.round(r.rawMs) })),
    },
    secondScan: { requests: seen.length, byMethod, responseBytes },
  };
}

async function memoryWith100kTags() {
  const dir = mkdtempSync(join(tmpdir(), "regscan-bench-mem-"));
  const name = parseImageName("bench.test/memory/huge");
  const factory = new FakeFactory(
    new Map([[name.toString(), fakeRepository(name, MEMORY_TAGS, 200)]]),
  );
  const store = await openStore(`sqlite:${join(dir, "cache.db")}`);
  const warmer = new Warmer({
    store,
    factory,
    burst: CONCURRENCY,
    metricsRegistry: new MetricsRegistry(),
  });
  try {
    const cold = await peakMemory(() => warmer.scan([{ name }]));
    const cached = await peakMemory(() => warmer.scan([{ name }]));
    return { tags: MEMORY_TAGS, store: "sqlite", coldScan: cold, cachedScan: cached };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function latencyPerStore() {
  const dir = mkdtempSync(join(tmpdir(), "regscan-bench-lat-"));
  const [memcached, redis] = await Promise.all([startMemcached(), startRedis()]);
  const urls: Record<string, string> = {
    memory: "memory:",
    sqlite: `sqlite:${join(dir, "cache.db")}`,
    memcached: `memcached://${memcached.address}`,
    redis: redis.url,
  };
  const name = parseImageName("bench.test/latency/app");
  const out: Record<string, { medianMs: number; minMs: number; maxMs: number }> = {};
  for (const [kind, url] of Object.entries(urls)) {
    const store = await openStore(url);
    try {
      const factory = new FakeFactory(
        new Map([[name.toString(), fakeRepository(name, LATENCY_TAGS, 50)]]),
      );
      const warmer = new Warmer({
        store,
        factory,
        burst: 64,
        metricsRegistry: new MetricsRegistry(),
      });
      await warmer.scan([{ name }]);
      const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
      const times: number[] = [];
      for (let i = 0; i < LATENCY_ROUNDS; i++) {
        times.push(
          await timed(async () => {
            const md = await cache.getImageRepositoryMetadata(name);
            if (md.images.size !== LATENCY_TAGS)
              throw new Error(`${kind}: ${md.images.size} images`);
          }),
        );
      }
      const r = (x: number) => Math.round(x * 10) / 10;
      out[kind] = {
        medianMs: r(median(times)),
        minMs: r(Math.min(...times)),
        maxMs: r(Math.max(...times)),
      };
    } finally {
      await store.close();
    }
  }
  await Promise.all([memcached.stop(), redis.stop()]);
  rmSync(dir, { recursive: true, force: true });
  return { tags: LATENCY_TAGS, rounds: LATENCY_ROUNDS, byStore: out };
}

async function main(): Promise<void> {
  const registryRuns = await coldScanVersusRaw();
  const memory = await memoryWith100kTags();
  const latency = await latencyPerStore();
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    ...registryRuns,
    memory,
    getImageRepositoryMetadata: latency,
  };
  mkdirSync("bench/results", { recursive: true });
  writeFileSync("bench/results/warmer.json", `${JSON.stringify(result, null, 2)}\n`);
  const c = registryRuns.coldScan;
  console.log(
    `cold scan of ${c.tags} tags: warmer ${c.warmerMs} ms, raw undici ${c.rawUndiciMs} ms, ratio ${c.ratio}`,
  );
  console.log(
    `second scan: ${registryRuns.secondScan.requests} requests ${JSON.stringify(registryRuns.secondScan.byMethod)}, ${registryRuns.secondScan.responseBytes} bytes`,
  );
  console.log(
    `memory, ${MEMORY_TAGS} tags: cold peak heap ${memory.coldScan.peakHeapMiB} MiB (rss ${memory.coldScan.peakRssMiB}), cached rescan peak heap ${memory.cachedScan.peakHeapMiB} MiB (rss ${memory.cachedScan.peakRssMiB})`,
  );
  for (const [kind, l] of Object.entries(latency.byStore)) {
    console.log(
      `getImageRepositoryMetadata, ${LATENCY_TAGS} tags, ${kind}: median ${l.medianMs} ms`,
    );
  }
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
