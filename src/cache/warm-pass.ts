/**
 * One repository's scan (Flux v1's `Warmer.warm`, plus HEAD-first refreshes, fetching each
 * digest once per pass, tag filters before any fetch, and a lease so replicas share the work).
 */
import { setMaxListeners } from "node:events";
import type { Logger } from "pino";
import { forEachBounded } from "../bounded-parallel.js";
import type { Client, HostConditions } from "../registry/client.js";
import { artifactTag } from "./artifact-tags.js";
import { type DueTag, dropMissingImages, dueTags } from "./due-tags.js";
import { errorCode, summarizeError, TOO_MANY_REQUESTS } from "./error-summary.js";
import { StoreWriteError } from "./errors.js";
import { decodeRepositoryIndexRecord, encodeRepositoryIndexRecord } from "./index-records.js";
import type { KnownImages } from "./known-images.js";
import { upgradeFromLegacy } from "./legacy-upgrade.js";
import { NewTagFetchPlan } from "./new-tag-fetch.js";
import { decodeRepositoryRecord, type RepositoryRecord } from "./records.js";
import { MAX_REFRESH_MS } from "./refresh-policy.js";
import { LeaseLostError, RepositoryLease } from "./repository-lease.js";
import { ScanIndex } from "./scan-index.js";
import { keepTag, keepTags, needsKeeping } from "./stale-tags.js";
import { type CompiledTagFilter, compileTagFilter } from "./tag-filter.js";
import { TagRefresher } from "./tag-refresher.js";
import type { WarmContext, WarmJob } from "./warm-context.js";
import type { ErrorSummary, RepositoryScanResult, TagEvent } from "./warmer-types.js";

/**
 * The repository record's deadline (the store keeps it twice as long): as long as the
 * longest tag interval, so that a stopped warmer's last good result is served as long as
 * any of its tags are.
 */
const REPOSITORY_RECORD_LIFETIME_MS = MAX_REFRESH_MS;

/** Scanned less than this fraction of an interval ago counts as fresh (timers jitter). */
const FRESH_FRACTION = 0.8;

/** During a long scan, what was refreshed is written this often (a kill loses at most that). */
const FLUSH_EVERY_MS = 5_000;

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

/** A result with nothing done yet, for `repository` scanned from `startedAt`. */
export function emptyScanResult(repository: string, startedAt: Date): RepositoryScanResult {
  return {
    repository,
    outcome: "scanned",
    tags: 0,
    filteredOut: 0,
    refreshed: 0,
    unchanged: 0,
    fresh: 0,
    excluded: 0,
    artifacts: 0,
    errors: 0,
    newTags: [],
    movedTags: [],
    startedAt,
    durationMs: 0,
  };
}

/** One repository scan in progress: what every step of it reads and updates. */
interface Scan {
  ctx: WarmContext;
  job: WarmJob;
  result: RepositoryScanResult;
  log: Logger;
  /**
   * The scan's own controller: a 429, a refused write or a lost lease stops this repository
   * only; the caller's signal stops it too.
   */
  controller: AbortController;
  /** Whether the repository record found is the first layout's (this scan converts it). */
  legacy?: boolean;
  /** The repository's lease, held while the scan runs (given back with the record's write). */
  lease?: RepositoryLease;
  /**
   * The scan's tag events, sent when it ends: a reader acting on one then finds the change
   * in the repository's answer, which follows the record written last. (Sent as found, a
   * reader acting on one got the old answer.) As many as the tags that changed.
   */
  events: TagEvent[];
}

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
  try {
    await scanRepository(s);
  } finally {
    await taken.lease.release(ctx.finalWriteTimeoutMs);
  }
}

async function readRecord(s: Scan): Promise<RepositoryRecord | undefined> {
  const { ctx, job, log } = s;
  try {
    const key = ctx.keys.repository(job.name);
    let got = await ctx.store.get(key, { signal: job.signal });
    if (got) {
      const record = decodeRepositoryIndexRecord(got.value);
      if (record) return record;
    }
    const legacyKey = ctx.keys.legacyRepository(job.name);
    if (!got && legacyKey !== key) got = await ctx.store.get(legacyKey, { signal: job.signal });
    if (!got) return undefined;
    const record = decodeRepositoryRecord(got.value);
    if (!record) log.warn("repository record does not decode; treating it as missing");
    else s.legacy = true;
    return record;
  } catch (error) {
    if (job.signal.aborted) throw error;
    log.warn({ error: summarizeError(error) }, "could not read the repository record");
    return undefined;
  }
}

/**
 * The repository's index for this scan, converted from the first layout when the record
 * found was that layout's (`tags`: the listing whose records to convert).
 */
async function loadIndex(s: Scan, tags: readonly string[] | undefined): Promise<ScanIndex> {
  const { ctx, job, log } = s;
  const index = await ScanIndex.load(ctx, job.name, job.signal);
  if (s.legacy && tags?.length) {
    await upgradeFromLegacy({ ctx, index, name: job.name, tags, log, signal: job.signal });
  }
  return index;
}

/** What {@link finishIndex} writes back. */
interface IndexFinish {
  index: ScanIndex;
  /** The repository record found at the start (its mark of when images were last kept). */
  previous: RepositoryRecord | undefined;
  /** The tags whose entries are kept (all when undefined). */
  keep: ReadonlySet<string> | undefined;
}

/**
 * Writes the index back before the repository record: the images it names are kept alive
 * first (see ScanIndex.keepImagesAlive), then the changed buckets. Returns the images' mark
 * for the record; a refused write fails the scan (the record still says why).
 */
async function finishIndex(
  s: Scan,
  { index, previous, keep }: IndexFinish,
): Promise<Date | undefined> {
  const { ctx, result, log } = s;
  let keptAt = s.legacy ? undefined : previous?.imagesKeptAt?.getTime();
  try {
    keptAt = await index.keepImagesAlive(keptAt, s.legacy ? ctx.now() : result.startedAt.getTime());
  } catch (error) {
    log.error({ error: summarizeError(error) }, "could not keep the index's images alive");
  }
  try {
    await index.flush(keep, log);
  } catch (error) {
    const summary = summarizeError(error);
    log.error({ error: summary }, "the store refused a write");
    result.error ??= { code: "STORE_ERROR", message: summary.message };
    if (result.outcome === "scanned") result.outcome = "failed";
  }
  return keptAt === undefined ? undefined : new Date(keptAt);
}

/** Why the scan stopped early, when it was not the repository's own failure. */
function stopReason({ job, controller }: Scan): "caller" | "lease" | undefined {
  if (job.signal.aborted) return "caller";
  return controller.signal.reason instanceof LeaseLostError ? "lease" : undefined;
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
  let all: string[];
  try {
    all = await lister.tags({ signal });
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
  result.filteredOut = all.length - listed.length;
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
  const limitNow = () =>
    (hostConditions(s)?.queueDelayMs ?? 0) >= HOLD_AT_QUEUE_MS
      ? Math.min(ctx.burst, QUEUED_BURST)
      : ctx.burst;
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
    if (!flushing && index.dirty && performance.now() - flushedAt > FLUSH_EVERY_MS) {
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
  if (why === "caller") {
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
  await writeRecord(s, { previous, listed, lastError, imagesKeptAt: keptAt });
  if (result.outcome === "scanned" && !lastError) ctx.factory.succeed(job.name);
  if (result.outcome !== "aborted") {
    ctx.metrics.tagsCached.set({ repository: result.repository }, result.tags - result.errors);
  }
}

/** The scan's registry client, for its tag refreshes (and its listing, unless that goes first). */
function scanClient({ ctx, job }: Scan): Client {
  return ctx.factory.clientFor(job.name, job.creds, {
    platform: job.options.platform,
    priority: job.priority,
  });
}

/** What a {@link TagRefresher} of the scan works on besides the scan itself. */
interface RefresherInput {
  client: Client;
  index: ScanIndex;
  known: KnownImages;
  previous: RepositoryRecord | undefined;
  /** Where its counts go (the scan's result, or a trial's until it holds). */
  result: RepositoryScanResult;
  emit: (event: TagEvent) => void;
}

/** The scan's tag refresher and how it fetches new tags, once the host's history is read. */
async function tagRefresher(
  s: Scan,
  { client, index, known, previous, result, emit }: RefresherInput,
): Promise<{ plan: NewTagFetchPlan; refresher: TagRefresher }> {
  const { ctx, job, log } = s;
  const signal = s.controller.signal;
  // What the other replicas learnt of the host, before the first choice (bounded; a
  // failed read leaves this replica learning on its own).
  await ctx.hostSharingSync.ready(job.name.apiHost, signal);
  const plan = new NewTagFetchPlan({
    host: job.name.apiHost,
    repository: result.repository,
    pullQuota: () => hostConditions(s)?.pullQuota ?? false,
    indexDigests: () => index.imageDigests(),
    history: ctx.hostSharing,
  });
  const refresher = new TagRefresher({
    ctx,
    job,
    client,
    index,
    known,
    previousTags: previous?.tags,
    result,
    log,
    signal,
    plan,
    emit,
  });
  return { plan, refresher };
}

/** Records how the scan fetched its new tags (one `GET` by tag, or `HEAD` first). */
function finishPlan({ ctx }: Scan, plan: NewTagFetchPlan, result: RepositoryScanResult): void {
  plan.finish();
  if (plan.getFirst > 0) {
    result.fetchedByTag = plan.getFirst;
    ctx.metrics.newTagFetches.inc({ first: "get" }, plan.getFirst);
  }
  if (plan.headFirst > 0) ctx.metrics.newTagFetches.inc({ first: "head" }, plan.headFirst);
}

/**
 * Checks the tags a webhook says were pushed without listing the repository: a new one is
 * added after the last listing's tags, and the record keeps when the repository was last
 * listed, so its polling goes on as scheduled. Returns false, with no index entry or record
 * written, when the listing scan must run instead: a named tag's bucket unread, or a named
 * tag that fails (gone again, a 429: the listing scan handles each as it does); images
 * fetched meanwhile are stored and reused there. Throws when stopped.
 */
async function refreshNamedTags(
  s: Scan,
  {
    previous,
    lastListing,
    filter,
  }: { previous: RepositoryRecord; lastListing: string[]; filter: CompiledTagFilter },
): Promise<boolean> {
  const { ctx, job, result, log } = s;
  const named = filter([...new Set(job.options.onlyTags)]);
  if (named.length === 0) {
    // Every named tag filtered out: nothing here changes.
    result.unlisted = true;
    result.tags = lastListing.length;
    return true;
  }
  const index = await ScanIndex.load(ctx, job.name, job.signal);
  if (named.some((tag) => index.unread(tag))) return false;
  const before = new Set(lastListing);
  const added = named.filter((tag) => !before.has(tag));
  const tags = added.length > 0 ? [...lastListing, ...added] : lastListing;
  index.setOrder(tags);
  // Counted apart, and events held apart, until every named tag is in.
  const trial = emptyScanResult(result.repository, result.startedAt);
  const { due, known } = dueTags({
    ctx,
    index,
    tags: named,
    result: trial,
    log,
    everyTagDue: true,
  });
  await dropMissingImages({ ctx, due, known, log, signal: s.controller.signal });
  const events: TagEvent[] = [];
  const { plan, refresher } = await tagRefresher(s, {
    client: scanClient(s),
    index,
    known,
    previous,
    result: trial,
    emit: (event) => events.push(event),
  });
  let failed: unknown;
  await forEachBounded(due, { limit: ctx.burst, signal: s.controller.signal }, async (item) => {
    await refresher.refresh(item).catch((error: unknown) => {
      failed ??= error;
    });
  });
  s.controller.signal.throwIfAborted();
  if (failed !== undefined) {
    log.debug({ error: summarizeError(failed) }, "a pushed tag's check failed; listing instead");
    return false;
  }
  finishPlan(s, plan, trial);
  result.unlisted = true;
  result.tags = tags.length;
  result.filteredOut = previous.filteredOut ?? 0;
  result.artifacts = (previous.artifactTags ?? 0) + countArtifactTags(added);
  result.refreshed = trial.refreshed;
  result.unchanged = trial.unchanged;
  result.excluded = trial.excluded;
  result.fresh = tags.length - due.length;
  result.newTags = trial.newTags;
  result.movedTags = trial.movedTags;
  if (trial.fetchedByTag !== undefined) result.fetchedByTag = trial.fetchedByTag;
  s.events.push(...events);
  const keptAt = await finishIndex(s, { index, previous, keep: new Set(tags) });
  await writeRecord(s, {
    previous,
    listed: tags,
    lastError: undefined,
    imagesKeptAt: keptAt,
    unlisted: true,
  });
  return true;
}

/**
 * After a failed listing, keeps the previous listing's tags that are due: without this a
 * long outage would let the store expire every value the repository had.
 */
async function keepPreviousTags(
  s: Scan,
  previous: RepositoryRecord | undefined,
  error: ErrorSummary,
): Promise<Date | undefined> {
  const { ctx, job, log } = s;
  if (!previous?.tags?.length) return previous?.imagesKeptAt;
  try {
    const index = await loadIndex(s, previous.tags);
    index.setOrder(previous.tags);
    const scratch = emptyScanResult(job.name.toString(), new Date(ctx.now()));
    const { due } = dueTags({ ctx, index, tags: previous.tags, result: scratch, log });
    keepTags({ ctx, job, index, error }, due);
    return await finishIndex(s, { index, previous, keep: undefined });
  } catch (e) {
    if (!job.signal.aborted) log.error({ error: summarizeError(e) }, "could not keep stale tags");
    return previous.imagesKeptAt;
  }
}

/** What the factory knows of the repository's host; a factory that fails to say is ignored. */
function hostConditions({ ctx, job, log }: Scan): HostConditions | undefined {
  try {
    return ctx.factory.hostConditions?.(job.name);
  } catch (error) {
    log.debug({ error: summarizeError(error) }, "could not learn the host's conditions");
    return undefined;
  }
}

/** How many of the listed tags are artifacts (signatures, attestations, SBOMs, referrers). */
function countArtifactTags(tags: readonly string[]): number {
  let n = 0;
  for (const tag of tags) if (tag.startsWith("sha256-") && artifactTag(tag)) n++;
  return n;
}

/**
 * Ends a scan stopped by the caller or by a lost lease. Neither is the repository's fault,
 * so its record keeps what it had; after a lost lease the new holder writes it.
 */
function endStopped({ result, controller, log }: Scan, why: "caller" | "lease"): void {
  if (why === "lease") {
    result.outcome = "failed";
    result.error = summarizeError(controller.signal.reason);
    log.warn({ error: result.error }, "lost the repository lease mid-scan; stopped");
  } else {
    result.outcome = "aborted";
  }
}

/** What {@link writeRecord} writes, besides the scan's result. */
interface RecordWrite {
  /** The record found at the start: what a failed or stopped scan keeps of it. */
  previous: RepositoryRecord | undefined;
  /** The tags listed now; undefined when the listing failed (the previous ones are kept). */
  listed: string[] | undefined;
  lastError: ErrorSummary | undefined;
  /** When the index's images were last all kept alive (see finishIndex). */
  imagesKeptAt: Date | undefined;
  /**
   * `listed` is the last listing plus pushed tags checked without a listing: when the
   * repository was last listed and scanned stays as `previous` says.
   */
  unlisted?: boolean;
}

/**
 * Writes the repository record back, whatever happened (Flux v1 did too), after the tag
 * records of the scan, and with it gives the lease back where the store can (the scan's
 * last store work). A record the store refuses fails the scan.
 */
async function writeRecord(
  { ctx, job, result, log, lease }: Scan,
  { previous, listed, lastError, imagesKeptAt, unlisted = false }: RecordWrite,
): Promise<void> {
  const now = ctx.now();
  // An aborted scan did not cover the repository, so another warmer should not skip it;
  // nor did one of pushed tags alone.
  const uncovered = result.outcome === "aborted" || unlisted;
  const record: RepositoryRecord = {
    tags: listed ?? previous?.tags,
    filteredOut: listed && !unlisted ? result.filteredOut : previous?.filteredOut,
    lastUpdate: listed && !unlisted ? new Date(now) : previous?.lastUpdate,
    // A stop is not the repository's fault: keep what was known about it.
    lastError: uncovered ? previous?.lastError : lastError && { ...lastError, at: new Date(now) },
    lastScanned: uncovered ? previous?.lastScanned : result.startedAt,
    scannedBy: uncovered ? previous?.scannedBy : ctx.owner,
  };
  // Absent, not zero, when there are none.
  const artifactTags = listed ? result.artifacts : previous?.artifactTags;
  if (artifactTags) record.artifactTags = artifactTags;
  if (imagesKeptAt) record.imagesKeptAt = imagesKeptAt;
  // Its deadline is not used for scheduling (lastScanned is); see REPOSITORY_RECORD_LIFETIME_MS.
  const deadline = new Date(now + Math.max(job.intervalMs, REPOSITORY_RECORD_LIFETIME_MS));
  const write = {
    key: ctx.keys.repository(job.name),
    deadline,
    value: encodeRepositoryIndexRecord(record),
  };
  // The scan's last store write: where the store can, the lease goes back with it.
  const signal = ctx.writeTimeout.signal();
  try {
    if (lease) await lease.writeThenRelease(write, signal);
    else await ctx.store.set(write.key, write.deadline, write.value, { signal });
  } catch (error) {
    const summary = summarizeError(error);
    log.error({ error: summary }, "could not write the repository record");
    result.error ??= { code: "STORE_ERROR", message: summary.message };
    if (result.outcome === "scanned") result.outcome = "failed";
  }
}
