/**
 * forEachBounded: every item once, at most `limit` calls at once, and a `limitNow` that
 * falls holds new calls back until running ones end (and lets them go when it rises),
 * with no worker left waiting once the items run out, fail or are aborted.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { forEachBounded } from "../src/bounded-parallel.js";

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("forEachBounded", () => {
  it("runs every item once, never more than the limit at once", async () => {
    let running = 0;
    let most = 0;
    const seen: number[] = [];
    await forEachBounded([...Array(50).keys()], { limit: 7 }, async (i) => {
      running++;
      most = Math.max(most, running);
      await tick();
      seen.push(i);
      running--;
    });
    assert.equal(most, 7);
    assert.deepEqual(
      seen.sort((a, b) => a - b),
      [...Array(50).keys()],
    );
  });

  it("holds calls back to limitNow, whatever it does meanwhile", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 0, max: 60 }),
        async (limit, limits, count) => {
          let asked = 0;
          let now = limits[0] as number;
          let running = 0;
          const done: number[] = [];
          await forEachBounded(
            [...Array(count).keys()],
            {
              limit,
              limitNow: () => {
                now = limits[asked++ % limits.length] as number;
                return now;
              },
            },
            async (i) => {
              running++;
              // The bound asked last, when this call started (never below one).
              assert.ok(running <= Math.max(1, Math.min(limit, now)), `${running} running`);
              await tick();
              if (i % 3 === 0) await tick();
              done.push(i);
              running--;
            },
          );
          assert.equal(done.length, count);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("lets held calls go when limitNow rises, and uses the whole limit again", async () => {
    let now = 1;
    let running = 0;
    let most = 0;
    let started = 0;
    await forEachBounded([...Array(40).keys()], { limit: 8, limitNow: () => now }, async () => {
      started++;
      running++;
      most = Math.max(most, running);
      if (started === 10) now = 8;
      await tick();
      await tick();
      running--;
    });
    assert.equal(most, 8);
  });

  it("stops starting calls once aborted or once a call throws, leaving no worker behind", async () => {
    const controller = new AbortController();
    let calls = 0;
    await forEachBounded(
      [...Array(100).keys()],
      { limit: 10, limitNow: () => 2, signal: controller.signal },
      async () => {
        calls++;
        if (calls === 5) controller.abort();
        await tick();
      },
    );
    assert.ok(calls <= 6, `${calls} calls`);
    calls = 0;
    await assert.rejects(
      forEachBounded([...Array(100).keys()], { limit: 10, limitNow: () => 3 }, async () => {
        calls++;
        await tick();
        if (calls === 4) throw new Error("boom");
      }),
      /boom/,
    );
    assert.ok(calls < 10, `${calls} calls`);
  });
});
