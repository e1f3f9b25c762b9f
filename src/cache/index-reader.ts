/**
 * Reads the second layout from a store: a repository's index buckets in one `getMany`, and
 * image records by id in one `getMany` for those the in-process LRU does not hold.
 */

import type { OperationOptions } from "../abort.js";
import type { ImageName } from "../image/ref.js";
import type { ImageLru, ImageSlot } from "./image-lru.js";
import {
  decodeImageRecords,
  decodeRawBucket,
  INDEX_BUCKETS,
  type RawBucket,
} from "./index-records.js";
import type { Keys } from "./keys.js";
import type { SharedEntry } from "./records.js";
import type { Store } from "./store.js";

/** A bucket read: its raw form, `null` when the key holds nothing, undefined when it does not decode. */
export type BucketRead = RawBucket | null | undefined;

/** The keys of every bucket of a repository's index, in bucket order. */
export function bucketKeys(keys: Keys, name: ImageName): string[] {
  const out: string[] = [];
  for (let n = 0; n < INDEX_BUCKETS; n++) out.push(keys.bucket(name, n));
  return out;
}

/**
 * Values decoded before, by key, kept while their bytes stay the same: a repository read
 * whose buckets did not change since the last one parses nothing again. Bounded by the
 * bytes held (oldest first out).
 */
export class DecodedMemo<T> {
  readonly #held = new Map<string, { bytes: Buffer; value: T }>();
  #bytes = 0;

  constructor(readonly maxBytes: number) {}

  /** The value decoded from exactly `bytes` under `key`, if held. */
  get(key: string, bytes: Uint8Array): T | undefined {
    const held = this.#held.get(key);
    if (!held || held.bytes.byteLength !== bytes.byteLength) return undefined;
    return held.bytes.equals(bytes) ? held.value : undefined;
  }

  set(key: string, bytes: Uint8Array, value: T): void {
    if (bytes.byteLength > this.maxBytes) return;
    const old = this.#held.get(key);
    if (old) {
      this.#bytes -= old.bytes.byteLength;
      this.#held.delete(key);
    }
    // A copy of its own: a value read from Redis is a slice of the socket chunk it came in
    // (up to 64 KiB, shared with other replies), and holding the slice held the chunk.
    this.#held.set(key, { bytes: Buffer.from(Uint8Array.prototype.slice.call(bytes)), value });
    this.#bytes += bytes.byteLength;
    for (const [k, held] of this.#held) {
      if (this.#bytes <= this.maxBytes) break;
      this.#held.delete(k);
      this.#bytes -= held.bytes.byteLength;
    }
  }
}

/**
 * A resolved bucket's image list as kept between reads: the LRU's slot of each image (none
 * for an excluded one), so that a read of an unchanged bucket looks up no id, while the
 * records themselves stay bounded by the LRU alone (a slot it evicted makes the row stale).
 */
export type ImageRow = (ImageSlot | undefined)[];

/** Where the index and image records are read from. */
export interface IndexSource {
  store: Store;
  keys: Keys;
  opts?: OperationOptions | undefined;
}

/** What {@link readBuckets} reads. */
export interface BucketsRead extends IndexSource {
  name: ImageName;
  /** Decoded buckets to reuse while their bytes are unchanged. */
  memo?: DecodedMemo<RawBucket> | undefined;
}

/** Every bucket of the repository's index, in one `getMany` (decoded ones reused from `memo`). */
export async function readBuckets({
  store,
  keys,
  name,
  opts,
  memo,
}: BucketsRead): Promise<BucketRead[]> {
  const names = bucketKeys(keys, name);
  const got = await store.getMany(names, opts);
  return got.map((entry, b) => {
    if (!entry) return null;
    const key = names[b] as string;
    const held = memo?.get(key, entry.value);
    if (held) return held;
    const raw = decodeRawBucket(entry.value);
    if (raw) memo?.set(key, entry.value, raw);
    return raw;
  });
}

/** What {@link readImages} reads. */
export interface ImagesRead extends IndexSource {
  /** Records held in memory, asked first and filled with what was read. */
  lru?: ImageLru | undefined;
  /** The image ids, distinct. */
  ids: Iterable<string>;
}

/**
 * The image records of `ids` (distinct), from the LRU or else one `getMany`: a map from id
 * to record; an id missing from the store (or undecodable) is absent.
 */
export async function readImages({
  store,
  keys,
  lru,
  ids,
  opts,
}: ImagesRead): Promise<Map<string, SharedEntry>> {
  const out = new Map<string, SharedEntry>();
  const wanted: string[] = [];
  for (const id of ids) {
    const held = lru?.get(id);
    if (held) out.set(id, held);
    else wanted.push(id);
  }
  if (wanted.length === 0) return out;
  const got = await store.getMany(
    wanted.map((id) => keys.image(id)),
    opts,
  );
  const values = got.map((e) => e?.value);
  const decoded = decodeImageRecords(values);
  for (let i = 0; i < wanted.length; i++) {
    const entry = decoded[i];
    if (!entry) continue;
    const id = wanted[i] as string;
    out.set(id, entry);
    lru?.set(id, entry, (values[i] as Uint8Array).byteLength);
  }
  return out;
}

/** What {@link resolveBucketImages} resolves. */
export interface BucketImagesRead extends IndexSource {
  /** Records held in memory, asked first and filled with what was read. */
  lru: ImageLru;
  buckets: readonly BucketRead[];
  /** Whether excluded images are resolved too (a repository answer leaves them out). */
  withExcluded: boolean;
  /** Rows already resolved per decoded bucket (without excluded images), reused and filled. */
  rows?: WeakMap<RawBucket, ImageRow> | undefined;
}

/**
 * The image records each bucket's image list names, resolved per bucket (`out[b][ref]`):
 * from the LRU, else one `getMany` of those it does not hold. Excluded entries are skipped
 * when `withExcluded` is false (a repository answer leaves them out).
 */
export async function resolveBucketImages(
  read: BucketImagesRead,
): Promise<((SharedEntry | undefined)[] | undefined)[]> {
  const { lru, buckets, withExcluded, rows } = read;
  const out: ((SharedEntry | undefined)[] | undefined)[] = [];
  const slots: (ImageRow | undefined)[] = [];
  const missing = new Map<string, number[]>();
  for (let b = 0; b < buckets.length; b++) {
    const raw = buckets[b];
    if (!raw) {
      out.push(undefined);
      continue;
    }
    const known = withExcluded ? undefined : rows?.get(raw);
    const kept = known && entriesOf(lru, known);
    if (kept) {
      out.push(kept);
      continue;
    }
    const row = new Array<SharedEntry | undefined>(raw.images.length);
    const slotRow: ImageRow = new Array<ImageSlot | undefined>(raw.images.length);
    out.push(row);
    slots[b] = slotRow;
    for (let ref = 0; ref < raw.images.length; ref++) {
      const id = raw.images[ref] as string;
      if (!withExcluded && id.includes("!")) continue;
      const slot = lru.slot(id);
      if (slot?.entry !== undefined) {
        row[ref] = slot.entry;
        slotRow[ref] = slot;
        continue;
      }
      const at = missing.get(id);
      if (at) at.push(b, ref);
      else missing.set(id, [b, ref]);
    }
  }
  if (missing.size > 0) await readMissing(read, { missing, out, slots });
  if (rows && !withExcluded) {
    for (let b = 0; b < buckets.length; b++) {
      const row = slots[b];
      if (row) rows.set(buckets[b] as RawBucket, row);
    }
  }
  return out;
}

/** A kept row's records, or undefined when the LRU evicted one of them since. */
function entriesOf(lru: ImageLru, row: ImageRow): (SharedEntry | undefined)[] | undefined {
  const out = new Array<SharedEntry | undefined>(row.length);
  for (let ref = 0; ref < row.length; ref++) {
    const slot = row[ref];
    if (slot === undefined) continue;
    const entry = lru.use(slot);
    if (entry === undefined) return undefined;
    out[ref] = entry;
  }
  return out;
}

/** The images {@link resolveBucketImages} did not find in the LRU, and where they go. */
interface MissingImages {
  /** Image id -> pairs of (bucket, ref) naming it. */
  missing: Map<string, number[]>;
  /** The rows being resolved, filled in place. */
  out: ((SharedEntry | undefined)[] | undefined)[];
  /**
   * Per bucket resolved here: its row of slots to keep, filled in place; dropped for a bucket
   * with an image the store lacks or the LRU does not hold, so that it is resolved again.
   */
  slots: (ImageRow | undefined)[];
}

/** Reads the missing images in one `getMany` and places them in their rows. */
async function readMissing(
  { store, keys, lru, opts }: BucketImagesRead,
  { missing, out, slots }: MissingImages,
): Promise<void> {
  const ids = [...missing.keys()];
  const got = await store.getMany(
    ids.map((id) => keys.image(id)),
    opts,
  );
  const values = got.map((e) => e?.value);
  const decoded = decodeImageRecords(values);
  for (let i = 0; i < ids.length; i++) {
    const entry = decoded[i];
    const id = ids[i] as string;
    const at = missing.get(id) as number[];
    const slot = entry && lru.set(id, entry, (values[i] as Uint8Array).byteLength);
    for (let k = 0; k < at.length; k += 2) {
      const b = at[k] as number;
      const ref = at[k + 1] as number;
      // A bucket naming an image the store lacks is read again next time, not kept.
      if (entry) (out[b] as (SharedEntry | undefined)[])[ref] = entry;
      const row = slots[b];
      if (row && slot) row[ref] = slot;
      else slots[b] = undefined;
    }
  }
}
