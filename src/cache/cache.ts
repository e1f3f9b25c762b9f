/**
 * `Cache`: a `Registry` that answers from the store the Warmer fills (Flux v1's
 * `cache.Cache`), never contacting a registry. Decorators may rewrite what it returns.
 */
import pino, { type Logger } from "pino";
import type { Histogram, Registry as MetricsRegistry } from "prom-client";
import type { ImageInfo, RepositoryMetadata } from "../image/info.js";
import type { ImageName, ImageRef } from "../image/ref.js";
import type { OperationOptions, Registry } from "../registry/registry.js";
import { DEFAULT_READ_CHUNKS_IN_FLIGHT, readChunked } from "./chunked-read.js";
import { type Decorator, decorateImage, decorateRepository } from "./decorators.js";
import {
  CachedFetchError,
  ImageExcludedError,
  NotCachedError,
  TagFetchError,
  UnknownDigestError,
  UnknownTagError,
} from "./errors.js";
import { Keys } from "./keys.js";
import { cacheRequestDuration } from "./metrics.js";
import {
  decodeRepositoryRecord,
  decodeTagFailure,
  decodeTagRecord,
  type RepositoryRecord,
  type TagError,
  type TagRecord,
  TagRecordDecoder,
} from "./records.js";
import type { Store } from "./store.js";

/** How a Cache is set up. */
export interface CacheOptions {
  store: Store;
  /** Key namespace; must match the Warmer's (default `new Keys()`). */
  keys?: Keys;
  /** Applied in order to every answer (e.g. `timestampLabelDecorator(globs)`). */
  decorators?: Decorator[];
  /** Where `regscan_cache_request_duration_seconds` goes (default prom-client's global registry). */
  metricsRegistry?: MetricsRegistry;
  logger?: Logger;
  /** Store reads in flight for one answer, each of up to 1,000 tag records (default 2). */
  readConcurrency?: number;
}

/** One tag as the cache holds it, for `regscan get` and the daemon. */
export interface CachedTag {
  tag: string;
  record?: TagRecord;
  /** When the warmer will check the tag again. */
  deadline?: Date;
  /**
   * Why the tag has no record: every fetch of it failed (its last error). A stale record
   * carries its own in `record.lastError`.
   */
  fetchError?: TagError;
}

/** Answers `Registry` questions from the store. */
export class Cache implements Registry {
  readonly #store: Store;
  readonly #keys: Keys;
  readonly #decorators: Decorator[];
  readonly #duration: Histogram<string>;
  readonly #logger: Logger;
  readonly #readConcurrency: number;

  constructor(opts: CacheOptions) {
    this.#store = opts.store;
    this.#keys = opts.keys ?? new Keys();
    this.#decorators = opts.decorators ?? [];
    this.#duration = cacheRequestDuration(opts.metricsRegistry);
    this.#logger = opts.logger ?? pino({ level: "silent" });
    this.#readConcurrency = Math.max(1, opts.readConcurrency ?? DEFAULT_READ_CHUNKS_IN_FLIGHT);
  }

  /**
   * Every cached tag of the repository and the images known for them. Throws
   * `NotCachedError` before the first scan, `CachedFetchError` (with the original code) when
   * no scan ever succeeded, and otherwise returns the last good result even when later
   * scans failed. Images of tags that point at the same digest share their labels and
   * platforms, which are frozen: copy them before changing them.
   */
  async getImageRepositoryMetadata(
    name: ImageName,
    opts?: OperationOptions,
  ): Promise<RepositoryMetadata> {
    return this.#timed("getImageRepositoryMetadata", async () => {
      const record = await this.repositoryRecord(name, opts);
      const tags = listedTags(name, record);
      const images = new Map<string, ImageInfo>();
      const entries = await this.#readTags(name, tags, opts);
      for (const { tag, record: tagRecord } of entries) {
        if (tagRecord?.entry.info) images.set(tag, tagRecord.entry.info);
      }
      return decorateRepository(this.#decorators, name, { tags, images });
    });
  }

  /**
   * The image behind a tag (a reference without tag or digest means `latest`) or a digest
   * (looked up among the repository's cached tags). Throws `ImageExcludedError` for an
   * excluded image (artifact tags included), `UnknownTagError` when the cached listing has
   * no such tag, `TagFetchError` (with the tag's own last error) when it is listed but was
   * never fetched successfully, and `NotCachedError` when the cache does not hold it (yet).
   * A tag whose later refreshes failed answers its last good value (its record's
   * `lastError` says why it is stale).
   */
  async getImage(ref: ImageRef, opts?: OperationOptions): Promise<ImageInfo> {
    return this.#timed("getImage", async () => {
      if (ref.digest !== undefined) return this.#imageByDigest(ref, ref.digest, opts);
      const tag = ref.tag ?? "latest";
      const got = await this.#store.get(this.#keys.tag(ref.name, tag), opts);
      const record = got && decodeTagRecord(got.value, ref.name, tag);
      if (!record) {
        // Before the first scan, say so (or replay its error) rather than "not cached".
        const repository = await this.repositoryRecord(ref.name, opts);
        if (!listedTags(ref.name, repository).includes(tag)) {
          throw new UnknownTagError(ref.toString(), repository?.lastUpdate);
        }
        // Listed, but every fetch of it failed: its own error, not "run regscan scan".
        const failure = got && decodeTagFailure(got.value);
        if (failure) {
          throw new TagFetchError(ref.toString(), failure.code, failure.message, failure.at);
        }
        throw new NotCachedError(ref.toString());
      }
      if (record.entry.excludedReason !== undefined) {
        throw new ImageExcludedError(ref.toString(), record.entry.excludedReason);
      }
      return decorateImage(this.#decorators, ref.name, record.entry.info);
    });
  }

  /** The repository record as stored (tags, last update, last error, last scan), or undefined. */
  async repositoryRecord(
    name: ImageName,
    opts?: OperationOptions,
  ): Promise<RepositoryRecord | undefined> {
    const got = await this.#store.get(this.#keys.repository(name), opts);
    if (!got) return undefined;
    const record = decodeRepositoryRecord(got.value);
    if (!record) {
      this.#logger.warn({ repository: name.toString() }, "repository record does not decode");
    }
    return record;
  }

  /**
   * Every cached tag of the repository with its raw record and deadline (excluded images
   * and refresh bookkeeping included), without decorators; the same errors as
   * `getImageRepositoryMetadata`.
   */
  async cachedTags(name: ImageName, opts?: OperationOptions): Promise<CachedTag[]> {
    const tags = listedTags(name, await this.repositoryRecord(name, opts));
    return this.#readTags(name, tags, opts);
  }

  /** One tag's raw record and deadline, or undefined when the store does not hold it. */
  async cachedTag(
    name: ImageName,
    tag: string,
    opts?: OperationOptions,
  ): Promise<CachedTag | undefined> {
    const got = await this.#store.get(this.#keys.tag(name, tag), opts);
    const record = got && decodeTagRecord(got.value, name, tag);
    return record && { tag, record, deadline: got.deadline };
  }

  async #readTags(name: ImageName, tags: string[], opts?: OperationOptions): Promise<CachedTag[]> {
    const out: CachedTag[] = tags.map((tag) => ({ tag }));
    const decoder = new TagRecordDecoder();
    let failure: { error: unknown } | undefined;
    await readChunked(
      this.#store,
      tags.length,
      (i) => this.#keys.tag(name, tags[i] as string),
      this.#readConcurrency,
      (chunk) => {
        if (chunk.entries === undefined) {
          failure ??= { error: chunk.error };
          return;
        }
        for (let j = 0; j < chunk.entries.length; j++) {
          const got = chunk.entries[j];
          const item = out[chunk.start + j] as CachedTag;
          const record = got && decoder.decode(got.value, name, item.tag);
          if (got && !record) {
            const failure = decodeTagFailure(got.value);
            if (failure) item.fetchError = failure;
          }
          if (!got || !record) continue;
          item.record = record;
          item.deadline = got.deadline;
        }
      },
      opts,
    );
    opts?.signal?.throwIfAborted();
    if (failure) throw failure.error;
    return out;
  }

  async #imageByDigest(ref: ImageRef, digest: string, opts?: OperationOptions): Promise<ImageInfo> {
    const tags = await this.cachedTags(ref.name, opts);
    for (const { record } of tags) {
      const info = record?.entry.info;
      if (info && (info.digest === digest || info.platformDigest === digest)) {
        return decorateImage(this.#decorators, ref.name, { ...info, ref });
      }
    }
    throw new UnknownDigestError(ref.toString());
  }

  async #timed<T>(method: string, work: () => Promise<T>): Promise<T> {
    const end = this.#duration.startTimer({ method });
    try {
      const value = await work();
      end({ success: "true" });
      return value;
    } catch (error) {
      end({ success: "false" });
      throw error;
    }
  }
}

/** The tags to answer with, or the error that says why there are none. */
function listedTags(name: ImageName, record: RepositoryRecord | undefined): string[] {
  if (record?.tags) return record.tags;
  if (record?.lastError) {
    throw new CachedFetchError(
      name.toString(),
      record.lastError.code,
      record.lastError.message,
      record.lastError.at,
    );
  }
  throw new NotCachedError(name.toString());
}
