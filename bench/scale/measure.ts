/**
 * What the scale bench measures, against the simulator's control API (ground truth and
 * request counts) and regscan's HTTP API: cache completeness, request windows and API
 * latency under concurrent readers (staleness of churned tags: staleness.ts). Every loop is
 * bounded in time.
 */
import { Worker } from "node:worker_threads";
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

/** An answer checked that was not the JSON of the repository asked for. */
export interface Misfit {
  name: string;
  zipped: boolean;
  bytes: number;
  /** Its `Content-Length`. */
  length?: string;
  why: string;
}

/** What the readers' thread posts back (api-readers.mjs). */
interface ReadersResult {
  latencies: number[];
  askedAt: number[];
  /** The index in `apis` of the replica that answered each. */
  replicaOf: number[];
  byStatus: Record<string, number>;
  errors: number;
  /** Answers that came gzip-encoded (the readers ask for gzip). */
  gzipped: number;
  /** Answers checked that were not the repository's JSON; the first few, and why. */
  misfitCount: number;
  misfits: Misfit[];
  /** Why the first few requests that failed did. */
  failures: string[];
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
  /** The answer's length (characters of its JSON). */
  bytes: number;
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
    bytes: text.length,
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

/**
 * The digest replica `api` answers for one tag (`GET /v1/images/{name}:{tag}`), or undefined
 * when it has none yet: what a reader of that tag sees, at the cost of one image's answer
 * rather than the whole repository's (megabytes for a 40,000-tag one).
 */
export async function readTagDigest(
  api: string,
  name: string,
  tag: string,
): Promise<string | undefined> {
  const res = await fetch(`${api}/v1/images/${name}:${tag}`, {
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status !== 200) return undefined;
  return (JSON.parse(text) as { digest?: string }).digest;
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
  /** What watching the fill asked of the replica it reads through. */
  observer: FillObserverCost;
}

/**
 * The bench's own reads through replica-0 to tell when the fill is complete: they cost that
 * replica CPU the others spend on the fill, so the report says how much was read.
 */
export interface FillObserverCost {
  statusLists: number;
  statusBytes: number;
  /** Reads of repositories whose last scan listed all their tags, and their bytes. */
  finishedReads: number;
  finishedBytes: number;
  /** Of those, ones that did not yet show every tag with its digest. */
  finishedShort: number;
  /** Reads of the others (for the fill's progress), and their bytes. */
  progressReads: number;
  progressBytes: number;
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
async function tagCounts(
  api: string,
  cost: FillObserverCost,
): Promise<Map<string, number> | undefined> {
  try {
    const res = await fetch(`${api}/v1/repositories`, { signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    cost.statusLists++;
    cost.statusBytes += text.length;
    if (res.status !== 200) return undefined;
    const { repositories } = JSON.parse(text) as {
      repositories: Array<{ name: string; tagCount?: number }>;
    };
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
  const observer: FillObserverCost = {
    statusLists: 0,
    statusBytes: 0,
    finishedReads: 0,
    finishedBytes: 0,
    finishedShort: 0,
    progressReads: 0,
    progressBytes: 0,
  };
  for (let round = 0; pending.size > 0 && Date.now() < deadline; round++) {
    await onTick({ visibleTags: seen(), tags, completed });
    if (pending.size <= FEW_PENDING || Date.now() - statusAt >= statusEveryMs) {
      statusAt = Date.now();
      counts = await tagCounts(api, observer);
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
      const wasFinished = finished(repo);
      try {
        const { body, bytes } = await readRepository(api, repo.name);
        const c = compareToTruth(repo, body);
        visible.set(repo.name, c.matching);
        const whole = c.matching === repo.truth.size && c.extra === 0 && c.duplicates === 0;
        if (wasFinished) {
          observer.finishedReads++;
          observer.finishedBytes += bytes;
          if (!whole) observer.finishedShort++;
        } else {
          observer.progressReads++;
          observer.progressBytes += bytes;
        }
        if (whole) {
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
    observer,
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

/** The simulator's counts over the last three hours (all it keeps: a full fill's windows). */
export function simStats(control: string): Promise<SimStats> {
  return getJson<SimStats>(`${control}/_sim/stats?seconds=10800`);
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

/** Over-budget windows described one by one, at most this many per registry. */
const OVER_LISTED = 20;

/**
 * The most requests in any 10 s window (sliding by a second) within [from, to], how many
 * windows exceed `limit`, and the first of those: their start (epoch second) and count.
 */
export function windows(perSecond: SecondCounts[], from: number, to: number, limit: number) {
  const first = Math.floor(from / 1000);
  const last = Math.floor(to / 1000);
  const counts = new Map(perSecond.map((c) => [c.second, c.total]));
  let max = 0;
  let violations = 0;
  const over: Array<{ second: number; requests: number }> = [];
  for (let start = first; start + 9 <= Math.max(last, first + 9); start++) {
    let sum = 0;
    for (let s = start; s < start + 10; s++) sum += counts.get(s) ?? 0;
    max = Math.max(max, sum);
    if (sum > limit) {
      violations++;
      if (over.length < OVER_LISTED) over.push({ second: start, requests: sum });
    }
  }
  return { max, violations, over };
}

export interface ApiLoadResult {
  answers: number;
  ok: number;
  byStatus: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  /** Answers that came gzip-encoded (the readers ask for gzip; one in 64 is unzipped and checked). */
  gzipped: number;
  /** Answers checked that were not the repository's JSON; the first few, and why. */
  misfitCount: number;
  misfits: Misfit[];
  /** Why the first few requests that failed (`errors`) did. */
  failures: string[];
  /**
   * The readers' own event-loop delay (their thread's), ms (p99 and max over the load;
   * 10 ms resolution): a latency is measured on that loop too.
   */
  clientLoop: { p99Ms: number; maxMs: number };
  /** The slowest 2% of the 200 answers (at least 10): when each was asked, its latency, and the replica's index. */
  slowest: Array<{ atSeconds: number; ms: number; replica: number }>;
  /** Per replica (by its index in the readers' list): its 200 answers and their p50 / p99. */
  byReplica: Array<{ answers: number; p50Ms: number; p99Ms: number }>;
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

/** The latencies of each replica's answers, by the replica's index. */
function replicaLatencies(latencies: number[], replicaOf: number[]): number[][] {
  const out: number[][] = [];
  latencies.forEach((ms, i) => {
    const r = replicaOf[i] as number;
    const mine = out[r] ?? [];
    mine.push(ms);
    out[r] = mine;
  });
  return Array.from(out, (ms) => ms ?? []);
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
    gzipped: got.gzipped,
    misfitCount: got.misfitCount,
    misfits: got.misfits,
    failures: got.failures,
    clientLoop: { p99Ms: round(got.loop.p99Ms), maxMs: round(got.loop.maxMs) },
    byReplica: replicaLatencies(latencies, got.replicaOf).map((ms) => ({
      answers: ms.length,
      p50Ms: round(percentile(ms, 50)),
      p99Ms: round(percentile(ms, 99)),
    })),
    slowest: latencies
      .map((ms, i) => ({
        atSeconds: round((askedAt[i] as number) / 1000),
        ms: round(ms),
        replica: got.replicaOf[i] as number,
      }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, Math.max(10, Math.ceil(latencies.length / 50))),
  };
}
