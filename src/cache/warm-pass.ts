/**
 * One repository's scan (Flux v1's `Warmer.warm`, plus HEAD-first refreshes, fetching each
 * digest once per pass, tag filters before any fetch, and a lease so replicas share the work).
 */
import { setMaxListeners } from "node:events";
import type { Logger } from "pino";
import type { ImageEntry } from "../image/info.js";
import type { ImageName } from "../image/ref.js";
import type { Client, ClientFactory } from "../registry/client.js";
import type { Credentials } from "../registry/credentials/credentials.js";
import { forEachBounded } from "./bounded-parallel.js";
import { errorCode, MANIFEST_UNKNOWN, summarizeError, TOO_MANY_REQUESTS } from "./error-summary.js";
import { StoreWriteError } from "./errors.js";
import type { Keys } from "./keys.js";
import type { WarmerMetrics } from "./metrics.js";
import {
  decodeRepositoryRecord,
  decodeTagRecord,
  encodeRepositoryRecord,
  encodeTagRecord,
  type RepositoryRecord,
  type TagRecord,
} from "./records.js";
import { nextRefreshInterval } from "./refresh-policy.js";
import type { Store } from "./store.js";
import type { TagEvents } from "./tag-events.js";
import { type CompiledTagFilter, compileTagFilter } from "./tag-filter.js";
import type { ErrorSummary, RepositoryOptions, RepositoryScanResult } from "./warmer-types.js";

/** What every repository scan of one warmer shares. */
export interface WarmContext {
  store: Store;
  keys: Keys;
  factory: ClientFactory;
  logger: Logger;
  metrics: WarmerMetrics;
  events: TagEvents;
  /** The clock deadlines and marks are computed with (fake in tests). */
  now: () => number;
  /** At most this many registry requests in flight for the repository. */
  burst: number;
  /** Who holds leases taken by this warmer. */
  owner: string;
  leaseTtlMs: number;
  /** Store reads in flight at once while classifying tags. */
  storeConcurrency: number;
  /** Bound on each final store write made after the scan was stopped. */
  finalWriteTimeoutMs: number;
}

/** One repository to scan. */
export interface WarmJob {
  name: ImageName;
  creds: Credentials;
  options: RepositoryOptions;
  /** The repository's interval: it is skipped when scanned more recently than this. */
  intervalMs: number;
  /** Scan even if it was scanned less than an interval ago (priority requests, the CLI). */
  force: boolean;
  signal: AbortSignal;
  /** Progress: called with the number of tags to check once listed, then once per tag done. */
  onProgress?: (progress: { total: number; done: number }) => void;
}

/** How long a repository record stays readable without a scan (twice this, by the store). */
const REPOSITORY_RECORD_LIFETIME_MS = 24 * 60 * 60 * 1000;

/** Scanned less than this fraction of an interval ago counts as fresh (timers jitter). */
const FRESH_FRACTION = 0.8;

/** Scans one repository; never throws (every failure ends in the result and the record). */
export async function warmRepository(
  ctx: WarmContext,
  job: WarmJob,
): Promise<RepositoryScanResult> {
  const startedAt = new Date(ctx.now());
  const started = performance.now();
  const repository = job.name.toString();
  const log = ctx.logger.child({ repository });
  const result: RepositoryScanResult = {
    repository,
    outcome: "scanned",
    tags: 0,
    filteredOut: 0,
    refreshed: 0,
    unchanged: 0,
    fresh: 0,
    excluded: 0,
    errors: 0,
    newTags: [],
    movedTags: [],
    startedAt,
    durationMs: 0,
  };
  const finish = (): RepositoryScanResult => {
    result.durationMs = performance.now() - started;
    const label = result.outcome.startsWith("skipped") ? "skipped" : result.outcome;
    ctx.metrics.repositoriesScanned.inc({ result: label === "scanned" ? "ok" : label });
    return result;
  };

  const leaseKey = ctx.keys.lease(job.name);
  let leased = false;
  try {
    leased = await ctx.store.acquire(leaseKey, ctx.leaseTtlMs, ctx.owner, { signal: job.signal });
    if (!leased) {
      log.debug("another warmer holds the lease; skipping");
      result.outcome = "skipped-lease";
      return finish();
    }
  } catch (error) {
    if (job.signal.aborted) {
      result.outcome = "aborted";
      return finish();
    }
    // A store that is down must not stop warming: scan anyway, the writes will tell.
    log.warn(
      { error: summarizeError(error) },
      "could not take the repository lease; scanning anyway",
    );
  }
  const renew = leased
    ? setInterval(
        () => {
          ctx.store.acquire(leaseKey, ctx.leaseTtlMs, ctx.owner).catch((error: unknown) => {
            log.warn({ error: summarizeError(error) }, "could not renew the repository lease");
          });
        },
        Math.max(1000, ctx.leaseTtlMs / 3),
      )
    : undefined;
  renew?.unref();
  try {
    await scanLeased(ctx, job, result, log);
  } finally {
    if (renew) clearInterval(renew);
    if (leased) {
      await ctx.store
        .release(leaseKey, ctx.owner, { signal: AbortSignal.timeout(ctx.finalWriteTimeoutMs) })
        .catch((error: unknown) => {
          log.warn({ error: summarizeError(error) }, "could not release the repository lease");
        });
    }
  }
  return finish();
}

async function readRecord(
  ctx: WarmContext,
  job: WarmJob,
  log: Logger,
): Promise<RepositoryRecord | undefined> {
  try {
    const got = await ctx.store.get(ctx.keys.repository(job.name), { signal: job.signal });
    if (!got) return undefined;
    const record = decodeRepositoryRecord(got.value);
    if (!record) log.warn("repository record does not decode; treating it as missing");
    return record;
  } catch (error) {
    if (job.signal.aborted) throw error;
    log.warn({ error: summarizeError(error) }, "could not read the repository record");
    return undefined;
  }
}

async function scanLeased(
  ctx: WarmContext,
  job: WarmJob,
  result: RepositoryScanResult,
  log: Logger,
): Promise<void> {
  let previous: RepositoryRecord | undefined;
  try {
    previous = await readRecord(ctx, job, log);
  } catch {
    result.outcome = "aborted";
    return;
  }
  if (
    !job.force &&
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
    await writeRecord(ctx, job, previous, result, undefined, result.error, log);
    return;
  }

  // The scan's own controller: a 429 or a store failure stops this repository only.
  const scan = new AbortController();
  // Every request in flight listens on this signal: `burst` of them is expected, not a leak.
  setMaxListeners(ctx.burst + ctx.storeConcurrency + 16, scan.signal);
  const onAbort = () => scan.abort(job.signal.reason);
  job.signal.addEventListener("abort", onAbort, { once: true });
  const signal = scan.signal;
  let repoError: ErrorSummary | undefined;
  let lastTagError: ErrorSummary | undefined;
  let listed: string[] | undefined;
  try {
    const client = ctx.factory.clientFor(job.name, job.creds, { platform: job.options.platform });
    let all: string[];
    try {
      all = await client.tags({ signal });
    } catch (error) {
      if (job.signal.aborted) {
        result.outcome = "aborted";
        return;
      }
      repoError = summarizeError(error);
      result.outcome = "failed";
      result.error = repoError;
      log.warn({ error: repoError }, "listing tags failed");
      await writeRecord(ctx, job, previous, result, undefined, repoError, log);
      return;
    }
    const kept = filter(all);
    listed = kept;
    result.tags = kept.length;
    result.filteredOut = all.length - kept.length;

    const due = await classifyTags(ctx, job, kept, result, log, signal);
    const total = due.length;
    let done = 0;
    job.onProgress?.({ total, done });
    const refresher = new TagRefresher(ctx, job, client, due.known, previous, result, log, signal);
    await forEachBounded(
      due,
      ctx.burst,
      async ({ tag, record }) => {
        try {
          await refresher.refresh(tag, record);
        } catch (error) {
          const code = errorCode(error);
          if (signal.aborted && job.signal.aborted) return;
          if (code === TOO_MANY_REQUESTS) {
            if (!repoError) log.warn("rate limited; abandoning the repository until its next scan");
            repoError = summarizeError(error);
            scan.abort(error);
          } else if (error instanceof StoreWriteError) {
            if (!repoError)
              log.error({ error: summarizeError(error) }, "the store refused a write");
            repoError ??= summarizeError(error);
            scan.abort(error);
          } else if (!signal.aborted) {
            result.errors++;
            lastTagError = summarizeError(error);
            log.warn({ tag, error: lastTagError }, "refreshing a tag failed");
          }
        } finally {
          job.onProgress?.({ total, done: ++done });
        }
      },
      signal,
    );
    if (job.signal.aborted) {
      result.outcome = "aborted";
    } else if (repoError) {
      result.outcome = "failed";
      result.errors += total - done;
    }
  } finally {
    job.signal.removeEventListener("abort", onAbort);
  }
  const lastError = repoError ?? lastTagError;
  if (lastError) result.error = lastError;
  await writeRecord(ctx, job, previous, result, listed, lastError, log);
  if (result.outcome === "scanned" && !lastError) ctx.factory.succeed(job.name);
  if (result.outcome !== "aborted") {
    ctx.metrics.tagsCached.set({ repository: result.repository }, result.tags - result.errors);
  }
}

interface DueTag {
  tag: string;
  /** The decoded record when the tag is known but past its deadline. */
  record?: TagRecord;
}

/** Reads every listed tag's record: counts the fresh ones, returns the due and missing ones. */
async function classifyTags(
  ctx: WarmContext,
  job: WarmJob,
  tags: string[],
  result: RepositoryScanResult,
  log: Logger,
  signal: AbortSignal,
): Promise<DueTag[] & { known: Map<string, ImageEntry> }> {
  const due: DueTag[] = [];
  // Entries already in the store by digest, so a new tag on a known image costs no GET.
  const known = new Map<string, ImageEntry>();
  let readFailures = 0;
  const now = ctx.now();
  await forEachBounded(
    tags,
    ctx.storeConcurrency,
    async (tag) => {
      let got: Awaited<ReturnType<Store["get"]>>;
      try {
        got = await ctx.store.get(ctx.keys.tag(job.name, tag), { signal });
      } catch (error) {
        if (signal.aborted) return;
        if (readFailures++ === 0) {
          log.warn({ error: summarizeError(error) }, "could not read tags from the store");
        }
        due.push({ tag });
        return;
      }
      const record = got && decodeTagRecord(got.value, job.name, tag);
      if (got && !record) log.warn({ tag }, "tag record does not decode; refetching it");
      if (!got || !record) {
        due.push({ tag });
        return;
      }
      const digest = record.digest ?? record.entry.info?.digest;
      if (digest && !known.has(digest)) known.set(digest, record.entry);
      if (got.deadline.getTime() > now) {
        result.fresh++;
        if (record.entry.excludedReason !== undefined) result.excluded++;
      } else {
        due.push({ tag, record });
      }
    },
    signal,
  );
  // Keep the registry's order, so that progress and logs follow the listing.
  const order = new Map(tags.map((t, i) => [t, i]));
  due.sort((a, b) => (order.get(a.tag) ?? 0) - (order.get(b.tag) ?? 0));
  return Object.assign(due, { known });
}

/** Refreshes single tags of one repository, sharing fetches by digest within the pass. */
class TagRefresher {
  readonly #byDigest = new Map<string, Promise<ImageEntry>>();
  readonly #previousTags: Set<string> | undefined;

  constructor(
    private readonly ctx: WarmContext,
    private readonly job: WarmJob,
    private readonly client: Client,
    known: Map<string, ImageEntry>,
    previous: RepositoryRecord | undefined,
    private readonly result: RepositoryScanResult,
    private readonly log: Logger,
    private readonly signal: AbortSignal,
  ) {
    for (const [digest, entry] of known) this.#byDigest.set(digest, Promise.resolve(entry));
    this.#previousTags = previous?.tags ? new Set(previous.tags) : undefined;
  }

  async refresh(tag: string, record: TagRecord | undefined): Promise<void> {
    const previousDigest = record ? (record.digest ?? record.entry.info?.digest) : undefined;
    let digest: string | undefined;
    let entry: ImageEntry | undefined;
    try {
      const head = await this.client.head(tag, { signal: this.signal });
      if (!head) {
        this.log.warn({ tag }, "tag vanished since the listing; counting it as done");
        return;
      }
      digest = head.digest;
    } catch (error) {
      const code = errorCode(error);
      if (code === TOO_MANY_REQUESTS || this.signal.aborted) throw error;
      // Some registries answer HEAD badly; a GET by tag still works there.
      this.log.debug({ tag, error: summarizeError(error) }, "HEAD failed; fetching by tag");
    }
    const now = this.ctx.now();
    if (record && digest !== undefined && digest === previousDigest) {
      const intervalMs = nextRefreshInterval({
        previousMs: record.intervalMs,
        changed: false,
        excluded: record.entry.excludedReason !== undefined,
      });
      await this.#write(tag, { ...record, digest, intervalMs, checkedAt: new Date(now) });
      this.result.unchanged++;
      if (record.entry.excludedReason !== undefined) this.result.excluded++;
      this.ctx.metrics.getsAvoidedByHead.inc();
      return;
    }
    try {
      entry = digest === undefined ? await this.#fetchTag(tag) : await this.#fetchDigest(digest);
    } catch (error) {
      if (errorCode(error) === MANIFEST_UNKNOWN) {
        this.log.warn({ tag }, "manifest unknown; counting the tag as done");
        return;
      }
      throw error;
    }
    const excluded = entry.excludedReason !== undefined;
    const info = entry.info && { ...entry.info, ref: this.job.name.withTag(tag) };
    digest ??= info?.digest;
    const intervalMs = nextRefreshInterval({
      previousMs: record?.intervalMs,
      changed: record !== undefined,
      excluded,
    });
    const stored: ImageEntry = info ? { info } : { excludedReason: entry.excludedReason ?? "" };
    await this.#write(tag, {
      entry: stored,
      digest,
      intervalMs,
      checkedAt: new Date(now),
    });
    this.result.refreshed++;
    if (excluded) this.result.excluded++;
    this.ctx.metrics.tagsRefreshed.inc();
    this.#notify(tag, digest, previousDigest, now);
  }

  #notify(
    tag: string,
    digest: string | undefined,
    previousDigest: string | undefined,
    now: number,
  ) {
    if (digest === undefined) return;
    const repository = this.result.repository;
    if (previousDigest !== undefined && previousDigest !== digest) {
      this.result.movedTags.push(tag);
      this.ctx.events.emit({
        type: "moved-tag",
        repository,
        tag,
        digest,
        previousDigest,
        at: new Date(now),
      });
    } else if (this.#previousTags && !this.#previousTags.has(tag)) {
      this.result.newTags.push(tag);
      this.ctx.events.emit({ type: "new-tag", repository, tag, digest, at: new Date(now) });
    }
  }

  #fetchDigest(digest: string): Promise<ImageEntry> {
    let pending = this.#byDigest.get(digest);
    if (!pending) {
      pending = this.client.manifest(digest, { signal: this.signal }).then((entry) => {
        if (entry.info) entry.info.lastFetched ??= new Date(this.ctx.now());
        return entry;
      });
      // A failed fetch is not remembered: another tag may try again in this pass.
      pending.catch(() => this.#byDigest.delete(digest));
      this.#byDigest.set(digest, pending);
    }
    return pending;
  }

  async #fetchTag(tag: string): Promise<ImageEntry> {
    const entry = await this.client.manifest(tag, { signal: this.signal });
    if (entry.info) {
      entry.info.lastFetched ??= new Date(this.ctx.now());
      this.#byDigest.set(entry.info.digest, Promise.resolve(entry));
    }
    return entry;
  }

  async #write(tag: string, record: TagRecord): Promise<void> {
    const deadline = new Date(record.checkedAt.getTime() + record.intervalMs);
    const key = this.ctx.keys.tag(this.job.name, tag);
    try {
      // Not the scan's signal: a write that started completes, so nothing is half-written.
      await this.ctx.store.set(key, deadline, encodeTagRecord(record), {
        signal: AbortSignal.timeout(this.ctx.finalWriteTimeoutMs),
      });
    } catch (error) {
      const reason = summarizeError(error).message;
      throw new StoreWriteError(
        key,
        `storing ${this.job.name.toString()}:${tag} failed: ${reason}`,
        {
          cause: error,
        },
      );
    }
  }
}

/** Writes the repository record back, whatever happened (Flux v1 did too). */
async function writeRecord(
  ctx: WarmContext,
  job: WarmJob,
  previous: RepositoryRecord | undefined,
  result: RepositoryScanResult,
  listed: string[] | undefined,
  lastError: ErrorSummary | undefined,
  log: Logger,
): Promise<void> {
  const now = ctx.now();
  const aborted = result.outcome === "aborted";
  const record: RepositoryRecord = {
    tags: listed ?? previous?.tags,
    filteredOut: listed ? result.filteredOut : previous?.filteredOut,
    lastUpdate: listed ? new Date(now) : previous?.lastUpdate,
    // A stop is not the repository's fault: keep what was known about it.
    lastError: aborted ? previous?.lastError : lastError && { ...lastError, at: new Date(now) },
    // An aborted scan did not cover the repository, so another warmer should not skip it.
    lastScanned: aborted ? previous?.lastScanned : result.startedAt,
    scannedBy: aborted ? previous?.scannedBy : ctx.owner,
  };
  // Its deadline is not used for scheduling (lastScanned is); it only has to outlive the
  // tag records, so that a stopped warmer's last good result is served for a while.
  const deadline = new Date(now + Math.max(job.intervalMs, REPOSITORY_RECORD_LIFETIME_MS));
  try {
    await ctx.store.set(ctx.keys.repository(job.name), deadline, encodeRepositoryRecord(record), {
      signal: AbortSignal.timeout(ctx.finalWriteTimeoutMs),
    });
  } catch (error) {
    const summary = summarizeError(error);
    log.error({ error: summary }, "could not write the repository record");
    result.error ??= { code: "STORE_ERROR", message: summary.message };
    if (result.outcome === "scanned") result.outcome = "failed";
  }
}
