/**
 * The load of the hardening audit's item 4, shared by a test and bench/server.bench.ts:
 * a real registry with a 5,000-tag repository, a real `regscan serve`, then 100 concurrent
 * clients reading the whole repository while a probe times `/healthz` and the daemon's
 * RSS is sampled from /proc.
 */
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { Worker } from "node:worker_threads";
import { ImageBuilder } from "../support/image-builder.js";
import { waitFor } from "../support/processes.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";
import { type ServeProcess, startServe } from "./serve-process.js";

/** What one load run measured. */
export interface HeavyLoadFigures {
  tags: number;
  /** Bytes of one repository answer. */
  responseBytes: number;
  concurrentClients: number;
  /** Reads each client made one after the other. */
  readsPerClient: number;
  /** Answers by status. */
  statuses: Record<string, number>;
  loadMs: number;
  healthz: { samples: number; p50Ms: number; p99Ms: number; maxMs: number; failures: number };
  /**
   * The daemon's own event-loop delay during the load (its `nodejs_eventloop_lag_*`
   * gauges, reset by the scrape before the load): high here means the daemon held its
   * loop; high only in the probe means the machine's CPUs were busy elsewhere.
   */
  daemonEventLoopLag: { p99Ms: number; maxMs: number };
  /** The daemon's RSS before the load and its peak during it, MiB. */
  rssBeforeMiB: number;
  rssPeakMiB: number;
}

/** A registry with one `tags`-tag repository and a daemon that has scanned it. */
export interface HeavySetup {
  registry: RegistryHandle;
  serve: ServeProcess;
  repository: string;
  tags: number;
  stop(): Promise<void>;
}

/** Pushes the repository, starts `regscan serve` on it and waits for its first scan. */
export async function heavySetup(
  tags = 5_000,
  serveArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<HeavySetup> {
  const registry = await startRegistry({ proxy: false });
  const builder = new ImageBuilder(registry);
  // About a kilobyte of JSON per tag, as images with a handful of labels give.
  const labels: Record<string, string> = {};
  for (let i = 0; i < 12; i++) labels[`org.example.label-${i}`] = `value-${i}-${"x".repeat(40)}`;
  const image = await builder.pushImage("big/app", undefined, { labels });
  await builder.tagMany("big/app", {
    tags: Array.from({ length: tags }, (_, i) => `1.${Math.floor(i / 100)}.${i % 100}`),
    manifest: image,
  });
  await builder.close();
  const repository = `${registry.host}/big/app`;
  const serve = await startServe(
    [
      "--image",
      repository,
      "--insecure-host",
      registry.host,
      "--cache",
      "memory:",
      // The load is 100 clients within the rate limit, as in the audit.
      "--api-rps",
      "10000",
      "--api-burst",
      "10000",
      ...serveArgs,
    ],
    env,
  );
  await waitFor(
    async () => {
      const r = await serve.fetchJson("/v1/repositories");
      const list = (r.body.repositories ?? []) as Array<{ tagCount?: number }>;
      return list[0]?.tagCount === tags;
    },
    { what: `the first scan of ${tags} tags`, timeoutMs: 240_000, intervalMs: 500 },
  );
  return {
    registry,
    serve,
    repository,
    tags,
    async stop() {
      await serve.stop();
      await registry.stop();
    },
  };
}

/**
 * `clients` concurrent readers of the whole repository (each `reads` times, one after the
 * other, from ten loopback addresses so that the per-address connection cap is not what is
 * measured), a `/healthz` probe every 20 ms on a connection of its own, RSS every 50 ms.
 */
export async function heavyLoad(
  setup: HeavySetup,
  clients = 100,
  reads = 3,
): Promise<HeavyLoadFigures> {
  const port = Number(new URL(setup.serve.url).port);
  const pid = setup.serve.child.pid ?? 0;
  const path = `/v1/repositories/${setup.repository}`;
  const statuses: Record<string, number> = {};
  let responseBytes = 0;
  const rssBefore = rssMiB(pid);
  // A scrape resets the daemon's event-loop delay histogram: what the next one shows is the load's.
  await eventLoopLag(setup.serve.url);
  // The probe (and the RSS sampler) run on a thread of their own: reading the load's
  // gigabyte of answers keeps this thread's event loop busy, and that delay is not the daemon's.
  const probe = startProbe(port, pid);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      for (let n = 0; n < reads; n++) {
        const r = await get(port, path, `127.0.0.${10 + (i % 10)}`).catch(() => ({
          status: 0,
          bytes: 0,
        }));
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status === 200) responseBytes = r.bytes;
      }
    }),
  );
  const loadMs = performance.now() - started;
  const { samples: probes, failures: probeFailures, rssPeakKb } = await probe.stop();
  const daemonEventLoopLag = await eventLoopLag(setup.serve.url);
  const rssPeak = Math.max(round(rssPeakKb / 1024), rssMiB(pid));
  const sorted = [...probes].sort((a, b) => a - b);
  const at = (q: number) =>
    round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN);
  return {
    tags: setup.tags,
    responseBytes,
    concurrentClients: clients,
    readsPerClient: reads,
    statuses,
    loadMs: Math.round(loadMs),
    healthz: {
      samples: sorted.length,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      maxMs: round(sorted[sorted.length - 1] ?? Number.NaN),
      failures: probeFailures,
    },
    daemonEventLoopLag,
    rssBeforeMiB: rssBefore,
    rssPeakMiB: rssPeak,
  };
}

/** One line for test and bench output. */
export function describeFigures(f: HeavyLoadFigures): string {
  return (
    `${f.concurrentClients} clients x ${f.readsPerClient} reads of a ${f.tags}-tag repository ` +
    `(${(f.responseBytes / 1024 / 1024).toFixed(1)} MiB each) in ${f.loadMs} ms, statuses ${JSON.stringify(f.statuses)}; ` +
    `/healthz p50 ${f.healthz.p50Ms} ms, p99 ${f.healthz.p99Ms} ms, max ${f.healthz.maxMs} ms ` +
    `(${f.healthz.samples} probes, ${f.healthz.failures} failed); daemon event-loop delay p99 ${f.daemonEventLoopLag.p99Ms} ms, ` +
    `max ${f.daemonEventLoopLag.maxMs} ms; daemon RSS ${f.rssBeforeMiB} -> peak ${f.rssPeakMiB} MiB`
  );
}

/** The probe's code: GET /healthz every 20 ms from 127.0.0.2 until told to stop. */
const PROBE = `
const { parentPort, workerData } = require("node:worker_threads");
const { request } = require("node:http");
const { readFileSync } = require("node:fs");
let running = true;
const samples = [];
let failures = 0;
let rssPeakKb = 0;
const rss = setInterval(() => {
  try {
    const status = readFileSync("/proc/" + workerData.pid + "/status", "utf8");
    rssPeakKb = Math.max(rssPeakKb, Number(/^VmRSS:\\s+(\\d+)/m.exec(status)?.[1] ?? 0));
  } catch {}
}, 50);
parentPort.on("message", () => { running = false; });
function once() {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = request({ host: "127.0.0.1", port: workerData.port, path: "/healthz",
      localAddress: "127.0.0.2", agent: false }, (res) => {
      res.resume();
      res.on("end", () => { if (res.statusCode !== 200) failures++; resolve(performance.now() - started); });
    });
    req.on("error", () => { failures++; resolve(performance.now() - started); });
    req.setTimeout(30000, () => req.destroy(new Error("timeout")));
    req.end();
  });
}
(async () => {
  while (running) {
    samples.push(await once());
    await new Promise((r) => setTimeout(r, 20));
  }
  clearInterval(rss);
  parentPort.postMessage({ samples, failures, rssPeakKb });
})();
`;

interface ProbeResult {
  samples: number[];
  failures: number;
  rssPeakKb: number;
}

/** Probes `/healthz` and samples the daemon's RSS on a worker thread. */
function startProbe(port: number, pid: number): { stop(): Promise<ProbeResult> } {
  const worker = new Worker(PROBE, { eval: true, workerData: { port, pid } });
  const result = new Promise<ProbeResult>((resolve, reject) => {
    worker.once("message", (m: ProbeResult) => resolve(m));
    worker.once("error", reject);
  });
  return {
    async stop() {
      worker.postMessage("stop");
      const r = await result;
      await worker.terminate();
      return r;
    },
  };
}

function get(
  port: number,
  path: string,
  localAddress: string,
): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, localAddress, agent: false }, (res) => {
      let bytes = 0;
      res.on("data", (d: Buffer) => {
        bytes += d.length;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.setTimeout(120_000, () => req.destroy(new Error(`timeout on ${path}`)));
    req.end();
  });
}

/** The daemon's `nodejs_eventloop_lag_p99/max_seconds`, in ms (scraping resets them). */
async function eventLoopLag(url: string): Promise<{ p99Ms: number; maxMs: number }> {
  const text = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) =>
    r.text(),
  );
  const gauge = (name: string) =>
    round(Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN) * 1000);
  return {
    p99Ms: gauge("nodejs_eventloop_lag_p99_seconds"),
    maxMs: gauge("nodejs_eventloop_lag_max_seconds"),
  };
}

/** Resident set size of a process, MiB (0 when it cannot be read). */
function rssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? 0);
    return round(kb / 1024);
  } catch {
    return 0;
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
