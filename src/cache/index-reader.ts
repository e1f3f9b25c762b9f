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
