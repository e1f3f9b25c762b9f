/**
 * Quiet repositories back off (issue 13): a repository whose listing stays unchanged is
 * listed ever less often, up to a maximum multiple of its interval; a change puts it back
 * at its interval; a priority scan is never held back. The status (and the API's form of it)
 * says how stale each repository is and which interval applies.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { RepositoryPace } from "../../src/cache/repository-pace.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer, type WarmerOptions } from "../../src/cache/warmer.js";
import { parseImageName } from "../../src/image/ref.js";
import { statusJson } from "../../src/server/json-forms.js";
import { FakeClock, FakeFactory, fakeDigest, fakeRepository } from "./support/fake-registry.js";

const MINUTE = 60_000;
const APP = parseImageName("registry.test/team/app");

function setup(extra: Partial<WarmerOptions> = {}) {
  const clock = new FakeClock();
  const app = fakeRepository(APP, 3, 3);
  const factory = new FakeFactory(new Map([[APP.toString(), app]]));
  const warmer = new Warmer({
    store: new MemoryStore(),
    factory,
    now: clock.now,
    metricsRegistry: new MetricsRegistry(),
    intervalMs: MINUTE,
    ...extra,
  });
  /** The loop's way: a scan that the repository's interval may skip. */
  const due = async () => (await warmer.scan([{ name: APP }], { force: false }))[0]?.outcome;
  const interval = () => warmer.repositoryStatus(APP)?.intervalMs;
  return { clock, app, factory, warmer, due, interval };
}

describe("RepositoryPace", () => {
  it("doubles after the quiet scans, up to the maximum; a change resets it", () => {
    const pace = new RepositoryPace({ maxFactor: 8, quietScans: 3 });
    const factors: number[] = [];
    for (let i = 0; i < 7; i++) {
      pace.record(false);
      factors.push(pace.factor);
    }
    assert.deepEqual(factors, [1, 1, 2, 4, 8, 8, 8]);
    pace.record(true);
    assert.equal(pace.intervalMs(MINUTE), MINUTE);
    pace.record(false);
    assert.equal(pace.factor, 1, "counting starts again");
    const never = new RepositoryPace({ maxFactor: 1 });
    for (let i = 0; i < 10; i++) never.record(false);
    assert.equal(never.factor, 1);
  });
});

describe("Warmer: quiet repositories are listed less often", () => {
  it("backs off while the listing stays the same, and comes back at once when it changes", async () => {
    const { clock, app, factory, warmer, due, interval } = setup();
    assert.equal(await due(), "scanned");
    // The first listing and three quiet ones at the interval, then 2, 4 and 8 minutes.
    const gaps: number[] = [];
    let last = clock.ms;
    for (let minute = 1; minute <= 40; minute++) {
      clock.advance(MINUTE);
      if ((await due()) === "scanned") {
        gaps.push((clock.ms - last) / MINUTE);
        last = clock.ms;
      }
    }
    // 0.8 of an interval counts as fresh, so each scan comes at the first minute past that.
    assert.deepEqual(gaps.slice(0, 7), [1, 1, 1, 2, 4, 7, 7]);
    assert.equal(interval(), 8 * MINUTE, "never more than 8 times the interval");
    assert.equal(factory.counts(APP.toString()).tags, 1 + gaps.length);

    // A priority scan is never held back.
    const [forced] = await warmer.scan([{ name: APP }]);
    assert.equal(forced?.outcome, "scanned");

    // A new tag: the repository is back at its interval.
    app.tags.set("v9", fakeDigest(1));
    clock.advance(8 * MINUTE);
    assert.equal(await due(), "scanned");
    assert.equal(interval(), MINUTE);
    clock.advance(MINUTE);
    assert.equal(await due(), "scanned", "listed again after one interval");
    // A deleted tag is a change too.
    app.tags.delete("v9");
    for (let i = 0; i < 2; i++) {
      clock.advance(MINUTE);
      await due();
    }
    assert.equal(interval(), MINUTE);
  });

  it("takes its maximum from the options (1: never backs off)", async () => {
    for (const [max, expected] of [
      [2, 2 * MINUTE],
      [1, MINUTE],
    ] as const) {
      const { clock, due, interval } = setup({ maxIntervalFactor: max });
      await due();
      for (let i = 0; i < 12; i++) {
        clock.advance(MINUTE);
        await due();
      }
      assert.equal(interval(), expected, `maximum ${max}`);
    }
  });

  it("shows how stale each repository is, and the interval applied", async () => {
    const { clock, warmer, due } = setup();
    await due();
    for (let i = 0; i < 4; i++) {
      clock.advance(MINUTE);
      await due();
    }
    const status = warmer.repositoryStatus(APP);
    assert.ok(status?.lastUpdate);
    assert.equal(status.intervalMs, 2 * MINUTE);
    // The API's form: seconds since the last listing, from the real clock.
    const json = statusJson({ ...status, lastUpdate: new Date(Date.now() - 95_000) });
    assert.equal(json.staleSeconds, 95);
    assert.equal(json.intervalSeconds, 120);
    const never = statusJson({ repository: APP.toString(), scanning: false });
    assert.equal(never.staleSeconds, undefined, "never listed: no staleness to tell");
  });
});
