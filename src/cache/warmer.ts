/**
 * The Warmer keeps a store fresh for a set of repositories (Flux v1's `cache.Warmer`): a
 * loop over a backlog re-read from an `ImageCreds` lookup every interval, priority requests
 * first, one lease per repository so replicas on a shared store split the work.
 */
import { setMaxListeners } from "node:events";
import { hostname } from "node:os";
import pino, { type Logger } from "pino";
import type { Registry as MetricsRegistry } from "prom-client";
import { forEachBounded } from "../bounded-parallel.js";
import { type ImageName, parseImageName } from "../image/ref.js";
import type { ClientFactory } from "../registry/client.js";
import { Credentials } from "../registry/credentials/credentials.js";
import type { ImageCreds, ImageCredsLookup } from "../registry/credentials/image-creds.js";
import { Backlog } from "./backlog.js";
import { BudgetStretch } from "./budget-stretch.js";
import { DEFAULT_READ_CHUNKS_IN_FLIGHT } from "./chunked-read.js";
import { summarizeError } from "./error-summary.js";
import { WarmerRunningError } from "./errors.js";
import { decodeRepositoryIndexRecord } from "./index-records.js";
import { Keys } from "./keys.js";
import { warmerMetrics } from "./metrics.js";
import { HostSharing } from "./new-tag-fetch.js";
import { decodeRepositoryRecord } from "./records.js";
import { listingChanged, RepositoryPace } from "./repository-pace.js";
import { SharedTimeout } from "./shared-timeout.js";
import type { Store } from "./store.js";
import { type TagEventListener, TagEvents } from "./tag-events.js";
import type { WarmContext } from "./warm-context.js";
import { emptyScanResult, warmRepository } from "./warm-pass.js";
import type {
  RepositoryOptions,
  RepositoryScanResult,
  RepositoryStatus,
  TagEvent,
} from "./warmer-types.js";

/** Default number of registry requests in flight per repository. */
export const DEFAULT_BURST = 10;
/** Default interval between lookups, and between scans of one repository (Flux v1: 1 min). */
export const DEFAULT_INTERVAL_MS = 60_000;

/** How long one store write may take before it counts as failed. */
const WRITE_TIMEOUT_MS = 10_000;

/** How the Warmer is set up. */
export interface WarmerOptions {
  /** Where the cache lives (shared between replicas for memcached and Redis). */
  store: Store;
  /** Makes a client per repository; `succeed()` is called after each clean scan. */
  factory: ClientFactory;
  /** The repositories to keep warm, with their credentials; asked again every interval. */
  lookup?: ImageCredsLookup;
  /** Per-repository options (tag filter, platform, interval), by canonical name. */
  repositoryOptions?: (repository: string) => RepositoryOptions | undefined;
  /** Key namespace (default `new Keys()`, prefix `regscan:v2:`). */
  keys?: Keys;
  /** Registry requests in flight per repository (default 10). */
  burst?: number;
  /** Interval between lookups and default per-repository interval, ms (default 60 s). */
  intervalMs?: number;
  /** Repositories scanned at the same time (default 2). */
  concurrency?: number;
  /** Identifies this warmer's leases (default `hostname:pid:random`). */
  owner?: string;
  /** How long a repository lease lasts unless renewed (renewed every third; default 5 min). */
  leaseTtlMs?: number;
  logger?: Logger;
  /** Where the metrics go (default prom-client's global registry). */
  metricsRegistry?: MetricsRegistry;
  /** The clock for deadlines and scan marks (tests pass a fake one). */
  now?: () => number;
  /**
   * Spreads each tag's refresh interval by up to this fraction either way (0.1 is ±10%), so
   * that the thousands of tags a first scan finds do not all fall due in the same minute.
   * Default 0: Flux v1's exact intervals.
   */
  refreshJitter?: number;
  /**
   * A repository whose listing stays unchanged is listed ever less often: after
   * `quietScansBeforeBackoff` unchanged scans (default 3) its interval doubles at each
   * unchanged scan, up to this multiple of it (default 8; 1 never backs off). A change, new
   * tags or moved ones, puts it back at its interval. Priority refreshes are never held back.
   */
  maxIntervalFactor?: number;
  quietScansBeforeBackoff?: number;
}

/** Options of {@link Warmer.scan}. */
export interface ScanOptions {
  signal?: AbortSignal;
  /** Scan even repositories scanned less than an interval ago (default true). */
  force?: boolean;
  /** Called as tags are listed and checked, per repository. */
  onProgress?: (repository: string, progress: { total: number; done: number }) => void;
}

/** A repository to scan with {@link Warmer.scan}. */
export interface ScanTarget {
  name: ImageName;
  /** Default: no credentials (anonymous). */
  creds?: Credentials;
  /** Default: `repositoryOptions(name)` of the warmer's options. */
  options?: RepositoryOptions;
}

/** Keeps the cache warm; see the module comment and DESIGN.md section 5. */
export class Warmer {
  /** The owner id of this warmer's leases. */
  readonly owner: string;
  readonly #opts: WarmerOptions;
  readonly #ctx: WarmContext;
  readonly #intervalMs: number;
  readonly #concurrency: number;
  readonly #backlog = new Backlog();
  readonly #events = new TagEvents();
  readonly #scanListeners = new Set<(result: RepositoryScanResult) => void>();
  readonly #status = new Map<string, RepositoryStatus>();
  readonly #paces = new Map<string, RepositoryPace>();
  readonly #stretch: BudgetStretch;
  #creds: ImageCreds = new Map();
  #running = false;

  constructor(opts: WarmerOptions) {
    this.#opts = opts;
    this.owner =
      opts.owner ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
    this.#intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.#concurrency = Math.max(1, opts.concurrency ?? 2);
    const logger = opts.logger ?? pino({ level: "silent" });
    const burst = Math.max(1, opts.burst ?? DEFAULT_BURST);
    this.#ctx = {
      store: opts.store,
      keys: opts.keys ?? new Keys(),
      factory: opts.factory,
      logger,
      metrics: warmerMetrics(opts.metricsRegistry),
      events: this.#events,
      now: opts.now ?? Date.now,
      burst,
      owner: this.owner,
      leaseTtlMs: opts.leaseTtlMs ?? 5 * 60_000,
      storeConcurrency: DEFAULT_READ_CHUNKS_IN_FLIGHT,
      finalWriteTimeoutMs: WRITE_TIMEOUT_MS,
      // Every tag write in flight, of every repository scanned at once, listens on it.
      refresh: { jitter: opts.refreshJitter ?? 0 },
      hostSharing: new HostSharing(),
      writeTimeout: new SharedTimeout(WRITE_TIMEOUT_MS, 1000, burst * this.#concurrency + 16),
    };
    const metrics = this.#ctx.metrics;
    this.#stretch = new BudgetStretch(opts.factory, this.#ctx.now, logger, (host, factor) =>
      metrics.intervalStretch.set({ host }, factor),
    );
  }

  /**
   * Runs the warming loop until `signal` aborts: asks the lookup for repositories every
   * interval, scans each at most once per interval (priority requests first), and resolves
   * once in-flight scans have been cancelled and what they fetched has been written.
   * Never rejects because of a registry or store failure; those are logged and recorded.
   */
  async start(signal: AbortSignal): Promise<void> {
    if (this.#running) throw new WarmerRunningError();
    this.#running = true;
    const log = this.#ctx.logger;
    const refill = async () => {
      try {
        this.#creds = await (this.#opts.lookup?.() ?? new Map());
      } catch (error) {
        log.error(
          { error: summarizeError(error) },
          "image lookup failed; keeping the previous set",
        );
      }
      for (const name of this.#creds.keys()) this.#statusOf(name);
      // Repositories no longer watched leave the status list (and the gauge).
      for (const [name, status] of this.#status) {
        if (!this.#creds.has(name) && !status.scanning) {
          this.#status.delete(name);
          this.#paces.delete(name);
          this.#ctx.metrics.tagsCached.remove({ repository: name });
        }
      }
      this.#backlog.refill(this.#creds.keys());
    };
    await refill();
    const timer = setInterval(() => void refill(), this.#intervalMs);
    const followed = this.#follow(signal);
    try {
      const workers: Promise<void>[] = [];
      for (let i = 0; i < this.#concurrency; i++) workers.push(this.#work(followed.signal));
      await Promise.all(workers);
    } finally {
      followed.dispose();
      clearInterval(timer);
      this.#running = false;
    }
  }

  /**
   * Asks for `repository` (canonical name or ImageName) to be scanned next, whatever its
   * interval says. Only repositories from the lookup are scanned; an unknown name makes
   * the warmer ask the lookup again once, then it is dropped with a warning. With
   * `onlyTags` (a webhook named them), the scan lists the tags once and checks only those
   * tags and tags not yet cached, not every tag.
   */
  prioritize(repository: ImageName | string, opts: { onlyTags?: readonly string[] } = {}): void {
    const name = repository.toString();
    if (this.#creds.has(name)) {
      this.#backlog.prioritize(name, opts.onlyTags);
      return;
    }
    void (async () => {
      try {
        this.#creds = await (this.#opts.lookup?.() ?? new Map());
      } catch (error) {
        this.#ctx.logger.error({ error: summarizeError(error) }, "image lookup failed");
      }
      if (this.#creds.has(name)) this.#backlog.prioritize(name, opts.onlyTags);
      else this.#ctx.logger.warn({ repository: name }, "priority refresh of an unknown repository");
    })();
  }

  /**
   * One warming pass over `targets` (what `regscan scan` does), independent of the loop:
   * at most `concurrency` repositories at once, each with its lease. Resolves with one
   * result per target, in the order given; never rejects for registry or store failures.
   */
  async scan(targets: ScanTarget[], opts: ScanOptions = {}): Promise<RepositoryScanResult[]> {
    const { signal, dispose } = this.#follow(opts.signal);
    const results = new Array<RepositoryScanResult>(targets.length);
    await forEachBounded(
      targets.map((target, index) => ({ target, index })),
      this.#concurrency,
      async ({ target, index }) => {
        const name = target.name.toString();
        results[index] = await this.#scanOne(
          target.name,
          target.creds ?? Credentials.none(),
          target.options ?? this.#opts.repositoryOptions?.(name) ?? {},
          opts.force ?? true,
          false,
          signal,
          opts.onProgress && ((p) => opts.onProgress?.(name, p)),
        );
      },
    ).finally(dispose);
    return results;
  }

  /** What this warmer knows about each repository of the last lookup (and any it scanned). */
  status(): RepositoryStatus[] {
    return [...this.#status.values()].map((s) => this.#withInterval(s));
  }

  /** One repository's status, or undefined when this warmer has not met it. */
  repositoryStatus(repository: ImageName | string): RepositoryStatus | undefined {
    const s = this.#status.get(repository.toString());
    return s && this.#withInterval(s);
  }

  /** A copy of a status, with the repository's own interval until a scan applied one. */
  #withInterval(s: RepositoryStatus): RepositoryStatus {
    if (s.intervalMs !== undefined) return { ...s };
    const own = this.#opts.repositoryOptions?.(s.repository)?.intervalMs;
    return { ...s, intervalMs: own ?? this.#intervalMs };
  }

  /** Calls `listener` for each new or moved tag; returns the function that unsubscribes. */
  onTagEvent(listener: TagEventListener): () => void {
    return this.#events.subscribe(listener);
  }

  /** New and moved tags from now on, until `signal` aborts. */
  tagEvents(signal?: AbortSignal): AsyncIterable<TagEvent> {
    return this.#events.iterate(signal);
  }

  /** Calls `listener` after each repository scan (including skipped ones). */
  onScan(listener: (result: RepositoryScanResult) => void): () => void {
    this.#scanListeners.add(listener);
    return () => {
      this.#scanListeners.delete(listener);
    };
  }

  /**
   * Our own signal following the caller's: every repository scanned at once listens on it
   * a few times, more than Node's default of ten listeners before it warns of a leak, and
   * the caller's signal is not ours to reconfigure.
   */
  #follow(outer: AbortSignal | undefined): { signal: AbortSignal; dispose: () => void } {
    const inner = new AbortController();
    setMaxListeners(Math.max(10, this.#concurrency * 4), inner.signal);
    const follow = () => inner.abort(outer?.reason);
    if (outer?.aborted) follow();
    outer?.addEventListener("abort", follow, { once: true });
    return { signal: inner.signal, dispose: () => outer?.removeEventListener("abort", follow) };
  }

  async #work(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const item = this.#backlog.take();
      if (!item) {
        await this.#backlog.changed(signal);
        continue;
      }
      try {
        const creds = this.#creds.get(item.name);
        if (!creds) continue; // dropped from the lookup since it was queued
        const name = this.#imageName(item.name);
        if (!name) continue;
        const options = this.#opts.repositoryOptions?.(item.name) ?? {};
        await this.#scanOne(
          name,
          creds,
          item.onlyTags ? { ...options, onlyTags: item.onlyTags } : options,
          item.priority,
          // A priority refresh (POST .../refresh) checks every tag with HEAD, due or not, so
          // that a tag pushed over is seen at once; HEADs cost no Docker Hub pull.
          item.priority,
          signal,
          undefined,
        );
      } finally {
        this.#backlog.done(item.name);
      }
    }
  }

  #imageName(canonical: string): ImageName | undefined {
    try {
      return parseImageName(canonical);
    } catch (error) {
      this.#ctx.logger.warn({ repository: canonical, error: summarizeError(error) }, "skipped");
      return undefined;
    }
  }

  async #scanOne(
    name: ImageName,
    creds: Credentials,
    options: RepositoryOptions,
    force: boolean,
    checkAll: boolean,
    signal: AbortSignal,
    onProgress: ((p: { total: number; done: number }) => void) | undefined,
  ): Promise<RepositoryScanResult> {
    const repository = name.toString();
    const pace = this.#paceOf(repository);
    const ownMs = options.intervalMs ?? this.#intervalMs;
    const intervalMs = pace.intervalMs(ownMs) * this.#stretched(name);
    const status = this.#statusOf(repository);
    if (status.scanning) {
      // The loop and a scan() call (or two scan() calls) met on one repository: the lease
      // does not tell them apart, since both hold it as this warmer's owner.
      return {
        ...emptyScanResult(repository, new Date(this.#ctx.now())),
        outcome: "skipped-lease",
      };
    }
    status.scanning = true;
    let result: RepositoryScanResult;
    try {
      result = await warmRepository(this.#ctx, {
        name,
        creds,
        options,
        intervalMs,
        force,
        checkAll,
        signal,
        onProgress,
      });
    } catch (error) {
      // warmRepository does not throw; this is a last guard so one repository cannot stop the loop.
      this.#ctx.logger.error({ repository, error: summarizeError(error) }, "scan crashed");
      result = {
        ...emptyScanResult(repository, new Date(this.#ctx.now())),
        outcome: "failed",
        error: summarizeError(error),
      };
    } finally {
      status.scanning = false;
    }
    if (result.outcome === "scanned") pace.record(listingChanged(result, status.tagCount));
    // What the scan asked of the budget shows now: the interval until the next scan follows it.
    status.intervalMs = pace.intervalMs(ownMs) * this.#stretched(name);
    await this.#updateStatus(name, status, result, status.intervalMs);
    for (const listener of this.#scanListeners) {
      try {
        listener(result);
      } catch {
        // A listener's failure is its own.
      }
    }
    return result;
  }

  async #updateStatus(
    name: ImageName,
    status: RepositoryStatus,
    result: RepositoryScanResult,
    intervalMs: number,
  ): Promise<void> {
    if (result.outcome === "scanned" || result.outcome === "failed") {
      status.lastScanned = result.startedAt;
      status.nextRefresh = new Date(result.startedAt.getTime() + intervalMs);
      if (result.outcome === "scanned" || result.tags > 0) {
        status.tagCount = result.tags;
        status.artifactTags = result.artifacts;
        status.lastUpdate = new Date(result.startedAt.getTime() + result.durationMs);
      }
      if (result.error) status.lastError = result.error;
      else delete status.lastError;
      return;
    }
    if (result.outcome === "aborted") return;
    // Skipped: another warmer did (or does) the work; learn what it wrote.
    try {
      const got = await this.#ctx.store.get(this.#ctx.keys.repository(name), {
        signal: AbortSignal.timeout(5000),
      });
      const record =
        got && (decodeRepositoryIndexRecord(got.value) ?? decodeRepositoryRecord(got.value));
      if (!record) return;
      if (record.tags) status.tagCount = record.tags.length;
      if (record.tags) status.artifactTags = record.artifactTags ?? 0;
      if (record.lastUpdate) status.lastUpdate = record.lastUpdate;
      if (record.lastError)
        status.lastError = { code: record.lastError.code, message: record.lastError.message };
      else delete status.lastError;
      if (record.lastScanned) {
        status.lastScanned = record.lastScanned;
        status.nextRefresh = new Date(record.lastScanned.getTime() + intervalMs);
      }
    } catch {
      // Status is best effort; the next scan updates it.
    }
  }

  /**
   * The stretch of `name`'s host, looked at again: only while the loop runs, since intervals
   * mean nothing to a one-off `scan()` (`regscan scan`), which should not warn about them.
   */
  #stretched(name: ImageName): number {
    return this.#running ? this.#stretch.observe(name) : 1;
  }

  #paceOf(repository: string): RepositoryPace {
    let pace = this.#paces.get(repository);
    if (!pace) {
      pace = new RepositoryPace({
        ...(this.#opts.maxIntervalFactor === undefined
          ? {}
          : { maxFactor: this.#opts.maxIntervalFactor }),
        ...(this.#opts.quietScansBeforeBackoff === undefined
          ? {}
          : { quietScans: this.#opts.quietScansBeforeBackoff }),
      });
      this.#paces.set(repository, pace);
    }
    return pace;
  }

  #statusOf(repository: string): RepositoryStatus {
    let status = this.#status.get(repository);
    if (!status) {
      status = { repository, scanning: false };
      this.#status.set(repository, status);
    }
    return status;
  }
}
