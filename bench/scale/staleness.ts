/**
 * Staleness under churn for bench:scale: how long each change the simulator makes takes to
 * show through regscan's API, polling only or with webhooks, judged against the interval
 * that scheduled the scan that saw it.
 */
import { setTimeout as sleep } from "node:timers/promises";
import PQueue from "p-queue";
import type { Change } from "../sim/churn.js";
import type { Listings } from "../sim/listings.js";
import { watchEvents } from "./event-watch.js";
import { type FleetRepo, getJson, percentile, readHeaders, readTagDigest } from "./measure.js";

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
   * last one, whatever the interval was when the change happened. With webhooks, an event's
   * read asks no intervals (see `readOnce`): a change it sees is judged by what the rounds'
   * reads saw of the repository, and one they never read has no bound (counted within).
   */
  withinInterval: number;
  /**
   * From the change to the first tag event of it on replica-0's `/v1/events` (p50 / p99, of
   * the changes seen): how much of the staleness is regscan's scan, and how much the write
   * and this bench's read after it.
   */
  eventP50Ms: number;
  eventP99Ms: number;
  /**
   * This bench's reads of a changed repository (p50 / p99): the wait for one of
   * {@link READS_IN_FLIGHT}, and the read itself (every replica's headers, then replica-0's
   * changed tags; an event's read with webhooks, the tags alone). A staleness figure far past
   * the tag events is then told apart: this bench's queue, or replica-0's answers.
   */
  readWaitP50Ms: number;
  readWaitP99Ms: number;
  readP50Ms: number;
  readP99Ms: number;
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

/**
 * Reads of replica-0 in flight at most, the rounds' and the events' together: as many as the
 * rounds alone made before events drove reads too. Unbounded (one per event in flight,
 * beside the rounds' 8), a 10,000-repository run's staleness phase took replica-0 to its heap
 * limit (a snapshot near it: answer builds reading image records).
 */
const READS_IN_FLIGHT = 8;
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
 * that shows it through the API of `apis[0]` (`GET /v1/images/{name}:{tag}`, the changed tag's
 * digest; the repositories' headers give their intervals): reads at once on a tag event of its repository
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
  const hooked = opts.webhookUrl !== undefined;
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
  const reads = new PQueue({ concurrency: READS_IN_FLIGHT });
  const readWaitMs: number[] = [];
  const readMs: number[] = [];
  const check = async (key: string, onEvent = false): Promise<void> => {
    if (reading.has(key)) {
      again.add(key);
      return;
    }
    reading.add(key);
    try {
      do {
        again.delete(key);
        const cs = waitingIn(key);
        // Reads on an event go ahead of the rounds' (their change may just have shown).
        const queued = performance.now();
        const read = () => {
          readWaitMs.push(performance.now() - queued);
          return readOnce(key, cs, onEvent && hooked);
        };
        if (cs.length > 0) await reads.add(read, { priority: onEvent ? 1 : 0 });
      } while (again.has(key));
    } finally {
      reading.delete(key);
    }
  };
  const readOnce = async (key: string, cs: Tracked[], tagsOnly: boolean): Promise<void> => {
    const repo = byName.get(key);
    if (repo === undefined) return;
    const started = performance.now();
    try {
      // The other replicas' headers first: a scan that ends between the two reads then
      // shows in the body, not in a header read after it (which may already say the
      // interval that scan set for the next one). Not for an event's read with webhooks
      // (`tagsOnly`): their intervals bound only polling, and those reads, a HEAD of the
      // repository on every replica before replica-0's tags, made the bench its own
      // bottleneck at 2,000,000 tags (tag events at p99 3.9 s, changes read at p99 32.3 s,
      // of which 31.6 s waiting for one of the 8 reads in flight).
      const none = { intervalSeconds: undefined, staleSeconds: undefined };
      const rest = tagsOnly
        ? []
        : await Promise.all(others.map((o) => readHeaders(o, repo.name).catch(() => none)));
      const { intervalSeconds, staleSeconds } = tagsOnly ? none : await readHeaders(api, repo.name);
      // Each change's own tag, not the whole repository: a 40,000-tag repository's answer
      // took seconds to build and send on a saturated replica, and its reads (8 in flight)
      // held up the others', so the bench measured its own queue (10,000 repositories:
      // tag events at p99 5.8 s, changes read at p99 34.7 s).
      const digests = await Promise.all(cs.map((c) => readTagDigest(api, repo.name, c.tag)));
      readMs.push(performance.now() - started);
      const now = Date.now();
      const intervals = tagsOnly ? [] : [intervalSeconds, ...rest.map((r) => r.intervalSeconds)];
      for (const [n, c] of cs.entries()) {
        if (c.intervalAtChangeSeconds === undefined && intervalSeconds !== undefined) {
          c.intervalAtChangeSeconds = intervalSeconds;
        }
        if (!tagsOnly) {
          c.timeline ??= intervals.map(() => []);
          intervals.forEach((v, i) => {
            const line = c.timeline?.[i];
            if (line !== undefined && line[line.length - 1]?.[1] !== v) {
              line.push([Math.round((now - c.at) / 100) / 10, v]);
            }
          });
        }
        if (digests[n] === c.digest) {
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
        } else if (!tagsOnly) {
          c.intervalsBefore = intervals;
          if (staleSeconds !== undefined) c.staleSeconds = staleSeconds;
        }
      }
    } catch {
      // asked again next round
    }
  };
  // A tag event names a repository whose change shows now (events go out after the scan's
  // record write): read it at once, and a few times more while a tracked change of it is
  // not shown yet (one the event's scan listed too early to include, e.g. a second move).
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
          await check(key, true);
          if (tag === undefined || change()?.seenMs !== undefined) return;
          await sleep(EVENT_READ_PAUSE_MS);
        }
      })();
    },
    eventsGone.signal,
  );
  // The churn stops on time whatever the reads do: stopped from the loop, a round of slow
  // reads (large repositories at 1,000,000 tags) kept it going for 12 minutes, not 30 s.
  const stopChurn = async () => {
    stopped ??= (
      await getJson<{ webhooks: unknown }>(`${control}/_sim/churn`, { method: "DELETE" })
    ).webhooks;
  };
  let stopping: Promise<void> | undefined;
  const churnTimer = setTimeout(
    () => {
      stopping = stopChurn();
    },
    Math.max(0, churnEnds - Date.now()),
  );
  while (Date.now() < deadline) {
    if (Date.now() - stretchSampledAt >= STRETCH_SAMPLE_MS) await sampleStretch();
    await learnChanges();
    const waiting = [...latest.values()].filter((c) => c.seenMs === undefined);
    if (stopped !== undefined && waiting.length === 0) break;
    const keys = new Set(waiting.map((c) => `${c.registry}/${c.repository}`));
    // The shared queue bounds the reads; an event's read goes ahead of the round's. A round
    // waits no longer than the phase: its reads go on, the next round skips what they hold.
    await Promise.race([
      Promise.all([...keys].map((key) => check(key))),
      sleep(Math.max(0, deadline - Date.now())),
    ]);
    await sleep(500);
  }
  clearTimeout(churnTimer);
  await stopping;
  // A phase shorter than its churn (a grace of 0) ends before the timer fires.
  await stopChurn();
  eventsGone.abort();
  // Reads still queued would land in the next phase's load; those under way finish.
  reads.clear();
  await followed;
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
    readWaitP50Ms: Math.round(percentile(readWaitMs, 50)),
    readWaitP99Ms: Math.round(percentile(readWaitMs, 99)),
    readP50Ms: Math.round(percentile(readMs, 50)),
    readP99Ms: Math.round(percentile(readMs, 99)),
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
