/**
 * The daemon's view of what it watches: the last answer of the image lookup, and the
 * warmer's control surface for the HTTP API with status merged from the shared store (so
 * that every replica reports what any replica scanned).
 */
import type { Logger } from "pino";
import type { Cache } from "../cache/cache.js";
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
  private names = new Set<string>();
  private at = 0;
  private pending: Promise<ImageCreds> | undefined;

  constructor(private readonly lookup: ImageCredsLookup) {}

  /** The lookup to give the warmer: the same answers, remembered. */
  readonly tracked: ImageCredsLookup = async () => {
    this.pending ??= (async () => {
      try {
        const found = await this.lookup();
        this.names = new Set(found.keys());
        this.at = Date.now();
        return found;
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  };

  /** True when the last lookup had the repository; asks again when that answer is old. */
  async has(name: string, maxAgeMs = 5_000): Promise<boolean> {
    if (this.names.has(name)) return true;
    if (Date.now() - this.at < maxAgeMs) return false;
    try {
      await this.tracked();
    } catch {
      return false;
    }
    return this.names.has(name);
  }

  /** The repositories of the last lookup, sorted. */
  list(): string[] {
    return [...this.names].sort();
  }
}

/** The warmer and cache as the HTTP API sees them. */
export class DaemonWarmerControl implements WarmerControl {
  constructor(
    private readonly warmer: Warmer,
    private readonly cache: Cache,
    private readonly watch: WatchList,
    private readonly logger: Logger,
    private readonly refreshes: RefreshCoalescer,
    private readonly feed: TagEventFeed = localTagEventFeed(warmer),
  ) {}

  async statuses(): Promise<RepositoryStatus[]> {
    const names = this.watch.list();
    const out: RepositoryStatus[] = new Array(names.length);
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const i = next++;
        out[i] = await this.statusOf(names[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, names.length) }, worker));
    return out;
  }

  async isWatched(name: ImageName): Promise<boolean> {
    return this.watch.has(name.toString());
  }

  repositoryStatus(name: ImageName): RepositoryStatus | undefined {
    return this.warmer.repositoryStatus(name);
  }

  requestRefresh(name: ImageName, request?: RefreshRequest): RefreshRequestOutcome {
    return this.refreshes.requestRefresh(name, request);
  }

  subscribe(listener: (event: TagEvent, id?: string) => void): () => void {
    return this.feed.subscribe(listener);
  }

  async replay(lastEventId: string, signal: AbortSignal): Promise<ReplayedEvent[] | undefined> {
    return this.feed.replay?.(lastEventId, signal);
  }

  private async statusOf(name: string): Promise<RepositoryStatus> {
    const local = this.warmer.repositoryStatus(name) ?? { repository: name, scanning: false };
    try {
      const record = await this.cache.repositoryRecord(parseImageName(name), {
        signal: AbortSignal.timeout(2_000),
      });
      if (!record) return local;
      return {
        ...local,
        tagCount: record.tags?.length ?? local.tagCount,
        lastUpdate: record.lastUpdate ?? local.lastUpdate,
        lastError: record.lastError
          ? { code: record.lastError.code, message: record.lastError.message }
          : undefined,
        lastScanned: record.lastScanned ?? local.lastScanned,
      };
    } catch (err) {
      this.logger.debug(
        { repository: name, err: (err as Error).message },
        "cannot read a repository record for its status",
      );
      return local;
    }
  }
}
