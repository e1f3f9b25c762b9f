/**
 * The registry-fleet simulator alone (bench/sim): how many requests per second it serves
 * in its own process, with a realistic warm-pass mix (tag pages, manifest HEADs and GETs by
 * tag and by digest, config blobs) sent from this process through keep-alive, pipelined
 * undici pools on loopback. Prints req/s against the 5,000 req/s target of issue 13, and
 * req per CPU-second of the simulator (its capacity on one core, whatever else the machine
 * runs). Writes bench/results/sim.json. `SIM_PROFILE=DIR` writes the simulator's CPU profile
 * there.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Worker } from "node:worker_threads";
import { Pool, request } from "undici";
import { RegistryContent } from "./sim/content.js";
import { everyPersonality } from "./sim/fleets.js";
import { seededRandom } from "./sim/rng.js";
import type { SimulatorOptions } from "./sim/simulator.js";

const TARGET_RPS = 5000;
const ROUNDS = 3;
const ROUND_MS = 5000;
const WARMUP_MS = 1000;
/** Requests in flight over all registries. */
const IN_FLIGHT = 128;
const LOAD_WORKERS = 2;
const CONNECTIONS_PER_REGISTRY = 4;
const PIPELINING = 4;
const SAMPLES_PER_REGISTRY = 400;
const START_TIMEOUT_MS = 30_000;

/** The mix of one warm pass (shares of requests). */
const MIX = { tags: 0.1, manifestHead: 0.35, manifestGet: 0.3, manifestByDigest: 0.1, blob: 0.15 };

interface Started {
  control: string;
  registries: Array<{ name: string; personality: string; url: string; host: string }>;
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await request(url, { signal: AbortSignal.timeout(10_000) });
  return (await res.body.json()) as T;
}

/** Starts bench/sim/main.ts as a child and waits for its ready line (bounded). */
async function startSimulator(
  configFile: string,
): Promise<{ child: ChildProcess; started: Started }> {
  const child = spawn(
    process.execPath,
    [
      ...(process.env.SIM_PROFILE
        ? ["--cpu-prof", `--cpu-prof-dir=${process.env.SIM_PROFILE}`]
        : []),
      "--import",
      "tsx",
      "bench/sim/main.ts",
      "--config",
      configFile,
      "--exit-with-stdin",
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const started = await new Promise<Started>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("simulator did not start in time")),
      START_TIMEOUT_MS,
    );
    child.once("exit", (code) => reject(new Error(`simulator exited with ${code}`)));
    lines.once("line", (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line) as Started);
    });
  });
  return { child, started };
}

let loadWorkers: Worker[] = [];
let loadError: Error | undefined;

async function main(): Promise<void> {
  const specs = everyPersonality({
    seed: "sim-bench",
    repositories: 500,
    tags: 50_000,
    huge: [25_000],
  }).map((s) =>
    // Docker Hub's quota would answer 429 after 100 pulls; the headers are still computed.
    s.personality === "dockerhub" ? { ...s, pullQuota: { limit: 1e9, windowSeconds: 21_600 } } : s,
  );
  const options: SimulatorOptions = { registries: specs };
  const dir = mkdtempSync(join(tmpdir(), "regscan-sim-bench-"));
  const configFile = join(dir, "sim.json");
  writeFileSync(configFile, JSON.stringify(options));
  const { child, started } = await startSimulator(configFile);
  const pools: Pool[] = [];
  try {
    // The same seed gives the same content here: names and digests to ask for.
    const work: Work[] = [];
    const random = seededRandom(42);
    for (const [i, spec] of specs.entries()) {
      const info = started.registries[i];
      if (info === undefined || info.name !== spec.name) throw new Error("registries out of order");
      const pool = new Pool(info.url, {
        connections: CONNECTIONS_PER_REGISTRY,
        pipelining: PIPELINING,
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
      for (let s = 0; s < SAMPLES_PER_REGISTRY; s++) {
        const repo = repos[Math.floor(random() * repos.length)] as string;
        const token = await tokenFor(repo);
        const tags = content.tags(repo, spec.personality === "ghcr" ? "oldest-first" : "lexical");
        const tag = tags[Math.floor(random() * tags.length)] as string;
        const image = content.resolveTag(repo, tag);
        if (image === undefined) throw new Error(`no image for ${repo}:${tag}`);
        const leaf = image.children[0] ?? image;
        const config = leaf.blobs[0]?.digest as string;
        const u = random();
        const c1 = MIX.tags;
        const c2 = c1 + MIX.manifestHead;
        const c3 = c2 + MIX.manifestGet;
        const c4 = c3 + MIX.manifestByDigest;
        let item: Omit<Work, "pool" | "origin" | "token" | "byTag">;
        if (u < c1) item = { method: "GET", path: `/v2/${repo}/tags/list?n=100` };
        else if (u < c2) item = { method: "HEAD", path: `/v2/${repo}/manifests/${tag}` };
        else if (u < c3) item = { method: "GET", path: `/v2/${repo}/manifests/${tag}` };
        else if (u < c4) item = { method: "GET", path: `/v2/${repo}/manifests/${leaf.digest}` };
        else item = { method: "GET", path: `/v2/${repo}/blobs/${config}` };
        work.push({
          ...item,
          pool,
          origin: info.url,
          token,
          byTag: `/v2/${repo}/manifests/${tag}`,
        });
      }
    }
    // Interleave registries so every pool is busy at once.
    work.sort(() => random() - 0.5);

    const statuses = new Map<number, number>();
    const failures: string[] = [];
    // The load comes from worker threads, so that the generator is not what limits the rate.
    const loaders = Array.from({ length: LOAD_WORKERS }, (_, k) => {
      const data: LoaderData = {
        inFlight: Math.ceil(IN_FLIGHT / LOAD_WORKERS),
        connections: CONNECTIONS_PER_REGISTRY,
        pipelining: PIPELINING,
        work: work
          .filter((_, i) => i % LOAD_WORKERS === k)
          .map((w) => ({ origin: w.origin, method: w.method, path: w.path, token: w.token })),
      };
      const worker = new Worker(new URL("./sim/load-worker.mjs", import.meta.url), {
        workerData: data,
      });
      worker.on("error", (err) => {
        loadError = err;
      });
      return worker;
    });
    loadWorkers = loaders;
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
            });
            await res.body.dump();
          }
        }
      }),
    );
    await runFor(WARMUP_MS);
    statuses.clear();
    const rounds = [];
    for (let round = 0; round < ROUNDS; round++) {
      const before = await getJson<SimStats>(`${started.control}/_sim/stats?seconds=1`);
      const t0 = performance.now();
      const done = await runFor(ROUND_MS);
      const seconds = (performance.now() - t0) / 1000;
      const after = await getJson<SimStats>(`${started.control}/_sim/stats?seconds=1`);
      const simCpuMs =
        after.process.cpuUserMs +
        after.process.cpuSystemMs -
        before.process.cpuUserMs -
        before.process.cpuSystemMs;
      const counted = totalOf(after) - totalOf(before);
      rounds.push({
        requests: done,
        countedBySimulator: counted,
        seconds,
        rps: done / seconds,
        simCpuMs,
        simCpuShare: simCpuMs / 1000 / seconds,
        rpsPerSimCpuSecond: done / (simCpuMs / 1000),
        simRss: after.process.rss,
      });
    }
    const errors = [...statuses.entries()]
      .filter(([s]) => s !== 200)
      .reduce((a, [, n]) => a + n, 0);
    const result = {
      date: new Date().toISOString(),
      target: TARGET_RPS,
      registries: specs.map((s) => s.personality),
      fleetPerRegistry: { repositories: 500 + 1, tags: 50_000 + 25_000 },
      load: {
        inFlight: IN_FLIGHT,
        loadWorkers: LOAD_WORKERS,
        connectionsPerRegistry: CONNECTIONS_PER_REGISTRY,
        pipelining: PIPELINING,
        distinctRequests: work.length,
        mix: MIX,
        roundMs: ROUND_MS,
      },
      rps: median(rounds.map((r) => r.rps)),
      rpsPerSimCpuSecond: median(rounds.map((r) => r.rpsPerSimCpuSecond)),
      ratio: median(rounds.map((r) => r.rps)) / TARGET_RPS,
      statuses: Object.fromEntries(statuses),
      errors,
      rounds,
    };
    mkdirSync("bench/results", { recursive: true });
    writeFileSync("bench/results/sim.json", `${JSON.stringify(result, null, 2)}\n`);
    console.log(
      `simulator: ${result.rps.toFixed(0)} req/s (target ${TARGET_RPS}, ratio ${result.ratio.toFixed(2)}); ${result.rpsPerSimCpuSecond.toFixed(0)} req per CPU-second of the simulator process (its one-core capacity); simulator busy ${(median(rounds.map((r) => r.simCpuShare)) * 100).toFixed(0)}% of a core; ${errors} non-200 answers; counts agree: ${rounds.every((r) => r.countedBySimulator >= r.requests)}`,
    );
    if (errors > 0) {
      throw new Error(
        `the simulator answered ${errors} requests with an error, e.g. ${failures.join("; ")}`,
      );
    }
  } finally {
    await Promise.all(loadWorkers.map((w) => w.terminate()));
    await Promise.all(pools.map((p) => p.close()));
    child.kill("SIGTERM");
    await new Promise((r) => {
      const t = setTimeout(() => {
        child.kill("SIGKILL");
        r(undefined);
      }, 5000);
      child.once("exit", () => {
        clearTimeout(t);
        r(undefined);
      });
    });
    rmSync(dir, { recursive: true, force: true });
  }
}

interface SimStats {
  process: { cpuUserMs: number; cpuSystemMs: number; rss: number };
  registries: Record<string, { totals: { total: number } }>;
}

function totalOf(s: SimStats): number {
  return Object.values(s.registries).reduce((a, r) => a + r.totals.total, 0);
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

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
