/**
 * The Warmer keeps a store fresh for a set of repositories (Flux v1's `cache.Warmer`): the
 * repositories of an `ImageCreds` lookup (asked again every interval for additions and
 * removals), each scanned when its own interval says (see schedule.ts), priority requests
 * first, at most a few per registry host at once, one lease per repository so replicas on a
 * shared store split the work.
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
import { BudgetStretch, type StretchPeers } from "./budget-stretch.js";
import { DEFAULT_READ_CHUNKS_IN_FLIGHT } from "./chunked-read.js";
import { summarizeError } from "./error-summary.js";
import { WarmerRunningError } from "./errors.js";
import { HeldStatus } from "./held-status.js";
import { HostSharingSync } from "./host-sharing-record.js";
import { decodeRepositoryIndexHead, type RepositoryIndexHead } from "./index-records.js";
import { Keys } from "./keys.js";
import { LoopBrake, type LoopBrakeOptions } from "./loop-brake.js";
import { warmerMetrics } from "./metrics.js";
import { HostSharing } from "./new-tag-fetch.js";
import { decodeRepositoryRecord } from "./records.js";
import { listingChanged, RepositoryPace, type RepositoryPaceOptions } from "./repository-pace.js";
import { emptyScanResult } from "./scan-steps.js";
import { askToYield, DEFAULT_YIELD_AFTER_MS } from "./scan-yield.js";
import { type NextScan, Schedule, type ScheduledItem } from "./schedule.js";
import { SharedTimeout } from "./shared-timeout.js";
import type { Store } from "./store.js";
import { type TagEventListener, TagEvents } from "./tag-events.js";
import type { WarmContext, WarmJob } from "./warm-context.js";
import { warmRepository } from "./warm-pass.js";
import type {
  RepositoryOptions,
  RepositoryScanResult,
  RepositoryStatus,
  TagEvent,
} from "./warmer-types.js";

/** Default number of registry requests in flight per repository. */
export const DEFAULT_BURST = 10;
/** Default lifetime of a repository lease unless renewed. */
export const DEFAULT_LEASE_TTL_MS = 5 * 60_000;
/** Default interval between lookups, and between scans of one repository (Flux v1: 1 min). */
export const DEFAULT_INTERVAL_MS = 60_000;
/**
 * Default number of repositories scanned at once. Requests are throttled per registry host
 * by the rate limiters, so what bounds a fill is how many hosts have work in flight (the
 * schedule spreads a fill over the hosts): sixteen covers the registries an installation
 * mixes (Docker Hub, GHCR, ECR, GAR, Quay, Harbors, mirrors) with room to spare, while
 * memory stays bounded (each scan holds one repository's index, and at most `burst`
 * requests each are in flight). bench:scale with 10 registries: 8 left two hosts' budgets
 * unspent at any time.
 */
export const DEFAULT_CONCURRENCY = 16;
/**
 * Default number of one host's repositories scanned at once: enough that a huge repository
 * leaves room for the host's small ones, whose scans are mostly round trips in a row (lease,
 * record, listing, a few HEADs, writes) and need a few at once to use the host's budget;
 * half the default workers, so that one host's backlog never takes them all. More would
 * only wait at the host's rate limiter while holding leases another replica could use.
 * Repositories late against their bound start beyond it, up to `concurrency` (at least
 * twice it; schedule.ts).
 */
export const DEFAULT_PER_HOST_CONCURRENCY = 4;
/**
 * Default bound on the tags of the repositories the loop scans at once (schedule.ts): a
 * scan holds about 500 bytes a tag (its listing, index and refreshes), so this is about
 * 30 MB of heap. A replica at 2,000,000 tags ran out of 128 MiB of old space when the
 * rescans of its largest repositories (up to 46,000 tags) coincided with others: 34 scans
 * held 58 MB. It still lets the largest run beside hundreds of small ones; a repository
 * heavier than it counts as three quarters of it.
 */
export const DEFAULT_MAX_TAGS_IN_FLIGHT = 60_000;
/**
 * A loop scan checks (with `HEAD`, which costs no Docker Hub pull) every kept tag not checked
 * for this fraction of the repository's current interval, whatever the tag's own deadline
 * says: without a webhook, a moved tag is seen only when someone asks, and this makes it
 * seen within the repository's interval (issue 13, acceptance 5). Every tag the previous
 * scan checked is due too, however late in that scan (due-tags.ts: with this fraction alone,
 * a scan longer than half the interval left the tags it checked last for the scan after
 * next); only a tag checked since, by a scan that did not end (stopped), waits.
 *
 * Cost: one `HEAD` per kept tag per repository interval, where the tags' own deadlines
 * (1 h, doubling up to 7 days) asked one per tag per hour at most. Measured on the fleet
 * simulator (test/cache/warmer-polling.test.ts: 471 tags in 16 repositories, 1 s interval):
 * about 350 HEADs and 13 listings per interval, against 16 requests for a pass that only
 * lists; with 30 tags a repository, polling costs about 25 times the listing alone, and
 * moved tags were seen p50 0.4-0.7 s, max 1.1-2 s after the move. The budget stretch
 * (budget-stretch.ts) lengthens intervals when a host's budget cannot pay for it (the
 * test's first runs stretched to 2 s at 200 requests/s a host), and quiet repositories
 * back off (repository-pace.ts).
 */
export const TAG_CHECK_FRACTION = 0.5;

/**
 * Most scans the loop has in flight, per worker (`concurrency`): a worker's regular scan,
 * a late repository's, and a priority request's (see `Warmer#dispatch`).
 */
const IN_FLIGHT_PER_WORKER = 3;

/** The shortest time between two loop scans of one repository (unless asked for). */
const MIN_RESCAN_GAP_MS = 1000;
/**
 * After a scan gave its lease up to a refresh (scan-yield.ts), when the loop scans the
 * repository again: long enough for the refresh's warmer, which asks again every second, to
 * take the lease first.
 */
const AFTER_YIELD_GAP_MS = 3_000;
/** Bound on the store write of an ask to give a lease up. */
const ASK_TIMEOUT_MS = 5_000;
/** The most a listing written by a scan that gave its lease up is used again after it (ms). */
const REUSED_LISTING_MAX_AGE_MS = 60_000;

/**
 * A repository skipped because another warmer holds its lease is looked at again after
 * this fraction of the lease TTL (at least {@link MIN_RESCAN_GAP_MS}, at most its interval);
 * a repository that has waited this fraction of the TTL past its due time is late and goes
 * ahead of the merely due (schedule.ts). Each repository is promised a listing within lease
 * TTL + its interval (issue 13, acceptance 7), so the TTL is all the slack it has: a holder
 * that dies leaves its lease for at most a TTL, and a look a whole interval later (as
 * before) added that interval on top. A look costs store round trips only (the lease, the
 * record), no registry request: a live holder's scan is seen through, a finished one's
 * record makes the repository fresh, and a dead one's lease is taken once it runs out.
 */
const LEASE_SLACK_FRACTION = 0.25;

/** How long one store write may take before it counts as failed. */
const WRITE_TIMEOUT_MS = 10_000;

/** How the Warmer is set up. */
export interface WarmerOptions {
  /** Where the cache lives (shared between replicas for memcached and Redis). */
  store: Store;
  /** Makes a client per repository; `succeed()` is called after each clean scan. */
  factory: ClientFactory;
  /** The repositories to keep warm, with their credentials; asked again every interval. */
  lookup?: ImageCredsLookup | undefined;
  /** Per-repository options (tag filter, platform, interval), by canonical name. */
  repositoryOptions?: ((repository: string) => RepositoryOptions | undefined) | undefined;
  /** Key namespace (default `new Keys()`, prefix `regscan:v2:`). */
  keys?: Keys | undefined;
  /** Registry requests in flight per repository (default 10). */
  burst?: number | undefined;
  /** Interval between lookups and default per-repository interval, ms (default 60 s). */
  intervalMs?: number | undefined;
  /** Repositories scanned at the same time (default {@link DEFAULT_CONCURRENCY}). */
  concurrency?: number | undefined;
  /**
   * Repositories of one registry host scanned at the same time by the loop (default
   * {@link DEFAULT_PER_HOST_CONCURRENCY}, at most `concurrency`), so that one slow registry
   * or one huge repository never holds up the others. A repository late against its bound
   * (lease TTL + interval) starts beyond it (up to `concurrency`, at least twice it) and
   * beyond `concurrency` scans in flight (up to twice it; priority requests up to three
   * times, see {@link IN_FLIGHT_PER_WORKER}).
   */
  perHostConcurrency?: number | undefined;
  /**
   * Tags of the repositories the loop scans at once (their last listings; default
   * {@link DEFAULT_MAX_TAGS_IN_FLIGHT}): what scans hold in memory follows it. A repository
   * that does not fit waits, and is kept room; one heavier than it counts as three quarters
   * of it; priority requests never wait for it.
   */
  maxTagsInFlight?: number | undefined;
  /** Identifies this warmer's leases (default `hostname:pid:random`). */
  owner?: string | undefined;
  /** How long a repository lease lasts unless renewed (renewed every third; default 5 min). */
  leaseTtlMs?: number | undefined;
  logger?: Logger | undefined;
  /** Where the metrics go (default prom-client's global registry). */
  metricsRegistry?: MetricsRegistry | undefined;
  /**
   * Whether `regscan_warmer_tags_cached` has its series per repository (default true): one
   * per repository this warmer scanned last, 10,000 at 10,000 repositories on one replica.
   */
  tagsCachedByRepository?: boolean | undefined;
  /**
   * How long a loop scan runs before it gives its repository's lease up to a refresh that
   * waits for it (a webhook's tags; default 10 s): it stops as a stopped scan does, and the
   * loop goes on with it soon after, reusing its listing (see `RepositoryScanResult.yielded`).
   */
  yieldAfterMs?: number | undefined;
  /** The clock for deadlines and scan marks (tests pass a fake one). */
  now?: (() => number) | undefined;
  /**
   * Spreads each tag's refresh interval by up to this fraction either way (0.1 is ±10%), so
   * that the thousands of tags a first scan finds do not all fall due in the same minute.
   * Default 0: Flux v1's exact intervals.
   */
  refreshJitter?: number | undefined;
  /**
   * A repository whose listing stays unchanged is listed ever less often: after
   * `quietScansBeforeBackoff` unchanged scans (default 3) its interval doubles at each
   * unchanged scan, up to this multiple of it (default 8; 1 never backs off). A change, new
   * tags or moved ones, puts it back at its interval. Priority refreshes are never held back.
   */
  maxIntervalFactor?: number | undefined;
  quietScansBeforeBackoff?: number | undefined;
  /**
   * Whether each loop scan checks every tag not checked within part of the repository's
   * interval (see {@link TAG_CHECK_FRACTION}; default true). False leaves tags to their own
   * refresh deadlines: far fewer `HEAD`s on huge repositories of immutable tags, but a moved
   * tag is then seen only at its deadline unless a webhook or refresh names it.
   */
  pollTags?: boolean | undefined;
  /**
   * Holds the loop's regular scans back, each for a bounded time, while the event loop is
   * busy, so that a process that also answers reads (`regscan serve`) gives them the loop
   * (loop-brake.ts). Priority requests and late repositories are never held. True: the
   * brake's defaults; default none (a process that only warms has nobody to give way to).
   */
  loopBrake?: LoopBrake | LoopBrakeOptions | boolean | undefined;
  /**
   * The interval stretches of the other replicas on the store (the daemon's census): each
   * host's intervals are stretched by the largest factor of any live replica. Default: this
   * warmer's own alone.
   */
  stretchPeers?: StretchPeers | undefined;
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

/** One repository scan of {@link Warmer} (the loop's or a `scan()` call's). */
interface ScanOneOptions {
  name: ImageName;
  creds: Credentials;
  options: RepositoryOptions;
  /** Scan even if scanned less than an interval ago. */
  force: boolean;
  /** Check every kept tag with HEAD (a priority refresh). */
  checkAll: boolean;
  /** Its requests go ahead of other scans' in the hosts' rate limits (webhooks, refreshes). */
  priority?: boolean | undefined;
  /** Its listing goes ahead (a repository late against its bound). */
  listPriority?: boolean | undefined;
  /** Check kept tags not checked within the repository's interval (the loop's polling). */
  pollTags: boolean;
  /** Check `options.onlyTags` without listing, where the scan can (`WarmJob.skipListing`). */
  skipListing?: boolean | undefined;
  /** A loop scan, which gives its lease up to a refresh waiting for it (scan-yield.ts). */
  yieldable?: boolean | undefined;
  signal: AbortSignal;
  onProgress?: ((p: { total: number; done: number }) => void) | undefined;
  /** Told the listing's size once listed (`WarmJob.onListed`). */
  onListed?: ((tags: number) => void) | undefined;
}

/** The most of its interval a repository's next scan starts early by (see `#nextRefreshAt`). */
const EARLY_START_SHARE = 0.25;
/**
 * A host's demand under which scans start early: starting each a quarter of its interval
 * sooner asks up to a third more of the host (1 / 0.75), so demand under half the budget
 * stays under two thirds of it, short of a stretch (`STRETCH_UTILISATION`).
 */
const EARLY_START_UTILISATION = 0.5;

/** Keeps the cache warm; see the module comment and DESIGN.md section 5. */
export class Warmer {
  /** The owner id of this warmer's leases. */
  readonly owner: string;
  readonly #opts: WarmerOptions;
  readonly #ctx: WarmContext;
  readonly #intervalMs: number;
  readonly #concurrency: number;
  readonly #schedule: Schedule;
  readonly #events = new TagEvents();
  readonly #scanListeners = new Set<(result: RepositoryScanResult) => void>();
  readonly #status = new Map<string, HeldStatus>();
  readonly #paces = new Map<string, RepositoryPace>();
  readonly #stretch: BudgetStretch;
  /** The other replicas' stretches and fills (the daemon's census), when shared. */
  readonly #peers: StretchPeers | undefined;
  /** Holds regular scans back while the event loop is busy (undefined: never). */
  readonly #brake: LoopBrake | undefined;
  #creds: ImageCreds = new Map();
  #running = false;
  /** Raises a running scan's requests to priority, by repository (see `prioritize`). */
  readonly #raises = new Map<string, AbortController>();
  /** The loop's running scans that a refresh of this warmer may ask to give their lease up. */
  readonly #yieldAsks = new Map<string, AbortController>();

  constructor(opts: WarmerOptions) {
    this.#opts = opts;
    this.owner =
      opts.owner ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
    this.#intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.#concurrency = Math.max(1, Math.floor(opts.concurrency ?? DEFAULT_CONCURRENCY));
    const perHost = Math.min(
      this.#concurrency,
      opts.perHostConcurrency ?? DEFAULT_PER_HOST_CONCURRENCY,
    );
    this.#schedule = new Schedule({
      hostOf: (name) => this.#imageName(name)?.apiHost.toLowerCase() ?? "",
      perHostConcurrency: perHost,
      // Late ones of a host may take as many as the workers (at least twice the cap): the
      // late lane's size (see #dispatch), while the regular lane's floor goes on with others.
      latePerHostConcurrency: Math.max(2 * perHost, this.#concurrency),
      lateAfterMs: (opts.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS) * LEASE_SLACK_FRACTION,
      maxWeightInFlight: opts.maxTagsInFlight ?? DEFAULT_MAX_TAGS_IN_FLIGHT,
      onWeightChange: (tags) => this.#ctx.metrics.scanTagsInFlight.set(tags),
      onColdChange: (host, cold) => opts.stretchPeers?.publishFilling?.(host, cold),
      hostCost: (name) => {
        const image = this.#imageName(name);
        try {
          return image && this.#ctx.factory.hostConditions?.(image);
        } catch {
          return undefined; // a factory that cannot say: every host costs the same
        }
      },
    });
    this.#peers = opts.stretchPeers;
    const logger = opts.logger ?? pino({ level: "silent" });
    const burst = Math.max(1, opts.burst ?? DEFAULT_BURST);
    const keys = opts.keys ?? new Keys();
    const hostSharing = new HostSharing();
    this.#ctx = {
      store: opts.store,
      keys,
      factory: opts.factory,
      logger,
      metrics: warmerMetrics(opts.metricsRegistry, {
        tagsCachedByRepository: opts.tagsCachedByRepository,
      }),
      events: this.#events,
      now: opts.now ?? Date.now,
      burst,
      owner: this.owner,
      leaseTtlMs: opts.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS,
      storeConcurrency: DEFAULT_READ_CHUNKS_IN_FLIGHT,
      finalWriteTimeoutMs: WRITE_TIMEOUT_MS,
      // Every tag write in flight, of every repository scanned at once, listens on it.
      refresh: { jitter: opts.refreshJitter ?? 0 },
      hostSharing,
      hostSharingSync: new HostSharingSync({
        store: opts.store,
        keys,
        sharing: hostSharing,
        logger,
      }),
      writeTimeout: new SharedTimeout({
        timeoutMs: WRITE_TIMEOUT_MS,
        slackMs: 1000,
        // Scans in flight reach a few times the workers (priority and late work have a lane
        // of their own): bench:scale's 1,000 repositories passed the old bound of one lane.
        listeners: burst * this.#concurrency * IN_FLIGHT_PER_WORKER + 16,
      }),
    };
    this.#brake =
      opts.loopBrake === undefined || opts.loopBrake === false
        ? undefined
        : opts.loopBrake instanceof LoopBrake
          ? opts.loopBrake
          : new LoopBrake(opts.loopBrake === true ? {} : opts.loopBrake);
    const metrics = this.#ctx.metrics;
    this.#stretch = new BudgetStretch({
      factory: opts.factory,
      now: this.#ctx.now,
      log: logger,
      onChange: (host, factor) => metrics.intervalStretch.set({ host }, factor),
      peers: opts.stretchPeers,
    });
  }

  /**
   * Runs the warming loop until `signal` aborts: asks the lookup for repositories every
   * interval, scans each when its own interval since its last scan has passed (priority
   * requests first, then the most overdue whose host has room), and resolves once in-flight
   * scans have been cancelled and what they fetched has been written.
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
          this.#ctx.metrics.tagsCached?.remove({ repository: name });
        }
      }
      this.#schedule.sync(this.#creds.keys());
    };
    await refill();
    const timer = setInterval(() => void refill(), this.#intervalMs);
    const followed = this.#follow(signal);
    try {
      await this.#dispatch(followed.signal);
    } finally {
      followed.dispose();
      clearInterval(timer);
      // The last sharing records written before the caller closes the store (bounded).
      await this.#ctx.hostSharingSync.settle();
      this.#running = false;
    }
  }

  /**
   * Asks for `repository` (canonical name or ImageName) to be scanned next, whatever its
   * interval says. Only repositories from the lookup are scanned; an unknown name makes
   * the warmer ask the lookup again once, then it is dropped with a warning. With
   * `onlyTags` (a webhook named them), the scan lists the tags once and checks only those
   * tags and tags not yet cached, not every tag; with `listing: false` too (the tags were
   * pushed), it checks them without listing the repository, where it can (see
   * `WarmJob.skipListing`).
   */
  prioritize(
    repository: ImageName | string,
    opts: { onlyTags?: readonly string[]; listing?: boolean } = {},
  ): void {
    const name = repository.toString();
    // A scan of it under way finishes at priority: the one asked for runs right after it
    // (priority-scan.ts), and at a saturated budget a poll scan's requests waited seconds
    // each behind the host's backlog (bench:scale at 100,000 tags: a webhook seen after 7 s).
    this.#raises.get(name)?.abort();
    // One that has run a while gives its lease up to a refresh of named tags (a webhook's).
    if (opts.onlyTags !== undefined) this.#yieldAsks.get(name)?.abort();
    const ask = () => this.#schedule.prioritize(name, opts.onlyTags, { listing: opts.listing });
    if (this.#creds.has(name)) {
      ask();
      return;
    }
    void (async () => {
      try {
        this.#creds = await (this.#opts.lookup?.() ?? new Map());
      } catch (error) {
        this.#ctx.logger.error({ error: summarizeError(error) }, "image lookup failed");
      }
      if (this.#creds.has(name)) ask();
      else this.#ctx.logger.warn({ repository: name }, "priority refresh of an unknown repository");
    })();
  }

  /**
   * Asks the warmer sharing the store that scans `repository` now (its lease's holder) to give
   * the lease up, once its scan has run a while (`yieldAfterMs`): for a refresh skipped for
   * that lease, which would otherwise wait for the whole scan. Best effort: a store that
   * fails the write is logged, and the refresh waits as before.
   */
  async askToYield(repository: ImageName | string): Promise<void> {
    const name = typeof repository === "string" ? this.#imageName(repository) : repository;
    if (!name) return;
    try {
      await askToYield(this.#ctx, name, AbortSignal.timeout(ASK_TIMEOUT_MS));
    } catch (error) {
      this.#ctx.logger.warn(
        { repository: name.toString(), error: summarizeError(error) },
        "could not ask the lease's holder to give it up",
      );
    }
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
      { limit: this.#concurrency },
      async ({ target, index }) => {
        const name = target.name.toString();
        results[index] = await this.#scanOne({
          name: target.name,
          creds: target.creds ?? Credentials.none(),
          options: target.options ?? this.#opts.repositoryOptions?.(name) ?? {},
          force: opts.force ?? true,
          checkAll: false,
          // A one-off pass has no interval to poll within: tags follow their own deadlines.
          pollTags: false,
          signal,
          onProgress: opts.onProgress && ((p) => opts.onProgress?.(name, p)),
        });
      },
    ).finally(dispose);
    await this.#ctx.hostSharingSync.settle();
    return results;
  }

  /** What this warmer knows about each repository of the last lookup (and any it scanned). */
  status(): RepositoryStatus[] {
    return [...this.#status.values()].map((s) => this.#view(s));
  }

  /** One repository's status, or undefined when this warmer has not met it. */
  repositoryStatus(repository: ImageName | string): RepositoryStatus | undefined {
    const s = this.#status.get(repository.toString());
    return s && this.#view(s);
  }

  /** A status in its public form, with the repository's own interval until a scan applied one. */
  #view(s: HeldStatus): RepositoryStatus {
    return s.view(
      s.intervalMs ?? this.#opts.repositoryOptions?.(s.repository)?.intervalMs ?? this.#intervalMs,
    );
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
    setMaxListeners(Math.max(10, this.#concurrency * IN_FLIGHT_PER_WORKER * 2), inner.signal);
    const follow = () => inner.abort(outer?.reason);
    if (outer?.aborted) follow();
    outer?.addEventListener("abort", follow, { once: true });
    return { signal: inner.signal, dispose: () => outer?.removeEventListener("abort", follow) };
  }

  /**
   * Starts scans while there is room (regular work up to `concurrency`; late and priority
   * work beyond it, {@link IN_FLIGHT_PER_WORKER}) and work to do, then waits
   * for a change (a request, a lookup, a finished scan) or the next due time; each turn
   * starts a scan or waits, so the loop never spins. Resolves once in-flight scans end.
   */
  async #dispatch(signal: AbortSignal): Promise<void> {
    const running = new Set<Promise<void>>();
    const brake = this.#brake;
    const schedule = this.#schedule;
    const workers = this.#concurrency;
    // Regular work starts while fewer than `workers` scans are in flight; and, late ones
    // aside, while fewer than a quarter of them are regular ones: late rescans of hosts at a
    // saturated budget are slow and come in a steady stream, and once they held every slot
    // a host's cold fill (first in the regular lane) never started again (bench:scale at
    // 10,000 repositories: 166 of the Docker Hub-like registry's repositories unscanned from
    // minute 23, its budget idle). With the floor open to late ones too, they held it as well
    // and the fill went on one scan at a time in a replica. Bounding the two lanes apart at
    // `workers` each instead kept the regular lane full of merely-due rescans besides: twice
    // the scans in flight at saturated hosts, each slower, and webhooks' scans waited for
    // slots (their staleness p50 went from 1.7 s to 14 s).
    const regularFloor = Math.max(1, Math.ceil(workers / 4));
    // The schedule's counts, not `running`'s: a finished scan leaves them before its waiter
    // wakes, while `running` learns it only a few ticks later.
    const regularInFlight = () => schedule.inFlight - schedule.urgentInFlight;
    const regularRoom = () => schedule.inFlight < workers;
    const floorRoom = () => regularInFlight() < regularFloor;
    const startWhile = (room: () => boolean, take: () => ScheduledItem | undefined) => {
      while (room()) {
        const item = take();
        if (!item) break;
        const scan: Promise<void> = this.#run(item, signal).finally(() => running.delete(scan));
        running.add(scan);
      }
    };
    while (!signal.aborted) {
      // The brake is asked only when regular work could start now: a hold's bound runs
      // from the first turn that had something to hold back (loop-brake.ts).
      const held =
        brake !== undefined &&
        (regularRoom() || floorRoom()) &&
        (schedule.nextDue() ?? Number.POSITIVE_INFINITY) <= this.#ctx.now()
          ? brake.look()
          : undefined;
      // While the loop is busy, regular scans wait (bounded) so that API reads get the loop;
      // priority requests and late repositories start below whatever the brake says.
      if (!held?.hold) {
        startWhile(regularRoom, () => schedule.take(this.#ctx.now()));
        startWhile(floorRoom, () => schedule.take(this.#ctx.now(), { skipLate: true }));
      }
      // Webhooks and POST .../refresh do not wait for a slot: every slot may be held by long
      // scans (a huge repository, or polling at a stretched budget), and bench:scale saw a
      // webhook's tag visible 9 s after the push (p99) behind them. Nor do repositories late
      // against their bound (lease TTL + interval; schedule.ts), which waited for slots
      // past it: they take up to `workers` more. Priority requests, a few requests each,
      // take up to as many again, so that late rescans never hold them back.
      startWhile(
        () => schedule.urgentInFlight < workers,
        () => schedule.take(this.#ctx.now(), { urgentOnly: true }),
      );
      startWhile(
        () => schedule.urgentInFlight < (IN_FLIGHT_PER_WORKER - 1) * workers,
        () => schedule.take(this.#ctx.now(), { priorityOnly: true }),
      );
      // The lookup's timer wakes the loop every interval anyway; a fake clock (tests) that
      // moved meanwhile is looked at then.
      let waitMs = this.#intervalMs;
      const now = this.#ctx.now();
      const lanes: Array<number | undefined> = [];
      if (regularRoom() && !held?.hold) lanes.push(schedule.nextDue());
      else if (floorRoom() && !held?.hold) lanes.push(schedule.nextDue({ skipLate: true, now }));
      if (schedule.urgentInFlight < workers) lanes.push(schedule.nextDue({ urgentOnly: true }));
      for (const next of lanes) {
        if (next !== undefined) waitMs = Math.min(waitMs, Math.max(0, next - now));
      }
      // Held: look again when the brake's answer may change (a new request wakes it sooner).
      if (held?.hold) waitMs = Math.min(waitMs, held.recheckMs);
      await schedule.changed(signal, waitMs);
      // The next turn waits for the event loop's next round: woken by a finished scan, each
      // turn ran in the same round as the scans that ended (microtasks), and its passes over
      // the schedule chained into busy stretches of 300-400 ms at 10,000 repositories (a CPU
      // profile of bench:scale's fill), which API reads and webhooks waited behind. Scans
      // that end meanwhile are taken in one turn.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await Promise.all(running);
  }

  /** One scheduled scan, then its next due time back to the schedule. */
  async #run(item: ScheduledItem, signal: AbortSignal): Promise<void> {
    let result: RepositoryScanResult | undefined;
    try {
      const creds = this.#creds.get(item.name);
      const name = creds && this.#imageName(item.name);
      // Dropped from the lookup since it was queued (or unparseable): nothing to scan.
      if (!creds || !name) return;
      const options = this.#opts.repositoryOptions?.(item.name) ?? {};
      result = await this.#scanOne({
        name,
        creds,
        options: item.onlyTags ? { ...options, onlyTags: item.onlyTags } : options,
        skipListing: item.skipListing,
        force: item.priority,
        // A priority refresh (POST .../refresh) checks every tag with HEAD, due or not, so
        // that a tag pushed over is seen at once; HEADs cost no Docker Hub pull.
        checkAll: item.priority,
        // Nor do its requests queue behind other scans' for the host's budget.
        priority: item.priority,
        // A late repository's listing does not either (schedule.ts): at a saturated budget
        // it waited seconds behind a huge repository's polling and others' HEADs.
        listPriority: item.late,
        // Not while the host's cold fill goes on: a rescan's HEAD of every tag would spend
        // the budget the fill needs (bench:scale: the fill took 5x its budget-bound minimum,
        // every host's interval stretched 2-8x by polling); the listing still finds new tags.
        pollTags: (this.#opts.pollTags ?? true) && !this.#filling(item.host),
        // What the scan holds counts from its listing (a first scan came in weighing nothing).
        onListed: (tags) => this.#schedule.weigh(item.name, tags),
        // A refresh waiting for it may have its lease; a priority scan is such a refresh.
        yieldable: !item.priority,
        signal,
      });
    } finally {
      this.#schedule.done(item.name, this.#nextScan(item.name, result));
    }
  }

  /**
   * When a repository scanned by the loop falls due again: its last scan (this warmer's or,
   * when skipped as fresh, the one its record names) plus its current interval. A repository
   * whose lease another warmer holds is looked at again after part of the lease TTL (see
   * {@link LEASE_SLACK_FRACTION}), not an interval later: if the holder dies, its lease runs
   * out within a TTL, and the repository must be listed within TTL + interval of its last
   * listing, so a look an interval later came too late. That look goes ahead of regular
   * work (`retryLease`): it costs store round trips, and a dead holder's repository is
   * taken over at once rather than after this warmer's backlog of a fill.
   */
  #nextScan(repository: string, result: RepositoryScanResult | undefined): NextScan {
    const now = this.#ctx.now();
    const status = this.#status.get(repository);
    const intervalMs = status?.intervalMs ?? this.#intervalMs;
    const likelihood = 1 / (this.#paces.get(repository)?.factor ?? 1);
    // What its next scan will hold: this listing's size, else what the record last said.
    const listed = result && result.tags + result.filteredOut;
    const weight = listed || result?.outcome === "scanned" ? listed : status?.tagCount;
    let dueAt = now + intervalMs;
    const retryLease = result?.outcome === "skipped-lease";
    if (status?.yieldedAt !== undefined && (result?.yielded || result?.unlisted)) {
      // The loop's scan gave its lease up to a refresh (this is that scan, or the refresh's
      // check of its tags here): the rest of that scan comes soon, after the refresh.
      const unscanned = status.lastScanned === undefined;
      return { dueAt: now + AFTER_YIELD_GAP_MS, likelihood, retryLease: false, unscanned, weight };
    }
    if (retryLease) {
      dueAt = now + Math.min(intervalMs, this.#ctx.leaseTtlMs * LEASE_SLACK_FRACTION);
    } else if (result?.unlisted) {
      // Due when its last listing said: the named tags' check listed nothing.
      return { dueAt: status?.nextRefresh ?? dueAt, likelihood, retryLease: false, weight };
    } else if (result && status?.nextRefresh !== undefined) {
      dueAt = status.nextRefresh;
    }
    // Whatever a record said, never due again at once: a record that is not rewritten (a
    // failing store) must not make the loop scan the repository back to back.
    dueAt = Math.max(dueAt, now + Math.min(intervalMs, MIN_RESCAN_GAP_MS));
    // Held by another warmer and never scanned by anyone (no record in the store, which the
    // skip read into the status): its first scan is under way there, the host's fill with it.
    const unscanned = retryLease && status?.lastScanned === undefined;
    // A whole scan counts in its host's cost per scan (a cold fill's slots follow it).
    const ran = result?.outcome === "scanned" && !result.unlisted;
    return { dueAt, likelihood, retryLease, unscanned, weight, ran };
  }

  #imageName(canonical: string): ImageName | undefined {
    try {
      return parseImageName(canonical);
    } catch (error) {
      this.#ctx.logger.warn({ repository: canonical, error: summarizeError(error) }, "skipped");
      return undefined;
    }
  }

  async #scanOne(scan: ScanOneOptions): Promise<RepositoryScanResult> {
    const { name, creds, options, force, checkAll, priority, listPriority, pollTags, signal } =
      scan;
    const { onProgress, onListed, skipListing, yieldable } = scan;
    const repository = name.toString();
    const pace = this.#paceOf(repository);
    const ownMs = options.intervalMs ?? this.#intervalMs;
    const paced = pace.intervalMs(ownMs);
    const intervalMs = paced * this.#stretched(name, paced);
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
    const raise = priority ? undefined : new AbortController();
    if (raise) {
      // Each of the scan's waiting requests listens on it while it naps.
      setMaxListeners(this.#ctx.burst + 16, raise.signal);
      this.#raises.set(repository, raise);
    }
    const yieldAsk = yieldable ? new AbortController() : undefined;
    if (yieldAsk) this.#yieldAsks.set(repository, yieldAsk);
    // The loop's scan before gave its lease up: its listing, written then, is used again.
    const reuseListingSince =
      !yieldable || status.yieldedAt === undefined
        ? undefined
        : this.#ctx.now() - Math.min(REUSED_LISTING_MAX_AGE_MS, intervalMs / 4);
    if (yieldable) status.yieldedAt = undefined;
    let result: RepositoryScanResult;
    try {
      const job: WarmJob = {
        name,
        creds,
        options,
        intervalMs,
        force,
        checkAll,
        priority: priority || raise?.signal,
        listPriority,
        signal,
      };
      if (skipListing) job.skipListing = true;
      if (yieldAsk) {
        job.yieldAfterMs = this.#opts.yieldAfterMs ?? DEFAULT_YIELD_AFTER_MS;
        job.yieldAsked = yieldAsk.signal;
        job.reuseListingSince = reuseListingSince;
      }
      if (onProgress) job.onProgress = onProgress;
      if (onListed) job.onListed = onListed;
      if (pollTags) job.tagCheckMs = intervalMs * TAG_CHECK_FRACTION;
      result = await warmRepository(this.#ctx, job);
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
      if (raise && this.#raises.get(repository) === raise) this.#raises.delete(repository);
      if (yieldAsk && this.#yieldAsks.get(repository) === yieldAsk) {
        this.#yieldAsks.delete(repository);
      }
    }
    if (result.yielded && result.outcome === "aborted") status.yieldedAt = this.#ctx.now();
    if (result.unlisted) {
      // Not a listing: the repository's pace, interval and last listing stay as they were.
      status.tagCount = result.tags;
    } else {
      if (result.outcome === "scanned") pace.record(listingChanged(result, status.tagCount));
      // What the scan asked of the budget shows now: the interval until the next scan follows it.
      const pacedNow = pace.intervalMs(ownMs);
      status.intervalMs = pacedNow * this.#stretched(name, pacedNow);
      await this.#updateStatus(name, status, result, status.intervalMs);
    }
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
    status: HeldStatus,
    result: RepositoryScanResult,
    intervalMs: number,
  ): Promise<void> {
    if (result.outcome === "scanned" || result.outcome === "failed") {
      status.lastScanned = result.startedAt.getTime();
      status.nextRefresh = this.#nextRefreshAt(
        name,
        status.lastScanned,
        result.durationMs,
        intervalMs,
      );
      if (result.outcome === "scanned" || result.tags > 0) {
        status.tagCount = result.tags;
        status.artifactTags = result.artifacts;
        status.lastUpdate =
          result.reusedListingOf?.getTime() ?? status.lastScanned + result.durationMs;
      }
      status.lastError = result.error;
      return;
    }
    if (result.outcome === "aborted") return;
    // Skipped: another warmer did (or does) the work; learn what it wrote.
    try {
      const got = await this.#ctx.store.get(this.#ctx.keys.repository(name), {
        signal: AbortSignal.timeout(5000),
      });
      const head = got && (decodeRepositoryIndexHead(got.value) ?? legacyHead(got.value));
      if (!head) return;
      const { record, tagCount } = head;
      if (tagCount !== undefined) {
        status.tagCount = tagCount;
        status.artifactTags = record.artifactTags ?? 0;
      }
      if (record.lastUpdate) status.lastUpdate = record.lastUpdate.getTime();
      status.lastError = record.lastError && {
        code: record.lastError.code,
        message: record.lastError.message,
      };
      if (record.lastScanned) {
        status.lastScanned = record.lastScanned.getTime();
        if (record.scannedBy !== undefined && record.scannedBy !== this.owner) {
          // Another replica scanned it last: its gauge shows the count, and this one's
          // would be summed with it (and go stale) in `sum(regscan_warmer_tags_cached)`.
          this.#ctx.metrics.tagsCached?.remove({ repository: name.toString() });
        }
        const took =
          record.lastUpdate !== undefined
            ? record.lastUpdate.getTime() - record.lastScanned.getTime()
            : 0;
        status.nextRefresh = this.#nextRefreshAt(name, status.lastScanned, took, intervalMs);
      }
    } catch {
      // Status is best effort; the next scan updates it.
    }
  }

  /**
   * When a repository whose last scan began at `startedAt` and took `durationMs` falls due:
   * an interval after that scan began, less its duration (at most a quarter of the interval)
   * while its host has budget to spare, so that the next scan ends about an interval after
   * the last one began. A tag changed just after a scan checked it is checked again up to a
   * scan's duration into the next scan: with an interval between starts, such a change was
   * seen an interval plus a scan later (bench:scale: 41.8 s on a 40 s interval, a 54-tag
   * repository's 3.6 s scans). Not while the host fills, is stretched or is at half its
   * budget or more: there the earlier starts are scans the budget cannot pay for.
   */
  #nextRefreshAt(
    name: ImageName,
    startedAt: number,
    durationMs: number,
    intervalMs: number,
  ): number {
    const early = this.#hasRoom(name)
      ? Math.min(Math.max(0, durationMs), EARLY_START_SHARE * intervalMs)
      : 0;
    return startedAt + intervalMs - early;
  }

  /** Whether `name`'s host has budget to spare: not filling, not stretched, under half its budget. */
  #hasRoom(name: ImageName): boolean {
    if (!this.#running) return false;
    const host = name.apiHost.toLowerCase();
    if (this.#filling(host) || this.#stretch.factor(name) > 1) return false;
    try {
      const utilisation = this.#ctx.factory.hostConditions?.(name)?.utilisation;
      return utilisation !== undefined && utilisation < EARLY_START_UTILISATION;
    } catch {
      return false;
    }
  }

  /**
   * The stretch of `name`'s host, looked at again: only while the loop runs, since intervals
   * mean nothing to a one-off `scan()` (`regscan scan`), which should not warn about them;
   * held while the host's cold fill goes on (see `BudgetStretch#observe`).
   */
  #stretched(name: ImageName, intervalMs: number): number {
    if (!this.#running) return 1;
    const hold = this.#filling(name.apiHost.toLowerCase());
    return this.#stretch.observe(name, { hold, intervalMs });
  }

  /**
   * Whether `host`'s cold fill goes on, here or at another replica: its rescans then poll no
   * kept tag, and its intervals are not stretched. A replica whose own part of a host's fill
   * is done while another's goes on (a huge repository's first scan, minutes long) would
   * otherwise poll every tag it keeps there, with the budget shares that fill needs.
   */
  #filling(host: string): boolean {
    return this.#schedule.hasColdWork(host) || (this.#peers?.fillingElsewhere?.(host) ?? false);
  }

  #paceOf(repository: string): RepositoryPace {
    let pace = this.#paces.get(repository);
    if (!pace) {
      const paceOptions: RepositoryPaceOptions = {};
      if (this.#opts.maxIntervalFactor !== undefined) {
        paceOptions.maxFactor = this.#opts.maxIntervalFactor;
      }
      if (this.#opts.quietScansBeforeBackoff !== undefined) {
        paceOptions.quietScans = this.#opts.quietScansBeforeBackoff;
      }
      pace = new RepositoryPace(paceOptions);
      this.#paces.set(repository, pace);
    }
    return pace;
  }

  #statusOf(repository: string): HeldStatus {
    let status = this.#status.get(repository);
    if (!status) {
      status = new HeldStatus(repository);
      this.#status.set(repository, status);
    }
    return status;
  }
}

/** A first-layout repository record (a store not rescanned since the upgrade) as a head. */
function legacyHead(bytes: Uint8Array): RepositoryIndexHead | undefined {
  const record = decodeRepositoryRecord(bytes);
  return record && { record, tagCount: record.tags?.length };
}
