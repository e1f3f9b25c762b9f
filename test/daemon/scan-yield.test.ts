/**
 * A long loop scan gives its repository's lease up to a webhook's refresh waiting for it:
 * asked through the store by another replica, or by its own warmer, it stops after
 * `yieldAfterMs`, what it did is kept, the refresh runs, and the loop goes on with the
 * repository soon after without listing it again.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { Cache } from "../../src/cache/cache.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer } from "../../src/cache/warmer.js";
import type { RepositoryScanResult } from "../../src/cache/warmer-types.js";
import { priorityScanRunner } from "../../src/daemon/priority-scan.js";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { FakeFactory, fakeDigest, fakeRepository } from "../cache/support/fake-registry.js";
import { waitFor } from "../support/wait-for.js";

const APP = parseImageName("registry.test/yield/app");
/** 300 tags one request at a time, 15 ms each: a first scan of about 5 s. */
const TAGS = 300;
/** Where the test pushes `v3` (image 4 before): the last tag's image. */
const MOVED = fakeDigest(TAGS);

function fleet() {
  const store = new MemoryStore();
  const repo = { ...fakeRepository(APP, TAGS, TAGS), delayMs: 15 };
  const factory = new FakeFactory(new Map([[APP.toString(), repo]]));
  const results: Array<RepositoryScanResult & { by: string }> = [];
  const stops: Array<() => Promise<void>> = [];
  const start = (owner: string) => {
    const warmer = new Warmer({
      store,
      factory,
      owner,
      burst: 1,
      intervalMs: 60 * 60_000,
      lookup: async () => new Map([[APP.toString(), Credentials.none()]]),
      metricsRegistry: new MetricsRegistry(),
      yieldAfterMs: 300,
    });
    warmer.onScan((r) => results.push({ ...r, by: owner }));
    const stop = new AbortController();
    const running = warmer.start(stop.signal);
    stops.push(async () => {
      stop.abort();
      await running;
    });
    return warmer;
  };
  const scanUnderWay = () =>
    waitFor(
      () => factory.counts(APP.toString()).manifestByTag + factory.counts(APP.toString()).head > 5,
      {
        what: "the first scan to be under way",
        timeoutMs: 5_000,
        intervalMs: 5,
      },
    );
  return {
    store,
    repo,
    factory,
    results,
    start,
    scanUnderWay,
    stop: () => Promise.all(stops.map((s) => s())),
  };
}

const cachedDigest = async (store: MemoryStore, tag: string) =>
  (
    await new Cache({ store, metricsRegistry: new MetricsRegistry() }).getImageRepositoryMetadata(
      APP,
    )
  ).images.get(tag)?.digest;

describe("a loop scan gives its lease up to a refresh", () => {
  test("another replica's refresh, asked through the store", async () => {
    const f = fleet();
    try {
      f.start("replica-b");
      await f.scanUnderWay();
      const a = f.start("replica-a");
      f.repo.tags.set("v3", MOVED); // pushed over
      const asked = Date.now();
      await priorityScanRunner(a, 20_000, { delayMs: 100, attempts: 200 })(
        APP.toString(),
        ["v3"],
        false,
      );
      const took = Date.now() - asked;
      // B's whole first scan takes about 5 s; its look for asks comes every second.
      assert.ok(took < 3_500, `refreshed after ${took} ms`);
      const yielded = f.results.find((r) => r.by === "replica-b" && r.yielded);
      assert.equal(yielded?.outcome, "aborted", "B's scan stopped for the refresh");
      const refresh = f.results.findLast((r) => r.by === "replica-a");
      assert.equal(refresh?.outcome, "scanned");
      assert.equal(refresh?.unlisted, true, "the pushed tag checked without a listing");
      assert.equal(await cachedDigest(f.store, "v3"), MOVED);

      // B goes on soon after, with the listing it wrote when it stopped, and finishes.
      await waitFor(() => f.results.some((r) => r.by === "replica-b" && r.outcome === "scanned"), {
        what: "B's scan to be done",
        timeoutMs: 15_000,
      });
      assert.equal(f.factory.counts(APP.toString()).tags, 1, "listed once, by B's first scan");
      const cached = await new Cache({
        store: f.store,
        metricsRegistry: new MetricsRegistry(),
      }).getImageRepositoryMetadata(APP);
      assert.equal(cached.tags.length, TAGS);
      assert.equal(cached.images.size, TAGS, "every tag cached");
      assert.equal(cached.images.get("v3")?.digest, MOVED, "the push kept");
    } finally {
      await f.stop();
    }
  });

  test("this replica's own refresh", async () => {
    const f = fleet();
    try {
      const w = f.start("replica-a");
      await f.scanUnderWay();
      f.repo.tags.set("v3", MOVED);
      const asked = Date.now();
      await priorityScanRunner(w, 20_000)(APP.toString(), ["v3"], false);
      const took = Date.now() - asked;
      assert.ok(took < 2_500, `refreshed after ${took} ms`);
      assert.equal(f.results[0]?.yielded, true);
      assert.equal(f.results[0]?.outcome, "aborted");
      assert.equal(f.results[1]?.unlisted, true, "then the refresh's own scan");
      assert.equal(await cachedDigest(f.store, "v3"), MOVED);

      await waitFor(() => f.results.some((r) => r.outcome === "scanned" && !r.unlisted), {
        what: "the loop's scan to be done",
        timeoutMs: 15_000,
      });
      assert.equal(f.factory.counts(APP.toString()).tags, 1, "the listing used again");
      // Last listed by the scan that stopped (its record's time), not by the one that went on.
      const goneOn = f.results.find((r) => r.outcome === "scanned" && !r.unlisted);
      const listedAt = w.repositoryStatus(APP)?.lastUpdate?.getTime();
      assert.ok(goneOn?.reusedListingOf, "it went on with the stopped scan's listing");
      assert.equal(listedAt, goneOn.reusedListingOf.getTime());
      assert.ok(listedAt < goneOn.startedAt.getTime(), "listed before the scan that went on");
    } finally {
      await f.stop();
    }
  });
});
