import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BearerToken } from "../../src/server/bearer-token.js";
import { ClientRateLimiter } from "../../src/server/client-rate-limiter.js";

describe("ClientRateLimiter", () => {
  test("a burst, then the rate, per client", () => {
    let now = 0;
    const limiter = new ClientRateLimiter({ rps: 2, burst: 3 }, () => now);
    assert.deepEqual(
      [1, 2, 3].map(() => limiter.take("a")),
      [0, 0, 0],
    );
    assert.equal(limiter.take("a"), 1, "empty: wait a second");
    assert.equal(limiter.take("b"), 0, "another client has its own bucket");
    now += 500;
    assert.equal(limiter.take("a"), 0, "one token back after half a second at 2/s");
    assert.ok(limiter.take("a") > 0);
    now += 10_000;
    assert.deepEqual(
      [1, 2, 3].map(() => limiter.take("a")),
      [0, 0, 0],
      "refills up to the burst only",
    );
    assert.ok(limiter.take("a") > 0);
  });

  test("remembers a bounded number of clients", () => {
    const limiter = new ClientRateLimiter({ rps: 0.001, burst: 1, maxClients: 2 }, () => 0);
    assert.equal(limiter.take("a"), 0);
    assert.equal(limiter.take("b"), 0);
    assert.equal(limiter.take("c"), 0, "a is forgotten to make room");
    assert.equal(limiter.take("a"), 0, "a starts again with a full bucket");
    assert.ok(limiter.take("c") > 0);
  });
});

describe("BearerToken", () => {
  test("accepts exactly the token, never shows it", () => {
    const token = new BearerToken("t0ken-abc");
    assert.equal(token.accepts("Bearer t0ken-abc"), true);
    assert.equal(token.accepts("bearer t0ken-abc"), true);
    assert.equal(token.accepts("Bearer t0ken-ab"), false);
    assert.equal(token.accepts("Bearer t0ken-abcd"), false);
    assert.equal(token.accepts("Basic t0ken-abc"), false);
    assert.equal(token.accepts(undefined), false);
    assert.equal(token.accepts("Bearer "), false);
    assert.ok(!String(token).includes("t0ken"));
    assert.ok(!JSON.stringify(token).includes("t0ken"));
  });
});
