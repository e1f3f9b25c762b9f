/**
 * `RateLimiters.setShare` on a fake clock: replicas that share the request budgets each
 * spend their share of every host's rate, burst and pull headroom, requests already
 * waiting included, and together stay under the whole budget in every 10 s window.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TooManyRequestsError } from "../../../src/registry/errors.js";
import {
  BUDGET_MARGIN,
  InvalidRateLimitOptionError,
  RateLimiters,
} from "../../../src/registry/http/rate-limiters.js";
import { FakeClock, settle } from "./fake-clock.js";

const HOST = "registry.example.com";

/**
 * `workers` loops each waiting for the budget and recording when they got through, until
 * `stop()`; the loops are bounded by `max` requests each so a broken limiter cannot spin.
 */
function saturate(
  limiters: RateLimiters,
  clock: FakeClock,
  workers: number,
  max = 10_000,
): { times: number[]; stop: () => void } {
  const times: number[] = [];
  let stopped = false;
  for (let w = 0; w < workers; w++) {
    void (async () => {
      for (let i = 0; i < max && !stopped; i++) {
        await limiters.wait(HOST);
        if (!stopped) times.push(clock.now());
      }
    })();
  }
  return {
    times,
    stop: () => {
      stopped = true;
    },
  };
}

/** The most requests in any window of `windowMs` starting at a request. */
function maxInWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    while ((sorted[i] as number) - (sorted[j] as number) >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe("RateLimiters share", () => {
  it("a share of a third spends a third of the rate and of the burst", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const budgets = { [HOST]: { rps: 30, burst: 30 } };
    const limiters = new RateLimiters({ budgets, share: 1 / 3, clock });
    const state = limiters.state(HOST);
    assert.equal(state.share, 1 / 3);
    assert.equal(state.effectiveBudget.burst, 10);
    assert.ok(Math.abs(state.effectiveRate - 30 * (1 - BUDGET_MARGIN) * (1 / 3)) < 1e-9);
    const load = saturate(limiters, clock, 20);
    await settle();
    assert.equal(load.times.length, 10, "a third of the burst at once");
    await clock.advance(30_000);
    load.stop();
    // 10 at once, then 9.9 per second for 30 s.
    const expected = 10 + Math.floor(30 * 30 * (1 - BUDGET_MARGIN) * (1 / 3));
    const inTime = load.times.filter((t) => t - t0 <= 30_000).length;
    assert.ok(Math.abs(inTime - expected) <= 1, `${inTime} requests, expected ${expected}`);
    // The whole budget would have let through three times as many.
    const whole = new RateLimiters({ budgets, clock });
    assert.equal(whole.state(HOST).effectiveBudget.burst, 30);
  });

  it("three replicas at a third each stay under the budget in every 10 s window", async () => {
    const clock = new FakeClock();
    const budgets = { [HOST]: { rps: 50, burst: 50 } };
    const replicas = [0, 1, 2].map(() => new RateLimiters({ budgets, share: 1 / 3, clock }));
    const loads = replicas.map((l) => saturate(l, clock, 8));
    await clock.advance(60_000);
    for (const load of loads) load.stop();
    const all = loads.flatMap((l) => l.times);
    const worst = maxInWindow(all, 10_000);
    assert.ok(worst <= 50 * 10 + 50, `${worst} requests in a 10 s window, budget 550`);
    // And the budget is used: at least the rate for 60 s, less the margin.
    assert.ok(all.length >= 50 * 60 * (1 - BUDGET_MARGIN) - 1, `${all.length} requests in 60 s`);
    // One replica at the whole budget, for comparison, spends what the three do together.
    const alone = new RateLimiters({ budgets, clock });
    const one = saturate(alone, clock, 8);
    const start = clock.now();
    await clock.advance(60_000);
    one.stop();
    const oneCount = one.times.filter((t) => t - start <= 60_000).length;
    assert.ok(Math.abs(oneCount - all.length) <= 3, `${oneCount} alone, ${all.length} by three`);
  });

  it("a smaller share slows requests already waiting; a larger one speeds them up", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const limiters = new RateLimiters({ rps: 10, burst: 1, clock });
    const done: number[] = [];
    for (let i = 0; i < 5; i++) void limiters.wait(HOST).then(() => done.push(clock.now() - t0));
    await settle();
    assert.deepEqual(done, [0], "the burst");
    await clock.advance(100);
    assert.deepEqual(done, [0, 100]);
    limiters.setShare(0.5); // 5/s: the next ones 200 ms apart, not 100
    await clock.advance(400);
    assert.deepEqual(done, [0, 100, 300, 500]);
    limiters.setShare(1);
    await clock.advance(100);
    assert.deepEqual(done, [0, 100, 300, 500, 600]);
  });

  it("at share 0 requests wait until a share is given, and keep their order", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 10, burst: 2, share: 0, clock });
    const order: number[] = [];
    for (let i = 0; i < 3; i++) void limiters.wait(HOST).then(() => order.push(i));
    await clock.advance(60_000);
    assert.deepEqual(order, [], "nothing goes at share 0");
    assert.equal(limiters.saturation(HOST).saturated, true);
    limiters.setShare(1);
    await clock.advance(100);
    assert.deepEqual(order, [0]);
    await clock.advance(200);
    assert.deepEqual(order, [0, 1, 2]);
  });

  it("an aborted waiter at share 0 rejects with its reason", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 10, burst: 1, share: 0, clock });
    const ac = new AbortController();
    const waiting = limiters.wait(HOST, { signal: ac.signal });
    await settle();
    ac.abort(new Error("stopped"));
    await assert.rejects(waiting, /stopped/);
    // Its token came back: the next request waits for one token (100 ms at 10/s), not two.
    const t0 = clock.now();
    limiters.setShare(1);
    let at: number | undefined;
    void limiters.wait(HOST).then(() => {
      at = clock.now() - t0;
    });
    await clock.advance(300);
    assert.equal(at, 100);
    assert.equal(limiters.saturation(HOST).requests, 1);
  });

  it("a host's own share replaces the common one for that host only", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 10, burst: 1, share: 0.5, clock });
    limiters.setHostShares(new Map([["Busy.example", 1]]));
    assert.equal(limiters.shareOf("busy.example"), 1);
    assert.equal(limiters.shareOf(HOST), 0.5);
    const t0 = clock.now();
    const busy: number[] = [];
    const other: number[] = [];
    for (let i = 0; i < 3; i++) {
      void limiters.wait("busy.example").then(() => busy.push(clock.now() - t0));
      void limiters.wait(HOST).then(() => other.push(clock.now() - t0));
    }
    await clock.advance(1000);
    assert.deepEqual(busy, [0, 100, 200], "10/s: the whole budget");
    // 5/s, and a bucket of half a token to start with: the common share.
    assert.deepEqual(other, [100, 300, 500]);
    // What the census reads: busy asked 3 requests over 5 s of a 10/s budget (the global
    // budget keeps no margin); two of them waited for it, so it counts as limited until the
    // look after that.
    const wants = limiters.wants();
    assert.equal(wants.get("busy.example")?.limited, true);
    assert.ok(Math.abs((wants.get("busy.example")?.share ?? 0) - 3 / 5 / 10) < 1e-9);
    assert.equal(limiters.wants().get("busy.example")?.limited, false);
    // Back to the common share once the host is no longer listed.
    limiters.setHostShares(new Map());
    assert.equal(limiters.shareOf("busy.example"), 0.5);
  });

  it("wants() says a host is limited while requests queue for it", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 10, burst: 1, clock });
    for (let i = 0; i < 3; i++) void limiters.wait(HOST);
    await settle();
    assert.equal(limiters.wants().get(HOST)?.limited, true);
    await clock.advance(1000);
    assert.equal(limiters.wants().get(HOST)?.limited, false);
  });

  it("wants() says a host is limited at the first look after requests waited for its budget, not later", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 10, burst: 1, clock });
    assert.equal(limiters.wants().get(HOST), undefined);
    // Between two looks: two requests wait for the budget and are through before the next.
    const done = Promise.all([limiters.wait(HOST), limiters.wait(HOST)]);
    await clock.advance(500);
    await done;
    assert.equal(limiters.wants().get(HOST)?.limited, true, "the queue is empty, but it waited");
    assert.equal(limiters.wants().get(HOST)?.limited, false, "nothing waited since");
    // Waiting for a connection is not waiting for the budget.
    const slow = new RateLimiters({ rps: 1000, burst: 1000, clock, maxInFlight: 1 });
    const release = await slow.waitToSend(HOST);
    const second = slow.waitToSend(HOST);
    await settle();
    release();
    (await second)();
    slow.wants();
    assert.equal(slow.wants().get(HOST)?.limited, false);
  });

  it("rejects a share outside 0 to 1", () => {
    assert.throws(() => new RateLimiters({ share: 1.5 }), InvalidRateLimitOptionError);
    const limiters = new RateLimiters();
    assert.throws(() => limiters.setShare(-0.1), InvalidRateLimitOptionError);
    assert.throws(() => limiters.setShare(Number.NaN), InvalidRateLimitOptionError);
  });

  it("pulls: two replicas at half each spend the headroom above the floor, no more", async () => {
    const clock = new FakeClock();
    const replicas = [0, 1].map(
      () => new RateLimiters({ rps: 100, burst: 100, share: 0.5, clock }),
    );
    // Both saw 60 of 100 left, a floor of 20: 40 of headroom, 20 of them each replica's.
    for (const l of replicas) l.observeQuota(HOST, 60, 100, 21_600);
    const pulls = [0, 0];
    const refusals: unknown[] = [];
    const runs = replicas.map(async (limiters, r) => {
      for (let i = 0; i < 40; i++) {
        try {
          limiters.pullDone(HOST, await limiters.waitPull(HOST));
          pulls[r] = (pulls[r] ?? 0) + 1;
        } catch (err) {
          refusals.push(err);
          return;
        }
      }
    });
    await clock.advance(120_000);
    await Promise.all(runs);
    assert.deepEqual(pulls, [20, 20], "each its half of the 40 above the floor");
    assert.equal(refusals.length, 2, "then the pull budget is spent for both");
    // Alone (share 1), a replica would have spent all 40 by itself.
    const alone = new RateLimiters({ rps: 100, burst: 100, clock });
    alone.observeQuota(HOST, 60, 100, 21_600);
    let count = 0;
    for (let i = 0; i < 40; i++) {
      const counted = await Promise.race([
        alone.waitPull(HOST),
        clock.advance(120_000).then(() => undefined),
      ]);
      if (counted === undefined) break;
      alone.pullDone(HOST, counted);
      count++;
    }
    assert.equal(count, 40);
  });

  it("pulls at share 0 wait for a share (a late heartbeat), not refused as spent", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 100, burst: 100, share: 0.5, clock });
    limiters.observeQuota(HOST, 90, 100, 21_600);
    limiters.setShare(0);
    let counted: boolean | undefined;
    let refused: unknown;
    const pull = limiters.waitPull(HOST).then(
      (c) => {
        counted = c;
      },
      (err: unknown) => {
        refused = err;
      },
    );
    // Longer than a pull may wait for quota, and than one nap at share 0: still waiting.
    await clock.advance(65_000);
    assert.equal(refused, undefined, "not refused: 90 of 100 left is no spent budget");
    assert.equal(counted, undefined, "no pull at share 0");
    limiters.setShare(0.5);
    await clock.advance(0);
    await pull;
    assert.equal(counted, true, "it goes as soon as a share is back");
    limiters.pullDone(HOST);
    assert.equal(limiters.state(HOST).pulls?.remaining, 89);

    // A caller that gives up meanwhile is rejected with its own reason.
    limiters.setShare(0);
    const gaveUp = new AbortController();
    const waiting = limiters.waitPull(HOST, gaveUp.signal);
    gaveUp.abort(new Error("scan stopped"));
    await assert.rejects(waiting, /scan stopped/);
  });

  it("a pull still at share 0 after its bound of waits is refused for the share, not the quota", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 100, burst: 100, share: 0, clock });
    limiters.observeQuota(HOST, 90, 100, 21_600);
    let refused: unknown;
    const pull = limiters.waitPull(HOST).catch((err: unknown) => {
      refused = err;
    });
    // 1,000 naps of at most 10 s each.
    for (let i = 0; i < 1001 && refused === undefined; i++) await clock.advance(10_000);
    await pull;
    assert.ok(refused instanceof TooManyRequestsError, "refused after its bound");
    assert.match(
      refused.message,
      /still no share of the host.s budgets after 1000 waits \(the quota is not spent: 90 of 100 pulls left\)/,
    );
  });
});
