/**
 * How often a long scan writes its index (src/cache/warm-pass.ts): every 5 s for an index
 * of up to 2,000 entries, less often in proportion above (a flush encodes every bucket a
 * change touched), never less than once a minute (what a kill may lose); the size the rule
 * goes by is the index's entries.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Keys } from "../../src/cache/keys.js";
import { ScanIndex } from "../../src/cache/scan-index.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { flushEveryMs } from "../../src/cache/warm-pass.js";
import { parseImageName } from "../../src/image/ref.js";

describe("a long scan's index writes", () => {
  it("come every 5 s for a small index, in proportion for a large one, at least once a minute", () => {
    assert.equal(flushEveryMs(0), 5_000);
    assert.equal(flushEveryMs(2_000), 5_000);
    assert.equal(flushEveryMs(4_000), 10_000);
    assert.equal(flushEveryMs(20_000), 50_000);
    assert.equal(flushEveryMs(40_000), 60_000);
    assert.equal(flushEveryMs(1_000_000), 60_000);
  });

  it("go by the entries the index holds, over all its buckets", async () => {
    const index = await ScanIndex.load(
      {
        store: new MemoryStore(),
        keys: new Keys(),
        now: () => 1_000_000,
        storeConcurrency: 4,
        finalWriteTimeoutMs: 1000,
      },
      parseImageName("example.com/team/app"),
      AbortSignal.timeout(5000),
    );
    assert.equal(index.size, 0);
    for (let i = 0; i < 300; i++) {
      index.set(`v${i}`, { checkedAt: 1_000_000, intervalMs: 60_000, deadline: 1_060_000 });
    }
    // Set again: one entry per tag.
    index.set("v0", { checkedAt: 1_000_000, intervalMs: 60_000, deadline: 1_060_000 });
    assert.equal(index.size, 300);
  });
});
