/**
 * The daemon's view of what it watches: the last answer of the image lookup, and the
 * warmer's control surface for the HTTP API with status merged from the shared store (so
 * that every replica reports what any replica scanned).
 */
import type { Logger } from "pino";
import type { Cache, RepositorySummary } from "../cache/cache.js";
import type { Warmer } from "../cache/warmer.js";
import type { RepositoryStatus, TagEvent } from "../cache/warmer-types.js";
import { type ImageName, parseImageName } from "../image/ref.js";
import type { ImageCreds, ImageCredsLookup } from "../registry/credentials/image-creds.js";
import type {
  RefreshRequest,
  RefreshRequestOutcome,
  ReplayedEvent,
  WarmerControl,
} from "../server/warmer-control.js";
import type { RefreshCoalescer } from "./refresh-coalescer.js";
import { localTagEventFeed, type TagEventFeed } from "./tag-event-feed.js";

/** Remembers the lookup's last answer so that the API knows which repositories are watched. */
export class WatchList {
  #names = new Set<string>();
  #at = 0;
  #pending: Promise<ImageCreds> | undefined;
  readonly #lookup: ImageCredsLookup;
  readonly #listeners = new Set<(names: string[]) => void>();

  constructor(lookup: ImageCredsLookup) {
    this.#lookup = lookup;
  }

  /** The lookup to give the warmer: the same answers, remembered. */
  readonly tracked: ImageCredsLookup = async () => {
    this.#pending ??= (async () => {
      try {
        const found = await this.#lookup();
        const before = this.#names;
        this.#names = new Set(found.keys());
        this.#at = Date.now();
        if (this.#listeners.size > 0 && !sameNames(before, this.#names)) {
          const names = this.list();
          for (const listener of this.#listeners) listener(names);
        }
        return found;
      } finally {
        this.#pending = undefined;
      }
    })();
    return this.#pending;
  };

  /** True when the last lookup had the repository; asks again when that answer is old. */
  async has(name: string, maxAgeMs = 5_000): Promise<boolean> {
    if (this.#names.has(name)) return true;
    if (Date.now() - this.#at < maxAgeMs) return false;
    try {
      await this.tracked();
    } catch {
      return false;
    }
    return this.#names.has(name);
  }

  /** The repositories of the last lookup, sorted. */
  list(): string[] {
    return [...this.#names].sort();
  }

  /** Calls `listener` with the new list whenever a lookup answers another set of names. */
  onChange(listener: (names: string[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

function sameNames(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const name of a) if (!b.has(name)) return false;
  return true;
}

/** What {@link DaemonWarmerControl} answers from. */
export interface DaemonWarmerControlOptions {
  warmer: Warmer;
  /** Where the status of repositories other replicas scanned is read. */
  cache: Cache;
  watch: WatchList;
  logger: Logger;
  /** Where `POST .../refresh` requests go. */
  refreshes: RefreshCoalescer;
  /** Tag events for the API's streams (default: the warmer's own). */
  feed?: TagEventFeed | undefined;
}

/** The warmer and cache as the HTTP API sees them. */
export class DaemonWarmerControl implements WarmerControl {
  readonly #warmer: Warmer;
  readonly #cache: Cache;
  readonly #watch: WatchList;
  readonly #logger: Logger;
  readonly #refreshes: RefreshCoalescer;
  readonly #feed: TagEventFeed;

  constructor(opts: DaemonWarmerControlOptions) {
    this.#warmer = opts.warmer;
    this.#cache = opts.cache;
    this.#watch = opts.watch;
    this.#logger = opts.logger;
    this.#refreshes = opts.refreshes;
    this.#feed = opts.feed ?? localTagEventFeed(opts.warmer);
  }

  async statuses(): Promise<RepositoryStatus[]> {
    const names = this.#watch.list();
    const parsed: ImageName[] = [];
    const at: number[] = [];
    names.forEach((name, i) => {
      try {
        parsed.push(parseImageName(name));
        at.push(i);
      } catch {
        // Not a name the warmer scans either: its own status alone.
      }
    });
    let summaries: (RepositorySummary | undefined)[] = [];
    try {
      summaries = await this.#cache.repositorySummaries(parsed, {
        signal: AbortSignal.timeout(STATUS_READ_MS),
      });
    } catch (err) {
      this.#logger.debug(
        { err: (err as Error).message },
        "cannot read the repository records for their status",
      );
    }
    const out = names.map((name) => this.#local(name));
    at.forEach((i, k) => {
      const summary = summaries[k];
      if (summary) out[i] = withSummary(out[i] as RepositoryStatus, summary);
    });
    return out;
  }

  async isWatched(name: ImageName): Promise<boolean> {
    return this.#watch.has(name.toString());
  }

  repositoryStatus(name: ImageName): RepositoryStatus | undefined {
    return this.#warmer.repositoryStatus(name);
  }

  requestRefresh(name: ImageName, request?: RefreshRequest): RefreshRequestOutcome {
    return this.#refreshes.requestRefresh(name, request);
  }

  subscribe(listener: (event: TagEvent, id?: string) => void): () => void {
    return this.#feed.subscribe(listener);
  }

  async replay(lastEventId: string, signal: AbortSignal): Promise<ReplayedEvent[] | undefined> {
    return this.#feed.replay?.(lastEventId, signal);
  }

  #local(name: string): RepositoryStatus {
    return this.#warmer.repositoryStatus(name) ?? { repository: name, scanning: false };
  }
}

/** Longest the status list waits for the stored records (it shows what this replica knows). */
const STATUS_READ_MS = 10_000;

/** `local` (this replica's status) with what the shared record says of the last scan by any. */
function withSummary(local: RepositoryStatus, record: RepositorySummary): RepositoryStatus {
  const status: RepositoryStatus = { ...local };
  const tagCount = record.tagCount ?? local.tagCount;
  if (tagCount !== undefined) status.tagCount = tagCount;
  const lastUpdate = record.lastUpdate ?? local.lastUpdate;
  if (lastUpdate !== undefined) status.lastUpdate = lastUpdate;
  // The shared record says whether the last scan by any replica failed, not this one's.
  if (record.lastError) status.lastError = record.lastError;
  else delete status.lastError;
  const lastScanned = record.lastScanned ?? local.lastScanned;
  if (lastScanned !== undefined) status.lastScanned = lastScanned;
  return status;
}
