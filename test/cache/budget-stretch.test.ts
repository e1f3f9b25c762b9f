/**
 * When a registry's budget cannot cover the configured intervals (issue 13), the warmer
 * stretches them per host, says so in a log line and a metric, and relaxes once demand is
 * well under the budget. The stretch alone on a scripted signal, then the Warmer with the
 * real rate limiters in front of the real registry.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { Registry as MetricsRegistry } from "prom-client";
import {
  BudgetStretch,
  type BudgetStretchOptions,
  MAX_STRETCH,
  MAX_STRETCH_SETTLE_MS,
  RELAX_GAP_MS,
  RELAX_UTILISATION,
  STRETCH_CHANGE_GAP_MS,
  STRETCH_UTILISATION,
} from "../../src/cache/budget-stretch.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer } from "../../src/cache/warmer.js";
import type { RepositoryScanResult } from "../../src/cache/warmer-types.js";
import { type ImageName, parseImageName } from "../../src/image/ref.js";
import type { ClientFactory, HostConditions } from "../../src/registry/client.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";
import { RateLimiters } from "../../src/registry/http/rate-limiters.js";
import { ImageBuilder } from "../support/image-builder.js";
import { type RegistryHandle, startRegistry } from "../support/registry.js";
import { waitFor } from "../support/wait-for.js";
import { FakeClock } from "./support/fake-registry.js";

const APP = parseImageName("registry.test/team/app");
const OTHER = parseImageName("other.test/team/app");

function captured() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { lines, logger };
}

/** A factory that only reports host conditions (BudgetStretch reads nothing else). */
function conditionsOf(
  hostConditions: (name: ImageName) => HostConditions | undefined,
): ClientFactory {
  return {
    clientFor: () => {
      throw new Error("not used");
    },
    succeed: () => {},
    hostConditions,
  };
}

/**
 * A stretch reading a scripted signal on a fake clock: `update` changes what the next look
 * reads, `conditions` reads it (for a second stretch on the same signal).
 */
function scripted(
  initial: Partial<HostConditions>,
  options: Pick<BudgetStretchOptions, "peers" | "onChange"> = { onChange: () => {} },
) {
  const clock = new FakeClock();
  let current: HostConditions = {
    pullQuota: false,
    saturated: false,
    utilisation: 0,
    requests: 0,
    waitedMs: 0,
    ...initial,
  };
  const conditions = () => current;
  const stretch = new BudgetStretch({
    factory: conditionsOf(conditions),
    now: clock.now,
    log: captured().logger,
    ...options,
  });
  const update = (change: Partial<HostConditions>) => {
    current = { ...current, ...change };
  };
  return { clock, stretch, update, conditions };
}

describe("BudgetStretch", () => {
  it("doubles while saturated (one change per gap, at most 16x), relaxes when demand is low", () => {
    const clock = new FakeClock();
    let conditions: HostConditions = {
      pullQuota: false,
      saturated: true,
      utilisation: 1.2,
      requests: 0,
      waitedMs: 0,
    };
    const factory = conditionsOf((name) => (name.apiHost === APP.apiHost ? conditions : undefined));
    const { lines, logger } = captured();
    const changes: Array<[string, number]> = [];
    const stretch = new BudgetStretch({
      factory,
      now: clock.now,
      log: logger,
      onChange: (h, f) => changes.push([h, f]),
    });
    assert.equal(stretch.observe(APP), 2);
    assert.equal(stretch.observe(APP), 2, "no second change within the gap");
    const factors = [];
    for (let i = 0; i < 5; i++) {
      clock.advance(STRETCH_CHANGE_GAP_MS);
      factors.push(stretch.observe(APP));
    }
    assert.deepEqual(factors, [4, 8, 16, MAX_STRETCH, MAX_STRETCH]);
    assert.equal(stretch.factor(OTHER), 1, "per host");
    assert.equal(stretch.observe(OTHER), 1, "a host without the signal is never stretched");

    // Relaxing is slow: a minute after the last change, the demand then counted at the new
    // factor alone, and only well under the budget (halving the factor doubles the polling).
    conditions = { ...conditions, saturated: false, utilisation: 0.2 };
    clock.advance(STRETCH_CHANGE_GAP_MS);
    assert.equal(stretch.observe(APP), 16, "within a minute of the last change: kept");
    clock.advance(RELAX_GAP_MS - 2 * STRETCH_CHANGE_GAP_MS);
    conditions = { ...conditions, utilisation: RELAX_UTILISATION };
    assert.equal(stretch.observe(APP), 16, "at 35% of the budget: kept");
    conditions = { ...conditions, utilisation: 0.2 };
    assert.equal(stretch.observe(APP), 8, "demand well under the budget for a minute: relaxed");
    // Requests that waited a second or more on average since the last look count too, with
    // demand at the budget; at a fifth of it they were a burst.
    conditions = { ...conditions, requests: 10, waitedMs: 15_000 };
    clock.advance(STRETCH_CHANGE_GAP_MS);
    assert.equal(stretch.observe(APP), 8, "1.5 s of wait per request at 20% demand: a burst");
    conditions = {
      ...conditions,
      requests: 20,
      waitedMs: 30_000,
      utilisation: STRETCH_UTILISATION,
    };
    assert.equal(stretch.observe(APP), 16, "1.5 s of wait per request at 80% demand: saturated");
    conditions = { ...conditions, requests: 30, waitedMs: 30_100, utilisation: 0.7 };
    clock.advance(STRETCH_CHANGE_GAP_MS);
    assert.equal(stretch.observe(APP), 16, "neither saturated nor low: kept");

    assert.deepEqual(
      changes.map(([, f]) => f),
      [1, 2, 4, 8, 16, 8, 16],
    );
    const warned = lines.filter((l) => l.level === 40);
    assert.equal(warned.length, 5);
    assert.match(String(warned[0]?.msg), /budget cannot cover the configured intervals/);
    assert.equal(warned[0]?.host, APP.apiHost);
    assert.equal(warned[0]?.stretch, 2);
    assert.equal(lines.filter((l) => l.level === 30).length, 1, "the relaxing is logged at info");
  });

  it("takes a queue at low demand for a burst, not saturation", () => {
    const { clock, stretch, update } = scripted({
      saturated: true,
      utilisation: 0.1,
      queueDelayMs: 3_000,
    });
    // A large repository's due tags asked at once queue for seconds at a tenth of the budget.
    assert.equal(stretch.observe(APP, { intervalMs: 20_000 }), 1);
    update({ requests: 40, waitedMs: 80_000 });
    clock.advance(STRETCH_CHANGE_GAP_MS);
    assert.equal(stretch.observe(APP, { intervalMs: 20_000 }), 1, "2 s waits, 10% demand");
    update({ utilisation: 0.9 });
    clock.advance(STRETCH_CHANGE_GAP_MS);
    assert.equal(stretch.observe(APP, { intervalMs: 20_000 }), 2, "the same queue at 90% demand");
  });

  it("waits for a stretch to show in demand before the next: one interval at the factor before it", () => {
    const { clock, stretch, update, conditions } = scripted({ utilisation: 0.5 });
    // The host's repositories are scanned every 30 s (unstretched), a few every 90 s.
    const look = (intervalMs = 30_000) => stretch.observe(APP, { intervalMs });
    for (let i = 0; i < 9; i++) look();
    update({ saturated: true, utilisation: 1.2 });
    assert.equal(look(90_000), 2, "the first saturation stretches at once");
    // The typical interval is a running mean weighted by scans: about 36 s now.
    clock.advance(35_000);
    assert.equal(look(), 2, "the scans due were scheduled at 1x: no change before they ran");
    clock.advance(5_000);
    assert.equal(look(), 4, "one typical interval at 1x later, still saturated: stretched");
    // The typical interval is about 35 s now, and the next stretch waits for it at 2x.
    clock.advance(60_000);
    assert.equal(look(), 4, "the next waits about twice as long (the 2x interval)");
    clock.advance(20_000);
    assert.equal(look(), 8);

    // A host of hour-long intervals waits at most five minutes for a stretch to show.
    const hourly = new BudgetStretch({
      factory: conditionsOf(conditions),
      now: clock.now,
      log: captured().logger,
      onChange: () => {},
    });
    assert.equal(hourly.observe(APP, { intervalMs: 3_600_000 }), 2);
    clock.advance(MAX_STRETCH_SETTLE_MS - 1);
    assert.equal(hourly.observe(APP, { intervalMs: 3_600_000 }), 2);
    clock.advance(1);
    assert.equal(hourly.observe(APP, { intervalMs: 3_600_000 }), 4);
  });

  it("applies the larger of its own factor and its peers'; publishes only its own", () => {
    const peerFactors = new Map<string, number>();
    const published: Array<[string, number]> = [];
    const shown: Array<[string, number]> = [];
    const { clock, stretch, update } = scripted(
      { utilisation: 0.2 },
      {
        onChange: (h, f) => shown.push([h, f]),
        peers: {
          publish: (h, f) => published.push([h, f]),
          factorOf: (h) => peerFactors.get(h) ?? 1,
        },
      },
    );
    const host = APP.apiHost.toLowerCase();
    assert.equal(stretch.observe(APP), 1);
    peerFactors.set(host, 4);
    assert.equal(stretch.factor(APP), 4, "a peer's stretch applies here");
    assert.equal(stretch.observe(APP), 4, "and shows in the metric at the next look");
    assert.equal(stretch.factor(OTHER), 1, "per host");
    update({ saturated: true, utilisation: 1 });
    assert.equal(stretch.observe(APP), 4, "its own 2 is under the peer's 4");
    clock.advance(STRETCH_CHANGE_GAP_MS);
    assert.equal(stretch.observe(APP), 4);
    clock.advance(STRETCH_CHANGE_GAP_MS);
    assert.equal(stretch.observe(APP), 8, "its own passes the peer's");
    peerFactors.set(host, 1e9);
    assert.equal(stretch.factor(APP), MAX_STRETCH, "a peer's factor is bounded too");
    peerFactors.delete(host);
    assert.deepEqual(published, [
      [host, 2],
      [host, 4],
      [host, 8],
    ]);
    assert.deepEqual(
      shown.map(([, f]) => f),
      [1, 4, 8],
    );
  });
});

describe("Warmer: intervals stretched by a saturated budget on the real registry", () => {
  let registry: RegistryHandle;
  let builder: ImageBuilder;

  before(async () => {
    registry = await startRegistry();
    builder = new ImageBuilder(registry);
    const image = await builder.pushImage("stretch/app", undefined, { seed: "stretch" });
    await builder.tagMany("stretch/app", {
      tags: Array.from({ length: 20 }, (_, i) => `t${i}`),
      manifest: image,
    });
  });

  after(async () => {
    await builder?.close();
    await registry?.stop();
  });

  it("a cold fill does not stretch; a saturating rescan does, logged and shown", async () => {
    // Only the warming loop stretches: a one-off scan (regscan scan) has no intervals.
    const name = parseImageName(`${registry.host}/stretch/app`);
    // Five requests a second, one at a time: twenty tags in flight wait seconds for it.
    const limiters = new RateLimiters({ budgets: { [registry.host]: { rps: 5, burst: 1 } } });
    const factory = new RemoteClientFactory({ insecureHosts: [registry.host], limiters });
    const clock = new FakeClock(Date.now());
    const metricsRegistry = new MetricsRegistry();
    const { lines, logger } = captured();
    const warmer = new Warmer({
      store: new MemoryStore(),
      factory,
      lookup: () => new Map([[name.toString(), Credentials.none()]]),
      burst: 20,
      intervalMs: 60_000,
      now: clock.now,
      logger,
      metricsRegistry,
    });
    const stretchOf = async () =>
      (
        await metricsRegistry.getSingleMetric("regscan_warmer_interval_stretch")?.get()
      )?.values.find((v) => v.labels.host === registry.host)?.value;
    const scans: RepositoryScanResult[] = [];
    warmer.onScan((r) => scans.push(r));
    const stop = new AbortController();
    const running = warmer.start(stop.signal);
    try {
      await waitFor(() => scans.length >= 1, { what: "the first scan", timeoutMs: 60_000 });
      assert.equal(scans[0]?.outcome, "scanned");
      assert.equal(scans[0]?.refreshed, 20);
      // The first fill spent the budget (20 tags at 5/s), as a cold fill does, once: it says
      // nothing about whether the budget covers the interval.
      assert.equal(warmer.repositoryStatus(name)?.intervalMs, 60_000, "not stretched by the fill");
      assert.equal(await stretchOf(), 1);

      // A refresh checks every tag with HEAD: 20 requests at 5/s again, now a rescan.
      clock.advance(STRETCH_CHANGE_GAP_MS + 1);
      warmer.prioritize(name);
      await waitFor(() => scans.length >= 2, { what: "the refresh", timeoutMs: 60_000 });
      assert.equal(scans[1]?.outcome, "scanned");
      assert.equal(warmer.repositoryStatus(name)?.intervalMs, 120_000, "stretched twice");
      assert.equal(await stretchOf(), 2);
      const line = lines.find((l) => /cannot cover the configured intervals/.test(String(l.msg)));
      assert.equal(line?.host, registry.host);
      // Relaxing waits for a minute of demand well under the budget, counted by the rate
      // limiters on the real clock: the test above drives it on a scripted signal.
    } finally {
      stop.abort();
      await running;
      await factory.close();
    }
  });
});
