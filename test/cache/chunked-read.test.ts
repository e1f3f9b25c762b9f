/**
 * readChunked: a long list of keys read with a bounded number of getMany calls in flight,
 * each chunk handed over with its position, a failed chunk as its error.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { READ_CHUNK_KEYS, type ReadChunk, readChunked } from "../../src/cache/chunked-read.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";

describe("readChunked", () => {
  it("reads every key in chunks, at most `inFlight` at once, and reports failed chunks", async () => {
    const store = new MemoryStore();
    const count = 2 * READ_CHUNK_KEYS + 7;
    const later = new Date(Date.now() + 3_600_000);
    for (let i = 0; i < count; i += 3) await store.set(`k${i}`, later, new Uint8Array([i % 251]));
    let inFlight = 0;
    let maxInFlight = 0;
    let calls = 0;
    const getMany = store.getMany.bind(store);
    store.getMany = async (keys, opts) => {
      calls++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 10));
      inFlight--;
      if (keys.includes(`k${READ_CHUNK_KEYS}`)) throw new Error("second chunk lost");
      return getMany(keys, opts);
    };
    const chunks: ReadChunk[] = [];
    await readChunked({
      store,
      count,
      keyOf: (i) => `k${i}`,
      inFlight: 2,
      onChunk: (c) => chunks.push(c),
    });
    assert.equal(calls, 3);
    assert.equal(maxInFlight, 2);
    const byStart = new Map(chunks.map((c) => [c.start, c]));
    assert.deepEqual(
      [...byStart.keys()].sort((a, b) => a - b),
      [0, READ_CHUNK_KEYS, 2 * READ_CHUNK_KEYS],
    );
    const failed = byStart.get(READ_CHUNK_KEYS);
    assert.equal(failed?.entries, undefined);
    assert.equal(failed?.error instanceof Error && failed.error.message, "second chunk lost");
    assert.equal(failed && failed.entries === undefined ? failed.end : -1, 2 * READ_CHUNK_KEYS);
    const last = byStart.get(2 * READ_CHUNK_KEYS);
    assert.equal(last?.entries?.length, 7);
    for (const [j, got] of (last?.entries ?? []).entries()) {
      const i = 2 * READ_CHUNK_KEYS + j;
      if (i % 3 === 0) assert.equal(got?.value[0], i % 251, `k${i}`);
      else assert.equal(got, undefined, `k${i}`);
    }
  });

  it("starts no chunk once the signal has aborted", async () => {
    const store = new MemoryStore();
    const stop = new AbortController();
    stop.abort();
    const chunks: ReadChunk[] = [];
    await readChunked({
      store,
      count: 5000,
      keyOf: (i) => `k${i}`,
      inFlight: 2,
      onChunk: (c) => chunks.push(c),
      opts: { signal: stop.signal },
    });
    assert.deepEqual(chunks, []);
  });
});
