/**
 * The registry-fleet simulator's capacity (issue 13, acceptance 1): a warm pass's mix of
 * requests (tag pages, manifest HEADs and GETs by tag and by digest, config blobs) kept in
 * flight against a running simulator from load-generator threads, through keep-alive,
 * pipelined undici pools on loopback, for a few rounds. Per round: requests per second, and
 * per CPU-second of the simulator process (its capacity on one core, whatever else the
 * machine runs). Used by bench/sim-throughput.bench.ts and by bench:scale before its fills.
 */
import { Worker } from "node:worker_threads";
import { Pool, request } from "undici";
import { RegistryContent } from "./content.js";
import { seededRandom } from "./rng.js";
import type { SimRegistrySpec } from "./simulator.js";

/** The mix of one warm pass (shares of requests). */
export const WARM_PASS_MIX = {
  tags: 0.1,
  manifestHead: 0.35,
  manifestGet: 0.3,
  manifestByDigest: 0.1,
  blob: 0.15,
};

/** Where the simulator runs and how hard to load it. */
export interface CapacityOptions {
  /** The simulator's control URL (`/_sim/stats`). */
  control: string;
  /** The specs the simulator was started with: the same seed gives the same content here. */
  specs: SimRegistrySpec[];
  /** The simulator's registries, in the specs' order. */
  registries: ReadonlyArray<{ name: string; url: string }>;
  /**
   * Registries left out by personality: Docker Hub's manifest GETs are pulls against its
   * quota, which a fill measured after the probe must find whole.
   */
  skipPersonalities?: readonly string[] | undefined;
  rounds: number;
  roundMs: number;
  warmupMs: number;
  /** Requests in flight over all registries. */
  inFlight: number;
  loadWorkers: number;
  connectionsPerRegistry: number;
  pipelining: number;
  /** Distinct requests drawn per registry. */
  samplesPerRegistry: number;
}

/** One round's figures. */
export interface CapacityRound {
  requests: number;
  countedBySimulator: number;
  seconds: number;
  rps: number;
  simCpuMs: number;
  simCpuShare: number;
  rpsPerSimCpuSecond: number;
  simRss: number;
}

export interface CapacityResult {
  /** Medians over the rounds. */
  rps: number;
  rpsPerSimCpuSecond: number;
  simCpuShare: number;
  distinctRequests: number;
  registries: string[];
  statuses: Record<string, number>;
  /** Answers other than 200. */
  errors: number;
  /** The first few failed requests. */
  failures: string[];
  rounds: CapacityRound[];
}

interface Work {
  pool: Pool;
  origin: string;
  method: "GET" | "HEAD";
  path: string;
  token: string;
  /** The manifest by tag, which a client reads before it asks for digests in it. */
  byTag: string;
}

interface SimStats {
  process: { cpuUserMs: number; cpuSystemMs: number; rss: number };
  registries: Record<string, { totals: { total: number } }>;
}

interface LoaderData {
  inFlight: number;
  connections: number;
  pipelining: number;
  work: Array<{ origin: string; method: "GET" | "HEAD"; path: string; token: string }>;
}

interface LoaderResult {
  done: number;
  statuses: Array<[number, number]>;
  failures: string[];
  error?: string;
}

const REQUEST_TIMEOUT_MS = 10_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await request(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`GET ${url}: ${res.statusCode}`);
  }
  return (await res.body.json()) as T;
}

function totalOf(s: SimStats): number {
  return Object.values(s.registries).reduce((a, r) => a + r.totals.total, 0);
}

/** The distinct requests of the mix, drawn from the content of each registry probed. */
async function drawWork(o: CapacityOptions, pools: Pool[]): Promise<Work[]> {
  const work: Work[] = [];
  const random = seededRandom(42);
  const m = WARM_PASS_MIX;
  for (const [i, spec] of o.specs.entries()) {
    const info = o.registries[i];
    if (info === undefined || info.name !== spec.name) throw new Error("registries out of order");
    if (o.skipPersonalities?.includes(spec.personality)) continue;
    const pool = new Pool(info.url, {
      connections: o.connectionsPerRegistry,
      pipelining: o.pipelining,
    });
    pools.push(pool);
    const content = new RegistryContent(spec.fleet);
    const repos = content.repositories();
    const tokens = new Map<string, string>();
    const tokenFor = async (repo: string) => {
      let t = tokens.get(repo);
      if (t === undefined) {
        const res = await getJson<{ token: string }>(
          `${info.url}/token?service=${spec.name}&scope=repository:${repo}:pull`,
        );
        t = res.token;
        tokens.set(repo, t);
      }
      return t;
    };
    for (let s = 0; s < o.samplesPerRegistry; s++) {
      const repo = repos[Math.floor(random() * repos.length)] as string;
      const token = await tokenFor(repo);
      const tags = content.tags(repo, spec.personality === "ghcr" ? "oldest-first" : "lexical");
      const tag = tags[Math.floor(random() * tags.length)] as string;
      const image = content.resolveTag(repo, tag);
      if (image === undefined) throw new Error(`no image for ${repo}:${tag}`);
      const leaf = image.children[0] ?? image;
      const config = leaf.blobs[0]?.digest as string;
      const u = random();
      const c1 = m.tags;
      const c2 = c1 + m.manifestHead;
      const c3 = c2 + m.manifestGet;
      const c4 = c3 + m.manifestByDigest;
      let item: Pick<Work, "method" | "path">;
      if (u < c1) item = { method: "GET", path: `/v2/${repo}/tags/list?n=100` };
      else if (u < c2) item = { method: "HEAD", path: `/v2/${repo}/manifests/${tag}` };
      else if (u < c3) item = { method: "GET", path: `/v2/${repo}/manifests/${tag}` };
      else if (u < c4) item = { method: "GET", path: `/v2/${repo}/manifests/${leaf.digest}` };
      else item = { method: "GET", path: `/v2/${repo}/blobs/${config}` };
      work.push({ ...item, pool, origin: info.url, token, byTag: `/v2/${repo}/manifests/${tag}` });
    }
  }
  // Interleaved, so that every pool is busy at once.
  return work.sort(() => random() - 0.5);
}

/** Loads the simulator in rounds and measures what it served; throws if a thread fails. */
export async function measureCapacity(o: CapacityOptions): Promise<CapacityResult> {
  const pools: Pool[] = [];
  const loaders: Worker[] = [];
  let loadError: Error | undefined;
  try {
    const work = await drawWork(o, pools);
    if (work.length === 0) throw new Error("no registry left to probe");
    // Clients fetch by digest what they saw by tag: the simulator learns each digest once.
    await Promise.all(
      Array.from({ length: 16 }, async (_, k) => {
        for (let i = k; i < work.length; i += 16) {
          const w = work[i] as Work;
          for (const path of [w.byTag, w.path]) {
            const res = await w.pool.request({
              method: "GET",
              path,
              headers: { authorization: `Bearer ${w.token}` },
              signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
            });
            await res.body.dump();
          }
        }
      }),
    );
    // The load comes from worker threads, so that the generator is not what limits the rate.
    for (let k = 0; k < o.loadWorkers; k++) {
      const data: LoaderData = {
        inFlight: Math.ceil(o.inFlight / o.loadWorkers),
        connections: o.connectionsPerRegistry,
        pipelining: o.pipelining,
        work: work
          .filter((_, i) => i % o.loadWorkers === k)
          .map((w) => ({ origin: w.origin, method: w.method, path: w.path, token: w.token })),
      };
      const worker = new Worker(new URL("./load-worker.mjs", import.meta.url), {
        workerData: data,
      });
      worker.on("error", (err) => {
        loadError = err;
      });
      loaders.push(worker);
    }
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    const runFor = async (ms: number): Promise<number> => {
      const results = await Promise.all(
        loaders.map(
          (w) =>
            new Promise<LoaderResult>((resolve, reject) => {
              if (loadError !== undefined) reject(loadError);
              const timer = setTimeout(
                () => reject(new Error("a load worker did not answer")),
                ms + 30_000,
              );
              w.once("message", (r: LoaderResult) => {
                clearTimeout(timer);
                if (r.error !== undefined) reject(new Error(`load worker: ${r.error}`));
                else resolve(r);
              });
              w.postMessage({ ms });
            }),
        ),
      );
      let done = 0;
      for (const r of results) {
        done += r.done;
        for (const [status, n] of r.statuses) statuses.set(status, (statuses.get(status) ?? 0) + n);
        failures.push(...r.failures.slice(0, 5 - failures.length));
      }
      return done;
    };
    await runFor(o.warmupMs);
    statuses.clear();
    failures.length = 0;
    const rounds: CapacityRound[] = [];
    for (let round = 0; round < o.rounds; round++) {
      const before = await getJson<SimStats>(`${o.control}/_sim/stats?seconds=1`);
      const t0 = performance.now();
      const done = await runFor(o.roundMs);
      const seconds = (performance.now() - t0) / 1000;
      const after = await getJson<SimStats>(`${o.control}/_sim/stats?seconds=1`);
      const simCpuMs =
        after.process.cpuUserMs +
        after.process.cpuSystemMs -
        before.process.cpuUserMs -
        before.process.cpuSystemMs;
      rounds.push({
        requests: done,
        countedBySimulator: totalOf(after) - totalOf(before),
        seconds,
        rps: done / seconds,
        simCpuMs,
        simCpuShare: simCpuMs / 1000 / seconds,
        rpsPerSimCpuSecond: done / Math.max(simCpuMs / 1000, 0.001),
        simRss: after.process.rss,
      });
    }
    const errors = [...statuses.entries()]
      .filter(([s]) => s !== 200)
      .reduce((a, [, n]) => a + n, 0);
    return {
      rps: median(rounds.map((r) => r.rps)),
      rpsPerSimCpuSecond: median(rounds.map((r) => r.rpsPerSimCpuSecond)),
      simCpuShare: median(rounds.map((r) => r.simCpuShare)),
      distinctRequests: work.length,
      registries: o.specs
        .filter((s) => !o.skipPersonalities?.includes(s.personality))
        .map((s) => s.name),
      statuses: Object.fromEntries(statuses),
      errors,
      failures,
      rounds,
    };
  } finally {
    await Promise.all(loaders.map((w) => w.terminate()));
    await Promise.all(pools.map((p) => p.close()));
  }
}
