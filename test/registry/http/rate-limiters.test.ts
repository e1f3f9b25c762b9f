/**
 * `RateLimiters` on a fake clock: token buckets per host, halving on 429, recovery after
 * the cool-down, `Retry-After` pauses and Docker Hub's remaining quota.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
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
    await assert.rejects(limiters.wait(HOST, already), /gone/);
    await limiters.wait(HOST); // takes the only token
    const ac = new AbortController();
    const waiting = limiters.wait(HOST, ac.signal);
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

  it("slows down as Docker Hub's remaining quota nears zero, and lifts the cap when it grows", () => {
    const clock = new FakeClock();
    const limiters = new RateLimiters({ rps: 10, burst: 1, clock });
    const headers = (remaining: number) =>
      new Headers({
        "ratelimit-limit": "100;w=21600",
        "ratelimit-remaining": `${remaining};w=21600`,
      });
    limiters.observeQuota(HOST, headers(80));
    assert.equal(limiters.state(HOST).effectiveRate, 10);
    limiters.observeQuota(HOST, headers(10));
    assert.equal(limiters.state(HOST).effectiveRate, 2.5);
    limiters.observeQuota(HOST, headers(2));
    assert.ok(limiters.state(HOST).effectiveRate <= 0.1 + 1e-9);
    limiters.observeQuota(HOST, 0, 100, 21600);
    assert.equal(limiters.state(HOST).effectiveRate, 0.1);
    assert.equal(limiters.rate(HOST), 10, "the adaptive rate is untouched");
    limiters.observeQuota(HOST, {
      "RateLimit-Remaining": "60;w=21600",
      "RateLimit-Limit": "100;w=21600",
    });
    assert.equal(limiters.state(HOST).effectiveRate, 10);
    limiters.observeQuota(HOST, new Headers());
    assert.equal(limiters.state(HOST).effectiveRate, 10);
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
});
