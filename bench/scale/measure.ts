/**
 * What the scale bench measures, against the simulator's control API (ground truth and
 * request counts) and regscan's HTTP API: cache completeness, request windows, staleness of
 * churned tags and API latency under concurrent readers. Every loop is bounded in time.
 */
import type { Change } from "../sim/churn.js";
import type { TruthTag } from "../sim/content.js";
import type { SecondCounts } from "../sim/stats.js";
import type { SimRegistryInfo } from "./processes.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function getJson<T>(
  url: string,
  init: RequestInit = {},
  timeoutMs = 30_000,
): Promise<T> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (res.status >= 400)
    throw new Error(`${init.method ?? "GET"} ${url}: ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ] as number;
}

/** One repository of the fleet: its regscan name and ground truth. */
export interface FleetRepo {
  registry: SimRegistryInfo;
  repository: string;
  name: string;
  truth: Map<string, string>;
}

export async function loadFleet(
  control: string,
  registries: SimRegistryInfo[],
): Promise<FleetRepo[]> {
  const fleet: FleetRepo[] = [];
  for (const registry of registries) {
    const repos = await getJson<string[]>(`${control}/_sim/repositories?registry=${registry.name}`);
    for (const repository of repos) {
      const truth = await getJson<TruthTag[]>(
        `${control}/_sim/truth?registry=${registry.name}&repository=${encodeURIComponent(repository)}&digests=1`,
      );
      fleet.push({
        registry,
        repository,
        name: `${registry.host}/${repository}`,
        truth: new Map(truth.map((t) => [t.tag, t.digest])),
      });
    }
  }
  return fleet;
}

interface RepositoryAnswer {
  tags?: string[];
  images?: Record<string, { digest?: string } | undefined>;
}

export async function readRepository(
  api: string,
  name: string,
): Promise<{
  status: number;
  body: RepositoryAnswer | undefined;
  intervalSeconds: number | undefined;
  staleSeconds: number | undefined;
}> {
  const res = await fetch(`${api}/v1/repositories/${name}`, {
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  const interval = res.headers.get("x-regscan-interval-seconds");
  const stale = res.headers.get("x-regscan-stale-seconds");
  return {
    status: res.status,
    body: res.status === 200 ? (JSON.parse(text) as RepositoryAnswer) : undefined,
    intervalSeconds: interval === null ? undefined : Number(interval),
    staleSeconds: stale === null ? undefined : Number(stale),
  };
}

/** How many of the repository's true tags the API shows with their true digest, and extras. */
export function compareToTruth(repo: FleetRepo, body: RepositoryAnswer | undefined) {
  if (body === undefined) return { matching: 0, extra: 0, duplicates: 0 };
  const tags = body.tags ?? [];
  const seen = new Set(tags);
  let matching = 0;
  for (const [tag, digest] of repo.truth) {
    if (seen.has(tag) && body.images?.[tag]?.digest === digest) matching++;
  }
  return {
    matching,
    extra: [...seen].filter((t) => !repo.truth.has(t)).length,
    duplicates: tags.length - seen.size,
  };
}

async function forEachLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

export interface FillResult {
  complete: boolean;
  ms: number;
  tags: number;
  visibleTags: number;
  incompleteRepositories: string[];
  /** Tags in the API that the registry does not have, and repeated tags, when complete. */
  extraTags: number;
  duplicateTags: number;
  minPullsRemaining: number | null;
}

/** Repositories left to fill under which {@link waitForFullCache} polls every 500 ms. */
const FEW_PENDING = 20;

/**
 * Polls the API every 2 s (500 ms once at most 20 repositories are left) until every
 * repository shows exactly its true tags with their digests, or the deadline passes; `onTick` runs each round with the tags seen so far (the
 * bench samples the simulator, and kills a replica once enough of the fill is done).
 */
export async function waitForFullCache(
  api: string,
  fleet: FleetRepo[],
  startedAt: number,
  timeoutMs: number,
  onTick: (progress: { visibleTags: number; tags: number }) => Promise<void>,
): Promise<FillResult> {
  const pending = new Map(fleet.map((r) => [r.name, r]));
  const visible = new Map<string, number>();
  let extraTags = 0;
  let duplicateTags = 0;
  const deadline = startedAt + timeoutMs;
  const tags = fleet.reduce((n, r) => n + r.truth.size, 0);
  const seen = () => [...visible.values()].reduce((a, b) => a + b, 0);
  while (pending.size > 0 && Date.now() < deadline) {
    await onTick({ visibleTags: seen(), tags });
    await forEachLimited([...pending.values()], 8, async (repo) => {
      try {
        const { body } = await readRepository(api, repo.name);
        const c = compareToTruth(repo, body);
        visible.set(repo.name, c.matching);
        if (c.matching === repo.truth.size && c.extra === 0 && c.duplicates === 0)
          pending.delete(repo.name);
        if (c.matching === repo.truth.size) {
          extraTags = Math.max(extraTags, c.extra);
          duplicateTags = Math.max(duplicateTags, c.duplicates);
        }
      } catch {
        // a timeout under load: asked again next round
      }
    });
    // Every 2 s, but every 500 ms once few repositories are left (a few reads a round): the
    // fill's time is known to a round, and 2 s rounds made it up to 2 s late (about 5% of
    // the default fill's minimum) whichever fill it was.
    const pause = pending.size <= FEW_PENDING ? 500 : 2_000;
    if (pending.size > 0) await sleep(Math.min(pause, Math.max(0, deadline - Date.now())));
  }
  const ms = Date.now() - startedAt;
  const visibleTags = seen();
  return {
    complete: pending.size === 0,
    ms,
    tags,
    visibleTags,
    incompleteRepositories: [...pending.keys()].slice(0, 20),
    extraTags,
    duplicateTags,
    minPullsRemaining: null,
  };
}

export interface SimStats {
  process: {
    uptimeMs: number;
    cpuUserMs: number;
    cpuSystemMs: number;
    rss: number;
    /** Its event-loop stalls (bench/sim/loop-delay.ts): when each began (epoch ms), how long. */
    loop?: { stalls: Array<{ at: number; ms: number }> };
  };
  registries: Record<
    string,
    {
      personality: string;
      totals: Record<string, number>;
      pullsRemaining: number | null;
      perSecond: SecondCounts[];
    }
  >;
}

export function simStats(control: string): Promise<SimStats> {
  return getJson<SimStats>(`${control}/_sim/stats?seconds=3600`);
}

/** Requests per registry between two stats snapshots, by kind. */
export function totalsBetween(
  before: SimStats,
  after: SimStats,
): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [name, r] of Object.entries(after.registries)) {
    const b = before.registries[name]?.totals ?? {};
    out[name] = Object.fromEntries(Object.entries(r.totals).map(([k, v]) => [k, v - (b[k] ?? 0)]));
  }
  return out;
}

/**
 * The most requests in any 10 s window (sliding by a second) within [from, to] and how many
 * windows exceed `limit`.
 */
export function windows(perSecond: SecondCounts[], from: number, to: number, limit: number) {
  const first = Math.floor(from / 1000);
  const last = Math.floor(to / 1000);
  const counts = new Map(perSecond.map((c) => [c.second, c.total]));
  let max = 0;
  let violations = 0;
  for (let start = first; start + 9 <= Math.max(last, first + 9); start++) {
    let sum = 0;
    for (let s = start; s < start + 10; s++) sum += counts.get(s) ?? 0;
    max = Math.max(max, sum);
    if (sum > limit) violations++;
  }
  return { max, violations };
}

export interface ApiLoadResult {
  answers: number;
  ok: number;
  byStatus: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
}

/**
 * `clients` concurrent readers of small repositories (round robin over repositories and
 * replicas) until `until()` says stop or `maxMs` passes; latencies of 200 answers.
 */
export async function apiLoad(
  apis: string[],
  repos: FleetRepo[],
  clients: number,
  maxMs: number,
  until: () => boolean,
): Promise<ApiLoadResult> {
  const latencies: number[] = [];
  const byStatus: Record<string, number> = {};
  let errors = 0;
  let next = 0;
  const deadline = Date.now() + maxMs;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < deadline && !until() && repos.length > 0) {
        const i = next++;
        const repo = repos[i % repos.length] as FleetRepo;
        const api = apis[i % apis.length] as string;
        const t0 = performance.now();
        try {
          const res = await fetch(`${api}/v1/repositories/${repo.name}`, {
            signal: AbortSignal.timeout(10_000),
          });
          await res.arrayBuffer();
          const ms = performance.now() - t0;
          byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
          if (res.status === 200) latencies.push(ms);
          else await sleep(50);
        } catch {
          errors++;
          await sleep(50);
        }
      }
    }),
  );
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    answers: Object.values(byStatus).reduce((a, b) => a + b, 0),
    ok: latencies.length,
    byStatus,
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    maxMs: round(percentile(latencies, 100)),
    errors,
  };
}

export interface StalenessResult {
  webhooks: boolean;
  changes: number;
  measured: number;
  superseded: number;
  unseen: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /**
   * Changes seen within the repository's interval (X-Regscan-Interval-Seconds) as it was when
   * the change happened (the first poll after it; a scan that finds a change may shorten it),
   * plus a second for this bench's own polling.
   */
  withinInterval: number;
  /**
   * Unseen when the phase ended, but younger than their repository's interval then: not due
   * yet, so neither within nor past it (a quiet repository's interval backs off to minutes).
   */
  unseenNotDue: number;
  /** Unseen when the phase ended and older than their repository's interval: misses. */
  unseenOverdue: number;
  webhookDeliveries: unknown;
  /** Count and p50 / p99 by kind of change: a new tag, or a tag moved to another image. */
  byAction: Record<string, { measured: number; unseen: number; p50Ms: number; p99Ms: number }>;
  /**
   * Changes seen later than their bound (first 10): the interval when the change happened
   * and when it was seen, and how stale the repository said it was at the poll before.
   */
  lateSamples: Array<{
    repository: string;
    tag: string;
    action: string;
    seenMs: number;
    intervalAtChangeSeconds?: number | undefined;
    intervalSeconds?: number | undefined;
    staleSecondsBefore?: number | undefined;
    /** Seconds from the change to each listing of the repository (the simulator's log). */
    listedAfterSeconds?: number[] | undefined;
  }>;
  /** The repository's interval and staleness headers when an unseen change was last polled. */
  unseenSamples: Array<{
    repository: string;
    tag: string;
    action: string;
    intervalSeconds?: number | undefined;
    staleSeconds?: number | undefined;
  }>;
}

type Tracked = Change & {
  seenMs?: number;
  intervalSeconds?: number;
  staleSeconds?: number;
  /** The repository's interval at the first poll after the change. */
  intervalAtChangeSeconds?: number;
};

/** A change counts as seen within the interval up to this much later: this bench polls every 500 ms. */
const POLL_SLACK_MS = 1000;

/**
 * Churn for `seconds` (webhooks to `webhookUrl` when given), then waits up to `graceMs` for
 * the last changes; each change is timed from when the registry served it to the first poll
 * (every 500 ms) that shows it through the API.
 */
export async function measureStaleness(
  control: string,
  api: string,
  fleet: FleetRepo[],
  opts: {
    seconds: number;
    perSecond: number;
    graceMs: number;
    webhookUrl?: string;
    webhookToken: string;
  },
): Promise<StalenessResult> {
  const byName = new Map(fleet.map((r) => [`${r.registry.name}/${r.repository}`, r]));
  const startedAt = Date.now();
  await getJson(`${control}/_sim/churn`, {
    method: "POST",
    body: JSON.stringify({
      perSecond: opts.perSecond,
      seed: `scale-${startedAt}`,
      ...(opts.webhookUrl !== undefined
        ? { webhook: { url: opts.webhookUrl, token: opts.webhookToken } }
        : {}),
    }),
  });
  const churnEnds = startedAt + opts.seconds * 1000;
  const deadline = churnEnds + opts.graceMs;
  let stopped: unknown;
  // Latest change per tag; an earlier one overtaken before it was seen is "superseded".
  const latest = new Map<string, Tracked>();
  let superseded = 0;
  let total = 0;
  const results: Array<{ ms: number; within: boolean; action: string }> = [];
  const late: Array<
    StalenessResult["lateSamples"][number] & { changedAt: number; registry: string; name: string }
  > = [];
  while (Date.now() < deadline) {
    if (stopped === undefined && Date.now() >= churnEnds) {
      stopped = (
        await getJson<{ webhooks: unknown }>(`${control}/_sim/churn`, { method: "DELETE" })
      ).webhooks;
    }
    const changes = await getJson<Change[]>(`${control}/_sim/changes?since=${startedAt}`);
    for (const c of changes.slice(total)) {
      const key = `${c.registry}/${c.repository}:${c.tag}`;
      const prev = latest.get(key);
      if (prev !== undefined && prev.seenMs === undefined) superseded++;
      latest.set(key, { ...c });
    }
    total = changes.length;
    const waiting = [...latest.values()].filter((c) => c.seenMs === undefined);
    if (stopped !== undefined && waiting.length === 0) break;
    const repos = new Map<string, typeof waiting>();
    for (const c of waiting) {
      const key = `${c.registry}/${c.repository}`;
      repos.set(key, [...(repos.get(key) ?? []), c]);
    }
    await forEachLimited([...repos.entries()], 8, async ([key, cs]) => {
      const repo = byName.get(key);
      if (repo === undefined) return;
      try {
        const { body, intervalSeconds, staleSeconds } = await readRepository(api, repo.name);
        const now = Date.now();
        for (const c of cs) {
          if (c.intervalAtChangeSeconds === undefined && intervalSeconds !== undefined) {
            c.intervalAtChangeSeconds = intervalSeconds;
          }
          if (body?.images?.[c.tag]?.digest === c.digest) {
            c.seenMs = now - c.at;
            const bound = c.intervalAtChangeSeconds ?? intervalSeconds;
            const within = bound === undefined || c.seenMs <= bound * 1000 + POLL_SLACK_MS;
            results.push({ ms: c.seenMs, within, action: c.action });
            if (!within && late.length < 10) {
              late.push({
                repository: key,
                tag: c.tag,
                action: c.action,
                seenMs: c.seenMs,
                intervalAtChangeSeconds: c.intervalAtChangeSeconds,
                intervalSeconds,
                staleSecondsBefore: c.staleSeconds,
                changedAt: c.at,
                registry: c.registry,
                name: c.repository,
              });
            }
          } else {
            if (intervalSeconds !== undefined) c.intervalSeconds = intervalSeconds;
            if (staleSeconds !== undefined) c.staleSeconds = staleSeconds;
          }
        }
      } catch {
        // asked again next round
      }
    });
    await sleep(500);
  }
  if (stopped === undefined) {
    stopped = (await getJson<{ webhooks: unknown }>(`${control}/_sim/churn`, { method: "DELETE" }))
      .webhooks;
  }
  if (late.length > 0) {
    const listings = await getJson<Record<string, Record<string, number[]>>>(
      `${control}/_sim/listings?since=${startedAt}`,
    ).catch(() => ({}) as Record<string, Record<string, number[]>>);
    for (const l of late) {
      const times = listings[l.registry]?.[l.name] ?? [];
      l.listedAfterSeconds = times
        .filter((t) => t >= l.changedAt - 30_000)
        .map((t) => Math.round((t - l.changedAt) / 100) / 10);
    }
  }
  const ms = results.map((r) => r.ms);
  const unseen = [...latest.values()].filter((c) => c.seenMs === undefined);
  const endedAt = Date.now();
  const notDue = unseen.filter(
    (c) => c.intervalSeconds !== undefined && endedAt - c.at < c.intervalSeconds * 1000,
  );
  const byAction: StalenessResult["byAction"] = {};
  for (const action of ["add", "move"]) {
    const of = results.filter((r) => r.action === action).map((r) => r.ms);
    byAction[action] = {
      measured: of.length,
      unseen: unseen.filter((c) => c.action === action).length,
      p50Ms: percentile(of, 50),
      p99Ms: percentile(of, 99),
    };
  }
  return {
    webhooks: opts.webhookUrl !== undefined,
    changes: total,
    measured: results.length,
    superseded,
    unseen: unseen.length,
    p50Ms: percentile(ms, 50),
    p90Ms: percentile(ms, 90),
    p99Ms: percentile(ms, 99),
    maxMs: percentile(ms, 100),
    withinInterval: results.filter((r) => r.within).length,
    unseenNotDue: notDue.length,
    unseenOverdue: unseen.length - notDue.length,
    webhookDeliveries: stopped,
    byAction,
    lateSamples: late.map(({ changedAt: _, registry: __, name: ___, ...l }) => l),
    unseenSamples: unseen.slice(0, 10).map((c) => ({
      repository: `${c.registry}/${c.repository}`,
      tag: c.tag,
      action: c.action,
      // Written as JSON, where an undefined header value leaves its key out.
      intervalSeconds: c.intervalSeconds,
      staleSeconds: c.staleSeconds,
    })),
  };
}
