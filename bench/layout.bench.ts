/**
 * Cache layout 2 against layout 1 (one record per tag), in one run (bench/results/layout.json):
 * 1. getImageRepositoryMetadata of a 20,000-tag repository over 20 images and over 20,000
 *    images, on memory, sqlite, memcached (default 1 MiB items) and Redis: layout 1 as the
 *    previous code read it, layout 2 from a new Cache (no image held: cold) and from one
 *    that read it before (the daemon's case: decoded images held in the process);
 * 2. bytes per tag of a 5,000-tag / 20-image repository (sum of stored values, envelope
 *    included, and an SQLite file holding only it) in both layouts;
 * 3. a second scan with nothing changed of four real-registry repositories (5,031 tags),
 *    beside a raw undici loop making the same requests;
 * 4. `regscan serve` RSS holding a 100,000-tag repository while answering its reads.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { Registry as MetricsRegistry } from "prom-client";
import { Agent, request } from "undici";
import { Cache } from "../src/cache/cache.js";
import { Keys } from "../src/cache/keys.js";
import { openStore } from "../src/cache/open-store.js";
import { encodeRepositoryRecord, encodeTagRecord } from "../src/cache/records.js";
import type { Store } from "../src/cache/store.js";
import { Warmer } from "../src/cache/warmer.js";
import type { ImageEntry } from "../src/image/info.js";
import { type ImageName, parseImageName } from "../src/image/ref.js";
import { Credentials } from "../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../src/registry/factory.js";
import {
  FakeFactory,
  type FakeRepository,
  fakeDigest,
} from "../test/cache/support/fake-registry.js";
import { cliCommand } from "../test/support/cli.js";
import { ImageBuilder, type PushedManifest } from "../test/support/image-builder.js";
import { startMemcached } from "../test/support/memcached.js";
import { cleanupAll, makeTempDir } from "../test/support/processes.js";
import { startRedis } from "../test/support/redis.js";
import { startRegistry } from "../test/support/registry.js";
import { registryImage } from "./registry-image.js";

const READ_TAGS = 20_000;
const ROUNDS = 11;
const SIZE_TAGS = 5_000;
const SERVE_TAGS = 100_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round((s[Math.floor(s.length / 2)] ?? Number.NaN) * 10) / 10;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** CPU time of this process (user + system, ms) spent in the samples taken with {@link cpuTimed}. */
const cpuSamples = new Map<string, number[]>();

async function cpuTimed(label: string, fn: () => Promise<unknown>): Promise<number> {
  const cpu = process.cpuUsage();
  const ms = await timed(fn);
  const used = process.cpuUsage(cpu);
  const list = cpuSamples.get(label) ?? [];
  list.push((used.user + used.system) / 1000);
  cpuSamples.set(label, list);
  return ms;
}

/** Tag names as CI systems make them: `1.2.345` and `main-<sha7>`, 8 to 12 characters. */
function tagName(t: number): string {
  return t % 2 === 0
    ? `1.${(t >> 8) % 100}.${t % 1000}`
    : `main-${((t * 2654435761) >>> 0).toString(16).slice(0, 7)}`;
}

function repository(name: ImageName, tags: number, images: number): FakeRepository {
  const repo: FakeRepository = { tags: new Map(), images: new Map() };
  for (let i = 0; i < images; i++) repo.images.set(fakeDigest(i + 1), registryImage(name, i));
  for (let t = 0; repo.tags.size < tags; t++) {
    repo.tags.set(
      `${tagName(t)}${repo.tags.has(tagName(t)) ? `-${t}` : ""}`,
      fakeDigest((t % images) + 1),
    );
  }
  return repo;
}

/** Writes the repository as layout 1 did (one record per tag); returns the bytes stored. */
async function writeLayout1(
  store: Store,
  keys: Keys,
  name: ImageName,
  repo: FakeRepository,
): Promise<number> {
  const now = Date.now();
  const deadline = new Date(now + 3_600_000);
  const tags = [...repo.tags.keys()];
  let bytes = 0;
  const record = encodeRepositoryRecord({
    tags,
    lastUpdate: new Date(now),
    lastScanned: new Date(now),
  });
  await store.set(keys.repository(name), deadline, record);
  bytes += record.byteLength + 12;
  const values: [string, Uint8Array][] = [];
  for (const [tag, digest] of repo.tags) {
    const entry = repo.images.get(digest) as ImageEntry;
    const value = encodeTagRecord({
      entry,
      digest,
      intervalMs: 3_600_000,
      checkedAt: new Date(now),
    });
    values.push([keys.tag(name, tag), value]);
    bytes += value.byteLength + 12;
  }
  for (let at = 0; at < values.length; at += 64) {
    await Promise.all(values.slice(at, at + 64).map(([k, v]) => store.set(k, deadline, v)));
  }
  return bytes;
}

/** A store that notes the size of the last value written under each key. */
function sizing(inner: Store): { store: Store; sizes: Map<string, number> } {
  const sizes = new Map<string, number>();
  return {
    sizes,
    store: {
      ...inner,
      get: (k, o) => inner.get(k, o),
      getMany: (k, o) => inner.getMany(k, o),
      acquire: (k, t, w, o) => inner.acquire(k, t, w, o),
      release: (k, w, o) => inner.release(k, w, o),
      ping: (o) => inner.ping(o),
      close: () => inner.close(),
      set: (k, d, v, o) => {
        if (!k.includes(":lease")) sizes.set(k, v.byteLength + 12);
        return inner.set(k, d, v, o);
      },
    },
  };
}

/** Writes the repository as layout 2 does: a first scan by the warmer over a scripted registry. */
async function writeLayout2(
  store: Store,
  keys: Keys,
  name: ImageName,
  repo: FakeRepository,
): Promise<number> {
  const sized = sizing(store);
  const factory = new FakeFactory(new Map([[name.toString(), repo]]));
  const warmer = new Warmer({
    store: sized.store,
    keys,
    factory,
    burst: 64,
    metricsRegistry: new MetricsRegistry(),
  });
  const [r] = await warmer.scan([{ name }]);
  if (r?.outcome !== "scanned" || r.refreshed !== repo.tags.size)
    throw new Error(`fill: ${JSON.stringify(r)}`);
  let bytes = 0;
  for (const n of sized.sizes.values()) bytes += n;
  return bytes;
}

interface ReadFigures {
  /** Median CPU time of this process per read (what the read costs without the machine's load). */
  cpuMs: { layout1: number; layout2Cold: number; layout2Held: number };
  layout1Ms: number;
  layout2ColdMs: number;
  layout2WarmMs: number;
  ratioWarm: number;
  ratioCold: number;
}

async function readFigures(
  store: Store,
  name: ImageName,
  images: number,
  round: number,
): Promise<ReadFigures> {
  const repo = repository(name, READ_TAGS, images);
  const oldKeys = new Keys(`l1r${round}:`);
  const newKeys = new Keys(`l2r${round}:v2:`, `none${round}:`);
  await writeLayout1(store, oldKeys, name, repo);
  await writeLayout2(store, newKeys, name, repo);
  const cacheOf = (keys: Keys) =>
    new Cache({ store, keys, metricsRegistry: new MetricsRegistry() });
  const check = (n: number) => {
    if (n !== READ_TAGS) throw new Error(`read ${n} images, not ${READ_TAGS}`);
  };
  const old = cacheOf(oldKeys);
  check((await old.getImageRepositoryMetadata(name)).images.size);
  const l1: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    l1.push(
      await cpuTimed("l1", async () =>
        check((await old.getImageRepositoryMetadata(name)).images.size),
      ),
    );
  }
  const cold: number[] = [];
  check((await cacheOf(newKeys).getImageRepositoryMetadata(name)).images.size);
  for (let i = 0; i < ROUNDS; i++) {
    const cache = cacheOf(newKeys);
    cold.push(
      await cpuTimed("cold", async () =>
        check((await cache.getImageRepositoryMetadata(name)).images.size),
      ),
    );
  }
  const warm = cacheOf(newKeys);
  check((await warm.getImageRepositoryMetadata(name)).images.size);
  const w: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    w.push(
      await cpuTimed("held", async () =>
        check((await warm.getImageRepositoryMetadata(name)).images.size),
      ),
    );
  }
  const f = { layout1Ms: median(l1), layout2ColdMs: median(cold), layout2WarmMs: median(w) };
  const cpu = (label: string) => median(cpuSamples.get(label) ?? []);
  const cpuMs = { layout1: cpu("l1"), layout2Cold: cpu("cold"), layout2Held: cpu("held") };
  cpuSamples.clear();
  return {
    ...f,
    cpuMs,
    ratioWarm: Math.round((f.layout1Ms / f.layout2WarmMs) * 10) / 10,
    ratioCold: Math.round((f.layout1Ms / f.layout2ColdMs) * 10) / 10,
  };
}

async function sizeFigures(dir: string) {
  const name = parseImageName("registry.example/team/sized");
  const repo = repository(name, SIZE_TAGS, 20);
  const files = { layout1: join(dir, "size-l1.db"), layout2: join(dir, "size-l2.db") };
  const l1 = await openStore(`sqlite:${files.layout1}`);
  const l1Bytes = await writeLayout1(l1, new Keys(), name, repo);
  await l1.close();
  const l2 = await openStore(`sqlite:${files.layout2}`);
  const l2Bytes = await writeLayout2(l2, new Keys(), name, repo);
  await l2.close();
  const fileSize = (p: string) =>
    statSync(p).size + (statSync(`${p}-wal`, { throwIfNoEntry: false })?.size ?? 0);
  const tagChars = [...repo.tags.keys()].reduce((s, t) => s + t.length, 0) / SIZE_TAGS;
  return {
    tags: SIZE_TAGS,
    images: 20,
    meanTagLength: Math.round(tagChars * 10) / 10,
    layout1: {
      valueBytesPerTag: Math.round(l1Bytes / SIZE_TAGS),
      sqliteFileBytesPerTag: Math.round(fileSize(files.layout1) / SIZE_TAGS),
    },
    layout2: {
      valueBytesPerTag: Math.round(l2Bytes / SIZE_TAGS),
      sqliteFileBytesPerTag: Math.round(fileSize(files.layout2) / SIZE_TAGS),
    },
  };
}

/** Four repositories on the real registry, 5,031 tags; a second scan timed beside a raw loop. */
async function secondScanFigures(dir: string) {
  const registry = await startRegistry();
  const builder = new ImageBuilder(registry);
  const names = ["bed/big", "bed/small", "bed/multi", "bed/one"];
  try {
    const big: PushedManifest[] = [];
    for (let i = 0; i < 20; i++)
      big.push(await builder.pushImage("bed/big", [`seed-${i}`], { seed: `big-${i}` }));
    const bigTags = Array.from({ length: 4_980 }, (_, t) => `b${t}`);
    for (let i = 0; i < 20; i++) {
      await builder.tagMany("bed/big", {
        tags: bigTags.filter((_, t) => t % 20 === i),
        manifest: big[i] as PushedManifest,
      });
    }
    const small = await builder.pushImage("bed/small", [], { seed: "small" });
    await builder.tagMany("bed/small", {
      tags: Array.from({ length: 20 }, (_, t) => `s${t}`),
      manifest: small,
    });
    const multi = await builder.pushImage("bed/multi", [], { seed: "multi" });
    await builder.tagMany("bed/multi", {
      tags: Array.from({ length: 10 }, (_, t) => `m${t}`),
      manifest: multi,
    });
    await builder.pushImage("bed/one", ["latest"], { seed: "one" });
  } finally {
    await builder.close();
  }
  const store = await openStore(`sqlite:${join(dir, "bed.db")}`);
  const factory = new RemoteClientFactory({
    insecureHosts: [registry.host],
    limiters: { rps: 100_000, burst: 1000 },
  });
  const targets = names.map((n) => ({
    name: parseImageName(`${registry.host}/${n}`),
    creds: Credentials.none(),
  }));
  try {
    const warmer = new Warmer({ store, factory, metricsRegistry: new MetricsRegistry() });
    const first = await warmer.scan(targets);
    const tags = first.reduce((s, r) => s + r.tags, 0);
    const runs: number[] = [];
    let requests: { method: string; path: string; url: string }[] = [];
    for (let i = 0; i < 5; i++) {
      registry.resetRequests();
      runs.push(await timed(() => warmer.scan(targets)));
      requests = registry.requests().map((r) => ({ method: r.method, path: r.path, url: r.url }));
    }
    const agent = new Agent({ connections: 4 });
    const raw: number[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        raw.push(
          await timed(async () => {
            await Promise.all(
              requests.map(async (r) => {
                const res = await request(`http://${registry.host}${r.url}`, {
                  method: r.method as "GET",
                  dispatcher: agent,
                });
                await res.body.arrayBuffer();
              }),
            );
          }),
        );
      }
    } finally {
      await agent.close();
    }
    return {
      repositories: names.length,
      tags,
      requests: requests.length,
      warmerMs: median(runs),
      rawLoopMs: median(raw),
    };
  } finally {
    await factory.close();
    await store.close();
    await registry.stop();
  }
}

/** `regscan serve` over a store holding a 100,000-tag repository (fresh: not rescanned). */
async function serveFigures(dir: string) {
  const db = join(dir, "serve.db");
  const name = parseImageName("registry.invalid:5000/big/app");
  const store = await openStore(`sqlite:${db}`);
  const repo = repository(name, SERVE_TAGS, 200);
  await writeLayout2(store, new Keys(), name, repo);
  // The cache's own share, in this process: one answer held, after a collection.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
  let readMs = await timed(() => cache.getImageRepositoryMetadata(name));
  let held = await cache.getImageRepositoryMetadata(name);
  readMs = Math.min(
    readMs,
    await timed(async () => {
      held = await cache.getImageRepositoryMetadata(name);
    }),
  );
  gc?.();
  const answerHeapMiB = Math.round((process.memoryUsage().heapUsed - heapBefore) / 104857.6) / 10;
  if (held.images.size !== SERVE_TAGS) throw new Error("serve fill");
  await store.close();
  const images = join(dir, "images.txt");
  writeFileSync(images, `${name.toString()}\n`);
  const { command, args } = cliCommand([
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--log-format",
    "json",
    "--cache",
    `sqlite:${db}`,
    "--images-file",
    images,
  ]);
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  try {
    let url: string | undefined;
    const until = Date.now() + 60_000;
    while (!url && Date.now() < until) {
      url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      if (!url) await new Promise((r) => setTimeout(r, 100));
    }
    if (!url) throw new Error(`serve did not start: ${out}`);
    const rss = () => {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
      return {
        rssMiB: Math.round(kb("VmRSS") / 102.4) / 10,
        peakMiB: Math.round(kb("VmHWM") / 102.4) / 10,
      };
    };
    // Settled, before any read (the warmer found the repository fresh and skipped it).
    await new Promise((r) => setTimeout(r, 3000));
    const idle = rss();
    const path = `/v1/repositories/${encodeURIComponent(name.toString())}`;
    const times: number[] = [];
    let bytes = 0;
    let maxRss = 0;
    // A connection per read: a kept-alive one idle while the slowest read of a round ends
    // can meet the server's keep-alive timeout as the next round reuses it.
    const agent = new Agent({ pipelining: 0 });
    try {
      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        const answers = await Promise.all(
          Array.from({ length: 4 }, async () => {
            const res = await request(`${url}${path}`, { dispatcher: agent });
            const body = Buffer.from(await res.body.arrayBuffer());
            if (res.statusCode !== 200)
              throw new Error(`GET ${path}: ${res.statusCode} ${body.subarray(0, 200)}`);
            // Over the answer cache's bound, the answer is chunked: no length is announced.
            const declared = res.headers["content-length"];
            if (declared !== undefined && Number(declared) !== body.length)
              throw new Error(`GET ${path}: ${body.length} bytes, not its content-length`);
            if (bytes !== 0 && body.length !== bytes)
              throw new Error(`GET ${path}: ${body.length} bytes, ${bytes} before`);
            return body.length;
          }),
        );
        times.push(performance.now() - started);
        bytes = answers[0] ?? 0;
        maxRss = Math.max(maxRss, rss().rssMiB);
      }
    } finally {
      await agent.close();
    }
    return {
      tags: SERVE_TAGS,
      images: 200,
      inProcess: { readMs: Math.round(readMs), answerHeapMiB },
      idleRssMiB: idle.rssMiB,
      concurrentReads: 4,
      rounds: 20,
      answerBytes: bytes,
      roundMedianMs: median(times),
      maxSampledRssMiB: maxRss,
      ...rss(),
    };
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
}

async function main() {
  const only = process.env.LAYOUT_BENCH_PARTS?.split(",");
  const want = (part: string) => !only || only.includes(part);
  const dir = makeTempDir("regscan-bench-layout-");
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    node: process.version,
    // Other work on the machine inflates wall times; the CPU times are this process's own.
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  };
  if (want("reads")) {
    const [memcached, redis] = await Promise.all([
      startMemcached({ memoryMb: 1024 }),
      startRedis(),
    ]);
    const urls: Record<string, string> = {
      memory: "memory:",
      sqlite: `sqlite:${join(dir, "reads.db")}`,
      memcached: `memcached://${memcached.address}`,
      redis: redis.url,
    };
    const reads: Record<string, Record<string, ReadFigures>> = {};
    console.log(
      `getImageRepositoryMetadata, ${READ_TAGS} tags, median of ${ROUNDS} (layout 1 -> layout 2, cold / images held)`,
    );
    let round = 0;
    for (const [store, url] of Object.entries(urls)) {
      const s = await openStore(url);
      try {
        const name = parseImageName(`registry.example/reads/${store}`);
        reads[store] = {};
        for (const images of [20, READ_TAGS]) {
          const f = await readFigures(s, name, images, round++);
          (reads[store] as Record<string, ReadFigures>)[`images${images}`] = f;
          console.log(
            `${store.padEnd(10)} ${String(images).padStart(5)} images: layout 1 ${f.layout1Ms} ms -> layout 2 ${f.layout2ColdMs} ms cold (${f.ratioCold}x), ${f.layout2WarmMs} ms held (${f.ratioWarm}x); CPU ${f.cpuMs.layout1} -> ${f.cpuMs.layout2Cold} / ${f.cpuMs.layout2Held} ms`,
          );
        }
      } finally {
        await s.close();
      }
    }
    results.reads = { tags: READ_TAGS, rounds: ROUNDS, byStore: reads };
  }
  if (want("size")) {
    const size = await sizeFigures(dir);
    results.size = size;
    console.log(
      `bytes per tag, ${SIZE_TAGS} tags / 20 images (tags ${size.meanTagLength} chars): layout 1 ${size.layout1.valueBytesPerTag} B of values (${size.layout1.sqliteFileBytesPerTag} B of SQLite file) -> layout 2 ${size.layout2.valueBytesPerTag} B (${size.layout2.sqliteFileBytesPerTag} B)`,
    );
  }
  if (want("second")) {
    const second = await secondScanFigures(dir);
    results.secondScan = second;
    console.log(
      `second scan, nothing changed, ${second.repositories} repositories / ${second.tags} tags: ${second.warmerMs} ms (${second.requests} requests); raw loop of the same requests ${second.rawLoopMs} ms`,
    );
  }
  if (want("serve")) {
    const serve = await serveFigures(dir);
    results.serve = serve;
    console.log(
      `regscan serve, ${serve.tags} tags: RSS ${serve.idleRssMiB} MiB before reads, ${serve.rssMiB} MiB (peak ${serve.peakMiB} MiB) after ${serve.rounds} x ${serve.concurrentReads} reads of ${serve.answerBytes} bytes, ${serve.roundMedianMs} ms per round; in process, one read ${serve.inProcess.readMs} ms holding ${serve.inProcess.answerHeapMiB} MiB of heap`,
    );
  }
  mkdirSync("bench/results", { recursive: true });
  // A partial run (LAYOUT_BENCH_PARTS=reads,size,second,serve) keeps the other parts' figures.
  let previous: Record<string, unknown> = {};
  if (only) {
    try {
      previous = JSON.parse(readFileSync("bench/results/layout.json", "utf8")) as Record<
        string,
        unknown
      >;
    } catch {
      previous = {};
    }
  }
  writeFileSync(
    "bench/results/layout.json",
    `${JSON.stringify({ ...previous, ...results }, null, 2)}\n`,
  );
  console.log("wrote bench/results/layout.json");
}

try {
  await main();
} finally {
  await cleanupAll();
}
