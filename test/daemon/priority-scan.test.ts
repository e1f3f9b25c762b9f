/**
 * The priority-scan runner the coalescers use: a refresh that names tags checks only those
 * (and new ones), and a refresh skipped because another replica held the lease is asked
 * again once the lease is free, so that a webhook landing on any replica is refreshed.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { Keys } from "../../src/cache/keys.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer } from "../../src/cache/warmer.js";
import type { ScanOutcome } from "../../src/cache/warmer-types.js";
import { priorityScanRunner } from "../../src/daemon/priority-scan.js";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { FakeFactory, fakeRepository } from "../cache/support/fake-registry.js";

const APP = parseImageName("registry.test/hooks/app");

async function started() {
  const store = new MemoryStore();
  const factory = new FakeFactory(new Map([[APP.toString(), fakeRepository(APP, 20, 4)]]));
  const warmer = new Warmer({
    store,
    factory,
    lookup: async () => new Map([[APP.toString(), Credentials.none()]]),
    intervalMs: 60 * 60_000,
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
    await priorityScanRunner(w.warmer)(APP.toString(), ["v3", "v7"]);
    const counts = w.factory.counts(APP.toString());
    assert.equal(counts.tags, 1);
    assert.equal(counts.head, 2);
    await priorityScanRunner(w.warmer)(APP.toString(), []);
    assert.equal(w.factory.counts(APP.toString()).head, 2, "the listing alone: no HEAD");
    await w.stop();
  });

  test("a refresh skipped for another replica's lease is asked again once the lease is free", async () => {
    const w = await started();
    const lease = new Keys().lease(APP);
    assert.ok(await w.store.acquire(lease, 60_000, "replica-b"));
    const run = priorityScanRunner(w.warmer, 10_000, { delayMs: 100, attempts: 50 });
    const done = run(APP.toString(), ["v1"]);
    await new Promise((r) => setTimeout(r, 350));
    assert.equal(w.factory.counts(APP.toString()).tags, 0, "not scanned under B's lease");
    await w.store.release(lease, "replica-b");
    await done;
    assert.equal(w.outcomes.at(-1), "scanned");
    assert.ok(w.outcomes.includes("skipped-lease"));
    assert.equal(w.factory.counts(APP.toString()).tags, 1, "scanned once the lease was free");
    await w.stop();
  });
});
