/**
 * `Cache`: a `Registry` that answers from the store the Warmer fills (Flux v1's
 * `cache.Cache`), never contacting a registry. Decorators may rewrite what it returns.
 */
import pino, { type Logger } from "pino";
import type { Histogram, Registry as MetricsRegistry } from "prom-client";
import type { OperationOptions } from "../abort.js";
import type { ImageInfo, RepositoryMetadata } from "../image/info.js";
import type { ImageName, ImageRef } from "../image/ref.js";
import type { Registry } from "../registry/registry.js";
import {
  DEFAULT_TAGS_PER_SLICE,
  type RepositoryStream,
  streamOfMetadata,
  type TaggedImage,
} from "../registry/repository-stream.js";
import { artifactExcludedReason, artifactTag } from "./artifact-tags.js";
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
import { DEFAULT_IMAGE_CACHE_BYTES, IMAGE_HEAP_PER_ENCODED_BYTE, ImageLru } from "./image-lru.js";
import {
  type BucketRead,
  DecodedMemo,
  type ImageRow,
  readBuckets,
  readImages,
  resolveBucketImages,
} from "./index-reader.js";
import {
  bucketOf,
  decodeRawBucket,
  decodeRepositoryIndexHead,
  decodeRepositoryIndexRecord,
  digestOfImageId,
  ENTRY_STRIDE,
  INDEX_BUCKETS,
  type IndexEntry,
  isExcludedImageId,
  isLegacyImageId,
  type RawBucket,
  rawEntry,
  rawExtras,
} from "./index-records.js";
import { Keys } from "./keys.js";
import { cacheRequestDuration } from "./metrics.js";
import {
  decodeRepositoryRecord,
  decodeTagFailure,
  decodeTagRecord,
  infoOver,
  type RepositoryRecord,
  type SharedEntry,
  type TagError,
  type TagRecord,
  TagRecordDecoder,
  tagInfo,
} from "./records.js";
import type { Store } from "./store.js";
import type { ErrorSummary } from "./warmer-types.js";

/** What {@link Cache.streamImageRepository} takes besides a signal. */
export interface RepositoryStreamOptions extends OperationOptions {
  /**
   * The repository's record as {@link Cache.repositoryRecord} of this Cache just returned
   * it: the stream is opened from it, without reading it again (the API reads the record
   * first, for its version, then builds the answer of that very version). Any other record
   * is ignored and the stored one read.
   */
  record?: RepositoryRecord | undefined;
}

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
  /**
   * Heap for the decoded image records kept in this process (they never change), counted
   * as twice their encoded size (measured): default 8 MiB; 0 keeps none. A quarter of it
   * again is for the decoded index buckets kept.
   */
  imageCacheBytes?: number;
}

/** Which layout a repository record was found in. */
type Layout = 1 | 2;

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

/**
 * Encoded bytes of repository records kept decoded: 1 MiB is a thousand 100-tag records or
 * four of 20,000 tags. Decoded, a record takes about 2.4 times its bytes of heap (9.7 MB for
 * the 4 MiB this was, in a heap snapshot at 10,000 repositories, where a status poll over
 * them all only churned it; the status list now counts their tags without it).
 */
const RECORDS_MEMO_BYTES = 1024 * 1024;

/**
 * Records per `getMany` of {@link Cache.repositorySummaries}: a record holds its tag list
 * (400 KB for 40,000 tags), so fewer than a tag read's chunk.
 */
const SUMMARY_CHUNK_KEYS = 200;

/** What the status list shows of a repository's stored record. */
export interface RepositorySummary {
  /** Tags of the last listing; undefined before the first. */
  tagCount: number | undefined;
  lastUpdate: Date | undefined;
  lastError: ErrorSummary | undefined;
  lastScanned: Date | undefined;
}

function summaryOf(record: RepositoryRecord, tagCount = record.tags?.length): RepositorySummary {
  return {
    tagCount,
    lastUpdate: record.lastUpdate,
    lastError: record.lastError && {
      code: record.lastError.code,
      message: record.lastError.message,
    },
    lastScanned: record.lastScanned,
  };
}

/** Heap a decoded index bucket takes per byte of its encoding: 4.7 MB for 2 MiB, measured. */
const BUCKET_HEAP_PER_ENCODED_BYTE = 2.35;

/** Answers `Registry` questions from the store. */
export class Cache implements Registry {
  readonly #store: Store;
  readonly #keys: Keys;
  readonly #decorators: Decorator[];
  readonly #duration: Histogram<string>;
  readonly #logger: Logger;
  readonly #readConcurrency: number;
  readonly #images: ImageLru;
  /** Buckets decoded before, reused while their bytes are unchanged (a quarter of the image heap). */
  readonly #buckets: DecodedMemo<RawBucket>;
  /** Repository records decoded before (shared: never handed out without copying `tags`). */
  readonly #records = new DecodedMemo<RepositoryRecord>(RECORDS_MEMO_BYTES);
  /**
   * Each memoised bucket's images, as slots of `#images` (which alone bounds the decoded
   * records: a row pins no record the LRU evicted).
   */
  readonly #bucketImages = new WeakMap<RawBucket, ImageRow>();
  /**
   * Where a memoised record's tags are in the buckets read with it (see `#located`), and
   * those buckets by serial number, not by reference: holding them would keep buckets, rows
   * and records alive past their memos' bounds.
   */
  readonly #locations = new WeakMap<readonly string[], { buckets: number[]; where: Int32Array }>();
  readonly #bucketSerials = new WeakMap<RawBucket, number>();
  /**
   * Second-layout records `repositoryRecord` handed out (copies), to the record decoded
   * (whose tag list keys `#locations`) and its repository: what a stream may be opened from.
   */
  readonly #handedOut = new WeakMap<RepositoryRecord, { name: string; record: RepositoryRecord }>();
  #lastSerial = 0;

  constructor(opts: CacheOptions) {
    this.#store = opts.store;
    this.#keys = opts.keys ?? new Keys();
    this.#decorators = opts.decorators ?? [];
    this.#duration = cacheRequestDuration(opts.metricsRegistry);
    this.#logger = opts.logger ?? pino({ level: "silent" });
    this.#readConcurrency = Math.max(1, opts.readConcurrency ?? DEFAULT_READ_CHUNKS_IN_FLIGHT);
    const heap = opts.imageCacheBytes ?? DEFAULT_IMAGE_CACHE_BYTES;
    // Both count encoded bytes, known at once, where heap would take a walk per record.
    this.#images = new ImageLru(heap / IMAGE_HEAP_PER_ENCODED_BYTE);
    this.#buckets = new DecodedMemo(heap / 4 / BUCKET_HEAP_PER_ENCODED_BYTE);
  }

  /**
   * Every cached tag of the repository and the images known for them. Throws
   * `NotCachedError` before the first scan, `CachedFetchError` (with the original code) when
   * no scan ever succeeded, and otherwise returns the last good result even when later
   * scans failed. Images of tags that point at the same digest share their labels and
   * platforms, which are frozen, and within one answer their `createdAt` and `lastFetched`
   * Dates: copy them before changing them.
   */
  async getImageRepositoryMetadata(
    name: ImageName,
    opts?: OperationOptions,
  ): Promise<RepositoryMetadata> {
    return this.#timed("getImageRepositoryMetadata", async () => {
      const { record, layout } = await this.#repository(name, opts);
      // A copy: the record may be the one held for the next read.
      const tags = listedTags(name, record).slice();
      const images = new Map<string, ImageInfo>();
      if (layout === 1) {
        const entries = await this.#readTags(name, tags, opts);
        for (const { tag, record: tagRecord } of entries) {
          if (tagRecord?.entry.info) images.set(tag, tagRecord.entry.info);
        }
        return decorateRepository(this.#decorators, name, { tags, images });
      }
      const { buckets, where } = await this.#index(name, record as RepositoryRecord, opts);
      // The images the buckets name (excluded ones are not part of this answer), read once
      // each and resolved per bucket, so that each tag costs an array index, not a lookup.
      const resolved = await resolveBucketImages({
        store: this.#store,
        keys: this.#keys,
        lru: this.#images,
        buckets,
        withExcluded: false,
        opts,
        rows: this.#bucketImages,
      });
      // One pair of Dates per image and answer, shared by its tags (never the held
      // entry's own): each image's first info, by bucket and image number.
      const first: (ImageInfo | undefined)[][] = [];
      for (let b = 0; b < INDEX_BUCKETS; b++) first.push([]);
      for (let i = 0; i < tags.length; i++) {
        const at = where[i] as number;
        if (at < 0) continue;
        const b = at % INDEX_BUCKETS;
        const raw = buckets[b] as RawBucket;
        const ref = raw.entries[((at / INDEX_BUCKETS) | 0) * ENTRY_STRIDE + 1] as number;
        if (ref < 0) continue;
        const entry = (resolved[b] as (SharedEntry | undefined)[])[ref];
        if (entry === undefined || !("info" in entry)) continue;
        const tag = tags[i] as string;
        const row = first[b] as (ImageInfo | undefined)[];
        const seen = row[ref];
        if (seen === undefined) {
          const info = tagInfo(entry.info, name, tag);
          row[ref] = info;
          images.set(tag, info);
        } else {
          images.set(tag, infoOver(entry.info, name.withTag(tag), seen));
        }
      }
      return decorateRepository(this.#decorators, name, { tags, images });
    });
  }

  /**
   * `getImageRepositoryMetadata`'s answer with its images read a slice of tags at a time (one
   * `getMany` per slice, for the records the LRU does not hold): what a reader holds is
   * bounded by the slice, not by the repository. Opening reads the record (unless
   * `opts.record` hands it over) and the index and throws what `getImageRepositoryMetadata`
   * throws; a store failing later fails the iteration. With a repository decorator (it
   * needs the whole answer), or on a store in the first layout, the whole answer is read
   * first.
   */
  async streamImageRepository(
    name: ImageName,
    opts?: RepositoryStreamOptions,
  ): Promise<RepositoryStream> {
    if (this.#decorators.some((d) => d.repository !== undefined)) {
      return streamOfMetadata(await this.getImageRepositoryMetadata(name, opts));
    }
    const opened = await this.#timed("streamImageRepository", async () => {
      const handed = opts?.record && this.#handedOut.get(opts.record);
      const { record, layout } =
        handed?.name === name.toString()
          ? { record: handed.record, layout: 2 as const }
          : await this.#repository(name, opts);
      // A copy: the record may be the one held for the next read.
      const tags = listedTags(name, record).slice();
      if (layout === 1) return undefined;
      return { tags, ...(await this.#index(name, record as RepositoryRecord, opts)) };
    });
    if (opened === undefined) {
      return streamOfMetadata(await this.getImageRepositoryMetadata(name, opts));
    }
    return {
      tags: opened.tags,
      images: (tagsPerSlice = DEFAULT_TAGS_PER_SLICE) =>
        this.#imageSlices({ name, ...opened, tagsPerSlice, opts }),
    };
  }

  /** The images of `tags`, a slice of `tagsPerSlice` at a time (see `streamImageRepository`). */
  async *#imageSlices({
    name,
    tags,
    buckets,
    where,
    tagsPerSlice,
    opts,
  }: {
    name: ImageName;
    tags: readonly string[];
    buckets: readonly BucketRead[];
    where: Int32Array;
    tagsPerSlice: number;
    opts: OperationOptions | undefined;
  }): AsyncGenerator<readonly TaggedImage[]> {
    const size = Math.max(1, Math.floor(tagsPerSlice));
    for (let start = 0; start < tags.length; start += size) {
      const end = Math.min(tags.length, start + size);
      const ids: (string | undefined)[] = new Array(end - start);
      const wanted = new Set<string>();
      for (let i = start; i < end; i++) {
        const id = imageIdAt(buckets, where[i] as number);
        // Excluded images (their ids carry a `!`) are not part of a repository answer.
        if (id === undefined || id.includes("!")) continue;
        ids[i - start] = id;
        wanted.add(id);
      }
      if (wanted.size === 0) continue;
      const shared = await readImages({
        store: this.#store,
        keys: this.#keys,
        lru: this.#images,
        ids: wanted,
        opts,
      });
      // One pair of Dates per image and slice, shared by its tags (never the held entry's).
      const first = new Map<string, ImageInfo>();
      const slice: TaggedImage[] = [];
      for (let i = start; i < end; i++) {
        const id = ids[i - start];
        const entry = id === undefined ? undefined : shared.get(id);
        if (entry === undefined || !("info" in entry)) continue;
        const tag = tags[i] as string;
        const seen = first.get(id as string);
        let info: ImageInfo;
        if (seen === undefined) {
          info = tagInfo(entry.info, name, tag);
          first.set(id as string, info);
        } else {
          info = infoOver(entry.info, name.withTag(tag), seen);
        }
        slice.push([tag, decorateImage(this.#decorators, name, info)]);
      }
      if (slice.length > 0) yield slice;
    }
  }

  /** The repository's index buckets (decoded ones reused) and where each listed tag is in them. */
  async #index(
    name: ImageName,
    record: RepositoryRecord,
    opts: OperationOptions | undefined,
  ): Promise<{ buckets: BucketRead[]; where: Int32Array }> {
    const buckets = await readBuckets({
      store: this.#store,
      keys: this.#keys,
      name,
      opts,
      memo: this.#buckets,
    });
    return { buckets, where: this.#located(record, buckets) };
  }

  /**
   * Where each listed tag is in the index (see {@link locate}), reused while the record and
   * every bucket are the very objects decoded before (their bytes unchanged).
   */
  #located(record: RepositoryRecord, buckets: readonly BucketRead[]): Int32Array {
    const tags = record.tags as string[];
    const serials = buckets.map((raw) => this.#serialOf(raw));
    const held = this.#locations.get(tags);
    if (held?.buckets.every((s, n) => s === serials[n])) return held.where;
    const where = locate(buckets, tags);
    this.#locations.set(tags, { buckets: serials, where });
    return where;
  }

  /** A number naming one decoded bucket object (-1: none stored, -2: did not decode). */
  #serialOf(raw: BucketRead): number {
    if (raw === null) return -1;
    if (raw === undefined) return -2;
    let serial = this.#bucketSerials.get(raw);
    if (serial === undefined) {
      serial = ++this.#lastSerial;
      this.#bucketSerials.set(raw, serial);
    }
    return serial;
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
      const found = await this.#tag(ref.name, tag, opts);
      const record = found?.record;
      if (!record) {
        // Before the first scan, say so (or replay its error) rather than "not cached".
        const { record: repository } = await this.#repository(ref.name, opts);
        if (!listedTags(ref.name, repository).includes(tag)) {
          throw new UnknownTagError(ref.toString(), repository?.lastUpdate);
        }
        // Listed, but every fetch of it failed: its own error, not "run regscan scan".
        const failure = found?.fetchError;
        if (failure) {
          throw new TagFetchError({
            ref: ref.toString(),
            lastErrorCode: failure.code,
            lastErrorMessage: failure.message,
            at: failure.at,
          });
        }
        throw new NotCachedError(ref.toString());
      }
      if (record.entry.excludedReason !== undefined) {
        throw new ImageExcludedError({
          ref: ref.toString(),
          excludedReason: record.entry.excludedReason,
        });
      }
      return decorateImage(this.#decorators, ref.name, record.entry.info);
    });
  }

  /** The repository record as stored (tags, last update, last error, last scan), or undefined. */
  async repositoryRecord(
    name: ImageName,
    opts?: OperationOptions,
  ): Promise<RepositoryRecord | undefined> {
    const { record, layout } = await this.#repository(name, opts);
    if (!record) return undefined;
    const copy = { ...record, tags: record.tags?.slice() };
    if (layout === 2) this.#handedOut.set(copy, { name: name.toString(), record });
    return copy;
  }

  /**
   * What the status list shows of each of `names` from its stored record (undefined where
   * there is none, it does not decode, or its chunk could not be read), read with `getMany`
   * a chunk at a time: one `GET` each made a status poll of 10,000 repositories 10,000
   * round trips (bench:scale, 2,000,000 tags: a fifth of the polled replica's CPU).
   */
  async repositorySummaries(
    names: readonly ImageName[],
    opts?: OperationOptions,
  ): Promise<(RepositorySummary | undefined)[]> {
    const out = new Array<RepositorySummary | undefined>(names.length);
    const missing: number[] = [];
    await readChunked({
      store: this.#store,
      count: names.length,
      keyOf: (i) => this.#keys.repository(names[i] as ImageName),
      inFlight: DEFAULT_READ_CHUNKS_IN_FLIGHT,
      chunkKeys: SUMMARY_CHUNK_KEYS,
      onChunk: (chunk) => {
        if (chunk.entries === undefined) return;
        chunk.entries.forEach((got, j) => {
          const i = chunk.start + j;
          const head = got && decodeRepositoryIndexHead(got.value);
          if (head) out[i] = summaryOf(head.record, head.tagCount);
          else if (!got) missing.push(i);
        });
      },
      opts,
    });
    // Stores not rescanned since the second layout keep the first's records.
    const legacy = missing.filter((i) => {
      const name = names[i] as ImageName;
      return this.#keys.legacyRepository(name) !== this.#keys.repository(name);
    });
    await readChunked({
      store: this.#store,
      count: legacy.length,
      keyOf: (k) => this.#keys.legacyRepository(names[legacy[k] as number] as ImageName),
      inFlight: DEFAULT_READ_CHUNKS_IN_FLIGHT,
      chunkKeys: SUMMARY_CHUNK_KEYS,
      onChunk: (chunk) => {
        chunk.entries?.forEach((got, j) => {
          const record = got && decodeRepositoryRecord(got.value);
          if (record) out[legacy[chunk.start + j] as number] = summaryOf(record);
        });
      },
      opts,
    });
    return out;
  }

  /** A second-layout repository record, decoded once while its bytes stay the same. */
  #decodeRecord(key: string, value: Uint8Array): RepositoryRecord | undefined {
    const held = this.#records.get(key, value);
    if (held) return held;
    const record = decodeRepositoryIndexRecord(value);
    if (record) this.#records.set(key, value, record);
    return record;
  }

  /**
   * The repository record and its layout: the second layout's record, else the first's (a
   * store not yet rescanned since the upgrade is still served).
   */
  async #repository(
    name: ImageName,
    opts?: OperationOptions,
  ): Promise<{ record?: RepositoryRecord; layout?: Layout }> {
    const key = this.#keys.repository(name);
    let got = await this.#store.get(key, opts);
    const current = got && this.#decodeRecord(key, got.value);
    if (current) return { record: current, layout: 2 };
    const legacyKey = this.#keys.legacyRepository(name);
    if (!got && legacyKey !== key) got = await this.#store.get(legacyKey, opts);
    if (!got) return {};
    const record = decodeRepositoryRecord(got.value);
    if (!record) {
      this.#logger.warn({ repository: name.toString() }, "repository record does not decode");
      return {};
    }
    return { record, layout: 1 };
  }

  /**
   * Every cached tag of the repository with its raw record and deadline (excluded images
   * and refresh bookkeeping included), without decorators; the same errors as
   * `getImageRepositoryMetadata`.
   */
  async cachedTags(name: ImageName, opts?: OperationOptions): Promise<CachedTag[]> {
    const { record, layout } = await this.#repository(name, opts);
    const tags = listedTags(name, record);
    if (layout === 1) return this.#readTags(name, tags, opts);
    const buckets = await readBuckets({ store: this.#store, keys: this.#keys, name, opts });
    const where = locate(buckets, tags);
    const entries = tags.map((_, i) => entryAt(buckets, where[i] as number));
    const ids = new Set<string>();
    for (const e of entries) if (e?.image !== undefined) ids.add(e.image);
    const shared = await readImages({
      store: this.#store,
      keys: this.#keys,
      lru: this.#images,
      ids,
      opts,
    });
    return tags.map((tag, i) => cachedTagOf({ name, tag, entry: entries[i], shared }));
  }

  /** One tag's raw record and deadline, or undefined when the store does not hold it. */
  async cachedTag(
    name: ImageName,
    tag: string,
    opts?: OperationOptions,
  ): Promise<CachedTag | undefined> {
    const found = await this.#tag(name, tag, opts);
    return found?.record ? found : undefined;
  }

  /** One tag from its bucket and image record (or the first layout's record). */
  async #tag(
    name: ImageName,
    tag: string,
    opts?: OperationOptions,
  ): Promise<CachedTag | undefined> {
    const got = await this.#store.get(this.#keys.bucket(name, bucketOf(tag)), opts);
    if (got) {
      const raw = decodeRawBucket(got.value);
      const entry = raw && findEntry(raw, tag);
      if (!entry) return undefined;
      const shared =
        entry.image === undefined
          ? new Map<string, SharedEntry>()
          : await readImages({
              store: this.#store,
              keys: this.#keys,
              lru: this.#images,
              ids: [entry.image],
              opts,
            });
      return cachedTagOf({ name, tag, entry, shared });
    }
    // No index bucket at all: a store not yet rescanned since the upgrade.
    const legacy = await this.#store.get(this.#keys.tag(name, tag), opts);
    if (!legacy) return undefined;
    const record = decodeTagRecord(legacy.value, name, tag);
    if (record) return { tag, record, deadline: legacy.deadline };
    const failure = decodeTagFailure(legacy.value);
    return failure ? { tag, fetchError: failure } : undefined;
  }

  async #readTags(name: ImageName, tags: string[], opts?: OperationOptions): Promise<CachedTag[]> {
    const out: CachedTag[] = tags.map((tag) => ({ tag }));
    const decoder = new TagRecordDecoder();
    let failure: { error: unknown } | undefined;
    await readChunked({
      store: this.#store,
      count: tags.length,
      keyOf: (i) => this.#keys.tag(name, tags[i] as string),
      inFlight: this.#readConcurrency,
      onChunk: (chunk) => {
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
    });
    opts?.signal?.throwIfAborted();
    if (failure) throw failure.error;
    return out;
  }

  async #imageByDigest(ref: ImageRef, digest: string, opts?: OperationOptions): Promise<ImageInfo> {
    const { record, layout } = await this.#repository(ref.name, opts);
    const tags = listedTags(ref.name, record);
    if (layout === 1) {
      for (const { record: tagRecord } of await this.#readTags(ref.name, tags, opts)) {
        const info = tagRecord?.entry.info;
        if (info && (info.digest === digest || info.platformDigest === digest)) {
          return decorateImage(this.#decorators, ref.name, { ...info, ref });
        }
      }
      throw new UnknownDigestError(ref.toString());
    }
    const buckets = await readBuckets({
      store: this.#store,
      keys: this.#keys,
      name: ref.name,
      opts,
    });
    const where = locate(buckets, tags);
    for (let i = 0; i < tags.length; i++) {
      const tag = tags[i] as string;
      const id = imageAt(buckets, where[i] as number);
      if (id === undefined || isExcludedImageId(id)) continue;
      const at = id.indexOf("@");
      const top = digestOfImageId(id);
      const platform = at < 0 ? undefined : id.slice(at + 1).replace(/~2$/, "");
      if (top !== digest && platform !== digest) continue;
      const entry = (
        await readImages({
          store: this.#store,
          keys: this.#keys,
          lru: this.#images,
          ids: [id],
          opts,
        })
      ).get(id);
      if (entry && "info" in entry) {
        return decorateImage(this.#decorators, ref.name, {
          ...tagInfo(entry.info, ref.name, tag),
          ref,
        });
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
    throw new CachedFetchError({
      repository: name.toString(),
      code: record.lastError.code,
      originalMessage: record.lastError.message,
      at: record.lastError.at,
    });
  }
  throw new NotCachedError(name.toString());
}

/**
 * Where each listed tag is in the index: bucket number + 32 x entry number, -1 when absent.
 * The warmer writes each bucket's entries in listing order, so a cursor per bucket finds
 * almost every tag at once; a bucket out of order is looked up through a map built for it.
 * (Entries live as long as their bucket: the warmer drops those the store would have
 * expired when it rewrites a bucket.)
 */
function locate(buckets: readonly BucketRead[], tags: readonly string[]): Int32Array {
  const where = new Int32Array(tags.length);
  const cursor = new Int32Array(INDEX_BUCKETS);
  const maps: (Map<string, number> | undefined)[] = [];
  for (let i = 0; i < tags.length; i++) {
    const tag = tags[i] as string;
    const b = bucketOf(tag);
    const raw = buckets[b];
    if (!raw) {
      where[i] = -1;
      continue;
    }
    const c = cursor[b] as number;
    if (c * ENTRY_STRIDE < raw.entries.length && raw.entries[c * ENTRY_STRIDE] === tag) {
      where[i] = b + INDEX_BUCKETS * c;
      cursor[b] = c + 1;
      continue;
    }
    let map = maps[b];
    if (!map) {
      map = new Map();
      for (let n = 0; n * ENTRY_STRIDE < raw.entries.length; n++) {
        map.set(raw.entries[n * ENTRY_STRIDE] as string, n);
      }
      maps[b] = map;
    }
    const n = map.get(tag);
    where[i] = n === undefined ? -1 : b + INDEX_BUCKETS * n;
    if (n !== undefined) cursor[b] = n + 1;
  }
  return where;
}

/** The image id of the entry at `position` (from {@link locate}), if it points at one. */
function imageAt(buckets: readonly BucketRead[], position: number): string | undefined {
  if (position < 0) return undefined;
  const raw = buckets[position % INDEX_BUCKETS] as RawBucket;
  const ref = raw.entries[Math.floor(position / INDEX_BUCKETS) * ENTRY_STRIDE + 1] as number;
  return ref >= 0 ? raw.images[ref] : undefined;
}

/** The entry at `position` (from {@link locate}). */
function entryAt(buckets: readonly BucketRead[], position: number): IndexEntry | undefined {
  if (position < 0) return undefined;
  const raw = buckets[position % INDEX_BUCKETS] as RawBucket;
  const n = Math.floor(position / INDEX_BUCKETS);
  return rawEntry(raw, n, raw.extras.length > 0 ? rawExtras(raw).get(n) : undefined);
}

/** The image id of the entry at `position` (see {@link locate}), if it names one. */
function imageIdAt(buckets: readonly BucketRead[], position: number): string | undefined {
  if (position < 0) return undefined;
  const raw = buckets[position % INDEX_BUCKETS] as RawBucket;
  const ref = raw.entries[((position / INDEX_BUCKETS) | 0) * ENTRY_STRIDE + 1] as number;
  return ref < 0 ? undefined : raw.images[ref];
}

/** One tag's entry in a bucket. */
function findEntry(raw: RawBucket, tag: string): IndexEntry | undefined {
  for (let n = 0, at = 0; at < raw.entries.length; n++, at += ENTRY_STRIDE) {
    if (raw.entries[at] !== tag) continue;
    return rawEntry(raw, n, raw.extras.length > 0 ? rawExtras(raw).get(n) : undefined);
  }
  return undefined;
}

/** A tag as `cachedTags` reports it, from its index entry and the image records read. */
function cachedTagOf({
  name,
  tag,
  entry,
  shared,
}: {
  name: ImageName;
  tag: string;
  /** The tag's index entry; none when the index does not hold the tag. */
  entry: IndexEntry | undefined;
  /** The image records read, by image id. */
  shared: ReadonlyMap<string, SharedEntry>;
}): CachedTag {
  if (!entry) return { tag };
  let image: TagRecord["entry"] | undefined;
  if (entry.artifact) {
    const artifact = artifactTag(tag);
    image = { excludedReason: artifact ? artifactExcludedReason(artifact) : "artifact tag" };
  } else if (entry.image !== undefined) {
    const found = shared.get(entry.image);
    if (found) image = "info" in found ? { info: tagInfo(found.info, name, tag) } : found;
  } else {
    return entry.lastError ? { tag, fetchError: entry.lastError } : { tag };
  }
  if (!image) return { tag };
  const record: TagRecord = {
    entry: image,
    digest: entry.image === undefined ? undefined : digestOfImageId(entry.image),
    intervalMs: entry.intervalMs,
    checkedAt: new Date(entry.checkedAt),
  };
  if (entry.lastError) record.lastError = entry.lastError;
  if (entry.image !== undefined && isLegacyImageId(entry.image) && "info" in image) {
    record.predatesAnnotations = true;
  }
  return { tag, record, deadline: new Date(entry.deadline) };
}
