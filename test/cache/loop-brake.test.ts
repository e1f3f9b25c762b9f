/**
 * The event-loop brake (src/cache/loop-brake.ts): holds while the loop's measured
 * utilization is at or over the threshold, never longer than its bound in a row, and
 * measures the real loop.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LoopBrake } from "../../src/cache/loop-brake.js";

/** A brake on a scripted clock and utilization. */
function scripted(opts: { threshold?: number; windowMs?: number; maxHoldMs?: number }) {
  const state = { now: 0, busy: 0, measured: 0 };
  const brake = new LoopBrake({
    ...opts,
    now: () => state.now,
    utilization: () => {
      state.measured++;
      return state.busy;
    },
  });
  return { state, brake };
}

describe("LoopBrake", () => {
  it("does not hold before its first window has been measured, nor below the threshold", () => {
    const { state, brake } = scripted({ threshold: 0.8, windowMs: 50, maxHoldMs: 100 });
    state.busy = 1;
    state.now = 10;
    assert.deepEqual(brake.look(), { hold: false, recheckMs: 40 });
    state.busy = 0.79;
    state.now = 60;
    assert.equal(brake.look().hold, false);
    assert.equal(brake.busy, 0.79);
    assert.deepEqual(brake.stats(), { holds: 0, expired: 0, heldMs: 0 });
  });

  it("holds while the loop is busy, rechecking at the window's end, and lets go when it is not", () => {
    const { state, brake } = scripted({ threshold: 0.8, windowMs: 50, maxHoldMs: 1000 });
    state.busy = 0.95;
    state.now = 50;
    assert.deepEqual(brake.look(), { hold: true, recheckMs: 50 });
    // Within the window: the measurement stands, no new one is taken.
    const measured = state.measured;
    state.now = 70;
    assert.deepEqual(brake.look(), { hold: true, recheckMs: 30 });
    assert.equal(state.measured, measured);
    state.busy = 0.2;
    state.now = 100;
    assert.equal(brake.look().hold, false);
    assert.deepEqual(brake.stats(), { holds: 1, expired: 0, heldMs: 50 });
  });

  it("never holds longer than maxHoldMs in a row: the look at the bound says go", () => {
    const { state, brake } = scripted({ threshold: 0.5, windowMs: 20, maxHoldMs: 100 });
    state.busy = 1;
    const holds: boolean[] = [];
    for (state.now = 20; state.now <= 130; state.now += 10) {
      const look = brake.look();
      holds.push(look.hold);
      // The recheck never goes past the bound.
      if (look.hold && state.now < 120) {
        assert.ok(state.now + look.recheckMs <= 120, `recheck at ${state.now}`);
      }
    }
    // Held from 20 to 110 (100 ms), let go at 120, held again from 130.
    assert.deepEqual(holds, [
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      false,
      true,
    ]);
    assert.deepEqual(brake.stats(), { holds: 2, expired: 1, heldMs: 100 });
  });

  it("never holds with a bound of 0", () => {
    const { state, brake } = scripted({ threshold: 0, windowMs: 1, maxHoldMs: 0 });
    state.busy = 1;
    state.now = 5;
    assert.equal(brake.look().hold, false);
  });

  it("lets waiting work go at once while not busy, else when the hold ends, or when raised", async () => {
    let busy = 0;
    const brake = new LoopBrake({
      threshold: 0.5,
      windowMs: 5,
      maxHoldMs: 300,
      utilization: () => busy,
    });
    await sleep(10);
    assert.equal(brake.pass(), undefined);
    busy = 1;
    await sleep(10);
    const started = performance.now();
    const held = brake.pass();
    assert.ok(held !== undefined);
    // A scan raised to priority stops waiting when its signal aborts.
    const raise = new AbortController();
    const raised = brake.pass({ bypass: raise.signal });
    assert.ok(raised !== undefined);
    let raisedAt = 0;
    void raised.then(() => {
      raisedAt = performance.now() - started;
    });
    await sleep(20);
    raise.abort();
    await raised;
    assert.ok(raisedAt < 250, `raised after ${raisedAt} ms`);
    // An aborted bypass never waits.
    assert.equal(brake.pass({ bypass: raise.signal }), undefined);
    await held;
    const waited = performance.now() - started;
    assert.ok(waited >= 280 && waited < 2_000, `held ${waited} ms`);
  });

  it("lets all its waiters go once the loop is measured idle", async () => {
    let busy = 1;
    const brake = new LoopBrake({
      threshold: 0.5,
      windowMs: 20,
      maxHoldMs: 60_000,
      utilization: () => busy,
    });
    await sleep(25);
    const started = performance.now();
    const waiting = [brake.pass(), brake.pass(), brake.pass()];
    assert.ok(waiting.every((w) => w !== undefined));
    await sleep(50);
    busy = 0;
    await Promise.all(waiting);
    const waited = performance.now() - started;
    assert.ok(waited >= 50 && waited < 2_000, `held ${waited} ms`);
    assert.equal(brake.pass(), undefined);
  });

  it("measures the real event loop: busy while a callback runs, idle while it waits", async () => {
    const brake = new LoopBrake({ threshold: 0.8, windowMs: 30, maxHoldMs: 1000 });
    // Keeps the loop running JavaScript for the whole window.
    const until = performance.now() + 60;
    while (performance.now() < until) {
      // spin
    }
    const busy = brake.look();
    assert.ok(brake.busy >= 0.8, `utilization ${brake.busy}`);
    assert.equal(busy.hold, true);
    // Waiting on a timer leaves the loop idle. A shared CI machine can stall one window (a
    // collection, a descheduled thread), so the brake gets a few windows to measure it; one
    // that always reports busy still fails.
    const seen: number[] = [];
    let idle = brake.look();
    for (let attempt = 0; attempt < 8; attempt++) {
      await sleep(150);
      idle = brake.look();
      seen.push(brake.busy);
      if (brake.busy < 0.8) break;
    }
    assert.ok(brake.busy < 0.8, `utilization of each window: ${seen.join(", ")}`);
    assert.equal(idle.hold, false);
  });
});
