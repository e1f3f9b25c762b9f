/**
 * Repository answers the API's answer cache does not hold (bench/results/answer-misses.json):
 * what 50 readers cost going round 1,000 cached repositories of 80 tags each (more than
 * the answer cache holds, so every read is built: a record read, the index, the images, the
 * JSON) on real Redis, as the API reads them (the record first, for its version, then the
 * stream). Three ways in one run, alternated:
 * - `copied`: every value the store returns copied into an ArrayBuffer of its own, as the
 *   envelope's decoding did until it returned a view: the baseline;
 * - `views`: values as the store returns them now;
 * - `handed`: views, and the stream opened from the record just read (`{ record }`), as the
 *   API builds now;
 * - `stored`: the answer another replica shared through the store (server/shared-answers.ts),
 *   fetched beside the record as the API does, and unzipped: what a read costs now where
 *   the answer cache does not hold it but the fleet built it (its first round writes them).
 * Each round runs on a thread of its own with the API thread's heap limits (96 MiB old, 8
 * MiB young: a young generation that small is where the copies' garbage cost most), after
 * a first round that warms it.
 * Prints CPU and GC milliseconds per read and their ratios to the baseline.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { type PerformanceEntry, PerformanceObserver } from "node:perf_hooks";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import { Cache } from "../src/cache/cache.js";
import { openStore } from "../src/cache/open-store.js";
import type { Store } from "../src/cache/store.js";
import { Warmer } from "../src/cache/warmer.js";
import { RESOURCE_LIMITS } from "../src/daemon/api-thread.js";
import { type ImageName, parseImageName } from "../src/image/ref.js";
import { buildRepositoryAnswer } from "../src/server/repository-answer.js";
import { SharedAnswers } from "../src/server/shared-answers.js";
import {
  FakeFactory,
  type FakeRepository,
  fakeDigest,
} from "../test/cache/support/fake-registry.js";
import { cleanupAll } from "../test/support/processes.js";
import { startRedis } from "../test/support/redis.js";
import { registryImage } from "./registry-image.js";

const REPOSITORIES = 1_000;
const TAGS = 80;
const READERS = 50;
const ROUNDS = 3;
const READS_PER_ROUND = REPOSITORIES * 3;

type Way = "copied" | "views" | "handed" | "stored";
const WAYS = ["copied", "views", "handed", "stored"] as const;

/** `store` with every value copied into an ArrayBuffer of its own (the old decoding). */
function copying(store: Store): Store {
  const copy = <T extends { value: Uint8Array } | undefined>(e: T): T =>
    e === undefined ? e : ({ ...e, value: new Uint8Array(e.value) } as T);
  const get: Store["get"] = async (key, opts) => copy(await store.get(key, opts));
  const getMany: Store["getMany"] = async (keys, opts) =>
    (await store.getMany(keys, opts)).map(copy);
  return new Proxy(store, {
    get(target, prop) {
      if (prop === "get") return get;
      if (prop === "getMany") return getMany;
      const value: unknown = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const gc: Record<string, number> = {};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    const k = kind === 1 ? "minor" : kind === 2 ? "major" : "other";
    gc[k] = (gc[k] ?? 0) + e.duration;
  }
}).observe({ entryTypes: ["gc"] });

/** What a round's thread is given. */
interface RoundData {
  url: string;
  way: Way;
}

async function round(store: Store, names: ImageName[], way: Way) {
  // A new Cache per round: nothing decoded carries over from another way's round.
  const cache = new Cache({ store: way === "copied" ? copying(store) : store });
  const shared = new SharedAnswers({
    store,
    variant: "bench",
    // Past the rounds' length: the counted round reads what the first one wrote.
    maxAgeMs: 3_600_000,
    metrics: new MetricsRegistry(),
    logger: pino({ level: "silent" }),
  });
  for (const k of Object.keys(gc)) delete gc[k];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  let fromStore = 0;
  await Promise.all(
    Array.from({ length: READERS }, async () => {
      while (next < READS_PER_ROUND) {
        const name = names[next++ % names.length] as ImageName;
        const signal = AbortSignal.timeout(10_000);
        const fetched = way === "stored" ? shared.fetch(name, signal) : undefined;
        const record = await cache.repositoryRecord(name);
        const version = String(record?.writtenAt?.getTime());
        if (fetched !== undefined && (await shared.answerOf(name, version, await fetched))) {
          fromStore++;
          continue;
        }
        const stream = await cache.streamImageRepository(
          name,
          way === "handed" || way === "stored" ? { record } : undefined,
        );
        const built = await buildRepositoryAnswer(name.toString(), stream, {
          maxBytes: 8 << 20,
          maxLayoutChars: 2 << 20,
        });
        if (!Array.isArray(built)) throw new Error(`${name}: not built whole`);
        if (way === "stored") await shared.write(name, version, built, Date.now(), signal);
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  const per = (ms: number) => Math.round((ms / READS_PER_ROUND) * 1000) / 1000;
  return {
    way,
    fromStore,
    wallMsPerRead: per(performance.now() - t0),
    cpuMsPerRead: per((cpu.user + cpu.system) / 1000),
    minorGcMsPerRead: per(gc.minor ?? 0),
    majorGcMsPerRead: per(gc.major ?? 0),
  };
}

async function main(): Promise<void> {
  const redis = await startRedis();
  try {
    const store = await openStore(redis.url);
    const repos = new Map<string, FakeRepository>();
    const names = repositoryNames();
    for (const [r, name] of names.entries()) {
      const repo: FakeRepository = { tags: new Map(), images: new Map() };
      for (let i = 0; i < TAGS; i++) {
        const n = r * TAGS + i;
        repo.images.set(fakeDigest(n + 1), registryImage(name, n));
        repo.tags.set(`1.${r}.${i}`, fakeDigest(n + 1));
      }
      repos.set(name.toString(), repo);
    }
    const warmer = new Warmer({
      store,
      factory: new FakeFactory(repos),
      burst: 256,
      metricsRegistry: new MetricsRegistry(),
    });
    for (let i = 0; i < names.length; i += 100) {
      await warmer.scan(names.slice(i, i + 100).map((name) => ({ name })));
    }
    const load = loadavg();
    const runs: Awaited<ReturnType<typeof round>>[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (const way of WAYS) {
        runs.push(await roundOnThread({ url: redis.url, way }));
      }
    }
    const median = (way: Way, key: "cpuMsPerRead" | "minorGcMsPerRead" | "wallMsPerRead") => {
      const xs = runs
        .filter((x) => x.way === way)
        .map((x) => x[key])
        .sort((a, b) => a - b);
      return xs[Math.floor(xs.length / 2)] as number;
    };
    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
    const summary = Object.fromEntries(
      WAYS.map((way) => [
        way,
        {
          cpuMsPerRead: median(way, "cpuMsPerRead"),
          minorGcMsPerRead: median(way, "minorGcMsPerRead"),
          wallMsPerRead: median(way, "wallMsPerRead"),
          cpuToCopied: ratio(median(way, "cpuMsPerRead"), median("copied", "cpuMsPerRead")),
          cpuToHanded: ratio(median(way, "cpuMsPerRead"), median("handed", "cpuMsPerRead")),
          fromStore: Math.min(...runs.filter((x) => x.way === way).map((x) => x.fromStore)),
        },
      ]),
    );
    for (const [way, s] of Object.entries(summary)) {
      console.log(
        `${way.padEnd(7)} CPU ${s.cpuMsPerRead} ms/read (${s.cpuToCopied}x copied, ${s.cpuToHanded}x handed; ${s.fromStore} of ${READS_PER_ROUND} from the store), minor GC ${s.minorGcMsPerRead} ms/read, wall ${s.wallMsPerRead} ms/read`,
      );
    }
    console.log(`load average before the rounds: ${load.map((l) => l.toFixed(2)).join(" ")}`);
    mkdirSync("bench/results", { recursive: true });
    writeFileSync(
      "bench/results/answer-misses.json",
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          node: process.version,
          loadAverage: load,
          setup: { repositories: REPOSITORIES, tags: TAGS, readers: READERS, rounds: ROUNDS },
          summary,
          runs,
        },
        null,
        2,
      )}\n`,
    );
    await store.close();
  } finally {
    await cleanupAll();
  }
}

/** One round on a thread with the API thread's heap limits; its figures. */
function roundOnThread(data: RoundData): Promise<Awaited<ReturnType<typeof round>>> {
  return new Promise((resolve, reject) => {
    // A thread does not take tsx from the process's `--import`: it registers it first.
    const self = JSON.stringify(import.meta.url);
    const code = `import("tsx/esm/api").then((t) => { t.register(); return import(${self}); });`;
    const worker = new Worker(code, {
      eval: true,
      workerData: data,
      resourceLimits: RESOURCE_LIMITS,
    });
    worker.once("message", resolve);
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`round thread exited (${code})`)));
  });
}

function repositoryNames(): ImageName[] {
  return Array.from({ length: REPOSITORIES }, (_, r) =>
    parseImageName(`registry.test/team/app-${r}`),
  );
}

if (isMainThread) {
  await main();
} else {
  const { url, way } = workerData as RoundData;
  const store = await openStore(url);
  // A first round warms the thread (its code compiled, its heap grown); the second counts.
  await round(store, repositoryNames(), way);
  const result = await round(store, repositoryNames(), way);
  await store.close();
  parentPort?.postMessage(result);
}
