/**
 * What the scale bench measures, against the simulator's control API (ground truth and
 * request counts) and regscan's HTTP API: cache completeness, request windows, staleness of
 * churned tags and API latency under concurrent readers. Every loop is bounded in time.
 */
import { Worker } from "node:worker_threads";
import type { Change } from "../sim/churn.js";
import type { TruthTag } from "../sim/content.js";
import type { Listings } from "../sim/listings.js";
import type { SecondCounts } from "../sim/stats.js";
import { watchEvents } from "./event-watch.js";
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

/** What the readers' thread posts back (api-readers.mjs). */
interface ReadersResult {
  latencies: number[];
  askedAt: number[];
  byStatus: Record<string, number>;
  errors: number;
  loop: { p99Ms: number; maxMs: number };
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

/** A replica's interval and staleness headers for a repository (HEAD: no body). */
export async function readHeaders(
  api: string,
  name: string,
): Promise<{ intervalSeconds: number | undefined; staleSeconds: number | undefined }> {
  const res = await fetch(`${api}/v1/repositories/${name}`, {
    method: "HEAD",
    signal: AbortSignal.timeout(30_000),
  });
  await res.arrayBuffer();
  const interval = res.headers.get("x-regscan-interval-seconds");
  const stale = res.headers.get("x-regscan-stale-seconds");
  return {
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
 * A repository whose status does not show a scan of all its tags yet is read in full only
 * every this many rounds (for the fill's progress). Reading every pending repository every
 * round cost the replica more than the fill at 10,000 repositories: a 20,000-tag repository's
 * answer is megabytes, and it stays pending through the whole of its long scan.
 */
const READ_UNFINISHED_EVERY = 5;
/**
 * At most this many of those a round, the longest unread first: at 10,000 repositories every
 * fifth round read 2,000 of them, so the bench's reads never stopped (the fill's progress
 * needs only the finished ones to be exact).
 */
const UNFINISHED_READS_PER_ROUND = 50;

/**
 * The replica's status list is asked for at most this often per 1,000 repositories (2 s at
 * most, every round once few are left). At 10,000 repositories it is megabytes of JSON, and
 * asked every 2 s it cost the replica the bench reads through more CPU and memory than the
 * others by about the whole of their difference.
 */
const STATUS_MS_PER_1000_REPOSITORIES = 1_000;

/** Tags each repository's last scan listed, from one replica's status list (none: unknown). */
async function tagCounts(api: string): Promise<Map<string, number> | undefined> {
  try {
    const { repositories } = await getJson<{
      repositories: Array<{ name: string; tagCount?: number }>;
    }>(`${api}/v1/repositories`, {}, 30_000);
    return new Map(repositories.map((r) => [r.name, r.tagCount ?? 0]));
  } catch {
    return undefined;
  }
}

/** How far a fill is, told each round of {@link waitForFullCache}. */
export interface FillProgress {
  visibleTags: number;
  tags: number;
  /** Repositories equal to the truth through the API so far, in the order they became so. */
  completed: readonly string[];
}

/**
 * Polls the API every 2 s (500 ms once at most 20 repositories are left) until every
 * repository shows exactly its true tags with their digests, or the deadline passes; `onTick`
 * runs each round with the tags seen so far (the bench samples the simulator, and kills a
 * replica once enough of the fill is done). A repository is read in full when the replica's
 * status list counts all its tags (a scan of it ended), and every few rounds otherwise.
 */
export async function waitForFullCache(
  api: string,
  fleet: FleetRepo[],
  startedAt: number,
  timeoutMs: number,
  onTick: (progress: FillProgress) => Promise<void>,
): Promise<FillResult> {
  const pending = new Map(fleet.map((r) => [r.name, r]));
  const completed: string[] = [];
  const visible = new Map<string, number>();
  const readAt = new Map<string, number>();
  let extraTags = 0;
  let duplicateTags = 0;
  const deadline = startedAt + timeoutMs;
  const tags = fleet.reduce((n, r) => n + r.truth.size, 0);
  const seen = () => [...visible.values()].reduce((a, b) => a + b, 0);
  const statusEveryMs = Math.max(2_000, (fleet.length / 1000) * STATUS_MS_PER_1000_REPOSITORIES);
  let statusAt = Number.NEGATIVE_INFINITY;
  let counts: Map<string, number> | undefined;
  for (let round = 0; pending.size > 0 && Date.now() < deadline; round++) {
    await onTick({ visibleTags: seen(), tags, completed });
    if (pending.size <= FEW_PENDING || Date.now() - statusAt >= statusEveryMs) {
      statusAt = Date.now();
      counts = await tagCounts(api);
    }
    // Without the status list (a busy replica), only the reads every few rounds: reading
    // every pending repository then would make the replica busier still.
    const lastRead = (repo: FleetRepo) => readAt.get(repo.name) ?? Number.NEGATIVE_INFINITY;
    const finished = (repo: FleetRepo) => (counts?.get(repo.name) ?? 0) >= repo.truth.size;
    const unfinished = [...pending.values()]
      .filter((repo) => !finished(repo) && round - lastRead(repo) >= READ_UNFINISHED_EVERY)
      .sort((a, b) => lastRead(a) - lastRead(b))
      .slice(0, UNFINISHED_READS_PER_ROUND);
    const due = [...[...pending.values()].filter(finished), ...unfinished];
    await forEachLimited(due, 8, async (repo) => {
      readAt.set(repo.name, round);
      try {
        const { body } = await readRepository(api, repo.name);
        const c = compareToTruth(repo, body);
        visible.set(repo.name, c.matching);
        if (c.matching === repo.truth.size && c.extra === 0 && c.duplicates === 0) {
          pending.delete(repo.name);
          completed.push(repo.name);
        }
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
    /**
     * Its event-loop stalls (bench/sim/loop-delay.ts): when each began (epoch ms), how long,
     * its CPU time and GC pauses meanwhile.
     */
    loop?: { stalls: Array<{ at: number; ms: number; cpuMs?: number; gcMs?: number }> };
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
  /**
   * The readers' own event-loop delay (their thread's), ms (p99 and max over the load;
   * 10 ms resolution): a latency is measured on that loop too.
   */
  clientLoop: { p99Ms: number; maxMs: number };
  /** The slowest 2% of the 200 answers (at least 10): when each was asked, and its latency. */
  slowest: Array<{ atSeconds: number; ms: number }>;
}

/** The API readers under way: more repositories to read, and their result. */
export interface ApiLoad {
  /** Adds repositories to the readers' round robin (cached ones: reads of what is there). */
  read(names: readonly string[]): void;
  result: Promise<ApiLoadResult>;
}

/**
 * `clients` concurrent readers of the repositories given to `read` (round robin over them
 * and the replicas; they wait while there is none) until `until()` says stop or `maxMs`
 * passes; latencies of 200 answers. The readers run on a thread of their own
 * (api-readers.mjs), so that the bench's main thread (the fill's polls, which parse whole
 * repositories) does not delay their answers.
 */
export function apiLoad(
  apis: string[],
  clients: number,
  maxMs: number,
  until: () => boolean,
): ApiLoad {
  const worker = new Worker(new URL("./api-readers.mjs", import.meta.url), {
    workerData: { apis, clients, maxMs },
  });
  const stopWhenDone = setInterval(() => {
    if (until()) worker.postMessage("stop");
  }, 100);
  const result = (async () => {
    let got: ReadersResult;
    try {
      got = await new Promise<ReadersResult>((resolve, reject) => {
        worker.once("message", resolve);
        worker.once("error", reject);
        worker.once("exit", (code) => reject(new Error(`API readers exited (${code})`)));
      });
    } finally {
      clearInterval(stopWhenDone);
      await worker.terminate();
    }
    return readersResult(got);
  })();
  return {
    read: (names) => {
      if (names.length > 0) worker.postMessage({ add: [...names] });
    },
    result,
  };
}

function readersResult(got: ReadersResult): ApiLoadResult {
  const { latencies, askedAt, byStatus, errors } = got;
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    answers: Object.values(byStatus).reduce((a, b) => a + b, 0),
    ok: latencies.length,
    byStatus,
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    maxMs: round(percentile(latencies, 100)),
    errors,
    clientLoop: { p99Ms: round(got.loop.p99Ms), maxMs: round(got.loop.maxMs) },
    slowest: latencies
      .map((ms, i) => ({ atSeconds: round((askedAt[i] as number) / 1000), ms: round(ms) }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, Math.max(10, Math.ceil(latencies.length / 50))),
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
   * Changes seen within the interval that scheduled the scan that saw them, plus a second
   * for this bench's own polling. That scan is the repository's last listing before the
   * change showed (the simulator's log), and its interval the one its replica applied to the
   * repository when the scan fell due; the bench cannot tell which replica scanned, so it
   * takes the longest interval any replica reported for the repository
   * (X-Regscan-Interval-Seconds, polled every 500 ms on every replica) in effect when that
   * listing came (see `intervalsAt`). Not the interval at the poll before the change showed:
   * the scan resets the interval when it lists, before what it read is in the API, so that
   * poll often said the next scan's interval (a default run: a repository backed off to
   * 80 s, listed 79 s after its last scan, judged by the 40 s it reset to). Nor the interval
   * when the change happened: a replica stretches a host's intervals when its budget is
   * saturated (budget-stretch.ts), and the scan then falls due a stretched interval after the
   * last one, whatever the interval was when the change happened.
   */
  withinInterval: number;
  /**
   * From the change to the first tag event of it on replica-0's `/v1/events` (p50 / p99, of
   * the changes seen): how much of the staleness is regscan's scan, and how much the write
   * and this bench's read after it.
   */
  eventP50Ms: number;
  eventP99Ms: number;
  /** Stricter readings, for comparison: the shortest interval any replica reported then. */
  withinShortestInterval: number;
  /** The reading before: replica-0's interval at the first poll after the change. */
  withinIntervalAtChange: number;
  /**
   * How long after the change each was seen, as a share of its bound (the interval above):
   * counts per quarter of it, and past it (more than the bound plus the polling slack).
   */
  distribution: {
    upToQuarter: number;
    upToHalf: number;
    upToThreeQuarters: number;
    upToBound: number;
    late: number;
  };
  /**
   * Unseen when the phase ended, but younger than their repository's interval then (the
   * longest any replica reported at the last poll): not due yet, so neither within nor past
   * it (a quiet repository's interval backs off).
   */
  unseenNotDue: number;
  /** Unseen when the phase ended and older than their repository's interval: misses. */
  unseenOverdue: number;
  webhookDeliveries: unknown;
  /** Count and p50 / p99 by kind of change: a new tag, or a tag moved to another image. */
  byAction: Record<string, { measured: number; unseen: number; p50Ms: number; p99Ms: number }>;
  /**
   * Changes seen later than their bound (first 10), with what tells why: every replica's
   * interval for the repository over the wait, the repository's scans (the simulator's logs)
   * around the change, and each replica's status of it when the phase ended.
   */
  lateSamples: Array<{
    repository: string;
    tag: string;
    action: string;
    seenMs: number;
    /** The bound it was judged by, seconds (see `withinInterval`). */
    boundSeconds?: number | undefined;
    intervalAtChangeSeconds?: number | undefined;
    /** How stale the repository said it was at the last poll before it was seen. */
    staleSecondsBefore?: number | undefined;
    /** Per replica, [seconds after the change, interval] at the first poll and at each change. */
    replicaIntervals?: Array<Array<[number, number | undefined]>> | undefined;
    /** Seconds from the change to each listing of the repository (the simulator's log). */
    listedAfterSeconds?: number[] | undefined;
    /**
     * Seconds from the change to the start and end of each run of registry requests for the
     * repository (its scans; the simulator's activity log), from two intervals before.
     */
    activityAfterSeconds?: Array<[number, number]> | undefined;
    /** Each replica's status of the repository (GET /v1/repositories) when the phase ended. */
    replicaStatusAtEnd?: unknown[] | undefined;
  }>;
  /**
   * Per replica, each registry host's interval stretch (regscan_warmer_interval_stretch) at
   * the start and at each change: [seconds since the phase started, factor].
   */
  stretchTimeline: Array<Record<string, Array<[number, number]>>>;
  /** The repository's intervals (every replica's) and staleness when an unseen change was last polled. */
  unseenSamples: Array<{
    repository: string;
    tag: string;
    action: string;
    replicaIntervalsSeconds?: Array<number | undefined> | undefined;
    staleSeconds?: number | undefined;
  }>;
}

type Tracked = Change & {
  seenMs?: number;
  /** Every replica's interval for the repository at the last poll that did not show the change. */
  intervalsBefore?: Array<number | undefined>;
  staleSeconds?: number;
  /** Replica-0's interval for the repository at the first poll after the change. */
  intervalAtChangeSeconds?: number;
  /** Per replica, its interval at the first poll and at each change, [seconds after the change, interval]. */
  timeline?: Array<Array<[number, number | undefined]>>;
};

/**
 * Every replica's interval for a repository in effect at `scanAt` (ms since the epoch): the
 * last value its timeline recorded before then, or its first (the first poll after the
 * change) when the scan began before any. The scan that sees a change resets the interval
 * when it lists, before what it read shows in the API, so the poll before the change shows
 * often already says the next scan's interval, not the one that scheduled this scan.
 */
function intervalsAt(timeline: Tracked["timeline"], changedAt: number, scanAt: number): number[] {
  const out: number[] = [];
  for (const line of timeline ?? []) {
    let value = line[0]?.[1];
    for (const [after, v] of line) if (changedAt + after * 1000 < scanAt) value = v;
    if (value !== undefined) out.push(value);
  }
  return out;
}

/** Reads of a repository after a tag event of it, at most, while its change does not show. */
const EVENT_READS = 8;
const EVENT_READ_PAUSE_MS = 250;
/** A change counts as seen within the interval up to this much later: this bench polls every 500 ms. */
const POLL_SLACK_MS = 1000;
/** How often the replicas' interval stretches are sampled (their /metrics). */
const STRETCH_SAMPLE_MS = 2_000;

const defined = (values: Array<number | undefined>) =>
  values.filter((v): v is number => v !== undefined);

/**
 * Churn for `seconds` (webhooks to `webhookUrl` when given), then waits up to `graceMs` for
 * the last changes; each change is timed from when the registry served it to the first read
 * that shows it through the API of `apis[0]`: reads at once on a tag event of its repository
 * on `apis[0]`'s event stream, and rounds of reads of every repository with a change not yet
 * seen, 500 ms apart, for what events do not bring; every replica of `apis` is asked
 * for its interval for the repository at each poll (see `StalenessResult.withinInterval`).
 */
export async function measureStaleness(
  control: string,
  apis: readonly string[],
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
  const api = apis[0] as string;
  const others = apis.slice(1);
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
  const results: Array<{
    ms: number;
    bound: number | undefined;
    shortest: number | undefined;
    atChange: number | undefined;
    action: string;
    change: Tracked;
    /** Every replica's interval at the last poll before it was seen (the fallback bound). */
    before: number[];
  }> = [];
  const late: Array<
    StalenessResult["lateSamples"][number] & { changedAt: number; registry: string; name: string }
  > = [];
  const stretchTimeline: StalenessResult["stretchTimeline"] = apis.map(() => ({}));
  let stretchSampledAt = 0;
  const sampleStretch = async () => {
    stretchSampledAt = Date.now();
    await Promise.all(
      apis.map(async (a, i) => {
        const text = await fetch(`${a}/metrics`, { signal: AbortSignal.timeout(10_000) })
          .then((r) => r.text())
          .catch(() => "");
        const at = Math.round((Date.now() - startedAt) / 100) / 10;
        for (const m of text.matchAll(
          /^regscan_warmer_interval_stretch\{host="([^"]+)"\} (\S+)$/gm,
        )) {
          const byHost = stretchTimeline[i] as Record<string, Array<[number, number]>>;
          const host = m[1] as string;
          const line = byHost[host] ?? [];
          byHost[host] = line;
          const factor = Number(m[2]);
          if (line[line.length - 1]?.[1] !== factor) line.push([at, factor]);
        }
      }),
    );
  };
  const within = (ms: number, bound: number | undefined) =>
    bound === undefined || ms <= bound * 1000 + POLL_SLACK_MS;
  // The simulator's changes so far; callers at once share one fetch.
  let learning: Promise<void> | undefined;
  const learnChanges = (): Promise<void> => {
    learning ??= (async () => {
      try {
        const changes = await getJson<Change[]>(`${control}/_sim/changes?since=${startedAt}`);
        for (const c of changes.slice(total)) {
          const key = `${c.registry}/${c.repository}:${c.tag}`;
          const prev = latest.get(key);
          if (prev !== undefined && prev.seenMs === undefined) superseded++;
          latest.set(key, { ...c });
        }
        total = Math.max(total, changes.length);
      } finally {
        learning = undefined;
      }
    })();
    return learning;
  };
  // One read at a time per repository; an event during a read asks for one more after it
  // (that read may have begun before the scan's write).
  const reading = new Set<string>();
  const again = new Set<string>();
  const waitingIn = (key: string) =>
    [...latest.values()].filter(
      (c) => c.seenMs === undefined && `${c.registry}/${c.repository}` === key,
    );
  const check = async (key: string): Promise<void> => {
    if (reading.has(key)) {
      again.add(key);
      return;
    }
    reading.add(key);
    try {
      do {
        again.delete(key);
        const cs = waitingIn(key);
        if (cs.length > 0) await readOnce(key, cs);
      } while (again.has(key));
    } finally {
      reading.delete(key);
    }
  };
  const readOnce = async (key: string, cs: Tracked[]): Promise<void> => {
    const repo = byName.get(key);
    if (repo === undefined) return;
    try {
      // The other replicas' headers first: a scan that ends between the two reads then
      // shows in the body, not in a header read after it (which may already say the
      // interval that scan set for the next one).
      const rest = await Promise.all(
        others.map((o) => readHeaders(o, repo.name).catch(() => ({ intervalSeconds: undefined }))),
      );
      const { body, intervalSeconds, staleSeconds } = await readRepository(api, repo.name);
      const now = Date.now();
      const intervals = [intervalSeconds, ...rest.map((r) => r.intervalSeconds)];
      for (const c of cs) {
        if (c.intervalAtChangeSeconds === undefined && intervalSeconds !== undefined) {
          c.intervalAtChangeSeconds = intervalSeconds;
        }
        c.timeline ??= intervals.map(() => []);
        intervals.forEach((v, i) => {
          const line = c.timeline?.[i];
          if (line !== undefined && line[line.length - 1]?.[1] !== v) {
            line.push([Math.round((now - c.at) / 100) / 10, v]);
          }
        });
        if (body?.images?.[c.tag]?.digest === c.digest) {
          c.seenMs = now - c.at;
          // Seen at the first poll: no poll before it, and this one's intervals will do.
          // The bound is settled after the phase, from the scan that saw it (below).
          results.push({
            ms: c.seenMs,
            bound: undefined,
            shortest: undefined,
            atChange: c.intervalAtChangeSeconds,
            action: c.action,
            change: c,
            before: defined(c.intervalsBefore ?? intervals),
          });
        } else {
          c.intervalsBefore = intervals;
          if (staleSeconds !== undefined) c.staleSeconds = staleSeconds;
        }
      }
    } catch {
      // asked again next round
    }
  };
  // A tag event names a repository whose change may show now: read it at once, and a few
  // times more while the change the event names is not shown yet (the event goes out when
  // the scan fetched the tag, before the scan's index write).
  const eventTimes = new Map<string, number[]>();
  const keyOfName = new Map(fleet.map((r) => [r.name, `${r.registry.name}/${r.repository}`]));
  const eventsGone = new AbortController();
  const followed = watchEvents(
    api,
    ({ repository, tag }) => {
      const key = keyOfName.get(repository);
      if (key === undefined) return;
      if (tag !== undefined) {
        const times = eventTimes.get(`${key}:${tag}`) ?? [];
        times.push(Date.now());
        eventTimes.set(`${key}:${tag}`, times);
      }
      void (async () => {
        for (let attempt = 0; attempt < EVENT_READS && !eventsGone.signal.aborted; attempt++) {
          // The event may come before this bench's last look at the simulator's changes.
          const change = () => (tag === undefined ? undefined : latest.get(`${key}:${tag}`));
          if (tag !== undefined && change() === undefined) await learnChanges().catch(() => {});
          await check(key);
          if (tag === undefined || change()?.seenMs !== undefined) return;
          await sleep(EVENT_READ_PAUSE_MS);
        }
      })();
    },
    eventsGone.signal,
  );
  while (Date.now() < deadline) {
    if (Date.now() - stretchSampledAt >= STRETCH_SAMPLE_MS) await sampleStretch();
    if (stopped === undefined && Date.now() >= churnEnds) {
      stopped = (
        await getJson<{ webhooks: unknown }>(`${control}/_sim/churn`, { method: "DELETE" })
      ).webhooks;
    }
    await learnChanges();
    const waiting = [...latest.values()].filter((c) => c.seenMs === undefined);
    if (stopped !== undefined && waiting.length === 0) break;
    const keys = new Set(waiting.map((c) => `${c.registry}/${c.repository}`));
    await forEachLimited([...keys], 8, check);
    await sleep(500);
  }
  eventsGone.abort();
  await followed;
  if (stopped === undefined) {
    stopped = (await getJson<{ webhooks: unknown }>(`${control}/_sim/churn`, { method: "DELETE" }))
      .webhooks;
  }
  const listings = await getJson<Listings>(`${control}/_sim/listings?since=${startedAt}`);
  for (const r of results) {
    const c = r.change;
    const seenAt = c.at + r.ms;
    const times = listings[c.registry]?.[c.repository] ?? [];
    // The scan that saw it: the last listing of the repository before it was seen.
    const scanAt = times.filter((t) => t <= seenAt).pop();
    const atScan = scanAt === undefined ? r.before : intervalsAt(c.timeline, c.at, scanAt);
    const known = atScan.length > 0 ? atScan : r.before;
    r.bound = known.length > 0 ? Math.max(...known) : undefined;
    r.shortest = known.length > 0 ? Math.min(...known) : undefined;
    if (!within(r.ms, r.bound) && late.length < 10) {
      late.push({
        repository: `${c.registry}/${c.repository}`,
        tag: c.tag,
        action: c.action,
        seenMs: r.ms,
        boundSeconds: r.bound,
        intervalAtChangeSeconds: c.intervalAtChangeSeconds,
        staleSecondsBefore: c.staleSeconds,
        replicaIntervals: c.timeline,
        changedAt: c.at,
        registry: c.registry,
        name: c.repository,
      });
    }
  }
  if (late.length > 0) await explainLate(control, apis, byName, startedAt, listings, late);
  const ms = results.map((r) => r.ms);
  const eventMs = results.flatMap(({ change: c }) => {
    const at = eventTimes.get(`${c.registry}/${c.repository}:${c.tag}`)?.find((t) => t >= c.at);
    return at === undefined ? [] : [at - c.at];
  });
  const unseen = [...latest.values()].filter((c) => c.seenMs === undefined);
  const endedAt = Date.now();
  const notDue = unseen.filter((c) => {
    // Any interval a replica reported since the change: a scan that listed it may have reset
    // the interval and left the change to the next scan (the tag not yet due in that one).
    const known = defined([
      ...(c.intervalsBefore ?? []),
      ...(c.timeline ?? []).flat().map(([, v]) => v),
    ]);
    return known.length > 0 && endedAt - c.at < Math.max(...known) * 1000;
  });
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
  const distribution = {
    upToQuarter: 0,
    upToHalf: 0,
    upToThreeQuarters: 0,
    upToBound: 0,
    late: 0,
  };
  for (const r of results) {
    const share = r.bound === undefined ? 0 : r.ms / (r.bound * 1000);
    if (!within(r.ms, r.bound)) distribution.late++;
    else if (share <= 0.25) distribution.upToQuarter++;
    else if (share <= 0.5) distribution.upToHalf++;
    else if (share <= 0.75) distribution.upToThreeQuarters++;
    else distribution.upToBound++;
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
    withinInterval: results.filter((r) => within(r.ms, r.bound)).length,
    eventP50Ms: percentile(eventMs, 50),
    eventP99Ms: percentile(eventMs, 99),
    withinShortestInterval: results.filter((r) => within(r.ms, r.shortest)).length,
    withinIntervalAtChange: results.filter((r) => within(r.ms, r.atChange)).length,
    distribution,
    unseenNotDue: notDue.length,
    unseenOverdue: unseen.length - notDue.length,
    webhookDeliveries: stopped,
    byAction,
    stretchTimeline,
    lateSamples: late.map(({ changedAt: _, registry: __, name: ___, ...l }) => l),
    unseenSamples: unseen.slice(0, 10).map((c) => ({
      repository: `${c.registry}/${c.repository}`,
      tag: c.tag,
      action: c.action,
      replicaIntervalsSeconds: c.intervalsBefore,
      // Written as JSON, where an undefined header value leaves its key out.
      staleSeconds: c.staleSeconds,
    })),
  };
}

/**
 * Adds to each late change what tells why: the repository's listings and runs of requests
 * around it (the simulator's logs) and every replica's status of it now.
 */
async function explainLate(
  control: string,
  apis: readonly string[],
  byName: Map<string, FleetRepo>,
  startedAt: number,
  listings: Listings,
  late: Array<
    StalenessResult["lateSamples"][number] & { changedAt: number; registry: string; name: string }
  >,
): Promise<void> {
  const activity = await getJson<Listings>(
    `${control}/_sim/activity?since=${startedAt - 120_000}`,
  ).catch(() => ({}) as Listings);
  const statuses = await Promise.all(
    apis.map((a) =>
      getJson<{ repositories: Array<{ name: string }> }>(`${a}/v1/repositories`).catch(() => ({
        repositories: [],
      })),
    ),
  );
  const after = (t: number, from: number) => Math.round((t - from) / 100) / 10;
  for (const l of late) {
    const times = listings[l.registry]?.[l.name] ?? [];
    l.listedAfterSeconds = times
      .filter((t) => t >= l.changedAt - 30_000)
      .map((t) => after(t, l.changedAt));
    const from = l.changedAt - 2_000 * (l.boundSeconds ?? 30);
    const spans = activity[l.registry]?.[l.name] ?? [];
    const merged: Array<[number, number]> = [];
    for (let i = 0; i + 1 < spans.length; i += 2) {
      const [start, end] = [spans[i] as number, spans[i + 1] as number];
      if (end < from || start > l.changedAt + l.seenMs) continue;
      const lastSpan = merged[merged.length - 1];
      // Spans are at most a second long; those under a second apart are one scan.
      if (lastSpan !== undefined && start - lastSpan[1] < 1000) lastSpan[1] = end;
      else merged.push([start, end]);
    }
    l.activityAfterSeconds = merged.map(([a, b]) => [after(a, l.changedAt), after(b, l.changedAt)]);
    const name = byName.get(l.repository)?.name;
    l.replicaStatusAtEnd = statuses.map((st) => st.repositories.find((r) => r.name === name));
  }
}
