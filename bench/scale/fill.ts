/**
 * One cold fill of the scale bench, shared by `npm run bench:scale` and the CI test
 * (test/scale/): an empty Redis, N `regscan serve` replicas on an images file, until every
 * repository shows exactly its true tags; the registry requests it cost, its 10 s windows
 * against each registry's budget and Docker Hub's lowest `ratelimit-remaining`. Optionally
 * one replica is killed with SIGKILL once a share of the tags is cached (issue 13,
 * acceptance 7): which leases it held, how soon a survivor listed those repositories again,
 * and the longest any repository then went without being listed, against the lease TTL plus
 * the interval the survivors report for it.
 */

import { BUDGET_METRICS } from "../../src/registry/budget-metrics.js";
import {
  type ApiLoad,
  type ApiLoadResult,
  apiLoad,
  type FillProgress,
  type FillResult,
  type FleetRepo,
  getJson,
  type SimStats,
  simStats,
  totalsBetween,
  waitForFullCache,
  windows,
} from "./measure.js";
import {
  cpuSecondsOf,
  leasesHeldBy,
  memoryOf,
  type Replica,
  type ReplicaConfig,
  redisFlush,
  type SimProcess,
  startReplica,
} from "./processes.js";

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A replica exited during a fill without being killed by the bench. */
export class ReplicaExitedError extends Error {
  readonly code = "REPLICA_EXITED";
}

export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Registry requests of all registries, from {@link totalsBetween}. */
export function sumTotals(requests: Record<string, Record<string, number>>): number {
  return Object.values(requests).reduce((n, r) => n + (r.total ?? 0), 0);
}

/**
 * The fleet one registry after another in turn, as a real images list mixes hosts: the
 * warmer takes repositories in the file's order, a few at a time, so a file grouped by
 * registry would keep all of them waiting on one registry's budget.
 */
export function roundRobin(fleet: FleetRepo[]): FleetRepo[] {
  const byRegistry = new Map<string, FleetRepo[]>();
  for (const r of fleet)
    byRegistry.set(r.registry.name, [...(byRegistry.get(r.registry.name) ?? []), r]);
  const lists = [...byRegistry.values()];
  const out: FleetRepo[] = [];
  for (let i = 0; out.length < fleet.length; i++) {
    for (const list of lists) if (i < list.length) out.push(list[i] as FleetRepo);
  }
  return out;
}

/** What to kill during a fill. */
export interface KillPlan {
  /** Share of the fleet's tags cached (0..1) from which a replica is killed. */
  at: number;
  /**
   * The share by which one is killed even if none holds a lease (default `at` + 0.3, at most
   * 0.95). Until then the kill waits for a replica that holds one: late in a fill the
   * remaining large repositories may all be with one replica, the others between short
   * scans, and killing a replica that holds no lease tests no takeover.
   */
  latest?: number | undefined;
  /** The replica's lease TTL, seconds (the bound is this plus the interval). */
  leaseTtlSeconds: number;
  /**
   * How long at least to keep watching after the fill completes, ms (default: lease TTL +
   * interval + 5 s). Watching goes on until every repository listed before the kill has been
   * listed again or has gone past its bound (see {@link awaitingListing}), at most
   * `maxSettleMs` (default 180 s; repositories still waiting then are `unverified`).
   */
  settleMs?: number | undefined;
  maxSettleMs?: number | undefined;
}

/** The longest time one repository went without being listed, after the kill. */
export interface RepositoryGap {
  repository: string;
  gapSeconds: number;
  /** Lease TTL + the largest interval a surviving replica reported for it. */
  boundSeconds: number;
}

/** What killing a replica mid-fill showed. */
export interface KillResult {
  replica: string;
  /** Seconds after the fill started, and the share of tags cached then. */
  atSeconds: number;
  atShare: number;
  /** Repositories whose lease the killed replica held when it died. */
  leasesHeld: string[];
  /** Per such repository: seconds from the kill to its next listing (null: never again). */
  takeover: Record<string, number | null>;
  /** Repositories it held that no survivor listed again before the end. */
  neverTakenOver: string[];
  /**
   * Those listed again later than lease TTL + their interval (the larger of the configured
   * one and the one survivors reported: stretched or backed off), or not by the end and
   * the end was past that bound (seconds null).
   */
  lateTakeovers: Array<{ repository: string; seconds: number | null; boundSeconds: number }>;
  /** The longest of those takeovers (null: it held no lease). */
  maxTakeoverSeconds: number | null;
  /** Repositories listed before the kill: the longest gap between listings from the kill on. */
  maxGap: RepositoryGap | null;
  /**
   * The repository whose gap came nearest its bound (or went furthest over it): how much
   * margin the schedule kept, which a pass alone does not show.
   */
  tightest: RepositoryGap | null;
  /** Repositories whose gap exceeded their bound (first 20). */
  overBound: RepositoryGap[];
  overBoundCount: number;
  /**
   * Repositories neither listed since the kill nor yet past their bound when watching had
   * to stop (`maxSettleMs`): whether they were taken over is not known.
   */
  unverified: string[];
  /** Repositories measured (listed at least once before the kill). */
  measured: number;
  leaseTtlSeconds: number;
  /** The configured interval and the largest one a survivor reported (stretch, back-off). */
  intervalSeconds: number;
  maxReportedIntervalSeconds: number;
  /** Seconds watched after the fill completed. */
  settleSeconds: number;
}

/** Each replica's share of each registry's budget at one moment of a fill (its /metrics). */
export interface ShareSample {
  /** Seconds since the fill started. */
  seconds: number;
  /** Per replica id, per registry name: `regscan_registry_host_budget_share`. */
  shares: Record<string, Record<string, number>>;
}

/**
 * Each replica's running totals at one moment of a fill (its /metrics), every
 * {@link COURSE_EVERY_MS}: where in the fill its CPU went up per request, and how much of it
 * was garbage collection.
 */
export interface CourseSample {
  /** Seconds since the fill started. */
  seconds: number;
  /** Per replica id: CPU and GC seconds since its start, heap used (MiB), registry requests. */
  replicas: Record<string, { cpu: number; gc: number; heapMiB: number; requests: number }>;
}

/** The kinds prom-client times Node's garbage collections by. */
const GC_KINDS = ["major", "minor", "incremental", "weakcb"] as const;

/** How often the fill's course is sampled (the metrics are read every 2 s anyway). */
const COURSE_EVERY_MS = 30_000;

/** A replica's running totals, from its metrics text (undefined: a metric missing). */
function courseOf(text: string): CourseSample["replicas"][string] | undefined {
  const cpu = sampleOf(text, "process_cpu_seconds_total");
  const heap = sampleOf(text, "nodejs_heap_size_used_bytes");
  if (cpu === undefined || heap === undefined) return undefined;
  let gc = 0;
  for (const kind of GC_KINDS) {
    gc += sampleOf(text, "nodejs_gc_duration_seconds_sum", `kind="${kind}"`) ?? 0;
  }
  let requests = 0;
  for (const n of byHost(text, BUDGET_METRICS.requests).values()) requests += n;
  return { cpu: round(cpu), gc: round(gc), heapMiB: round(heap / 2 ** 20), requests };
}

/** What one fill phase measured. */
export interface FillPhase {
  replicas: number;
  /** Milliseconds from the fill's start until every replica accepted connections. */
  startupMs: number;
  fill: FillResult;
  /**
   * Registry requests per 5 s from the fill's start to the full cache, per registry: where a
   * registry's budget went unspent before its part of the fill was done.
   */
  profile: Record<string, number[]>;
  /**
   * Requests each replica made of each registry by the full cache (its
   * `regscan_registry_budget_requests_total`; null for one that was killed).
   */
  perReplica: Record<string, Record<string, number> | null>;
  /** The replicas' shares of each registry's budget, sampled every poll of the fill. */
  shares: ShareSample[];
  /** The replicas' CPU, GC, heap and requests every 30 s of the fill. */
  course: CourseSample[];
  /**
   * CPU seconds each replica used from its start to the full cache (null: killed), against
   * the fill's wall time: on 2 cores shared with the simulator, Redis, the bench and its API
   * clients, a replica short of CPU falls behind its share of the budgets.
   */
  cpuSeconds: Record<string, number | null>;
  /** Registry requests from the start to the full cache, per registry and kind. */
  requests: Record<string, Record<string, number>>;
  /** Over the whole phase (a kill's settle time included). */
  windows: Record<
    string,
    {
      max: number;
      violations: number;
      limit: number;
      /**
       * The first over-budget windows: seconds into the fill, requests, and the longest
       * simulator stall (ms) that began in the window or the second before it, if any: a
       * stalled simulator counts the requests that waited in its sockets in a clump.
       */
      over: Array<{ seconds: number; requests: number; stallMs: number | null }>;
    }
  >;
  /**
   * The simulator's event-loop stalls of 100 ms or more over the phase (seconds from its
   * start, length, the simulator's CPU time and GC pauses meanwhile: CPU far less than the
   * length, it did not run): requests that arrive during one are counted together after it,
   * so a window over budget beside a long stall is the simulator's, not the client's.
   */
  simulatorStalls: Array<{
    seconds: number;
    ms: number;
    cpuMs: number | null;
    gcMs: number | null;
  }>;
  minPullsRemaining: { remaining: number; limit: number } | null;
  /** The reads during the fill; null when none ran (or the fill ended before they started). */
  api: ApiLoadResult | null;
  /** Each replica's event loop and GC while the API clients read (null: no load, or no scrape). */
  replicaLoops: Record<string, ReplicaLoop | null>;
  memory: Array<ReplicaMemory | null>;
  /** The simulator's requests and CPU time during the fill (its control API included). */
  simulator: { requests: number; cpuSeconds: number; requestsPerCpuSecond: number };
  kill: KillResult | null;
}

export interface FillPhaseOptions {
  sim: SimProcess;
  redis: { port: number; url: string };
  /** The repositories the images file names (the fill is complete when all show the truth). */
  fleet: FleetRepo[];
  /** Everything but the Redis URL: the same for every replica. */
  replica: Omit<ReplicaConfig, "redisUrl">;
  count: number;
  /** Docker Hub's quota limit in the simulator (for the lowest remaining's share). */
  pullLimit: number;
  fillTimeoutMs: number;
  /**
   * Concurrent API readers of cached small repositories while the fill runs, from when
   * `startAt` of the tags are cached, for `ms` at most (none if absent).
   */
  apiLoad?: { clients: number; ms: number; startAt: number } | undefined;
  kill?: KillPlan | undefined;
  /** Progress lines go here (default none). */
  log?: ((line: string) => void) | undefined;
}

function simulatorLoad(before: SimStats, after: SimStats): FillPhase["simulator"] {
  const cpu = (s: SimStats) => s.process.cpuUserMs + s.process.cpuSystemMs;
  const requests = sumTotals(totalsBetween(before, after));
  const cpuSeconds = (cpu(after) - cpu(before)) / 1000;
  return {
    requests,
    cpuSeconds: round(cpuSeconds),
    requestsPerCpuSecond: round(requests / Math.max(cpuSeconds, 0.001), 0),
  };
}

/** Sums of `metric` per `host` label in a Prometheus text exposition. */
function byHost(text: string, metric: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${metric}{`)) continue;
    const host = /host="([^"]*)"/.exec(line)?.[1];
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (host !== undefined && Number.isFinite(value)) out.set(host, (out.get(host) ?? 0) + value);
  }
  return out;
}

/** One replica's `metric` per registry name (the bench's hosts), or null when it does not answer. */
async function replicaMetric(
  r: Replica,
  metric: string,
  registryOf: Map<string, string>,
): Promise<Record<string, number> | null> {
  const text = await replicaMetricsText(r);
  return text === null ? null : metricByRegistry(text, metric, registryOf);
}

/** A replica's `/metrics` text, or null when it does not answer. */
async function replicaMetricsText(r: Replica): Promise<string | null> {
  try {
    const res = await fetch(`${r.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    return await res.text();
  } catch {
    return null;
  }
}

function metricByRegistry(
  text: string,
  metric: string,
  registryOf: Map<string, string>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [host, v] of byHost(text, metric)) out[registryOf.get(host) ?? host] = v;
  return out;
}

/** The value of an unlabelled metric, or of the sample with exactly `labels`. */
function sampleOf(text: string, metric: string, labels = ""): number | undefined {
  const head = labels === "" ? `\n${metric} ` : `\n${metric}{${labels}} `;
  const at = `\n${text}`.indexOf(head);
  if (at < 0) return undefined;
  const from = at + head.length - 1;
  const end = text.indexOf("\n", from);
  const value = Number(text.slice(from, end < 0 ? undefined : end));
  return Number.isFinite(value) ? value : undefined;
}

/**
 * A replica's event loop while the API clients read: prom-client's delay gauges cover the
 * time since the previous scrape (it resets its histogram at each), and the bench scrapes
 * every 2 s or so, so each sample is one such window; and its GC time over the load, by kind.
 */
export interface ReplicaLoop {
  /** Scrapes taken during the load (windows of about 2 s). */
  windows: number;
  /** The windows' p99 delays, ms: their median and their highest. */
  p99MedianMs: number;
  p99MaxMs: number;
  /** The longest delay in any window, ms. */
  maxMs: number;
  /** Seconds in GC between the first and the last scrape, by kind (major, minor, incremental, ...). */
  gcSeconds: Record<string, number>;
  /** Seconds between the first and the last scrape. */
  seconds: number;
  /** Whether these are the API thread's own (`--api-thread`), not the warmer's thread's. */
  apiThread: boolean;
  /** Repository answers over the load, by source (kept, built, shared). */
  answers: Record<string, number>;
  /** API connections refused over the load (a connection cap reached: `total`, `per-client`). */
  refused: Record<string, number>;
}

/** Sources of `regscan_api_repository_answers_total`. */
const ANSWER_SOURCES = ["kept", "stored", "built", "shared"] as const;
/** Reasons of `regscan_api_connections_refused_total`. */
const REFUSALS = ["total", "per-client"] as const;

/** A counter's samples in a `/metrics` text, one per `label` value (0 where absent). */
function countsOf(
  text: string,
  metric: string,
  label: string,
  values: readonly string[],
): Record<string, number> {
  return Object.fromEntries(values.map((v) => [v, sampleOf(text, metric, `${label}="${v}"`) ?? 0]));
}

/** Collects {@link ReplicaLoop} from successive `/metrics` texts of one replica. */
class LoopSampler {
  readonly #p99: number[] = [];
  #max = 0;
  #firstGc: { at: number; sums: Record<string, number> } | undefined;
  #lastGc: { at: number; sums: Record<string, number> } | undefined;
  #firstAnswers: Record<string, number> | undefined;
  #lastAnswers: Record<string, number> = {};
  #firstRefused: Record<string, number> | undefined;
  #lastRefused: Record<string, number> = {};
  #apiThread = false;

  add(text: string, at: number): void {
    // With --api-thread the reads are served on that thread: its own delay and GC.
    const thread = sampleOf(text, "regscan_api_thread_eventloop_lag_p99_seconds") !== undefined;
    this.#apiThread ||= thread;
    const p99 = sampleOf(
      text,
      thread ? "regscan_api_thread_eventloop_lag_p99_seconds" : "nodejs_eventloop_lag_p99_seconds",
    );
    const max = sampleOf(
      text,
      thread ? "regscan_api_thread_eventloop_lag_max_seconds" : "nodejs_eventloop_lag_max_seconds",
    );
    if (p99 !== undefined) this.#p99.push(p99 * 1000);
    if (max !== undefined) this.#max = Math.max(this.#max, max * 1000);
    const sums: Record<string, number> = {};
    for (const kind of GC_KINDS) {
      const v = thread
        ? sampleOf(text, "regscan_api_thread_gc_seconds_total", `kind="${kind}"`)
        : sampleOf(text, "nodejs_gc_duration_seconds_sum", `kind="${kind}"`);
      if (v !== undefined) sums[kind] = v;
    }
    this.#firstGc ??= { at, sums };
    this.#lastGc = { at, sums };
    const answers = countsOf(
      text,
      "regscan_api_repository_answers_total",
      "source",
      ANSWER_SOURCES,
    );
    this.#firstAnswers ??= answers;
    this.#lastAnswers = answers;
    const refused = countsOf(text, "regscan_api_connections_refused_total", "reason", REFUSALS);
    this.#firstRefused ??= refused;
    this.#lastRefused = refused;
  }

  result(): ReplicaLoop | null {
    if (this.#p99.length === 0) return null;
    const sorted = [...this.#p99].sort((a, b) => a - b);
    const gcSeconds: Record<string, number> = {};
    for (const [kind, v] of Object.entries(this.#lastGc?.sums ?? {})) {
      gcSeconds[kind] = round(v - (this.#firstGc?.sums[kind] ?? 0));
    }
    return {
      windows: sorted.length,
      p99MedianMs: round(sorted[Math.floor(sorted.length / 2)] as number),
      p99MaxMs: round(sorted[sorted.length - 1] as number),
      maxMs: round(this.#max),
      gcSeconds,
      seconds: round(((this.#lastGc?.at ?? 0) - (this.#firstGc?.at ?? 0)) / 1000),
      apiThread: this.#apiThread,
      answers: Object.fromEntries(
        ANSWER_SOURCES.map((k) => [
          k,
          (this.#lastAnswers[k] ?? 0) - (this.#firstAnswers?.[k] ?? 0),
        ]),
      ),
      refused: Object.fromEntries(
        REFUSALS.map((k) => [k, (this.#lastRefused[k] ?? 0) - (this.#firstRefused?.[k] ?? 0)]),
      ),
    };
  }
}

/** Requests per 5 s of every registry over [from, to) (the simulator's per-second counts). */
function profileOf(stats: SimStats, from: number, to: number): Record<string, number[]> {
  const first = Math.floor(from / 1000);
  const buckets = Math.max(1, Math.ceil((to - from) / 5000));
  const out: Record<string, number[]> = {};
  for (const [name, r] of Object.entries(stats.registries)) {
    const counts = new Array<number>(buckets).fill(0);
    for (const c of r.perSecond) {
      const i = Math.floor((c.second - first) / 5);
      if (i >= 0 && i < buckets) counts[i] = (counts[i] ?? 0) + c.total;
    }
    out[name] = counts;
  }
  return out;
}

/**
 * Lines describing where a fill's requests went: per registry, requests per 5 s and per
 * replica (the bench prints them under each fill).
 */
export function distributionLines(phase: FillPhase): string[] {
  const cpu = Object.entries(phase.cpuSeconds)
    .map(([id, s]) => `${id.replace("replica-", "r")}=${s ?? "-"}`)
    .join(" ");
  const lines = [
    `    replicas ready after ${round(phase.startupMs / 1000)} s; CPU-s to the full cache ${cpu}; requests per registry per 5 s, then per replica:`,
  ];
  for (const [name, counts] of Object.entries(phase.profile)) {
    const per = Object.entries(phase.perReplica)
      .map(([id, r]) => `${id.replace("replica-", "r")}=${r === null ? "-" : (r[name] ?? 0)}`)
      .join(" ");
    lines.push(
      `    ${name.padEnd(14)} ${String(phase.requests[name]?.total ?? 0).padStart(5)}: ${counts.join(" ")} | ${per}`,
    );
  }
  return lines;
}

/** The largest `intervalSeconds` each replica reports, per repository, merged into `into`. */
async function sampleIntervals(replicas: Replica[], into: Map<string, number>): Promise<void> {
  await Promise.all(
    replicas.map(async (r) => {
      try {
        const { repositories } = await getJson<{
          repositories: Array<{ name: string; intervalSeconds?: number }>;
        }>(`${r.url}/v1/repositories`, {}, 10_000);
        for (const s of repositories) {
          if (typeof s.intervalSeconds === "number")
            into.set(s.name, Math.max(into.get(s.name) ?? 0, s.intervalSeconds));
        }
      } catch {
        // a busy replica: the next sample
      }
    }),
  );
}

/**
 * Gaps in scanning from `killAt` to `end` of every repository listed before the kill (one
 * first listed later was waiting for the fill, which the fill's completion covers): seconds
 * with no registry request for it at all (the simulator's activity log). Gaps between
 * listings alone counted a huge repository's one long scan, which lists once and then works
 * through its tags, as unscanned (the CI test: 71 s "unlisted" while it was being scanned).
 */
function gapsAfterKill(
  listings: Record<string, Record<string, number[]>>,
  activity: Record<string, Record<string, number[]>>,
  fleet: FleetRepo[],
  killAt: number,
  end: number,
  boundOf: (repo: FleetRepo) => number,
): { gaps: RepositoryGap[]; measured: number } {
  const gaps: RepositoryGap[] = [];
  for (const repo of fleet) {
    const listed = listings[repo.registry.name]?.[repo.repository] ?? [];
    if (!listed.some((t) => t < killAt)) continue;
    const times = activity[repo.registry.name]?.[repo.repository] ?? [];
    const before = times.filter((t) => t < killAt);
    // The last request for it before the kill (activity times are exact).
    const last = before[before.length - 1] ?? killAt;
    const points = [last, ...times.filter((t) => t >= killAt), end];
    let longest = 0;
    for (let i = 1; i < points.length; i++)
      longest = Math.max(longest, (points[i] as number) - (points[i - 1] as number));
    gaps.push({
      repository: repo.name,
      // Rounded up, so that a gap past its bound by a millisecond does not round onto it.
      gapSeconds: Math.ceil(longest / 100) / 10,
      boundSeconds: round(boundOf(repo)),
    });
  }
  return { gaps, measured: gaps.length };
}

/** A repository's bound, seconds: lease TTL + the larger of its configured and reported interval. */
function boundSecondsOf(o: FillPhaseOptions, intervals: Map<string, number>, name: string): number {
  const ttl = o.kill?.leaseTtlSeconds ?? 0;
  return ttl + Math.max(o.replica.intervalSeconds, intervals.get(name) ?? 0);
}

/**
 * The repositories whose measurement is not over at `now`: listed before the kill (or whose
 * lease the killed replica held), not listed since, and not yet past their bound since
 * their last listing (the kill, for a lease). Until each has been listed again or has gone
 * past its bound, a repository no survivor took would not show as over it.
 */
function awaitingListing(
  listings: Record<string, Record<string, number[]>>,
  activity: Record<string, Record<string, number[]>>,
  fleet: FleetRepo[],
  killed: { at: number; leases: string[] },
  now: number,
  boundSecondsOf: (name: string) => number,
): string[] {
  const leases = new Set(killed.leases);
  const out: string[] = [];
  for (const repo of fleet) {
    const listed = listings[repo.registry.name]?.[repo.repository] ?? [];
    if (listed.some((t) => t >= killed.at)) continue;
    // Measured as gapsAfterKill measures: from the last request for it before the kill.
    const times = activity[repo.registry.name]?.[repo.repository] ?? [];
    const before = times.filter((t) => t < killed.at);
    const last = leases.has(repo.name) ? killed.at : before[before.length - 1];
    if (last === undefined || !listed.some((t) => t < killed.at)) continue;
    if (now - last <= boundSecondsOf(repo.name) * 1000) out.push(repo.name);
  }
  return out;
}

/** Runs one cold fill; the replicas are left running for the caller to use and stop. */
export async function fillPhase(o: FillPhaseOptions): Promise<{
  phase: FillPhase;
  replicas: Replica[];
}> {
  const { sim, redis, fleet, count } = o;
  await redisFlush(redis.port);
  const before = await simStats(sim.control);
  const startedAt = Date.now();
  const cfg: ReplicaConfig = {
    ...o.replica,
    redisUrl: redis.url,
    leaseTtlSeconds: o.kill?.leaseTtlSeconds ?? o.replica.leaseTtlSeconds,
  };
  const replicas = await Promise.all(
    Array.from({ length: count }, (_, i) => startReplica(`replica-${i}`, cfg)),
  );
  const startupMs = Date.now() - startedAt;
  const registryOf = new Map(sim.registries.map((r) => [r.host, r.name]));
  const shares: ShareSample[] = [];
  const course: CourseSample[] = [];
  let courseAt = Number.NEGATIVE_INFINITY;
  const loops = new Map(replicas.map((r) => [r.id, new LoopSampler()]));
  let loadRunning = false;
  const sampleShares = async () => {
    const at = Date.now();
    const sample: ShareSample = { seconds: round((at - startedAt) / 1000), shares: {} };
    const duringLoad = loadRunning;
    const point: CourseSample | undefined =
      at - courseAt >= COURSE_EVERY_MS ? { seconds: sample.seconds, replicas: {} } : undefined;
    await Promise.all(
      replicas.map(async (r) => {
        if (r.proc.exited()) return;
        const text = await replicaMetricsText(r);
        if (text === null) return;
        sample.shares[r.id] = metricByRegistry(text, BUDGET_METRICS.hostShare, registryOf);
        if (duringLoad) loops.get(r.id)?.add(text, Date.now());
        const totals = point && courseOf(text);
        if (point && totals) point.replicas[r.id] = totals;
      }),
    );
    shares.push(sample);
    if (point) {
      courseAt = at;
      course.push(point);
    }
  };
  let done = false;
  const small = new Set(fleet.filter((r) => r.truth.size <= 100).map((r) => r.name));
  // The readers start once `startAt` of the tags are cached, and read the small repositories
  // complete by then and as the fill completes more (what is cached: reads of a repository
  // not yet cached are answered 503 at once and measure nothing).
  let load: ApiLoad | undefined;
  let loadResult: Promise<ApiLoadResult | null> = Promise.resolve(null);
  let handedToReaders = 0;
  const feedReaders = (progress: FillProgress) => {
    if (o.apiLoad === undefined) return;
    if (load === undefined) {
      if (progress.visibleTags < o.apiLoad.startAt * progress.tags) return;
      load = apiLoad(
        replicas.map((r) => r.url),
        o.apiLoad.clients,
        o.apiLoad.ms,
        () => done,
      );
      loadRunning = true;
      loadResult = load.result.then(async (result) => {
        // The window of the load's last seconds, then no more.
        await sampleShares();
        loadRunning = false;
        // Said now, not only at the end: at full size the reads are over 40 minutes before it.
        o.log?.(
          `  reads during the fill: p50 / p99 ${result.p50Ms} / ${result.p99Ms} ms, ${result.answers} answers, ${result.errors} failed (per replica p99 ${result.byReplica.map((r) => r.p99Ms).join(" / ")} ms)`,
        );
        return result;
      });
    }
    const fresh = progress.completed.slice(handedToReaders).filter((name) => small.has(name));
    handedToReaders = progress.completed.length;
    load.read(fresh);
  };
  let minPulls: { remaining: number; limit: number } | null = null;
  const dockerhub = sim.registries.find((r) => r.personality === "dockerhub");
  const samplePulls = async () => {
    if (dockerhub === undefined) return;
    const s = await simStats(sim.control).catch(() => undefined);
    const remaining = s?.registries[dockerhub.name]?.pullsRemaining;
    if (typeof remaining === "number" && (minPulls === null || remaining < minPulls.remaining)) {
      minPulls = { remaining, limit: o.pullLimit };
    }
  };
  // The replica killed is never replica-0: the bench reads the cache through it. Of the
  // others, the one holding the most leases when the share is reached.
  const candidates = o.kill !== undefined ? replicas.slice(1) : [];
  let killed: { at: number; share: number; leases: string[]; replica: Replica } | undefined;
  const intervals = new Map<string, number>();
  const survivors = () => replicas.filter((r) => r !== killed?.replica);
  let sampledAt = 0;
  const killIfDue = async (progress: FillProgress, plan: KillPlan) => {
    const share = progress.visibleTags / Math.max(1, progress.tags);
    if (share < plan.at) return;
    const held = await Promise.all(candidates.map((r) => leasesHeldBy(redis.port, r.id)));
    let pick = 0;
    for (let i = 1; i < held.length; i++)
      if ((held[i]?.length ?? 0) > (held[pick]?.length ?? 0)) pick = i;
    const leases = held[pick] ?? [];
    const replica = candidates[pick];
    if (replica === undefined) return;
    if (leases.length === 0 && share < (plan.latest ?? Math.min(0.95, plan.at + 0.3))) return;
    replica.proc.child.kill("SIGKILL");
    killed = { at: Date.now(), share, leases, replica };
    o.log?.(
      `  killed ${replica.id} (SIGKILL) at ${round((killed.at - startedAt) / 1000)} s, ${round(100 * share)}% of tags cached, holding ${leases.length} lease(s)`,
    );
  };
  const onTick = async (progress: FillProgress) => {
    // A replica that died on its own (not the one killed) would leave the fill to time out
    // with no word of why: end the phase with what it last wrote.
    for (const r of replicas) {
      if (r === killed?.replica) continue;
      if (r.proc.exited()) {
        throw new ReplicaExitedError(
          `${r.id} exited during the fill, ${round((Date.now() - startedAt) / 1000)} s in; its last output:\n${r.proc.output().slice(-3000)}`,
        );
      }
    }
    feedReaders(progress);
    // Sampled every 2 s at most: the rounds get shorter near the end of the fill.
    if (Date.now() - sampledAt >= 2_000) {
      sampledAt = Date.now();
      await samplePulls();
      await sampleShares();
    }
    if (killed === undefined && o.kill !== undefined) await killIfDue(progress, o.kill);
    if (killed !== undefined) await sampleIntervals(survivors(), intervals);
  };
  const fill = await waitForFullCache(
    replicas[0]?.url ?? "",
    fleet,
    startedAt,
    o.fillTimeoutMs,
    onTick,
  );
  done = true;
  await samplePulls();
  // The fill's cost ends here; a kill's settle time after it is steady-state rescans.
  const atFull = await simStats(sim.control);
  const fullAt = Date.now();
  const cpuSeconds: FillPhase["cpuSeconds"] = {};
  for (const r of replicas) {
    const cpu = r.proc.exited() ? undefined : cpuSecondsOf(r.proc.pid);
    cpuSeconds[r.id] = cpu === undefined ? null : round(cpu);
  }
  const perReplica: FillPhase["perReplica"] = {};
  await Promise.all(
    replicas.map(async (r) => {
      perReplica[r.id] = r.proc.exited()
        ? null
        : await replicaMetric(r, BUDGET_METRICS.requests, registryOf);
    }),
  );
  const api = await loadResult;
  const replicaLoops: FillPhase["replicaLoops"] = {};
  for (const [id, sampler] of loops) replicaLoops[id] = sampler.result();

  let kill: KillResult | null = null;
  const victim = killed?.replica ?? candidates[0];
  if (o.kill !== undefined && victim !== undefined) {
    const interval = o.replica.intervalSeconds;
    const minSettleMs = o.kill.settleMs ?? (o.kill.leaseTtlSeconds + interval + 5) * 1000;
    // Watch the survivors until every repository has been due again: at least minSettleMs,
    // then until none awaits its first listing since the kill within its bound. The bound
    // is TTL + the interval the survivors report, stretched and backed off up to 16x the
    // configured one, so a fixed TTL + configured interval (as before) ended the watch while
    // a repository never listed again (a lease never taken over) was still under its bound,
    // and it passed.
    const settleStart = Date.now();
    const settleEnd = settleStart + minSettleMs;
    const settleCap = settleStart + Math.max(minSettleMs, o.kill.maxSettleMs ?? 180_000);
    let waiting: string[] = [];
    for (;;) {
      await sampleIntervals(survivors(), intervals);
      await samplePulls();
      const now = Date.now();
      if (now >= settleEnd && killed !== undefined) {
        const listings = await getJson<Record<string, Record<string, number[]>>>(
          `${sim.control}/_sim/listings?since=${startedAt}`,
        );
        const activity = await getJson<Record<string, Record<string, number[]>>>(
          `${sim.control}/_sim/activity?since=${startedAt}`,
        );
        waiting = awaitingListing(listings, activity, fleet, killed, now, (name) =>
          boundSecondsOf(o, intervals, name),
        );
      }
      if ((now >= settleEnd && waiting.length === 0) || now >= settleCap) break;
      await sleep(Math.min(3_000, Math.max(0, settleCap - now)));
    }
    const settleMs = Date.now() - settleStart;
    kill = await killResult(o, fleet, victim.id, startedAt, killed, intervals, settleMs);
    kill.unverified = waiting;
  }

  const after = await simStats(sim.control);
  const windowLimit = o.replica.budgetRps * 10 + o.replica.budgetBurst;
  const perWindow: FillPhase["windows"] = {};
  const stalls = after.process.loop?.stalls ?? [];
  for (const [name, r] of Object.entries(after.registries)) {
    const { max, violations, over } = windows(r.perSecond, startedAt, Date.now(), windowLimit);
    perWindow[name] = {
      max,
      violations,
      limit: windowLimit,
      over: over.map(({ second, requests }) => {
        const from = (second - 1) * 1000;
        const to = (second + 10) * 1000;
        const within = stalls.filter((x) => x.at >= from && x.at < to).map((x) => x.ms);
        return {
          seconds: round((second * 1000 - startedAt) / 1000),
          requests,
          stallMs: within.length > 0 ? Math.max(...within) : null,
        };
      }),
    };
  }
  return {
    phase: {
      replicas: count,
      startupMs,
      fill,
      profile: profileOf(atFull, startedAt, fullAt),
      perReplica,
      shares,
      course,
      cpuSeconds,
      requests: totalsBetween(before, atFull),
      simulator: simulatorLoad(before, atFull),
      windows: perWindow,
      simulatorStalls: (after.process.loop?.stalls ?? [])
        .filter((x) => x.at >= startedAt)
        .map((x) => ({
          seconds: round((x.at - startedAt) / 1000),
          ms: x.ms,
          cpuMs: x.cpuMs ?? null,
          gcMs: x.gcMs ?? null,
        })),
      minPullsRemaining: minPulls,
      api,
      replicaLoops,
      memory: replicas.map(replicaMemory),
      kill,
    },
    replicas,
  };
}

async function killResult(
  o: FillPhaseOptions,
  fleet: FleetRepo[],
  victim: string,
  startedAt: number,
  killed: { at: number; share: number; leases: string[] } | undefined,
  intervals: Map<string, number>,
  settleMs: number,
): Promise<KillResult> {
  const interval = o.replica.intervalSeconds;
  const ttl = o.kill?.leaseTtlSeconds ?? 0;
  if (killed === undefined) {
    // The fill ended (or timed out) before the share was reached: nothing was killed.
    return {
      replica: victim,
      atSeconds: Number.NaN,
      atShare: Number.NaN,
      leasesHeld: [],
      takeover: {},
      neverTakenOver: [],
      lateTakeovers: [],
      maxTakeoverSeconds: null,
      maxGap: null,
      tightest: null,
      unverified: [],
      overBound: [],
      overBoundCount: 0,
      measured: 0,
      leaseTtlSeconds: ttl,
      intervalSeconds: interval,
      maxReportedIntervalSeconds: Math.max(0, ...intervals.values()),
      settleSeconds: round(settleMs / 1000),
    };
  }
  const end = Date.now();
  const listings = await getJson<Record<string, Record<string, number[]>>>(
    `${o.sim.control}/_sim/listings?since=${startedAt}`,
  );
  const byName = new Map(fleet.map((r) => [r.name, r]));
  const boundOf = (name: string) => boundSecondsOf(o, intervals, name);
  const takeover: Record<string, number | null> = {};
  const lateTakeovers: KillResult["lateTakeovers"] = [];
  for (const name of killed.leases) {
    const repo = byName.get(name);
    const times = repo ? (listings[repo.registry.name]?.[repo.repository] ?? []) : [];
    const next = times.find((t) => t >= killed.at);
    takeover[name] = next === undefined ? null : round((next - killed.at) / 1000);
    // Not listed again by the end counts as the whole time since the kill.
    const waited = ((next ?? end) - killed.at) / 1000;
    if (waited > boundOf(name))
      lateTakeovers.push({
        repository: name,
        seconds: next === undefined ? null : round(waited),
        boundSeconds: round(boundOf(name)),
      });
  }
  const takeovers = Object.values(takeover);
  const activity = await getJson<Record<string, Record<string, number[]>>>(
    `${o.sim.control}/_sim/activity?since=${startedAt}`,
  );
  const { gaps, measured } = gapsAfterKill(listings, activity, fleet, killed.at, end, (repo) =>
    boundOf(repo.name),
  );
  const over = gaps.filter((g) => g.gapSeconds > g.boundSeconds);
  const maxGap = gaps.reduce<RepositoryGap | null>(
    (m, g) => (m === null || g.gapSeconds > m.gapSeconds ? g : m),
    null,
  );
  return {
    replica: victim,
    atSeconds: round((killed.at - startedAt) / 1000),
    atShare: round(killed.share, 3),
    leasesHeld: killed.leases,
    takeover,
    neverTakenOver: Object.keys(takeover).filter((k) => takeover[k] === null),
    lateTakeovers,
    maxTakeoverSeconds:
      takeovers.length === 0
        ? null
        : Math.max(0, ...takeovers.filter((t): t is number => t !== null)),
    maxGap,
    unverified: [],
    tightest: gaps.reduce<RepositoryGap | null>(
      (m, g) =>
        m === null || g.boundSeconds - g.gapSeconds < m.boundSeconds - m.gapSeconds ? g : m,
      null,
    ),
    overBound: over.sort((a, b) => b.gapSeconds - a.gapSeconds).slice(0, 20),
    overBoundCount: over.length,
    measured,
    leaseTtlSeconds: ttl,
    intervalSeconds: interval,
    maxReportedIntervalSeconds: Math.max(0, ...intervals.values()),
    settleSeconds: round(settleMs / 1000),
  };
}

/** A replica's peak and current RSS, and the resident part of `malloc`'s main arena (null: unread). */
export interface ReplicaMemory {
  id: string;
  hwmMiB: number;
  rssMiB: number;
  mallocHeapMiB: number | null;
}

/** {@link ReplicaMemory} of a running replica; null for one that exited or cannot be read. */
export function replicaMemory(r: Replica): ReplicaMemory | null {
  const m = r.proc.exited() ? undefined : memoryOf(r.proc.pid);
  if (m === undefined) return null;
  return {
    id: r.id,
    hwmMiB: round(m.hwm / MiB),
    rssMiB: round(m.rss / MiB),
    mallocHeapMiB: m.mallocHeap === undefined ? null : round(m.mallocHeap / MiB),
  };
}
