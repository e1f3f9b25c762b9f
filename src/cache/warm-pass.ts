/**
 * One repository's scan (Flux v1's `Warmer.warm`, plus HEAD-first refreshes, fetching each
 * digest once per pass, tag filters before any fetch, and a lease so replicas share the work).
 */
import { setMaxListeners } from "node:events";
import { forEachBounded } from "../bounded-parallel.js";
import { type DueTag, dropMissingImages, dueTags } from "./due-tags.js";
import { errorCode, summarizeError, TOO_MANY_REQUESTS } from "./error-summary.js";
import { StoreWriteError } from "./errors.js";
import { refreshNamedTags } from "./named-tag-refresh.js";
import type { RepositoryRecord } from "./records.js";
import { RepositoryLease } from "./repository-lease.js";
import type { ScanIndex } from "./scan-index.js";
import {
  countArtifactTags,
  emptyScanResult,
  endStopped,
  finishIndex,
  finishPlan,
  hostConditions,
  keepPreviousTags,
  loadIndex,
  readRecord,
  type Scan,
  scanClient,
  stopReason,
  tagRefresher,
  writeRecord,
} from "./scan-steps.js";
import { watchForYield } from "./scan-yield.js";
import { keepTag, keepTags, needsKeeping } from "./stale-tags.js";
import { type CompiledTagFilter, compileTagFilter } from "./tag-filter.js";
import type { WarmContext, WarmJob } from "./warm-context.js";
import type { ErrorSummary, RepositoryScanResult, TagEvent } from "./warmer-types.js";

/** Scanned less than this fraction of an interval ago counts as fresh (timers jitter). */
const FRESH_FRACTION = 0.8;

/**
 * During a long scan, what was refreshed is written this often (a kill loses at most that),
 * for an index of up to {@link FLUSH_ENTRIES} entries; a larger one less often, in proportion
 * to its size, up to {@link MAX_FLUSH_EVERY_MS}. A flush re-sorts and re-encodes every bucket
 * a change touched, and a few refreshes touch them all: every 5 s, a 20,000-tag scan
 * re-sorted its 20,000 entries by the listing and encoded and wrote 2.2 MB (13 ms of CPU to
 * encode alone) over a scan of many minutes, and such flushes were 6% of a replica's CPU
 * samples mid-way through a 2,000,000-tag fill (a tenth of what it allocated).
 */
const FLUSH_EVERY_MS = 5_000;
const FLUSH_ENTRIES = 2_000;
const MAX_FLUSH_EVERY_MS = 60_000;

/** How long a scan whose index holds `entries` waits between two writes of it. */
export function flushEveryMs(entries: number): number {
  return Math.min(MAX_FLUSH_EVERY_MS, FLUSH_EVERY_MS * Math.max(1, entries / FLUSH_ENTRIES));
}

/**
 * Once a request to the host would wait this long for its budget, a scan starts a new tag
 * refresh only while fewer than {@link QUEUED_BURST} of its own are in flight: more would
 * only wait in the budget's queue, each holding a refresh's whole chain of calls (about
 * 40 KB: at 10,000 repositories, 800 of them waiting were a third of a replica's heap),
 * and the queue keeps the budget spent as it is.
 */
const HOLD_AT_QUEUE_MS = 200;
/** Tag refreshes one scan keeps in flight while its host's budget has a queue. */
const QUEUED_BURST = 4;
/**
 * How long a scan keeps the limit it worked out from its host's queue: it is asked before
 * every tag started, and each answer rolls the host's budget and builds its conditions
 * (those answers and the new tags' questions of the pull quota were a twentieth of what a
 * replica allocated mid-fill at 2,000,000 tags, a heap sampling profile), while a queue of
 * 200 ms does not come or go in less.
 */
const LIMIT_REUSE_MS = 100;

/**
 * Scans one repository under its lease; never throws (every failure ends in the result
 * and, where the store can take it, in the repository record).
 */
export async function warmRepository(
  ctx: WarmContext,
  job: WarmJob,
): Promise<RepositoryScanResult> {
  const started = performance.now();
  const result = emptyScanResult(job.name.toString(), new Date(ctx.now()));
  const log = ctx.logger.child({ repository: result.repository });
  const controller = new AbortController();
  // Every request in flight listens on this signal: `burst` tag refreshes, each twice at most
  // (the manifest load it shares and its request, queued or sent), and up to four times
  // `storeConcurrency` store writes (scan-index.ts) are expected, not a leak (150 warned).
  setMaxListeners(2 * ctx.burst + 4 * ctx.storeConcurrency + 16, controller.signal);
  const onAbort = () => controller.abort(job.signal.reason);
  if (job.signal.aborted) onAbort();
  job.signal.addEventListener("abort", onAbort, { once: true });
  const events: TagEvent[] = [];
  try {
    await scanUnderLease({ ctx, job, result, log, controller, events });
  } finally {
    job.signal.removeEventListener("abort", onAbort);
    // Whatever the outcome: once a change's image and index entry are stored, the next scan
    // does not find it again, so its event would be lost.
    for (const event of events) ctx.events.emit(event);
  }
  result.durationMs = performance.now() - started;
  const label = result.outcome.startsWith("skipped") ? "skipped" : result.outcome;
  ctx.metrics.repositoriesScanned.inc({ result: label === "scanned" ? "ok" : label });
  return result;
}

async function scanUnderLease(s: Scan): Promise<void> {
  const { ctx, job, result, log } = s;
  let taken: Awaited<ReturnType<typeof RepositoryLease.take>>;
  try {
    taken = await RepositoryLease.take({
      store: ctx.store,
      key: ctx.keys.lease(job.name),
      holderKey: ctx.keys.leaseHolder(job.name),
      owner: ctx.owner,
      ttlMs: ctx.leaseTtlMs,
      log,
      onLost: (lost) => s.controller.abort(lost),
      signal: job.signal,
      now: ctx.now,
    });
  } catch {
    result.outcome = "aborted";
    return;
  }
  if (!taken.taken && taken.held) {
    log.debug("another warmer holds the lease; skipping");
    result.outcome = "skipped-lease";
    if (taken.holder) {
      const { host, pid, since } = taken.holder;
      result.leaseHolder = { host, pid, since };
    }
    return;
  }
  if (!taken.taken) {
    // Without the lease another replica may be scanning it, and what this scan fetched
    // could not be stored anyway: fail it (registry requests saved) and try next time.
    // The record is not written either: the store just failed to answer.
    result.outcome = "failed";
    result.error = {
      code: "STORE_ERROR",
      message: `could not take the repository lease: ${summarizeError(taken.error).message}`,
    };
    log.error({ error: result.error }, "could not take the repository lease; not scanning");
    return;
  }
  s.lease = taken.lease;
  const endWatch =
    job.yieldAfterMs === undefined
      ? undefined
      : watchForYield({
          ctx,
          name: job.name,
          startedAt: result.startedAt.getTime(),
          afterMs: job.yieldAfterMs,
          local: job.yieldAsked,
          stop: (reason) => {
            result.yielded = true;
            log.info({ to: reason.to }, "giving the lease up to a refresh waiting for it");
            s.controller.abort(reason);
          },
        });
  try {
    await scanRepository(s);
  } finally {
    endWatch?.();
    await taken.lease.release(ctx.finalWriteTimeoutMs);
  }
}

async function scanRepository(s: Scan): Promise<void> {
  const { ctx, job, result, log } = s;
  let previous: RepositoryRecord | undefined;
  try {
    previous = await readRecord(s);
  } catch {
    result.outcome = "aborted";
    return;
  }
  if (
    !job.force &&
    !s.legacy &&
    previous?.lastScanned &&
    ctx.now() - previous.lastScanned.getTime() < job.intervalMs * FRESH_FRACTION
  ) {
    result.outcome = "skipped-fresh";
    return;
  }

  let filter: CompiledTagFilter;
  try {
    filter = compileTagFilter(job.options.tagFilter);
  } catch (error) {
    result.outcome = "failed";
    result.error = summarizeError(error);
    log.error({ error: result.error }, "the repository's tag filter is invalid");
    const keptAt = await keepPreviousTags(s, previous, result.error);
    await writeRecord(s, {
      previous,
      listed: undefined,
      lastError: result.error,
      imagesKeptAt: keptAt,
    });
    return;
  }

  // A tag filter that keeps the newest few decides on the whole listing: a push may drop another.
  const whole = job.options.tagFilter?.maxTags !== undefined;
  if (job.skipListing && previous?.tags && !s.legacy && !whole) {
    try {
      if (await refreshNamedTags(s, { previous, lastListing: previous.tags, filter })) return;
    } catch {
      // Stopped (the caller, a lost lease): the listing below ends the scan the usual way.
    }
  }

  const signal = s.controller.signal;
  let repoError: ErrorSummary | undefined;
  let lastTagError: ErrorSummary | undefined;
  const client = scanClient(s);
  const lister =
    job.listPriority && job.priority !== true
      ? ctx.factory.clientFor(job.name, job.creds, {
          platform: job.options.platform,
          priority: true,
        })
      : client;
  const reused = reusableListing(s, previous);
  if (reused && previous?.lastUpdate) result.reusedListingOf = previous.lastUpdate;
  let all: string[];
  try {
    all = reused ?? (await lister.tags({ signal }));
  } catch (error) {
    const why = stopReason(s);
    if (why) return endStopped(s, why);
    repoError = summarizeError(error);
    result.outcome = "failed";
    result.error = repoError;
    log.warn({ error: repoError }, "listing tags failed");
    const keptAt = await keepPreviousTags(s, previous, repoError);
    await writeRecord(s, {
      previous,
      listed: undefined,
      lastError: repoError,
      imagesKeptAt: keptAt,
    });
    return;
  }
  job.onListed?.(all.length);
  const listed = filter(all);
  result.tags = listed.length;
  result.filteredOut = reused ? (previous?.filteredOut ?? 0) : all.length - listed.length;
  result.artifacts = countArtifactTags(listed);

  let index: ScanIndex;
  try {
    index = await loadIndex(s, previous?.tags);
  } catch {
    result.outcome = "aborted";
    return;
  }
  index.setOrder(listed);
  const { due, known } = dueTags({
    ctx,
    index,
    tags: listed,
    result,
    log,
    everyTagDue: job.checkAll,
    onlyTags: job.options.onlyTags,
    checkedWithinMs: job.tagCheckMs,
    previousScanEndedAt: previous?.lastUpdate?.getTime(),
  });
  try {
    await dropMissingImages({ ctx, due, known, log, signal });
  } catch {
    // Stopped: the loop below starts nothing and the stop is handled after it.
  }
  const total = due.length;
  let done = 0;
  job.onProgress?.({ total, done });
  const { plan, refresher } = await tagRefresher(s, {
    client,
    index,
    known,
    previous,
    result,
    emit: (event) => s.events.push(event),
  });
  let flushedAt = performance.now();
  let flushing: Promise<void> | undefined;
  /**
   * Due tags not yet written (refreshed, or kept after their own error), kept below; each
   * leaves as it is written, so that a 46,000-tag rescan does not hold them all to its end.
   */
  const unwritten: (DueTag | undefined)[] = due;
  let storeRefused = false;
  let limit = ctx.burst;
  let limitAt = Number.NEGATIVE_INFINITY;
  const limitNow = () => {
    const now = performance.now();
    if (now - limitAt < LIMIT_REUSE_MS) return limit;
    limitAt = now;
    const queued = (hostConditions(s)?.queueDelayMs ?? 0) >= HOLD_AT_QUEUE_MS;
    limit = queued ? Math.min(ctx.burst, QUEUED_BURST) : ctx.burst;
    return limit;
  };
  await forEachBounded(due.keys(), { limit: ctx.burst, limitNow, signal }, async (at) => {
    const item = due[at] as DueTag;
    const { tag } = item;
    try {
      await refresher.refresh(item);
      unwritten[at] = undefined;
    } catch (error) {
      if (stopReason(s)) return;
      if (errorCode(error) === TOO_MANY_REQUESTS) {
        if (!repoError) log.warn("rate limited; abandoning the repository until its next scan");
        repoError ??= summarizeError(error);
        s.controller.abort(error);
      } else if (error instanceof StoreWriteError) {
        storeRefused = true;
        if (!repoError) log.error({ error: summarizeError(error) }, "the store refused a write");
        repoError ??= summarizeError(error);
        s.controller.abort(error);
      } else if (!signal.aborted) {
        result.errors++;
        const tagError = summarizeError(error);
        lastTagError = tagError;
        log.warn({ tag, error: tagError }, "refreshing a tag failed");
        if (needsKeeping(item, job, ctx.now())) {
          keepTag({ ctx, job, index, error: tagError }, item);
        }
        unwritten[at] = undefined;
      }
    } finally {
      job.onProgress?.({ total, done: ++done });
    }
    // A long scan writes what it has now and then, so that a kill loses little of it.
    // The index's size (a sum over its buckets) only once the shortest wait is over.
    const waited = performance.now() - flushedAt;
    if (!flushing && index.dirty && waited > FLUSH_EVERY_MS && waited > flushEveryMs(index.size)) {
      flushing = index
        .flush(undefined, log)
        .catch((error: unknown) => {
          log.warn({ error: summarizeError(error) }, "could not write the index mid-scan");
        })
        .finally(() => {
          flushedAt = performance.now();
          flushing = undefined;
        });
      await flushing;
    }
  });
  await flushing;
  finishPlan(s, plan, result);
  const why = stopReason(s);
  if (why === "lease") return endStopped(s, why);
  if (why === "caller" || why === "yield") {
    result.outcome = "aborted";
  } else if (repoError) {
    result.outcome = "failed";
    result.errors += total - done;
  }
  const lastError = repoError ?? lastTagError;
  if (lastError) result.error = lastError;
  // A 429 stopped the pass: what it did not reach keeps its last value. (After a refused
  // write the store would refuse these too, each after a timeout.)
  if (repoError && why !== "caller" && !storeRefused) {
    const unsettled = unwritten.filter((item) => item !== undefined);
    keepTags({ ctx, job, index, error: repoError }, unsettled);
  }
  // Images are written by now, the buckets next and the repository record last: a kill in
  // between leaves the previous listing over entries whose images are whole, never a
  // listing or an index naming what was never written. Entries of tags in neither listing
  // are dropped from the buckets rewritten.
  const keep = new Set(listed);
  for (const tag of previous?.tags ?? []) keep.add(tag);
  const keptAt = storeRefused
    ? previous?.imagesKeptAt
    : await finishIndex(s, { index, previous, keep });
  await writeRecord(s, {
    previous,
    listed,
    lastError,
    imagesKeptAt: keptAt,
    reusedListing: reused !== undefined,
  });
  if (result.outcome === "scanned" && !lastError) ctx.factory.succeed(job.name);
  if (result.outcome !== "aborted") {
    ctx.metrics.tagsCached?.set({ repository: result.repository }, result.tags - result.errors);
  }
}

/**
 * The listing the scan before wrote, when that scan gave its lease up to a refresh and listed
 * no longer ago than the warmer allows (`WarmJob.reuseListingSince`): this scan goes on with
 * its polling where that one stopped, without listing the repository again.
 */
function reusableListing(s: Scan, previous: RepositoryRecord | undefined): string[] | undefined {
  const since = s.job.reuseListingSince;
  const listedAt = previous?.lastUpdate?.getTime();
  if (since === undefined || s.legacy || !previous?.tags || listedAt === undefined)
    return undefined;
  return listedAt >= since ? previous.tags.slice() : undefined;
}
