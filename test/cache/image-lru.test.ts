/**
 * The in-process image record LRU: bounded by encoded bytes, evicting down to nine tenths
 * of the bound once over it, the least recently used first (estimated from a sample of use
 * marks, so no eviction sorts every record).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ImageLru } from "../../src/cache/image-lru.js";
import type { SharedEntry } from "../../src/cache/records.js";

const entry = (i: number): SharedEntry => ({ excludedReason: `image ${i}` });

describe("ImageLru", () => {
  test("stays within its bound, evicting to nine tenths of it", () => {
    const lru = new ImageLru(100_000);
    for (let i = 0; i < 1_000; i++) lru.set(`id${i}`, entry(i), 100);
    assert.equal(lru.size.bytes, 100_000);
    lru.set("one-more", entry(-1), 100);
    assert.ok(lru.size.bytes <= 90_000, `${lru.size.bytes} bytes after eviction`);
    assert.ok(lru.size.bytes >= 85_000, `${lru.size.bytes}: not much more than needed`);
    assert.equal(lru.size.records * 100, lru.size.bytes);
    assert.ok(lru.get("one-more"), "the record just set stays");
  });

  test("records used recently survive an eviction; the least recently used go", () => {
    const lru = new ImageLru(1_000_000);
    for (let i = 0; i < 10_000; i++) lru.set(`id${i}`, entry(i), 100);
    // The first thousand inserted are the most recently used now.
    for (let i = 0; i < 1_000; i++) assert.ok(lru.get(`id${i}`));
    lru.set("over", entry(-1), 100);
    let recent = 0;
    for (let i = 0; i < 1_000; i++) if (lru.get(`id${i}`)) recent++;
    assert.equal(recent, 1_000, "every recently used record kept");
    let old = 0;
    for (let i = 1_000; i < 2_000; i++) if (lru.get(`id${i}`)) old++;
    assert.equal(old, 0, "the least recently used thousand are gone");
  });

  test("records of different sizes: bytes stay accounted and bounded", () => {
    const lru = new ImageLru(50_000);
    for (let i = 0; i < 5_000; i++) lru.set(`id${i % 700}`, entry(i), 10 + ((i * 37) % 290));
    let held = 0;
    for (let i = 0; i < 700; i++) if (lru.get(`id${i}`)) held++;
    assert.equal(held, lru.size.records);
    assert.ok(lru.size.bytes <= 50_000);
  });

  test("a record larger than the bound is not kept; a zero bound keeps nothing", () => {
    const lru = new ImageLru(1_000);
    lru.set("big", entry(1), 1_001);
    assert.equal(lru.get("big"), undefined);
    const none = new ImageLru(0);
    none.set("a", entry(1), 1);
    assert.equal(none.size.records, 0);
  });
});
