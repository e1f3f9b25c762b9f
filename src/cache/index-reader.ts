/**
 * Reads the second layout from a store: a repository's index buckets in one `getMany`, and
 * image records by id in one `getMany` for those the in-process LRU does not hold.
 */

import type { ImageName } from "../image/ref.js";
import type { OperationOptions } from "../registry/registry.js";
import type { ImageLru } from "./image-lru.js";
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

/** Every bucket of the repository's index, in one `getMany`. */
export async function readBuckets(
  store: Store,
  keys: Keys,
  name: ImageName,
  opts?: OperationOptions,
): Promise<BucketRead[]> {
  const got = await store.getMany(bucketKeys(keys, name), opts);
  return got.map((entry) => (entry ? decodeRawBucket(entry.value) : null));
}

/**
 * The image records of `ids` (distinct), from the LRU or else one `getMany`: a map from id
 * to record; an id missing from the store (or undecodable) is absent.
 */
export async function readImages(
  store: Store,
  keys: Keys,
  lru: ImageLru | undefined,
  ids: Iterable<string>,
  opts?: OperationOptions,
): Promise<Map<string, SharedEntry>> {
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

/**
 * The image records each bucket's image list names, resolved per bucket (`out[b][ref]`):
 * from the LRU, else one `getMany` of those it does not hold. Excluded entries are skipped
 * when `withExcluded` is false (a repository answer leaves them out).
 */
export async function resolveBucketImages(
  store: Store,
  keys: Keys,
  lru: ImageLru,
  buckets: readonly BucketRead[],
  withExcluded: boolean,
  opts?: OperationOptions,
): Promise<((SharedEntry | undefined)[] | undefined)[]> {
  const out: ((SharedEntry | undefined)[] | undefined)[] = [];
  const missing = new Map<string, number[]>();
  for (let b = 0; b < buckets.length; b++) {
    const raw = buckets[b];
    if (!raw) {
      out.push(undefined);
      continue;
    }
    const row = new Array<SharedEntry | undefined>(raw.images.length);
    out.push(row);
    for (let ref = 0; ref < raw.images.length; ref++) {
      const id = raw.images[ref] as string;
      if (!withExcluded && id.includes("!")) continue;
      const held = lru.get(id);
      if (held) {
        row[ref] = held;
        continue;
      }
      const at = missing.get(id);
      if (at) at.push(b, ref);
      else missing.set(id, [b, ref]);
    }
  }
  if (missing.size === 0) return out;
  const ids = [...missing.keys()];
  const got = await store.getMany(
    ids.map((id) => keys.image(id)),
    opts,
  );
  const values = got.map((e) => e?.value);
  const decoded = decodeImageRecords(values);
  for (let i = 0; i < ids.length; i++) {
    const entry = decoded[i];
    if (!entry) continue;
    const id = ids[i] as string;
    lru.set(id, entry, (values[i] as Uint8Array).byteLength);
    const at = missing.get(id) as number[];
    for (let k = 0; k < at.length; k += 2) {
      (out[at[k] as number] as (SharedEntry | undefined)[])[at[k + 1] as number] = entry;
    }
  }
  return out;
}
