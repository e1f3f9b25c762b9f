/**
 * The tags-cached gauge of warmers sharing a store: a repository's series is shown by the
 * replica that scanned it last, so that summing the gauge over replicas counts each
 * repository once; and it can be left out where a series per repository is too many.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer } from "../../src/cache/warmer.js";
import { parseImageName } from "../../src/image/ref.js";
import { FakeFactory, fakeRepository } from "./support/fake-registry.js";

const APP = parseImageName("registry.test/metrics/app");

/** Two warmers ("a", "b") on one store, each with its own metrics, on a clock the test moves. */
function replicas(tagsCachedByRepository?: boolean) {
  const store = new MemoryStore();
  const factory = new FakeFactory(new Map([[APP.toString(), fakeRepository(APP, 7, 3)]]));
  const clock = { t: Date.now() };
  const make = (owner: string) => {
    const metrics = new MetricsRegistry();
    const warmer = new Warmer({
      store,
      factory,
      owner,
      now: () => clock.t,
      intervalMs: 60_000,
      metricsRegistry: metrics,
      tagsCachedByRepository,
    });
    return { warmer, metrics };
  };
  return { a: make("a"), b: make("b"), clock };
}

/** The gauge's value for `APP` on `metrics`, or undefined without a series. */
async function tagsCached(metrics: MetricsRegistry): Promise<number | undefined> {
  const gauge = metrics.getSingleMetric("regscan_warmer_tags_cached");
  if (!gauge) return undefined;
  const { values } = await gauge.get();
  return values.find((v) => v.labels.repository === APP.toString())?.value;
}

describe("regscan_warmer_tags_cached across replicas", () => {
  it("moves a repository's series to the replica that scanned it last", async () => {
    const { a, b, clock } = replicas();
    const [first] = await a.warmer.scan([{ name: APP }]);
    assert.equal(first?.outcome, "scanned");
    assert.equal(await tagsCached(a.metrics), 7);

    // A's own scan is what a fresh skip finds: the series stays.
    clock.t += 1000;
    const [own] = await a.warmer.scan([{ name: APP }], { force: false });
    assert.equal(own?.outcome, "skipped-fresh");
    assert.equal(await tagsCached(a.metrics), 7, "kept after a skip over its own scan");

    clock.t += 1000;
    const [other] = await b.warmer.scan([{ name: APP }]);
    assert.equal(other?.outcome, "scanned");
    assert.equal(await tagsCached(b.metrics), 7);

    // A skips it as fresh and reads B's later scan from the record: B shows it now.
    clock.t += 1000;
    const [skipped] = await a.warmer.scan([{ name: APP }], { force: false });
    assert.equal(skipped?.outcome, "skipped-fresh");
    assert.equal(await tagsCached(a.metrics), undefined, "A's series removed");
    assert.equal(await tagsCached(b.metrics), 7, "B's kept");

    // And back when A scans it again.
    clock.t += 1000;
    await a.warmer.scan([{ name: APP }]);
    assert.equal(await tagsCached(a.metrics), 7);
  });

  it("has no series per repository with tagsCachedByRepository: false", async () => {
    const { a } = replicas(false);
    const [r] = await a.warmer.scan([{ name: APP }]);
    assert.equal(r?.outcome, "scanned");
    assert.equal(a.metrics.getSingleMetric("regscan_warmer_tags_cached"), undefined);
    // The warmer's other metrics are there.
    assert.ok(a.metrics.getSingleMetric("regscan_warmer_repositories_scanned_total"));
  });
});
