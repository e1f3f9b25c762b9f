/**
 * A repository's tag index as one scan works on it: its buckets read once, entries changed
 * in memory, then written back bottom-up (image records are already stored when an entry
 * names them; changed buckets next; the repository record last, by the caller).
 */
import type { Logger } from "pino";
import { EventLoopTurns } from "../event-loop-turns.js";
import type { ImageName } from "../image/ref.js";
import { summarizeError } from "./error-summary.js";
import { bucketKeys } from "./index-reader.js";
import {
  type Bucket,
  bucketFromRaw,
  bucketOf,
  decodeRawBucket,
  digestOfImageId,
  encodeBucket,
  entryExpiresAt,
  IMAGE_KEEP_AFTER_MS,
  IMAGE_RECORD_LIFETIME_MS,
  INDEX_BUCKETS,
  type IndexEntry,
  isLegacyImageId,
  MAX_BUCKET_LIFE_MS,
} from "./index-records.js";
import type { Keys } from "./keys.js";
import type { SharedTimeout } from "./shared-timeout.js";
import { type Store, type StoreWrite, setEach } from "./store.js";
import { MIN_EXPIRY_MS } from "./stores/envelope.js";

/** What the index needs from the scan's context. */
export interface IndexContext {
  store: Store;
  keys: Keys;
  now: () => number;
  storeConcurrency: number;
  finalWriteTimeoutMs: number;
  /** Signals for writes bounded by `finalWriteTimeoutMs`, shared between writes (else one each). */
  writeTimeout?: SharedTimeout | undefined;
}

/** Image keys per `getMany` when every image of an index is read (to keep them alive). */
const IMAGE_READ_CHUNK = 1000;

/** One bucket to write in a {@link ScanIndex.flush}. */
interface BucketWrite {
  n: number;
  /** Listing positions by tag (see `ScanIndex.#order`); undefined without a listing. */
  positions: Map<string, number> | undefined;
  /** The tags whose entries are kept (all when undefined). */
  keep: ReadonlySet<string> | undefined;
  now: number;
}

/** What {@link ScanIndex.load} read, for the constructor. */
interface LoadedIndex {
  ctx: IndexContext;
  name: ImageName;
  buckets: Bucket[];
  unread: boolean[];
  hadIndex: boolean;
  undecodable: number;
}

/**
 * Known to this module only: an index is constructed by {@link ScanIndex.load} alone, never
 * without its buckets read.
 */
const LOADED: unique symbol = Symbol("loaded");

/** One repository's index during a scan. */
export class ScanIndex {
  readonly #ctx: IndexContext;
  readonly #name: ImageName;
  readonly #buckets: Bucket[];
  /** Buckets whose read failed: what they hold is unknown, so they are merged, never replaced. */
  readonly #unread: boolean[];
  readonly #dirty = new Set<number>();
  /**
   * The listing: buckets are written in its order, so readers find tags by cursor. Its
   * positions are looked up at each flush only: held for a whole scan, a 40,000-tag
   * repository's map was 1.6 MB (5.2 MB over the 34 scans of a replica's near-limit heap
   * snapshot at 2,000,000 tags).
   */
  #order: readonly string[] | undefined;
  /** Turns of the event loop during a flush: API reads should not wait behind a whole index. */
  readonly #turns = new EventLoopTurns();
  /** Whether any bucket held something when the scan began. */
  readonly hadIndex: boolean;
  /** Buckets that held a value that does not decode (their tags are refetched). */
  readonly undecodable: number;

  /** Use {@link ScanIndex.load}: `_loaded` is a value only this module has. */
  constructor(
    { ctx, name, buckets, unread, hadIndex, undecodable }: LoadedIndex,
    _loaded: typeof LOADED,
  ) {
    this.#ctx = ctx;
    this.#name = name;
    this.#buckets = buckets;
    this.#unread = unread;
    this.hadIndex = hadIndex;
    this.undecodable = undecodable;
  }

  /** Reads every bucket (one `getMany`); a failed read leaves them all unread, not empty. */
  static async load(ctx: IndexContext, name: ImageName, signal: AbortSignal): Promise<ScanIndex> {
    const buckets: Bucket[] = [];
    const unread: boolean[] = [];
    let had = false;
    let undecodable = 0;
    try {
      const got = await ctx.store.getMany(bucketKeys(ctx.keys, name), { signal });
      const turns = new EventLoopTurns();
      for (const entry of got) {
        // Decoding a 20,000-tag index takes 15-20 ms: API reads wait for a few at most.
        await turns.take();
        unread.push(false);
        if (!entry) {
          buckets.push(new Map());
          continue;
        }
        had = true;
        const raw = decodeRawBucket(entry.value);
        if (!raw) undecodable++;
        buckets.push(raw ? bucketFromRaw(raw) : new Map());
      }
    } catch (error) {
      if (signal.aborted) throw error;
      // Unknown, so assumed to exist: its images' mark must not be taken as fresh.
      had = true;
      buckets.length = 0;
      unread.length = 0;
      for (let n = 0; n < INDEX_BUCKETS; n++) {
        buckets.push(new Map());
        unread.push(true);
      }
    }
    return new ScanIndex({ ctx, name, buckets, unread, hadIndex: had, undecodable }, LOADED);
  }

  /** The order (the registry's listing) entries are written in. */
  setOrder(tags: readonly string[]): void {
    this.#order = tags;
  }

  /** Whether the tag's bucket could not be read. */
  unread(tag: string): boolean {
    return this.#unread[bucketOf(tag)] === true;
  }

  /** The tag's entry, if the store would still hold it (see `entryExpiresAt`). */
  entry(tag: string): IndexEntry | undefined {
    const e = this.#buckets[bucketOf(tag)]?.get(tag);
    if (!e || entryExpiresAt(e, MIN_EXPIRY_MS) <= this.#ctx.now()) return undefined;
    return e;
  }

  /** Whether the index holds an entry for the tag (live or not). */
  has(tag: string): boolean {
    return this.#buckets[bucketOf(tag)]?.has(tag) === true;
  }

  /** Sets the tag's entry (written at the next {@link flush}). */
  set(tag: string, entry: IndexEntry): void {
    const n = bucketOf(tag);
    (this.#buckets[n] as Bucket).set(tag, entry);
    this.#dirty.add(n);
  }

  /** Image ids by top-level digest, for entries that can be reused without a fetch. */
  knownImages(): Map<string, string> {
    const known = new Map<string, string>();
    const now = this.#ctx.now();
    for (const bucket of this.#buckets) {
      for (const e of bucket.values()) {
        if (e.image === undefined || isLegacyImageId(e.image)) continue;
        if (entryExpiresAt(e, MIN_EXPIRY_MS) <= now) continue;
        const digest = digestOfImageId(e.image);
        if (digest !== undefined && !known.has(digest)) known.set(digest, e.image);
      }
    }
    return known;
  }

  /** The top-level digest of each live entry that names an image, one per tag. */
  *imageDigests(): Generator<string> {
    const now = this.#ctx.now();
    for (const bucket of this.#buckets) {
      for (const e of bucket.values()) {
        if (e.image === undefined || entryExpiresAt(e, MIN_EXPIRY_MS) <= now) continue;
        const digest = digestOfImageId(e.image);
        if (digest !== undefined) yield digest;
      }
    }
  }

  /** Entries held (every bucket's): what a flush of every bucket encodes. */
  get size(): number {
    let n = 0;
    for (const bucket of this.#buckets) n += bucket.size;
    return n;
  }

  /** Whether anything waits to be written. */
  get dirty(): boolean {
    return this.#dirty.size > 0;
  }

  /**
   * Keeps the image records alive: when `keptAt` (when they were last all written) is older
   * than half their store life, or unknown for an index that existed, reads every image the
   * index points at and writes it back with a new life; an image gone from the store makes
   * its tags due now. Returns the new mark for the repository record. Throws what the store
   * threw (the mark then stays as it was).
   */
  async keepImagesAlive(
    keptAt: number | undefined,
    scanStart: number,
  ): Promise<number | undefined> {
    const now = this.#ctx.now();
    if (keptAt === undefined && !this.hadIndex) return scanStart;
    if (keptAt !== undefined && now - keptAt < IMAGE_KEEP_AFTER_MS) return keptAt;
    // Images named by a bucket that could not be read cannot be kept: the mark stays.
    if (this.#unread.some(Boolean)) return keptAt;
    const ids = new Set<string>();
    for (const bucket of this.#buckets) {
      for (const e of bucket.values()) if (e.image !== undefined) ids.add(e.image);
    }
    const all = [...ids];
    const missing = new Set<string>();
    const deadline = new Date(now + IMAGE_RECORD_LIFETIME_MS);
    const chunks: string[][] = [];
    for (let at = 0; at < all.length; at += IMAGE_READ_CHUNK) {
      chunks.push(all.slice(at, at + IMAGE_READ_CHUNK));
    }
    for (const chunk of chunks) {
      const keys = chunk.map((id) => this.#ctx.keys.image(id));
      const got = await this.#ctx.store.getMany(keys, {
        signal: AbortSignal.timeout(this.#ctx.finalWriteTimeoutMs),
      });
      const writes: StoreWrite[] = [];
      chunk.forEach((id, i) => {
        const entry = got[i];
        if (entry) writes.push({ key: keys[i] as string, deadline, value: entry.value });
        else missing.add(id);
      });
      await setEach(this.#ctx.store, writes, {
        limit: this.#ctx.storeConcurrency * 4,
        signal: AbortSignal.timeout(this.#ctx.finalWriteTimeoutMs),
      });
    }
    if (missing.size > 0) {
      for (const [tag, e] of this.#entries()) {
        if (e.image !== undefined && missing.has(e.image) && e.deadline > now) {
          this.set(tag, { ...e, deadline: now });
        }
      }
    }
    return now;
  }

  *#entries(): Generator<[string, IndexEntry]> {
    for (const bucket of this.#buckets) yield* bucket;
  }

  /**
   * Writes every changed bucket, in one `setMany` where the store has it (one command for a
   * scan's buckets on Redis). Entries of tags outside `keep` (when given) and entries the
   * store would have dropped are left out. A bucket that could not be read at load is read
   * again and merged; if it still cannot be read it is not written (logged). Throws the
   * first write error after the other writes settled; the buckets not known to be written
   * stay dirty.
   */
  async flush(keep: ReadonlySet<string> | undefined, log: Logger): Promise<void> {
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    const now = this.#ctx.now();
    const signal = this.#writeSignal();
    const unmerged = await this.#mergeUnread(dirty, signal, log);
    const writes: StoreWrite[] = [];
    const written: number[] = [];
    this.#turns.reset();
    let positions: Map<string, number> | undefined;
    if (this.#order && dirty.length > 0) {
      positions = new Map();
      for (const [i, tag] of this.#order.entries()) positions.set(tag, i);
    }
    for (const n of dirty) {
      if (unmerged.has(n)) continue;
      writes.push(await this.#bucketWrite({ n, positions, keep, now }));
      written.push(n);
    }
    try {
      await setEach(this.#ctx.store, writes, { limit: this.#ctx.storeConcurrency * 4, signal });
    } catch (error) {
      for (const n of written) this.#dirty.add(n);
      throw error;
    }
  }

  /** A signal bounding one write (shared between writes where the context shares them). */
  #writeSignal(): AbortSignal {
    return this.#ctx.writeTimeout?.signal() ?? AbortSignal.timeout(this.#ctx.finalWriteTimeoutMs);
  }

  /**
   * Reads again the buckets of `dirty` that could not be read at load (one `getMany`) and
   * merges this scan's entries into what they hold. Returns those that still could not be
   * read: their changes are not written (logged).
   */
  async #mergeUnread(dirty: number[], signal: AbortSignal, log: Logger): Promise<Set<number>> {
    const unread = dirty.filter((n) => this.#unread[n]);
    if (unread.length === 0) return new Set();
    let got: Awaited<ReturnType<Store["getMany"]>>;
    try {
      got = await this.#ctx.store.getMany(
        unread.map((n) => this.#ctx.keys.bucket(this.#name, n)),
        { signal },
      );
    } catch (error) {
      log.warn(
        { buckets: unread, error: summarizeError(error) },
        "could not read index buckets again; their changes are not written",
      );
      return new Set(unread);
    }
    unread.forEach((n, i) => {
      const entry = got[i];
      const raw = entry && decodeRawBucket(entry.value);
      const merged = raw ? bucketFromRaw(raw) : new Map<string, IndexEntry>();
      for (const [tag, e] of this.#buckets[n] as Bucket) merged.set(tag, e);
      this.#buckets[n] = merged;
      this.#unread[n] = false;
    });
    return new Set();
  }

  /** Bucket `n` as it is to be written (see {@link flush}). */
  async #bucketWrite({ n, positions, keep, now }: BucketWrite): Promise<StoreWrite> {
    const key = this.#ctx.keys.bucket(this.#name, n);
    const bucket = this.#buckets[n] as Bucket;
    // A large index's buckets take a while to encode: the API's reads get a turn every few ms.
    await this.#turns.take();
    const kept: [string, IndexEntry][] = [];
    let expiresAt = now;
    for (const [tag, e] of bucket) {
      if (keep && !keep.has(tag)) continue;
      const expires = entryExpiresAt(e, MIN_EXPIRY_MS);
      if (expires <= now) continue;
      if (expires > expiresAt) expiresAt = expires;
      kept.push([tag, e]);
    }
    if (positions) {
      const at = (tag: string) => positions.get(tag) ?? Number.MAX_SAFE_INTEGER;
      kept.sort((a, b) => at(a[0]) - at(b[0]));
    }
    const out: Bucket = new Map(kept);
    this.#buckets[n] = out;
    // The store keeps a value twice the time to its deadline: this deadline keeps the bucket
    // as long as its longest-lived entry, and never longer than MAX_BUCKET_LIFE_MS.
    const life = Math.min(expiresAt - now, MAX_BUCKET_LIFE_MS);
    const deadline = new Date(now + Math.max(0, life / 2));
    return { key, deadline, value: encodeBucket(out) };
  }
}
