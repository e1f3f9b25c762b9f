/**
 * Which tags a scan checks, and in what order (src/cache/due-tags.ts): nothing cached first,
 * then the kept tags whose last check is oldest; and the warming loop's polling checks every
 * tag the previous scan checked, however long that scan took, so that a moved tag is seen
 * within about one interval (issue 13, acceptance 5).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import { dueTags } from "../../src/cache/due-tags.js";
import type { IndexEntry } from "../../src/cache/index-records.js";
import { Keys } from "../../src/cache/keys.js";
import { ScanIndex } from "../../src/cache/scan-index.js";
import { emptyScanResult } from "../../src/cache/scan-steps.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer } from "../../src/cache/warmer.js";
import type { RepositoryScanResult } from "../../src/cache/warmer-types.js";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { waitFor } from "../support/wait-for.js";
import { FakeClock, FakeFactory, fakeDigest, fakeRepository } from "./support/fake-registry.js";

const HOUR = 3_600_000;
const name = parseImageName("registry.test/team/app");
const log = pino({ level: "silent" });

/** An index of `entries` (tag -> when it was last checked, ms) read from an empty store. */
async function indexOf(clock: FakeClock, entries: Record<string, number>): Promise<ScanIndex> {
  const index = await ScanIndex.load(
    {
      store: new MemoryStore(),
      keys: new Keys(),
      now: clock.now,
      storeConcurrency: 4,
      finalWriteTimeoutMs: 1000,
    },
    name,
    AbortSignal.timeout(5000),
  );
  for (const [tag, checkedAt] of Object.entries(entries)) {
    const entry: IndexEntry = {
      image: fakeDigest(1),
      checkedAt,
      intervalMs: HOUR,
      // Its own deadline an hour after its check: only the loop's polling makes it due.
      deadline: checkedAt + HOUR,
    };
    index.set(tag, entry);
  }
  return index;
}

function due(
  clock: FakeClock,
  index: ScanIndex,
  tags: string[],
  polling: { checkedWithinMs?: number; previousScanEndedAt?: number } = {},
) {
  const result = emptyScanResult(name.toString(), new Date(clock.now()));
  const { due } = dueTags({ ctx: clock, index, tags, result, log, ...polling });
  return { tags: due.map((d) => d.tag), fresh: result.fresh };
}

describe("dueTags", () => {
  it("puts tags with nothing cached first, then the kept ones whose last check is oldest", async () => {
    const clock = new FakeClock();
    const t = clock.now();
    // Listing order: a, b, c, new1, d, new2. Checked: c longest ago, then a, d, b.
    const index = await indexOf(clock, {
      a: t - 40_000,
      b: t - 20_000,
      c: t - 50_000,
      d: t - 30_000,
    });
    const listing = ["a", "b", "c", "new1", "d", "new2"];
    const polled = due(clock, index, listing, { checkedWithinMs: 10_000 });
    assert.deepEqual(polled.tags, ["new1", "new2", "c", "a", "d", "b"]);
    assert.equal(polled.fresh, 0);
    // Without polling, only the tags not cached at all are due (the others' deadlines are an
    // hour away), in listing order.
    const unpolled = due(clock, index, listing);
    assert.deepEqual(unpolled.tags, ["new1", "new2"]);
    assert.equal(unpolled.fresh, 4);
  });

  it("keeps listing order among tags checked at the same time (a cold fill's)", async () => {
    const clock = new FakeClock();
    const t = clock.now();
    const index = await indexOf(clock, { z: t - 20_000, y: t - 20_000, x: t - 20_000 });
    assert.deepEqual(due(clock, index, ["z", "y", "x"], { checkedWithinMs: 10_000 }).tags, [
      "z",
      "y",
      "x",
    ]);
    const fresh = await indexOf(clock, {});
    assert.deepEqual(due(clock, fresh, ["q", "p", "r"]).tags, ["q", "p", "r"]);
  });

  it("polls every tag the previous scan checked, however recently, and waits for one checked since", async () => {
    const clock = new FakeClock();
    const t = clock.now();
    // The previous scan ended 2 s ago, having checked `early` 9 s ago and `late` 3 s ago;
    // `since` was checked 1 s ago, after it (by a scan stopped before it wrote the record).
    const index = await indexOf(clock, { early: t - 9_000, late: t - 3_000, since: t - 1_000 });
    const listing = ["early", "late", "since"];
    // Half of a 10 s interval: only `early` was checked long enough ago.
    assert.deepEqual(due(clock, index, listing, { checkedWithinMs: 5_000 }).tags, ["early"]);
    const polled = due(clock, index, listing, {
      checkedWithinMs: 5_000,
      previousScanEndedAt: t - 2_000,
    });
    assert.deepEqual(polled.tags, ["early", "late"]);
    assert.equal(polled.fresh, 1);
    // Not polling (a one-off pass): the previous scan changes nothing, deadlines rule.
    assert.deepEqual(due(clock, index, listing, { previousScanEndedAt: t - 2_000 }).tags, []);
  });
});

describe("the warming loop's polling of a repository whose scan takes most of its interval", () => {
  it("checks every tag at every scan, not only those checked in the first half of the last one", async () => {
    // 20 tags checked one at a time (burst 1), 70 ms a request: a scan takes about 1.5 s,
    // against an interval of 2.5 s. Checked only when older than half the interval, the tags
    // a scan reached after its first 1.25 s were fresh at the next scan and waited for the
    // one after: about 1.5 intervals between two checks. (The next scan starts an interval
    // after the last one started, or a second after it ended, whichever is later: a loaded
    // machine's longer scans leave their last 250 ms of tags fresh all the same.)
    const repo = fakeRepository(name, 20, 2);
    repo.delayMs = 70;
    const factory = new FakeFactory(new Map([[name.toString(), repo]]));
    const warmer = new Warmer({
      store: new MemoryStore(),
      factory,
      lookup: () => new Map([[name.toString(), Credentials.none()]]),
      intervalMs: 60_000,
      repositoryOptions: () => ({ intervalMs: 2500 }),
      maxIntervalFactor: 1,
      burst: 1,
      metricsRegistry: new MetricsRegistry(),
    });
    const scans: RepositoryScanResult[] = [];
    warmer.onScan((r) => {
      if (r.outcome === "scanned") scans.push(r);
    });
    const stop = new AbortController();
    const running = warmer.start(stop.signal);
    try {
      await waitFor(() => scans.length >= 3, {
        what: "three scans",
        timeoutMs: 30_000,
        intervalMs: 20,
      });
    } finally {
      stop.abort();
      await running;
    }
    const [first, ...polls] = scans.slice(0, 3) as [
      RepositoryScanResult,
      ...RepositoryScanResult[],
    ];
    assert.equal(first.refreshed, 20, "the first scan fetched every tag");
    assert.ok(
      first.durationMs >= 1250,
      `a scan takes more than half the interval (${Math.round(first.durationMs)} ms)`,
    );
    for (const [i, scan] of polls.entries()) {
      assert.equal(
        scan.fresh,
        0,
        `scan ${i + 2} checked every tag (${scan.fresh} left fresh; it took ${Math.round(scan.durationMs)} ms)`,
      );
    }
  });
});
