/**
 * Adaptive per-tag refresh: 1 h first, doubled when unchanged, halved when moved, clamped
 * to [5 min, 7 days], 24 h for excluded images, and optional bounded jitter.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  applyRefreshJitter,
  clampRefreshInterval,
  EXCLUDED_REFRESH_MS,
  INITIAL_REFRESH_MS,
  MAX_REFRESH_MS,
  MIN_REFRESH_MS,
  nextRefreshInterval,
  refreshDeadline,
} from "../../src/cache/refresh-policy.js";

const MIN = 60_000;
const HOUR = 60 * MIN;

describe("refresh policy", () => {
  it("has the numbers of DESIGN.md section 5", () => {
    assert.equal(INITIAL_REFRESH_MS, HOUR);
    assert.equal(MIN_REFRESH_MS, 5 * MIN);
    assert.equal(MAX_REFRESH_MS, 7 * 24 * HOUR);
    assert.equal(EXCLUDED_REFRESH_MS, 24 * HOUR);
  });

  it("starts at 1 h, doubles when unchanged, halves when changed", () => {
    assert.equal(nextRefreshInterval({ changed: false, excluded: false }), HOUR);
    assert.equal(nextRefreshInterval({ changed: true, excluded: false }), HOUR);
    assert.equal(
      nextRefreshInterval({ previousMs: HOUR, changed: false, excluded: false }),
      2 * HOUR,
    );
    assert.equal(
      nextRefreshInterval({ previousMs: HOUR, changed: true, excluded: false }),
      HOUR / 2,
    );
  });

  it("never goes under 5 min or over 7 days", () => {
    assert.equal(
      nextRefreshInterval({ previousMs: 6 * MIN, changed: true, excluded: false }),
      5 * MIN,
    );
    assert.equal(
      nextRefreshInterval({ previousMs: 5 * 24 * HOUR, changed: false, excluded: false }),
      7 * 24 * HOUR,
    );
    assert.equal(nextRefreshInterval({ previousMs: 1, changed: false, excluded: false }), 5 * MIN);
    assert.equal(clampRefreshInterval(Number.NaN), HOUR);
    assert.equal(clampRefreshInterval(Number.POSITIVE_INFINITY), MAX_REFRESH_MS);
  });

  it("gives excluded images 24 h whatever came before", () => {
    for (const previousMs of [undefined, 5 * MIN, 7 * 24 * HOUR]) {
      for (const changed of [false, true]) {
        assert.equal(nextRefreshInterval({ previousMs, changed, excluded: true }), 24 * HOUR);
      }
    }
  });

  it("walks from 1 h to the bounds in the expected number of steps", () => {
    let ms = nextRefreshInterval({ changed: false, excluded: false });
    const up: number[] = [];
    for (let i = 0; i < 10; i++) {
      ms = nextRefreshInterval({ previousMs: ms, changed: false, excluded: false });
      up.push(ms);
    }
    // 2, 4, ..., 128 h, then 168 h (7 days) for good.
    assert.deepEqual(
      up.slice(0, 8),
      [2, 4, 8, 16, 32, 64, 128, 168].map((h) => h * HOUR),
    );
    assert.equal(up.at(-1), MAX_REFRESH_MS);
    ms = HOUR;
    for (let i = 0; i < 5; i++)
      ms = nextRefreshInterval({ previousMs: ms, changed: true, excluded: false });
    assert.equal(ms, MIN_REFRESH_MS);
  });

  it("is deterministic without jitter, bounded with it", () => {
    assert.equal(applyRefreshJitter(HOUR), HOUR);
    assert.equal(applyRefreshJitter(HOUR, { jitter: 0.1, random: () => 0 }), 0.9 * HOUR);
    assert.equal(applyRefreshJitter(HOUR, { jitter: 0.1, random: () => 0.5 }), HOUR);
    assert.equal(
      nextRefreshInterval(
        { previousMs: HOUR, changed: false, excluded: false },
        { jitter: 0.25, random: () => 0.999999 },
      ),
      Math.round(2 * HOUR * (1 + 0.25 * (2 * 0.999999 - 1))),
    );
    fc.assert(
      fc.property(
        fc.option(fc.integer({ min: 1, max: 2 * MAX_REFRESH_MS }), { nil: undefined }),
        fc.boolean(),
        fc.boolean(),
        fc.double({ min: 0, max: 2, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (previousMs, changed, excluded, jitter, r) => {
          const ms = nextRefreshInterval(
            { previousMs, changed, excluded },
            { jitter, random: () => r },
          );
          assert.ok(ms >= MIN_REFRESH_MS && ms <= MAX_REFRESH_MS, String(ms));
          const plain = nextRefreshInterval({ previousMs, changed, excluded });
          assert.ok(Math.abs(ms - plain) <= Math.min(jitter, 1) * plain + 1);
        },
      ),
    );
  });

  it("computes the deadline from the check time", () => {
    assert.equal(
      refreshDeadline(new Date("2024-01-01T00:00:00Z"), HOUR).toISOString(),
      "2024-01-01T01:00:00.000Z",
    );
  });
});
