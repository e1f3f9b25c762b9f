/**
 * The priority-scan runner the coalescers use: a refresh that names tags checks only those
 * (and new ones), and a refresh skipped because another replica held the lease is asked
 * again once the lease is free, so that a webhook landing on any replica is refreshed.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { Cache } from "../../src/cache/cache.js";
import { Keys } from "../../src/cache/keys.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer } from "../../src/cache/warmer.js";
import type {
  RepositoryOptions,
  RepositoryScanResult,
  ScanOutcome,
} from "../../src/cache/warmer-types.js";
import { priorityScanRunner } from "../../src/daemon/priority-scan.js";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { FakeFactory, fakeDigest, fakeRepository } from "../cache/support/fake-registry.js";
import { waitFor } from "../support/wait-for.js";

const APP = parseImageName("registry.test/hooks/app");

async function started(intervalMs = 60 * 60_000, options: RepositoryOptions = {}) {
  const store = new MemoryStore();
  const factory = new FakeFactory(new Map([[APP.toString(), fakeRepository(APP, 20, 4)]]));
  const warmer = new Warmer({
    store,
    factory,
    lookup: async () => new Map([[APP.toString(), Credentials.none()]]),
    intervalMs,
    repositoryOptions: () => options,
    owner: "replica-a",
    metricsRegistry: new MetricsRegistry(),
  });
  const outcomes: ScanOutcome[] = [];
  warmer.onScan((r) => outcomes.push(r.outcome));
  const stop = new AbortController();
  const running = warmer.start(stop.signal);
  const deadline = Date.now() + 10_000;
  while (outcomes.length === 0) {
    if (Date.now() > deadline) assert.fail("no first scan");
    await new Promise((r) => setTimeout(r, 10));
  }
  factory.reset();
  return {
    store,
    factory,
    warmer,
    outcomes,
    stop: async () => {
      stop.abort();
      await running;
    },
  };
}

describe("priorityScanRunner", () => {
  test("named tags: one listing and a HEAD of those tags only", async () => {
    const w = await started();
    await priorityScanRunner(w.warmer)(APP.toString(), ["v3", "v7"], true);
    const counts = w.factory.counts(APP.toString());
    assert.equal(counts.tags, 1);
    assert.equal(counts.head, 2);
    await priorityScanRunner(w.warmer)(APP.toString(), [], true);
    assert.equal(w.factory.counts(APP.toString()).head, 2, "the listing alone: no HEAD");
    await w.stop();
  });

  test("pushed tags alone are checked without a listing; the repository's next listing stays as scheduled", async () => {
    const w = await started();
    const repo = w.factory.repositories.get(APP.toString());
    assert.ok(repo);
    const results: RepositoryScanResult[] = [];
    w.warmer.onScan((r) => results.push(r));
    const before = w.warmer.repositoryStatus(APP);
    const listings = () => w.factory.counts(APP.toString()).tags;
    try {
      repo.tags.set("v3", fakeDigest(1)); // moved from image 4
      repo.tags.set("v20", fakeDigest(2)); // new
      await priorityScanRunner(w.warmer)(APP.toString(), ["v3", "v20"], false);
      assert.equal(listings(), 0, "no listing");
      const pushed = results.at(-1);
      assert.equal(pushed?.outcome, "scanned");
      assert.equal(pushed?.unlisted, true);
      assert.deepEqual(pushed?.newTags, ["v20"]);
      assert.deepEqual(pushed?.movedTags, ["v3"]);
      assert.equal(pushed?.tags, 21);
      const cache = new Cache({ store: w.store, metricsRegistry: new MetricsRegistry() });
      const cached = await cache.getImageRepositoryMetadata(APP);
      assert.equal(cached.tags.length, 21);
      assert.equal(cached.tags.at(-1), "v20", "after the last listing's tags");
      assert.equal(cached.images.get("v3")?.digest, fakeDigest(1));
      assert.equal(cached.images.get("v20")?.digest, fakeDigest(2));
      assert.equal(cached.images.get("v4")?.digest, fakeDigest(1), "the others kept");
      const after = w.warmer.repositoryStatus(APP);
      assert.equal(after?.tagCount, 21);
      assert.deepEqual(after?.lastScanned, before?.lastScanned, "still the last listing's");
      assert.deepEqual(after?.nextRefresh, before?.nextRefresh, "the poll as scheduled");

      // A deleted tag asks for the listing, which drops it.
      repo.tags.delete("v20");
      await priorityScanRunner(w.warmer)(APP.toString(), ["v20"], true);
      assert.equal(listings(), 1);
      assert.equal(results.at(-1)?.unlisted, undefined);
      assert.equal((await cache.getImageRepositoryMetadata(APP)).tags.length, 20);

      // A pushed tag that is not there (deleted again since): the scan lists instead.
      await priorityScanRunner(w.warmer, 10_000, { delayMs: 1_000, attempts: 0 })(
        APP.toString(),
        ["v21"],
        false,
      );
      assert.equal(listings(), 2);
      assert.equal(results.at(-1)?.outcome, "scanned");
      assert.equal(results.at(-1)?.unlisted, undefined);
    } finally {
      await w.stop();
    }
  });

  test("pushed tags under a tag filter: one it leaves out costs nothing; with maxTags the repository is listed", async () => {
    const filtered = await started(60 * 60_000, { tagFilter: { exclude: ["v1*"] } });
    try {
      filtered.factory.repositories.get(APP.toString())?.tags.set("v19", fakeDigest(2));
      await priorityScanRunner(filtered.warmer)(APP.toString(), ["v19"], false);
      const counts = filtered.factory.counts(APP.toString());
      assert.deepEqual(
        [counts.tags, counts.head, counts.manifest, counts.manifestByTag],
        [0, 0, 0, 0],
      );
    } finally {
      await filtered.stop();
    }
    const newest = await started(60 * 60_000, { tagFilter: { maxTags: 5 } });
    try {
      newest.factory.repositories.get(APP.toString())?.tags.set("v99", fakeDigest(2));
      await priorityScanRunner(newest.warmer)(APP.toString(), ["v99"], false);
      assert.equal(newest.factory.counts(APP.toString()).tags, 1, "listed: v99 may drop another");
      const status = newest.warmer.repositoryStatus(APP);
      assert.equal(status?.tagCount, 5);
    } finally {
      await newest.stop();
    }
  });

  test("a refresh asked while a poll scan of the repository runs raises that scan's requests to priority", async () => {
    // The loop scans it again a second after each scan: that scan (not a priority one) is
    // running when the refresh is asked for.
    const w = await started(1_000);
    const repo = w.factory.repositories.get(APP.toString());
    assert.ok(repo);
    try {
      repo.delayMs = 100;
      w.factory.priorities.length = 0;
      const polled = new Promise<ScanOutcome>((resolve) => {
        const off = w.warmer.onScan((r) => {
          off();
          resolve(r.outcome);
        });
      });
      await waitFor(() => w.factory.counts(APP.toString()).tags > 0, { timeoutMs: 5_000 });
      const raise = w.factory.priorities.at(-1);
      assert.ok(raise instanceof AbortSignal, "a running scan's client can be raised");
      assert.equal(raise.aborted, false);
      const refresh = priorityScanRunner(w.warmer, 10_000, { delayMs: 20, attempts: 100 })(
        APP.toString(),
        ["v1"],
        true,
      );
      assert.equal(raise.aborted, true, "raised by the refresh's request");
      repo.delayMs = 0;
      await refresh;
      assert.equal(await polled, "scanned");
      assert.equal(w.outcomes.at(-1), "scanned", "then the refresh's own scan");
      assert.equal(w.factory.priorities.at(-1), true, "a priority one");
    } finally {
      repo.delayMs = 0;
      await w.stop();
    }
  });

  test("a refresh skipped for another replica's lease is asked again once the lease is free", async () => {
    const w = await started();
    const lease = new Keys().lease(APP);
    assert.ok(await w.store.acquire(lease, 60_000, "replica-b"));
    const run = priorityScanRunner(w.warmer, 10_000, { delayMs: 100, attempts: 50 });
    const done = run(APP.toString(), ["v1"], true);
    await new Promise((r) => setTimeout(r, 350));
    assert.equal(w.factory.counts(APP.toString()).tags, 0, "not scanned under B's lease");
    await w.store.release(lease, "replica-b");
    await done;
    assert.equal(w.outcomes.at(-1), "scanned");
    assert.ok(w.outcomes.includes("skipped-lease"));
    assert.equal(w.factory.counts(APP.toString()).tags, 1, "scanned once the lease was free");
    await w.stop();
  });

  test("a refresh waits out a long scan of another replica, its retries spaced out, until the bound", async () => {
    // The holder may be scanning a repository of 20,000 tags: minutes at a registry's budget.
    const w = await started();
    const lease = new Keys().lease(APP);
    assert.ok(await w.store.acquire(lease, 60_000, "replica-b"));
    const retry = { delayMs: 20, steadyAttempts: 5, maxDelayMs: 80 };
    const run = priorityScanRunner(w.warmer, 10_000, retry);
    const done = run(APP.toString(), ["v1"], true);
    // Well past 30 retries at the first delay (600 ms): the retries went on, five 20 ms
    // apart, then at most one per 80 ms once spaced out.
    await new Promise((r) => setTimeout(r, 1_500));
    const skipped = w.outcomes.filter((o) => o === "skipped-lease").length;
    assert.ok(skipped >= 6 && skipped <= 30, `${skipped} retries in 1.5 s`);
    assert.equal(w.factory.counts(APP.toString()).tags, 0, "not scanned under B's lease");
    await w.store.release(lease, "replica-b");
    await done;
    assert.equal(w.outcomes.at(-1), "scanned");
    assert.equal(w.factory.counts(APP.toString()).tags, 1, "scanned once the lease was free");

    // With the lease never given back, the refresh ends at its bound.
    assert.ok(await w.store.acquire(lease, 60_000, "replica-b"));
    const startedAt = Date.now();
    await priorityScanRunner(w.warmer, 400, retry)(APP.toString(), ["v1"], true);
    const took = Date.now() - startedAt;
    assert.ok(took >= 390 && took < 5_000, `ended after ${took} ms, at its 400 ms bound`);
    assert.equal(w.factory.counts(APP.toString()).tags, 1, "still not scanned under B's lease");
    await w.stop();
  });
});
