/**
 * The image LRU is the one bound on decoded image records: the rows the Cache keeps per
 * decoded bucket hold the LRU's slots, which it empties as it evicts, so that a kept row
 * pins no record past the bound (a replica at 1,000 repositories / 100,000 tags once ran out
 * of heap when rows held the records themselves); a row with an evicted slot is resolved
 * again and answers the same.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ImageLru } from "../../src/cache/image-lru.js";
import { DecodedMemo, type ImageRow, resolveBucketImages } from "../../src/cache/index-reader.js";
import {
  type Bucket,
  decodeRawBucket,
  encodeBucket,
  encodeImageRecord,
  imageIdOf,
  type RawBucket,
} from "../../src/cache/index-records.js";
import { Keys } from "../../src/cache/keys.js";
import type { SharedEntry } from "../../src/cache/records.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import type { ImageEntry } from "../../src/image/info.js";
import { parseImageName } from "../../src/image/ref.js";
import { countingStore } from "./support/counting-store.js";
import { fakeDigest } from "./support/fake-registry.js";

const NAME = parseImageName("registry.test/team/app");
const keys = new Keys();
const LATER = new Date(Date.now() + 3_600_000);

function imageEntry(i: number): ImageEntry {
  const digest = fakeDigest(i);
  return {
    info: {
      ref: NAME.withDigest(digest),
      digest,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      createdAt: new Date(1_700_000_000_000 + i),
      labels: { n: String(i) },
      platforms: [{ os: "linux", architecture: "amd64" }],
      lastFetched: new Date(1_700_000_000_000),
    },
  };
}

/** A store holding `count` image records and two buckets naming them (20 images each). */
async function fixture(count: number) {
  const store = new MemoryStore();
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const entry = imageEntry(i);
    const id = imageIdOf(entry, fakeDigest(i));
    ids.push(id);
    await store.set(keys.image(id), LATER, encodeImageRecord(entry));
  }
  const buckets: RawBucket[] = [];
  for (let b = 0; b * 20 < count; b++) {
    const bucket: Bucket = new Map();
    for (let i = b * 20; i < Math.min(count, (b + 1) * 20); i++) {
      bucket.set(`t${i}`, {
        image: ids[i] as string,
        checkedAt: 1_700_000_000_000,
        intervalMs: 3_600_000,
        deadline: 1_700_003_600_000,
      });
    }
    buckets.push(decodeRawBucket(encodeBucket(bucket)) as RawBucket);
  }
  return { store, ids, buckets };
}

/** Every record a row reaches. */
function reached(row: ImageRow): SharedEntry[] {
  return row.flatMap((slot) => (slot?.entry === undefined ? [] : [slot.entry]));
}

describe("decoded image records: one bound", () => {
  test("a kept row holds no record the LRU evicted; it is resolved again, to the same answer", async () => {
    const { store, ids, buckets } = await fixture(40);
    const counted = countingStore(store);
    // Room for about 25 of the 40 records: resolving both buckets evicts some of the first's.
    const one = encodeImageRecord(imageEntry(0)).byteLength;
    const lru = new ImageLru(one * 25);
    const rows = new WeakMap<RawBucket, ImageRow>();
    const read = { store: counted.store, keys, lru, withExcluded: false, rows };

    const first = await resolveBucketImages({ ...read, buckets: [buckets[0] as RawBucket] });
    const kept = rows.get(buckets[0] as RawBucket) as ImageRow;
    assert.equal(reached(kept).length, 20, "the first bucket's row is kept whole");
    const firstRecords = new Set(first[0]);

    await resolveBucketImages({ ...read, buckets: [buckets[1] as RawBucket] });
    assert.ok(lru.size.records <= 25, `${lru.size.records} records held`);
    const stillReached = reached(kept);
    assert.ok(stillReached.length < 20, "eviction emptied some of the kept row's slots");
    // What the kept row still reaches is exactly what the LRU still holds.
    for (const entry of stillReached) assert.ok(firstRecords.has(entry));
    const heldByLru = ids.slice(0, 20).filter((id) => lru.get(id) !== undefined).length;
    assert.equal(stillReached.length, heldByLru);

    const readsBefore = counted.log.reads.length;
    const again = await resolveBucketImages({ ...read, buckets: [buckets[0] as RawBucket] });
    assert.ok(counted.log.reads.length > readsBefore, "the stale row's evicted images were read");
    assert.deepEqual(
      (again[0] ?? []).map((e) => (e && "info" in e ? e.info.digest : undefined)),
      (first[0] ?? []).map((e) => (e && "info" in e ? e.info.digest : undefined)),
    );
  });

  test("an unchanged bucket whose images the LRU holds is answered from its row, no store read", async () => {
    const { store, buckets } = await fixture(20);
    const counted = countingStore(store);
    const lru = new ImageLru(1_000_000);
    const rows = new WeakMap<RawBucket, ImageRow>();
    const read = { store: counted.store, keys, lru, withExcluded: false, rows, buckets };
    const first = await resolveBucketImages(read);
    const readsBefore = counted.log.reads.length;
    const second = await resolveBucketImages(read);
    assert.equal(counted.log.reads.length, readsBefore);
    assert.deepEqual(second, first);
    assert.ok(
      (second[0] ?? []).every((e, n) => e === first[0]?.[n]),
      "the very same records",
    );
  });

  test("with a zero bound nothing is kept: no row, every read goes to the store", async () => {
    const { store, buckets } = await fixture(20);
    const counted = countingStore(store);
    const lru = new ImageLru(0);
    const rows = new WeakMap<RawBucket, ImageRow>();
    const read = { store: counted.store, keys, lru, withExcluded: false, rows, buckets };
    const first = await resolveBucketImages(read);
    assert.equal(rows.get(buckets[0] as RawBucket), undefined);
    assert.equal((first[0] ?? []).filter(Boolean).length, 20);
    const readsBefore = counted.log.reads.length;
    await resolveBucketImages(read);
    assert.ok(counted.log.reads.length > readsBefore);
  });

  test("a memoised value keeps a copy of its bytes, not the read buffer they were sliced from", () => {
    // What a Redis reply is: a slice of the socket chunk it arrived in, with other replies.
    const chunk = Buffer.alloc(64 * 1024, 7);
    const bytes = chunk.subarray(1_000, 1_100);
    const memo = new DecodedMemo<string>(1024);
    memo.set("k", bytes, "decoded");
    assert.equal(memo.get("k", Buffer.alloc(100, 7)), "decoded");
    // Reusing the chunk changes nothing held; a memo holding the slice would now miss.
    chunk.fill(9);
    assert.equal(memo.get("k", Buffer.alloc(100, 7)), "decoded");
    assert.equal(memo.get("k", bytes), undefined);
  });
});
