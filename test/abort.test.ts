/**
 * Waiting that the caller can cut short: a caller who has already given up leaves a shared
 * promise running without turning its later failure into an unhandled rejection.
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { test } from "node:test";
import { abortableSleep, eitherSignal, followAbort, raceAbort, withTimeout } from "../src/abort.js";

test("raceAbort with a signal already aborted: rejects at once, the shared failure stays handled", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    const shared = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error("shared fetch failed")), 5),
    );
    await assert.rejects(raceAbort(shared, AbortSignal.abort(new Error("gave up"))), /gave up/);
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});

test("raceAbort: the value when it comes first, the signal's reason when that comes first", async () => {
  assert.equal(await raceAbort(Promise.resolve(1), new AbortController().signal), 1);
  const ac = new AbortController();
  const never = new Promise<number>(() => {});
  const raced = raceAbort(never, ac.signal);
  ac.abort(new Error("stop"));
  await assert.rejects(raced, /stop/);
});

test("abortableSleep and withTimeout end when they should", async () => {
  const ac = new AbortController();
  const sleeping = abortableSleep(60_000, ac.signal);
  ac.abort(new Error("woken"));
  await assert.rejects(sleeping, /woken/);
  // withTimeout's timer does not hold the process open; this one does, for the test.
  const keepAlive = setTimeout(() => {}, 10_000);
  try {
    await assert.rejects(
      withTimeout(new Promise(() => {}), { ms: 5, onTimeout: () => new Error("too slow") }),
      /too slow/,
    );
  } finally {
    clearTimeout(keepAlive);
  }
  assert.equal(
    await withTimeout(Promise.resolve("fast"), { ms: 1_000, onTimeout: () => new Error("x") }),
    "fast",
  );
});

test("eitherSignal aborts with whichever source aborts first; dispose leaves no listener", () => {
  const a = new AbortController();
  const b = new AbortController();
  const first = eitherSignal(a.signal, b.signal);
  b.abort(new Error("b went"));
  assert.equal((first.signal.reason as Error).message, "b went");
  assert.equal(getEventListeners(a.signal, "abort").length, 0, "its listener on a is gone");
  const c = new AbortController();
  const d = new AbortController();
  const second = eitherSignal(c.signal, d.signal);
  assert.equal(second.signal.aborted, false);
  second.dispose();
  assert.equal(getEventListeners(c.signal, "abort").length, 0);
  assert.equal(getEventListeners(d.signal, "abort").length, 0);
  assert.equal(eitherSignal(a.signal, b.signal).signal.aborted, true, "a source already aborted");
});

test("followAbort: one listener per signal however many follow it; those left when it aborts are called", async () => {
  const scan = new AbortController();
  const called: number[] = [];
  const unfollows = [0, 1, 2, 3].map((i) => followAbort(scan.signal, () => called.push(i)));
  assert.equal(getEventListeners(scan.signal, "abort").length, 1);
  unfollows[1]?.();
  unfollows[3]?.();
  // Many waits that end before the abort leave nothing behind them.
  for (let i = 0; i < 1000; i++) followAbort(scan.signal, () => called.push(-1))();
  assert.equal(getEventListeners(scan.signal, "abort").length, 1);
  scan.abort(new Error("stopped"));
  assert.deepEqual(called, [0, 2]);
  // raceAbort waits through it too.
  const other = new AbortController();
  const pending = raceAbort(new Promise(() => {}), other.signal);
  other.abort(new Error("gave up"));
  await assert.rejects(pending, /gave up/);
});
