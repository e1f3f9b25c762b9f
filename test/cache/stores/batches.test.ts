import assert from "node:assert/strict";
import { test } from "node:test";
import { inBatches, mapBounded } from "../../../src/cache/stores/batches.js";

test("inBatches cuts a list into consecutive slices of at most the size", () => {
  assert.deepEqual(inBatches([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(inBatches([1, 2], 5), [[1, 2]]);
  assert.deepEqual(inBatches([], 3), []);
});

test("mapBounded keeps item order and never exceeds its limit", async () => {
  let inFlight = 0;
  let peak = 0;
  const out = await mapBounded([50, 10, 30, 0, 20, 5, 40], 3, async (ms, i) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((r) => setTimeout(r, ms));
    inFlight--;
    return `${i}:${ms}`;
  });
  assert.deepEqual(out, ["0:50", "1:10", "2:30", "3:0", "4:20", "5:5", "6:40"]);
  assert.equal(peak, 3);
  assert.deepEqual(await mapBounded([], 4, async () => 1), []);
});

test("mapBounded rethrows the first error after every started call settled, starting no more", async () => {
  const started: number[] = [];
  const settled: number[] = [];
  await assert.rejects(
    mapBounded([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      await new Promise((r) => setTimeout(r, i === 1 ? 5 : 30));
      settled.push(i);
      if (i === 1) throw new Error("batch 1 failed");
      return i;
    }),
    /batch 1 failed/,
  );
  assert.deepEqual(started, [0, 1], "nothing starts after the failure");
  assert.deepEqual([...settled].sort(), [0, 1], "every started call settled first");
});
