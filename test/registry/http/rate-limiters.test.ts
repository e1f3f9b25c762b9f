/**
 * `RateLimiters` on a fake clock: token buckets per host, halving on 429, recovery after
 * the cool-down, `Retry-After` pauses and Docker Hub's remaining quota.
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, it } from "node:test";
import {
  BUDGET_MARGIN,
  InvalidRateLimitOptionError,
  parseDockerHubQuota,
  RateLimiters,
} from "../../../src/registry/http/rate-limiters.js";
import { FakeClock, settle } from "./fake-clock.js";

const HOST = "registry.example.com";
const MINUTE = 60_000;

/** Starts `n` waits and records when each one resolves (fake time). */
function startWaits(limiters: RateLimiters, clock: FakeClock, n: number, host = HOST): number[] {
  const done: number[] = [];
  for (let i = 0; i < n; i++) {
    void limiters.wait(host).then(() => done.push(clock.now()));
  }
  return done;
}

describe("RateLimiters", () => {
  it("lets a burst through at once, then one request per 1/rps", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const limiters = new RateLimiters({ rps: 10, burst: 3, clock });
    const done = startWaits(limiters, clock, 6);
    await settle();
    assert.equal(done.length, 3);
    await clock.advance(1000);
    assert.deepEqual(
      done.map((t) => t - t0),
      [0, 0, 0, 100, 200, 300],
    );
  });

  it("lets priority requests go ahead of those already waiting, each lane in order", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const limiters = new RateLimiters({ rps: 10, burst: 1, clock });
    const order: string[] = [];
    const at = new Map<string, number>();
    const start = (name: string, priority: boolean) =>
      void limiters.wait(HOST, { priority }).then(() => {
        order.push(name);
        at.set(name, clock.now() - t0);
      });
    for (const name of ["r1", "r2", "r3", "r4"]) start(name, false);
    await settle();
    assert.deepEqual(order, ["r1"], "the burst");
    start("p1", true);
    start("p2", true);
    await settle();
    // The regular requests queued earlier wait: the two priority ones take the next two turns.
    assert.equal(limiters.saturation(HOST).queueDelayMs, 500, "five queued at 10/s");
    await clock.advance(1000);
    assert.deepEqual(order, ["r1", "p1", "p2", "r2", "r3", "r4"]);
    assert.deepEqual(
      ["p1", "p2", "r2", "r3", "r4"].map((n) => at.get(n)),
      [100, 200, 300, 400, 500],
      "one request per 1/rps all the same: priority spends no extra budget",
    );
  });

  it("a request raised to priority while it waits goes ahead of the regular ones, behind earlier priority ones", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const limiters = new RateLimiters({ rps: 10, burst: 1, clock });
    const order: string[] = [];
    const at = new Map<string, number>();
    const raise = new AbortController();
    const start = (name: string, priority: boolean | AbortSignal) =>
      void limiters.wait(HOST, { priority }).then(() => {
        order.push(name);
        at.set(name, clock.now() - t0);
      });
    for (const name of ["r1", "r2", "r3", "r4"]) start(name, false);
    start("scan", raise.signal);
    start("r5", false);
    start("p1", true);
    await settle();
    assert.deepEqual(order, ["r1"], "the burst");
    await clock.advance(150);
    assert.deepEqual(order, ["r1", "p1"], "the priority request first; the scan's still regular");
    raise.abort();
    await settle();
    await clock.advance(1000);
    assert.deepEqual(order, ["r1", "p1", "scan", "r2", "r3", "r4", "r5"]);
    assert.deepEqual(
      ["p1", "scan", "r2"].map((n) => at.get(n)),
      [100, 200, 300],
      "raised, it takes the next turn; the budget's pace is unchanged",
    );
    assert.equal(getEventListeners(raise.signal, "abort").length, 0, "no listener left on it");
  });

  it("a waiter's naps leave no listeners of their own on its signal", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 10, burst: 1, clock });
    const ac = new AbortController();
    const done: number[] = [];
    // Five requests on one long-lived signal (a scan's): each naps until its turn.
    for (let i = 0; i < 5; i++) {
      void limiters.wait(HOST, { signal: ac.signal }).then(() => done.push(i));
    }
    await settle();
    // A share change wakes every waiter early: each naps again.
    limiters.setShare(0.5);
    await clock.advance(2000);
    assert.equal(done.length, 5);
    // The one listener that every wait on the signal shares (abort.ts, followAbort).
    assert.equal(getEventListeners(ac.signal, "abort").length, 1);
    for (let i = 0; i < 5; i++) void limiters.wait(HOST, { signal: ac.signal });
    await clock.advance(2000);
    assert.equal(getEventListeners(ac.signal, "abort").length, 1, "still one after more waits");
  });

  it("hundreds of waiters on one host raise no listener-leak warning", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 100, burst: 1, clock });
    const warnings: string[] = [];
    const onWarning = (w: Error) => {
      if (w.name === "MaxListenersExceededWarning") warnings.push(w.message);
    };
    process.on("warning", onWarning);
    try {
      // Each waiter naps on the host's wake signal and its own (one per request).
      const done: number[] = [];
      for (let i = 0; i < 300; i++) {
        const own = new AbortController();
        void limiters.wait(HOST, { signal: own.signal }).then(() => done.push(i));
      }
      await settle();
      limiters.setShare(0.5); // wakes them all: each naps on the new wake signal
      await settle();
      await clock.advance(10_000);
      assert.equal(done.length, 300);
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("warning", onWarning);
    }
    assert.deepEqual(warnings, []);
  });

  it("a waiter that gives up brings those behind it a turn nearer", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const limiters = new RateLimiters({ rps: 10, burst: 1, clock });
    await limiters.wait(HOST);
    const ac = new AbortController();
    const first = limiters.wait(HOST, { signal: ac.signal });
    let secondAt: number | undefined;
    void limiters.wait(HOST).then(() => {
      secondAt = clock.now() - t0;
    });
    await settle();
    ac.abort(new Error("gone"));
    await assert.rejects(first, /gone/);
    await clock.advance(300);
    assert.equal(secondAt, 100, "the next token, not the one after");
  });

  it("keeps a bucket per host", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 1, burst: 1, clock });
    const a = startWaits(limiters, clock, 2, "a.example");
    const b = startWaits(limiters, clock, 1, "B.example");
    await settle();
    assert.equal(a.length, 1);
    assert.equal(b.length, 1);
  });

  it("halves the rate on each back-off, never under 0.1/s", () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 10, burst: 1, clock });
    limiters.backOff(HOST);
    assert.equal(limiters.rate(HOST), 5);
    limiters.backOff(HOST);
    assert.equal(limiters.rate(HOST), 2.5);
    for (let i = 0; i < 20; i++) limiters.backOff(HOST);
    assert.equal(limiters.rate(HOST), 0.1);
  });

  it("a backed-off host is really slower", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const limiters = new RateLimiters({ rps: 10, burst: 1, clock });
    limiters.backOff(HOST); // 5/s: 200 ms apart
    const done = startWaits(limiters, clock, 3);
    await clock.advance(1000);
    assert.deepEqual(
      done.map((t) => t - t0),
      [0, 200, 400],
    );
  });

  it("recovers by 1.5x towards rps, but not within 20 minutes of the last back-off", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 10, burst: 1, clock });
    limiters.recover(HOST); // nothing to recover from
    assert.equal(limiters.rate(HOST), 10);
    limiters.backOff(HOST);
    limiters.backOff(HOST);
    assert.equal(limiters.rate(HOST), 2.5);
    await clock.advance(19 * MINUTE);
    limiters.recover(HOST);
    assert.equal(limiters.rate(HOST), 2.5, "no recovery inside the cool-down");
    await clock.advance(MINUTE);
    limiters.recover(HOST);
    assert.equal(limiters.rate(HOST), 3.75);
    limiters.recover(HOST);
    assert.equal(limiters.rate(HOST), 5.625);
    // A new back-off restarts the cool-down.
    limiters.backOff(HOST);
    assert.equal(limiters.rate(HOST), 2.8125);
    await clock.advance(MINUTE);
    limiters.recover(HOST);
    assert.equal(limiters.rate(HOST), 2.8125);
    await clock.advance(20 * MINUTE);
    for (let i = 0; i < 10; i++) limiters.recover(HOST);
    assert.equal(limiters.rate(HOST), 10, "never above rps");
  });

  it("pauseUntil holds every request until then, even with tokens in the bucket", async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const limiters = new RateLimiters({ rps: 100, burst: 10, clock });
    limiters.pauseUntil(HOST, t0 + 1000);
    const done = startWaits(limiters, clock, 2);
    await clock.advance(999);
    assert.equal(done.length, 0);
    await clock.advance(1);
    assert.deepEqual(
      done.map((t) => t - t0),
      [1000, 1000],
    );
    // A pause set while a request waits extends its wait.
    limiters.pauseUntil(HOST, clock.now() + 200);
    const later = startWaits(limiters, clock, 1);
    await clock.advance(100);
    limiters.pauseUntil(HOST, new Date(clock.now() + 400));
    await clock.advance(399);
    assert.equal(later.length, 0);
    await clock.advance(1);
    assert.equal(later.length, 1);
    // An earlier time never shortens a pause.
    limiters.pauseUntil(HOST, clock.now() + 300);
    limiters.pauseUntil(HOST, clock.now() + 100);
    assert.equal(limiters.state(HOST).pausedUntil, clock.now() + 300);
  });

  it("wait is abortable: rejects with the signal's reason and gives its token back", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 1, burst: 1, clock });
    const already = AbortSignal.abort(new Error("gone"));
    await assert.rejects(limiters.wait(HOST, { signal: already }), /gone/);
    await limiters.wait(HOST); // takes the only token
    const ac = new AbortController();
    const waiting = limiters.wait(HOST, { signal: ac.signal });
    await settle();
    assert.equal(clock.pending, 1);
    ac.abort(new Error("cancelled"));
    await assert.rejects(waiting, /cancelled/);
    assert.equal(clock.pending, 0);
    // The token came back: the next wait is due after one interval, not two.
    const t = clock.now();
    const done = startWaits(limiters, clock, 1);
    await clock.advance(1000);
    assert.deepEqual(done, [t + 1000]);
  });

  it("Docker Hub's quota paces pulls only, never below a fifth of the limit; HEADs and lists are not slowed", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 10, burst: 100, clock });
    const t0 = clock.now();
    const quota = (remaining: number) =>
      new Headers({ "ratelimit-limit": "100;w=600", "ratelimit-remaining": `${remaining};w=600` });
    // Before any report there is no pull budget: a pull goes and its answer tells the quota.
    const counted = await limiters.waitPull(HOST);
    assert.equal(counted, false, "no quota known: not counted");
    assert.equal(limiters.saturation(HOST).pullQuota, false);
    limiters.pullDone(HOST, counted);
    limiters.observeQuota(HOST, quota(45));
    assert.equal(limiters.saturation(HOST).pullQuota, true, "the quota is known");
    assert.deepEqual(limiters.state(HOST).pulls, {
      limit: 100,
      windowSeconds: 600,
      remaining: 45,
      floor: 20,
      inFlight: 0,
    });
    // 45 left, floor 20: 25 pulls may go; the last 20 above the floor (40 -> 20) are paced.
    const started: number[] = [];
    const pulls = Array.from({ length: 25 }, async () => {
      await limiters.waitPull(HOST);
      started.push(clock.now() - t0);
      limiters.pullDone(HOST);
    });
    await clock.advance(60_000);
    await Promise.all(pulls);
    assert.equal(started.length, 25);
    assert.equal(started.filter((t) => t === 0).length >= 5, true, `${started}`);
    const gaps = started.slice(1).map((t, i) => t - (started[i] as number));
    assert.ok((gaps.at(-1) as number) > (gaps[6] as number), `slower near the floor: ${gaps}`);
    assert.equal(limiters.state(HOST).pulls?.remaining, 20);
    // At the floor the next pull would wait for the window: refused with the wait, unsent.
    await assert.rejects(
      limiters.waitPull(HOST),
      (err: Error & { code?: string; retryAfterMs?: number }) => {
        assert.equal(err.code, "TOO_MANY_REQUESTS");
        assert.ok((err.retryAfterMs ?? 0) > 60_000);
        assert.match(err.message, /pull budget spent: 20 of 100 pulls left/);
        return true;
      },
    );
    // Requests that are not pulls are not slowed at all.
    const before = clock.now();
    for (let i = 0; i < 10; i++) await limiters.wait(HOST);
    assert.equal(clock.now(), before);
    // A HEAD's headers (another client's pulls aged out) lift the reckoning again.
    limiters.observeQuota(HOST, quota(90));
    await limiters.waitPull(HOST);
    limiters.pullDone(HOST);
    assert.equal(limiters.state(HOST).pulls?.remaining, 89);
  });

  it("before the quota is known one pull goes; the others wait for its answer, then count", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 100, burst: 100, clock });
    const results: boolean[] = [];
    const first = await limiters.waitPull(HOST);
    assert.equal(first, false);
    const others = Array.from({ length: 4 }, () =>
      limiters.waitPull(HOST).then((counted) => results.push(counted)),
    );
    await settle();
    assert.deepEqual(results, [], "held until the first answer");
    limiters.pullDone(HOST, first);
    limiters.observeQuota(HOST, 50, 100, 21600);
    await clock.advance(10_000);
    await Promise.all(others);
    assert.deepEqual(results, [true, true, true, true]);
    assert.equal(limiters.state(HOST).pulls?.inFlight, 4);
    // A host without a quota: after the first answer, pulls go uncounted and unheld.
    const other = "plain.example";
    limiters.pullDone(other, await limiters.waitPull(other));
    assert.deepEqual(await Promise.all([limiters.waitPull(other), limiters.waitPull(other)]), [
      false,
      false,
    ]);
  });

  it("our own pulls leaving the window refill the pull budget (a rolling window)", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 100, burst: 100, clock });
    limiters.observeQuota(HOST, 10, 10, 10); // 10 pulls per 10 s, floor 2
    const t0 = clock.now();
    const started: number[] = [];
    const pulls = Array.from({ length: 12 }, async () => {
      await limiters.waitPull(HOST);
      started.push(clock.now() - t0);
      limiters.pullDone(HOST);
    });
    await clock.advance(30_000);
    await Promise.all(pulls);
    // 8 within the first window, then one as each of the first ones leaves it.
    assert.equal(started.filter((t) => t < 10_000).length, 8, `${started}`);
    for (const [i, t] of started.slice(8).entries()) {
      assert.ok(t > (started[i] as number) + 10_000, `pull ${i + 8} at ${t} after ${started[i]}`);
    }
    // The reckoning never went under the floor.
    assert.ok((limiters.state(HOST).pulls?.remaining ?? 0) >= 2);
  });

  it("without a limit, or with nonsense, no pull budget is made", () => {
    const limiters = new RateLimiters({ clock: new FakeClock() });
    limiters.observeQuota(HOST, { "ratelimit-remaining": "3" });
    limiters.observeQuota(HOST, new Headers());
    limiters.observeQuota(HOST, { "ratelimit-remaining": "500;w=1", "ratelimit-limit": "100;w=1" });
    assert.equal(limiters.state(HOST).pulls, undefined);
    assert.equal(limiters.saturation(HOST).pullQuota, false);
  });

  it("budgets per host: configured, then the public registries' defaults (never above the global), then the global", () => {
    const limiters = new RateLimiters({
      rps: 30,
      burst: 40,
      budgets: { "docker.io": { rps: 5, burst: 7 }, "*.corp.example": { rps: 2, burst: 3 } },
      clock: new FakeClock(),
    });
    assert.deepEqual(limiters.budget("registry-1.docker.io"), {
      rps: 5,
      burst: 7,
      source: "configured",
      key: "registry-1.docker.io",
    });
    assert.equal(limiters.budget("a.corp.example").rps, 2);
    assert.equal(limiters.budget("a.b.corp.example").source, "global", "* is one label");
    assert.deepEqual(limiters.budget("quay.io"), {
      rps: 3,
      burst: 10,
      source: "default",
      key: "quay.io",
    });
    assert.deepEqual(limiters.budget("europe-west1-docker.pkg.dev"), {
      rps: 30,
      burst: 40,
      source: "default",
      key: "*-docker.pkg.dev",
    });
    assert.equal(
      limiters.budget("123456789012.dkr.ecr.eu-west-1.amazonaws.com").key,
      "*.dkr.ecr.*.amazonaws.com",
    );
    assert.deepEqual(limiters.budget("localhost:5000"), {
      rps: 30,
      burst: 40,
      source: "global",
      key: undefined,
    });
    assert.throws(
      () => new RateLimiters({ budgets: { "quay.io": { rps: 0, burst: 1 } } }),
      /registry budget "quay.io": rps must be a positive number/,
    );
    assert.throws(() => new RateLimiters({ budgets: { "a b": { rps: 1, burst: 1 } } }), {
      code: "INVALID_OPTION",
    });
  });

  it("a host's bucket is its budget (1% kept spare): burst at once, then its rps; saturation reports the queue", async () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ budgets: { [HOST]: { rps: 4, burst: 2 } }, clock });
    const t0 = clock.now();
    const done = startWaits(limiters, clock, 10);
    await settle();
    assert.equal(done.length, 2);
    const rate = 4 * (1 - BUDGET_MARGIN);
    const s = limiters.saturation(HOST);
    assert.equal(s.rate, rate);
    assert.equal(Math.round(s.queueDelayMs), Math.round((8 / rate) * 1000), "8 queued");
    assert.equal(s.saturated, true);
    // Demand over the host's life until the minute is full, at least 5 s.
    assert.equal(s.demandRps, 10 / 5);
    await clock.advance(3000);
    assert.deepEqual(
      done.map((t) => t - t0),
      [0, 0, ...Array.from({ length: 8 }, (_, i) => Math.ceil(((i + 1) / rate) * 1000))],
    );
    const after = limiters.saturation(HOST);
    assert.equal(after.saturated, false);
    assert.equal(after.requests, 10);
    assert.ok(after.waitedMs >= 8 * 1000 && after.waitedMs < 12_000, `${after.waitedMs}`);
    assert.equal(after.demandRps, 10 / 5);
    await clock.advance(27_000);
    assert.equal(limiters.saturation(HOST).demandRps, 10 / 30);
    await clock.advance(60_000);
    assert.equal(limiters.saturation(HOST).demandRps, 0, "a minute on, none asked since");
    assert.equal(limiters.saturation("other.example").saturated, false);
    assert.deepEqual(limiters.hosts(), [HOST]);
    // The global rate is not shaved.
    assert.equal(limiters.state("other.example").rate, 200);
  });

  it("parses Docker Hub's quota headers", () => {
    assert.deepEqual(
      parseDockerHubQuota(
        new Headers({ "ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600" }),
      ),
      { remaining: 76, limit: 100, windowSeconds: 21600 },
    );
    assert.deepEqual(parseDockerHubQuota({ "ratelimit-remaining": "3" }), {
      remaining: 3,
      limit: undefined,
      windowSeconds: undefined,
    });
    assert.equal(parseDockerHubQuota({ "ratelimit-remaining": "lots" }), undefined);
    assert.equal(parseDockerHubQuota(undefined), undefined);
  });

  it("refuses nonsense options", () => {
    assert.throws(() => new RateLimiters({ rps: 0 }), InvalidRateLimitOptionError);
    assert.throws(() => new RateLimiters({ burst: Number.NaN }), InvalidRateLimitOptionError);
    assert.throws(() => new RateLimiters({ maxInFlight: -1 }), InvalidRateLimitOptionError);
  });

  it("works with the real clock", async () => {
    const limiters = new RateLimiters({ rps: 50, burst: 1 });
    const start = Date.now();
    await limiters.wait(HOST);
    await limiters.wait(HOST);
    await limiters.wait(HOST);
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 35 && elapsed < 2000, `took ${elapsed} ms`);
  });

  describe("waitToSend: a turn only with a free connection", () => {
    it("grants requests beyond maxInFlight their turns only as connections are released", async () => {
      const clock = new FakeClock();
      const t0 = clock.now();
      const limiters = new RateLimiters({ rps: 10, burst: 5, clock, maxInFlight: 2 });
      const releases: Array<() => void> = [];
      const at: number[] = [];
      for (let i = 0; i < 4; i++) {
        void limiters.waitToSend(HOST).then((release) => {
          releases.push(release);
          at.push(clock.now() - t0);
        });
      }
      await settle();
      assert.equal(releases.length, 2, "two connections");
      assert.equal(limiters.state(HOST).inFlight, 2);
      // Time passes with both connections busy: the waiters take no tokens meanwhile.
      await clock.advance(5_000);
      assert.equal(releases.length, 2);
      // A release lets exactly one more go, at once (the bucket refilled meanwhile).
      releases[0]?.();
      releases[0]?.();
      await settle();
      assert.equal(
        releases.length,
        3,
        "one freed connection, one request (a second release does nothing)",
      );
      assert.equal(limiters.state(HOST).inFlight, 2);
      releases[1]?.();
      await settle();
      assert.deepEqual(at, [0, 0, 5_000, 5_000]);
      for (const release of releases.slice(2)) release();
      assert.equal(limiters.state(HOST).inFlight, 0);
      // The burst was there for them: the next two go at once too.
      const more = startWaits(limiters, clock, 2);
      await settle();
      assert.equal(more.length, 2);
    });

    it("gives a freed connection to a priority request first", async () => {
      const clock = new FakeClock();
      const limiters = new RateLimiters({ rps: 100, burst: 10, clock, maxInFlight: 1 });
      const order: string[] = [];
      const releases = new Map<string, () => void>();
      const start = (name: string, priority: boolean) =>
        void limiters.waitToSend(HOST, { priority }).then((release) => {
          order.push(name);
          releases.set(name, release);
        });
      for (const name of ["r1", "r2", "r3"]) start(name, false);
      await settle();
      start("p1", true);
      await settle();
      assert.deepEqual(order, ["r1"]);
      releases.get("r1")?.();
      await settle();
      assert.deepEqual(order, ["r1", "p1"]);
      releases.get("p1")?.();
      await settle();
      releases.get("r2")?.();
      await settle();
      assert.deepEqual(order, ["r1", "p1", "r2", "r3"]);
    });

    it("lets a waiter that gives up go, and its place to the next", async () => {
      const clock = new FakeClock();
      const limiters = new RateLimiters({ rps: 100, burst: 10, clock, maxInFlight: 1 });
      const first = await limiters.waitToSend(HOST);
      const quit = new AbortController();
      const gaveUp = limiters.waitToSend(HOST, { signal: quit.signal }).then(
        () => "sent",
        () => "gave up",
      );
      let third: (() => void) | undefined;
      void limiters.waitToSend(HOST).then((release) => {
        third = release;
      });
      await settle();
      quit.abort(new Error("caller gone"));
      assert.equal(await gaveUp, "gave up");
      first();
      await settle();
      assert.ok(third, "the request behind the one that gave up has the connection");
      assert.equal(limiters.state(HOST).inFlight, 1);
    });

    it("does not count requests queued only for a connection as limited by the budget", async () => {
      const clock = new FakeClock();
      const limiters = new RateLimiters({ rps: 100, burst: 10, clock, maxInFlight: 1 });
      const held = await limiters.waitToSend(HOST);
      void limiters.waitToSend(HOST).then((release) => release());
      await settle();
      assert.equal(limiters.wants().get(HOST)?.limited, false);
      held();
      await settle();
      assert.equal(limiters.state(HOST).inFlight, 0);
    });
  });
});
