/**
 * Repository reads while the warmer fills (bench/results/reads-while-warming.json): issue
 * 13's acceptance 6 on one `regscan serve` replica on real Redis against the fleet
 * simulator. Phase 1 fills a set of small repositories (50 to 100 tags each), then 50
 * concurrent clients read them with the warmer idle: the baseline. Phase 2 restarts the
 * replica with the same repositories plus a cold fleet (one 20,000-tag repository without
 * pagination and a few hundred smaller ones over four registries) and reads the same
 * repositories while it fills. Prints read p50 / p99 and their ratio to the baseline and to
 * the 50 ms limit, the event-loop delay the replica reports (prom-client's per-scrape
 * histogram), and its peak RSS against the 256 MiB limit.
 *
 * `npm run bench reads-while-warming` (READS_BENCH_SECONDS=N changes each phase's length;
 * READS_BENCH_PRELOAD=FILE preloads FILE into the filling replica, e.g. a profiler;
 * READS_BENCH_NODE_OPTIONS sets both replicas' NODE_OPTIONS, e.g. a heap bound;
 * READS_BENCH_BUDGET=N each registry's requests per second, default 100).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { Agent, request } from "undici";
import { cleanupAll } from "../test/support/processes.js";
import { startRedis } from "../test/support/redis.js";
import { type FleetRepo, loadFleet, percentile } from "./scale/measure.js";
import {
  memoryOf,
  type Replica,
  type ReplicaConfig,
  startReplica,
  startSimulator,
  writeImagesFile,
} from "./scale/processes.js";
import type { SimRegistrySpec } from "./sim/simulator.js";

const CLIENTS = 50;
const P99_LIMIT_MS = 50;
const RSS_LIMIT_MIB = 256;
const PHASE_MS = Number(process.env.READS_BENCH_SECONDS ?? 30) * 1000;
const MiB = 1024 * 1024;
/** Each simulated registry's request budget (READS_BENCH_BUDGET=N): how hard the fill works. */
const BUDGET_RPS = Number(process.env.READS_BENCH_BUDGET ?? 100);

/**
 * The readers' connections: one each, as 50 separate clients would have (fetch's global
 * pool opens more under load, and the server's per-address cap of 64 then refuses some).
 */
const readers = new Agent({ connections: CLIENTS, keepAliveTimeout: 4_000 });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number) => Math.round(n * 10) / 10;

function registries(): SimRegistrySpec[] {
  const spec = (
    name: string,
    personality: SimRegistrySpec["personality"],
    repositories: number,
    tags: number,
    huge: number[] = [],
  ): SimRegistrySpec => ({
    name,
    personality,
    fleet: { seed: `reads-bench/${name}`, repositories, tags, huge },
  });
  return [
    // What is read: the repositories of 50 to 100 tags (91 of these 300, 71 tags on average).
    spec("reads", "distribution3", 300, 40_000),
    // What is warmed meanwhile: a 20,000-tag list in one answer, and a few hundred others.
    spec("warm-d2", "distribution2", 80, 8_000, [20_000]),
    spec("warm-ghcr", "ghcr", 80, 8_000),
    spec("warm-quay", "quay", 80, 8_000),
    spec("warm-ecr", "ecr", 80, 8_000),
  ];
}

interface ReadFigures {
  seconds: number;
  answers: number;
  byStatus: Record<string, number>;
  errors: number;
  errorKinds: Record<string, number>;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  readsPerSecond: number;
}

/** `CLIENTS` readers, round robin over `repos`, for `ms`; latencies of 200 answers. */
async function readLoad(api: string, repos: FleetRepo[], ms: number): Promise<ReadFigures> {
  const latencies: number[] = [];
  const byStatus: Record<string, number> = {};
  let errors = 0;
  const errorKinds: Record<string, number> = {};
  let next = 0;
  const started = Date.now();
  const deadline = started + ms;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (Date.now() < deadline) {
        const repo = repos[next++ % repos.length] as FleetRepo;
        const t0 = performance.now();
        try {
          const res = await request(`${api}/v1/repositories/${repo.name}`, {
            dispatcher: readers,
            signal: AbortSignal.timeout(10_000),
          });
          const body = await res.body.arrayBuffer();
          // A refusal is counted by its code (NOT_CACHED, SERVER_BUSY, ...).
          const key =
            res.statusCode === 200
              ? "200"
              : `${res.statusCode} ${/"code":"([A-Z_]+)"/.exec(Buffer.from(body).toString())?.[1] ?? ""}`;
          byStatus[key] = (byStatus[key] ?? 0) + 1;
          if (res.statusCode === 200) latencies.push(performance.now() - t0);
          else await sleep(50);
        } catch (err) {
          errors++;
          const why = String((err as Error).cause ?? (err as Error).message).slice(0, 80);
          errorKinds[why] = (errorKinds[why] ?? 0) + 1;
          await sleep(50);
        }
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  return {
    seconds: round(seconds),
    answers: Object.values(byStatus).reduce((a, b) => a + b, 0),
    byStatus,
    errors,
    errorKinds,
    p50Ms: round(percentile(latencies, 50)),
    p90Ms: round(percentile(latencies, 90)),
    p99Ms: round(percentile(latencies, 99)),
    maxMs: round(percentile(latencies, 100)),
    readsPerSecond: round(latencies.length / seconds),
  };
}

interface Sampled {
  /** prom-client's event-loop delay, per scrape (reset at each): max of p99s and of maxes. */
  loopP99MaxMs: number;
  loopMaxMs: number;
  loopP99MedianMs: number;
  hwmMiB: number;
  rssMaxMiB: number;
  loadAverage: number[];
  /** CPU seconds the replica used during the phase (user + system, from /proc). */
  cpuSeconds: number;
  /** Largest V8 heap (total, used) and external memory (buffers) seen, MiB. */
  heapTotalMaxMiB: number;
  heapUsedMaxMiB: number;
  externalMaxMiB: number;
  /** Connections the replica closed at once at a connection cap, by cap, at the end. */
  refusedConnections: Record<string, number>;
}

/** User + system CPU seconds of a process so far (from /proc/PID/stat; clock ticks of 10 ms). */
function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** Scrapes the replica's event-loop delay and reads its RSS every second until `stop`. */
function sampler(replica: Replica): { stop: () => Promise<Sampled> } {
  const p99s: number[] = [];
  const maxes: number[] = [];
  let rssMax = 0;
  let heapTotal = 0;
  let heapUsed = 0;
  let external = 0;
  let refused: Record<string, number> = {};
  let stopped = false;
  const cpuAtStart = cpuSecondsOf(replica.proc.pid);
  const metric = (text: string, name: string) =>
    Number(new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(text)?.[1] ?? Number.NaN) * 1000;
  const loop = (async () => {
    while (!stopped) {
      try {
        const text = await (
          await fetch(`${replica.url}/metrics`, { signal: AbortSignal.timeout(5_000) })
        ).text();
        const p99 = metric(text, "nodejs_eventloop_lag_p99_seconds");
        const max = metric(text, "nodejs_eventloop_lag_max_seconds");
        if (Number.isFinite(p99)) p99s.push(p99);
        if (Number.isFinite(max)) maxes.push(max);
        heapTotal = Math.max(heapTotal, metric(text, "nodejs_heap_size_total_bytes") / 1000);
        heapUsed = Math.max(heapUsed, metric(text, "nodejs_heap_size_used_bytes") / 1000);
        external = Math.max(external, metric(text, "nodejs_external_memory_bytes") / 1000);
        refused = {};
        for (const m of text.matchAll(
          /^regscan_api_connections_refused_total\{reason="([a-z-]+)"\} (\d+)$/gm,
        )) {
          refused[m[1] as string] = Number(m[2]);
        }
      } catch {
        // a scrape that timed out is itself a figure: the loop was stuck that long
        maxes.push(5_000);
      }
      rssMax = Math.max(rssMax, memoryOf(replica.proc.pid)?.rss ?? 0);
      await sleep(1_000);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return {
        loopP99MaxMs: round(Math.max(0, ...p99s)),
        loopMaxMs: round(Math.max(0, ...maxes)),
        loopP99MedianMs: round(percentile(p99s, 50)),
        hwmMiB: round((memoryOf(replica.proc.pid)?.hwm ?? 0) / MiB),
        rssMaxMiB: round(rssMax / MiB),
        loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
        cpuSeconds: round(cpuSecondsOf(replica.proc.pid) - cpuAtStart),
        heapTotalMaxMiB: round(heapTotal / MiB),
        heapUsedMaxMiB: round(heapUsed / MiB),
        externalMaxMiB: round(external / MiB),
        refusedConnections: refused,
      };
    },
  };
}

/** Waits until every repository answers 200 with all its true tags (bounded). */
async function waitFilled(api: string, repos: FleetRepo[], timeoutMs: number): Promise<number> {
  const started = Date.now();
  const pending = new Set(repos);
  while (pending.size > 0) {
    if (Date.now() - started > timeoutMs) {
      throw new Error(`${pending.size} of ${repos.length} repositories not filled in time`);
    }
    for (const repo of [...pending]) {
      const res = await fetch(`${api}/v1/repositories/${repo.name}`, {
        signal: AbortSignal.timeout(10_000),
      }).catch(() => undefined);
      if (res?.status !== 200) {
        await res?.arrayBuffer();
        continue;
      }
      const body = (await res.json()) as { tags?: string[] };
      if ((body.tags?.length ?? 0) >= repo.truth.size) pending.delete(repo);
    }
    if (pending.size > 0) await sleep(1_000);
  }
  return Date.now() - started;
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const sim = await startSimulator({ registries: registries(), controlPort: 0 });
  const fleet = await loadFleet(sim.control, sim.registries);
  const reads = fleet.filter(
    (r) => r.registry.name === "reads" && r.truth.size >= 50 && r.truth.size <= 100,
  );
  const warm = fleet.filter((r) => r.registry.name !== "reads");
  const warmTags = warm.reduce((n, r) => n + r.truth.size, 0);
  console.log(
    `reads: ${reads.length} repositories (${reads.reduce((n, r) => n + r.truth.size, 0)} tags); ` +
      `warmed meanwhile: ${warm.length} repositories, ${warmTags} tags`,
  );
  const base: Omit<ReplicaConfig, "imagesFile"> = {
    redisUrl: redis.url,
    registries: sim.registries,
    budgetRps: BUDGET_RPS,
    budgetBurst: BUDGET_RPS,
    intervalSeconds: 600,
    webhookToken: "reads-bench",
  };

  // READS_BENCH_NODE_OPTIONS: NODE_OPTIONS of both replicas (e.g. a heap bound).
  const nodeOptions = process.env.READS_BENCH_NODE_OPTIONS;
  if (nodeOptions !== undefined) process.env.NODE_OPTIONS = nodeOptions;

  // Phase 1: the read repositories filled, then read with nothing left to warm.
  let replica = await startReplica("reads-0", {
    ...base,
    imagesFile: writeImagesFile(reads.map((r) => r.name)),
  });
  const fillMs = await waitFilled(replica.url, reads, 300_000);
  await sleep(2_000);
  let sampling = sampler(replica);
  const idle = await readLoad(replica.url, reads, PHASE_MS);
  const idleSampled = await sampling.stop();
  console.log(`warmer idle:    ${describe(idle, idleSampled)}`);
  await replica.proc.stop();

  // Phase 2: the same reads while a cold fleet fills (the read repositories are fresh in
  // Redis, so they are not scanned again).
  // READS_BENCH_PRELOAD=FILE: the filling replica runs with `--require FILE` (a profiler).
  const preload = process.env.READS_BENCH_PRELOAD;
  if (preload !== undefined) {
    process.env.NODE_OPTIONS = `${nodeOptions ?? ""} --require ${preload}`.trim();
  }
  replica = await startReplica("reads-1", {
    ...base,
    imagesFile: writeImagesFile([...reads, ...warm].map((r) => r.name)),
  });
  sampling = sampler(replica);
  const warming = await readLoad(replica.url, reads, PHASE_MS);
  const warmingSampled = await sampling.stop();
  console.log(`warmer filling: ${describe(warming, warmingSampled)}`);
  const warmedTags = await countCached(replica.url, warm);
  await replica.proc.stop();

  const ratio = (a: number, b: number) => Math.round((a / Math.max(0.1, b)) * 100) / 100;
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    replicaNodeOptions: nodeOptions ?? null,
    limits: { readP99Ms: P99_LIMIT_MS, rssMiB: RSS_LIMIT_MIB },
    clients: CLIENTS,
    budgetRps: BUDGET_RPS,
    readRepositories: reads.length,
    warmFleet: { repositories: warm.length, tags: warmTags, listedAtEnd: warmedTags },
    readFillMs: fillMs,
    idle: { reads: idle, replica: idleSampled },
    warming: { reads: warming, replica: warmingSampled },
    ratios: {
      p99WarmingToIdle: ratio(warming.p99Ms, idle.p99Ms),
      p50WarmingToIdle: ratio(warming.p50Ms, idle.p50Ms),
      p99WarmingToLimit: ratio(warming.p99Ms, P99_LIMIT_MS),
      hwmToLimit: ratio(warmingSampled.hwmMiB, RSS_LIMIT_MIB),
    },
  };
  mkdirSync("bench/results", { recursive: true });
  writeFileSync("bench/results/reads-while-warming.json", `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    `read p99 while filling ${warming.p99Ms} ms = ${result.ratios.p99WarmingToIdle} x idle's ` +
      `${idle.p99Ms} ms, ${result.ratios.p99WarmingToLimit} x the ${P99_LIMIT_MS} ms limit; ` +
      `peak RSS ${warmingSampled.hwmMiB} MiB = ${result.ratios.hwmToLimit} x the ${RSS_LIMIT_MIB} MiB limit; ` +
      `${warmedTags} of ${warmTags} warm tags listed meanwhile`,
  );
}

function describe(r: ReadFigures, s: Sampled): string {
  return (
    `${r.answers} answers (${JSON.stringify(r.byStatus)}, ${r.errors} errors ${JSON.stringify(r.errorKinds)}, ${r.readsPerSecond}/s ok), ` +
    `p50 ${r.p50Ms} / p90 ${r.p90Ms} / p99 ${r.p99Ms} / max ${r.maxMs} ms; ` +
    `event-loop delay p99 median ${s.loopP99MedianMs} ms, worst p99 ${s.loopP99MaxMs} ms, max ${s.loopMaxMs} ms; ` +
    `replica CPU ${s.cpuSeconds} s (${round((1000 * s.cpuSeconds) / Math.max(1, r.answers))} ms per answer); ` +
    `VmHWM ${s.hwmMiB} MiB (heap ${s.heapUsedMaxMiB} used / ${s.heapTotalMaxMiB} total, external ${s.externalMaxMiB}); ` +
    `refused connections ${JSON.stringify(s.refusedConnections)}; load ${s.loadAverage.join(" ")}`
  );
}

/** Tags of `repos` the replica answers with now (how far the fill got during the reads). */
async function countCached(api: string, repos: FleetRepo[]): Promise<number> {
  let n = 0;
  for (const repo of repos) {
    const res = await fetch(`${api}/v1/repositories/${repo.name}`, {
      signal: AbortSignal.timeout(30_000),
    }).catch(() => undefined);
    if (res?.status === 200) n += ((await res.json()) as { tags?: string[] }).tags?.length ?? 0;
    else await res?.arrayBuffer();
  }
  return n;
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
