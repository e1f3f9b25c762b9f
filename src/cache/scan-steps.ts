/**
 * The steps a repository scan is made of, shared by the listing scan (warm-pass.ts) and the
 * check of pushed tags without a listing (named-tag-refresh.ts): the scan's state, its
 * record read and written, its index loaded and written back, its client and tag refresher.
 */
import type { Logger } from "pino";
import type { Client, HostConditions } from "../registry/client.js";
import { artifactTag } from "./artifact-tags.js";
import { dueTags } from "./due-tags.js";
import { summarizeError } from "./error-summary.js";
import { decodeRepositoryIndexRecord, encodeRepositoryIndexRecord } from "./index-records.js";
import type { KnownImages } from "./known-images.js";
import { upgradeFromLegacy } from "./legacy-upgrade.js";
import { NewTagFetchPlan } from "./new-tag-fetch.js";
import { decodeRepositoryRecord, type RepositoryRecord } from "./records.js";
import { MAX_REFRESH_MS } from "./refresh-policy.js";
import { LeaseLostError, type RepositoryLease } from "./repository-lease.js";
import { ScanIndex } from "./scan-index.js";
import { ScanYieldedError } from "./scan-yield.js";
import { keepTags } from "./stale-tags.js";
import { TagRefresher } from "./tag-refresher.js";
import type { WarmContext, WarmJob } from "./warm-context.js";
import type { ErrorSummary, RepositoryScanResult, TagEvent } from "./warmer-types.js";

/**
 * The repository record's deadline (the store keeps it twice as long): as long as the
 * longest tag interval, so that a stopped warmer's last good result is served as long as
 * any of its tags are.
 */
const REPOSITORY_RECORD_LIFETIME_MS = MAX_REFRESH_MS;

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
export interface Scan {
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

export async function readRecord(s: Scan): Promise<RepositoryRecord | undefined> {
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
export async function loadIndex(s: Scan, tags: readonly string[] | undefined): Promise<ScanIndex> {
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
export async function finishIndex(
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
export function stopReason({ job, controller }: Scan): "caller" | "lease" | "yield" | undefined {
  if (job.signal.aborted) return "caller";
  const reason: unknown = controller.signal.reason;
  if (reason instanceof LeaseLostError) return "lease";
  return reason instanceof ScanYieldedError ? "yield" : undefined;
}

/** The scan's registry client, for its tag refreshes (and its listing, unless that goes first). */
export function scanClient({ ctx, job }: Scan): Client {
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
export async function tagRefresher(
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
export function finishPlan(
  { ctx }: Scan,
  plan: NewTagFetchPlan,
  result: RepositoryScanResult,
): void {
  plan.finish();
  if (plan.getFirst > 0) {
    result.fetchedByTag = plan.getFirst;
    ctx.metrics.newTagFetches.inc({ first: "get" }, plan.getFirst);
  }
  if (plan.headFirst > 0) ctx.metrics.newTagFetches.inc({ first: "head" }, plan.headFirst);
}

/**
 * After a failed listing, keeps the previous listing's tags that are due: without this a
 * long outage would let the store expire every value the repository had.
 */
export async function keepPreviousTags(
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
export function hostConditions({ ctx, job, log }: Scan): HostConditions | undefined {
  try {
    return ctx.factory.hostConditions?.(job.name);
  } catch (error) {
    log.debug({ error: summarizeError(error) }, "could not learn the host's conditions");
    return undefined;
  }
}

/** How many of the listed tags are artifacts (signatures, attestations, SBOMs, referrers). */
export function countArtifactTags(tags: readonly string[]): number {
  let n = 0;
  for (const tag of tags) if (tag.startsWith("sha256-") && artifactTag(tag)) n++;
  return n;
}

/**
 * Ends a scan stopped by the caller, by a lost lease, or to give its lease up to a refresh.
 * None is the repository's fault, so its record keeps what it had; after a lost lease the
 * new holder writes it.
 */
export function endStopped(
  { result, controller, log }: Scan,
  why: "caller" | "lease" | "yield",
): void {
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
  /**
   * `listed` is the listing the scan before wrote, used again (warm-pass.ts,
   * `reusableListing`): when the repository was last listed stays as `previous` says.
   */
  reusedListing?: boolean;
}

/**
 * Writes the repository record back, whatever happened (Flux v1 did too), after the tag
 * records of the scan, and with it gives the lease back where the store can (the scan's
 * last store work). A record the store refuses fails the scan.
 */
export async function writeRecord(
  { ctx, job, result, log, lease }: Scan,
  {
    previous,
    listed,
    lastError,
    imagesKeptAt,
    unlisted = false,
    reusedListing = false,
  }: RecordWrite,
): Promise<void> {
  const now = ctx.now();
  // An aborted scan did not cover the repository, so another warmer should not skip it;
  // nor did one of pushed tags alone.
  const uncovered = result.outcome === "aborted" || unlisted;
  const record: RepositoryRecord = {
    tags: listed ?? previous?.tags,
    filteredOut: listed && !unlisted ? result.filteredOut : previous?.filteredOut,
    lastUpdate: listed && !unlisted && !reusedListing ? new Date(now) : previous?.lastUpdate,
    // A stop is not the repository's fault: keep what was known about it.
    lastError: uncovered ? previous?.lastError : lastError && { ...lastError, at: new Date(now) },
    lastScanned: uncovered ? previous?.lastScanned : result.startedAt,
    scannedBy: uncovered ? previous?.scannedBy : ctx.owner,
  };
  // Absent, not zero, when there are none.
  const artifactTags = listed ? result.artifacts : previous?.artifactTags;
  if (artifactTags) record.artifactTags = artifactTags;
  if (imagesKeptAt) record.imagesKeptAt = imagesKeptAt;
  record.writtenAt = new Date(now);
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
