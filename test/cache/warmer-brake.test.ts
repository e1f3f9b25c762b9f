/**
 * The warming loop with an event-loop brake (src/cache/loop-brake.ts, issue 13 acceptance
 * 6): while the loop is busy, regular scans wait, each at most the brake's bound; priority
 * requests start at once whatever the brake says.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Registry as MetricsRegistry } from "prom-client";
import { LoopBrake } from "../../src/cache/loop-brake.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer } from "../../src/cache/warmer.js";
import { type ImageName, parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { waitFor } from "../support/wait-for.js";
import { FakeFactory, type FakeRepository, fakeRepository } from "./support/fake-registry.js";

const [regular, urgent] = ["registry.test/team/regular", "registry.test/team/urgent"].map((n) =>
  parseImageName(n),
) as [ImageName, ImageName];

/** A warmer of `regular` and `urgent` (3 tags each) whose brake always sees a busy loop. */
function busyWarmer(maxHoldMs: number) {
  const repos = new Map<string, FakeRepository>([
    [regular.toString(), fakeRepository(regular, 3, 1)],
    [urgent.toString(), fakeRepository(urgent, 3, 1)],
  ]);
  const factory = new FakeFactory(repos);
  const brake = new LoopBrake({ threshold: 0.5, windowMs: 5, maxHoldMs, utilization: () => 1 });
  const warmer = new Warmer({
    store: new MemoryStore(),
    factory,
    // Both watched: while the brake holds, `urgent` starts only by a priority request.
    lookup: () =>
      new Map([
        [regular.toString(), Credentials.none()],
        [urgent.toString(), Credentials.none()],
      ]),
    intervalMs: 60_000,
    loopBrake: brake,
    metricsRegistry: new MetricsRegistry(),
  });
  return { factory, brake, warmer };
}

describe("Warmer loop brake", () => {
  it("holds regular scans while the loop is busy and lets them go within its bound", async () => {
    const maxHoldMs = 400;
    const { factory, brake, warmer } = busyWarmer(maxHoldMs);
    // The brake's first window must end before it knows the loop is busy.
    await sleep(10);
    const stop = new AbortController();
    const started = performance.now();
    const running = warmer.start(stop.signal);
    try {
      await waitFor(() => factory.counts(regular.toString()).tags > 0, {
        what: "the regular repository listed",
        timeoutMs: 10_000,
        intervalMs: 5,
      });
      const waited = performance.now() - started;
      // Held for the bound (less a timer's slack), then started however busy the loop.
      assert.ok(waited >= maxHoldMs - 20, `started after ${waited} ms`);
      assert.ok(waited < maxHoldMs + 2_000, `started after ${waited} ms`);
      const stats = brake.stats();
      assert.ok(stats.holds >= 1 && stats.expired >= 1, JSON.stringify(stats));
    } finally {
      stop.abort();
      await running;
    }
  });

  it("starts a priority request at once while regular scans are held", async () => {
    // A hold far longer than the test: only a request that bypasses the brake starts.
    const { factory, warmer } = busyWarmer(60_000);
    await sleep(10);
    const stop = new AbortController();
    const running = warmer.start(stop.signal);
    try {
      // The loop's first turn met the busy brake: nothing regular started.
      await sleep(100);
      assert.equal(factory.counts(urgent.toString()).tags, 0);
      assert.equal(factory.counts(regular.toString()).tags, 0);
      const asked = performance.now();
      warmer.prioritize(urgent);
      await waitFor(() => factory.counts(urgent.toString()).succeeded > 0, {
        what: "the priority scan done",
        timeoutMs: 5_000,
        intervalMs: 5,
      });
      assert.ok(performance.now() - asked < 2_000);
      // The regular one is still held.
      assert.equal(factory.counts(regular.toString()).tags, 0);
    } finally {
      stop.abort();
      await running;
    }
  });
});
