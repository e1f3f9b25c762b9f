/**
 * `RequestDeadline` on its own: the caller's abort reaches every request that follows its
 * signal, with the caller's reason, through one listener on that signal however many
 * requests follow it; a cleared deadline no longer follows it.
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, test } from "node:test";
import { DeadlineExpired, RequestDeadline } from "../../../src/registry/http/deadline.js";

describe("RequestDeadline", () => {
  test("many requests follow one caller's signal through one listener; its abort reaches them all", () => {
    const caller = new AbortController();
    const deadlines = Array.from({ length: 200 }, () => new RequestDeadline(60_000, caller.signal));
    assert.equal(getEventListeners(caller.signal, "abort").length, 1);
    // Half are over before the caller gives up: they are not aborted.
    for (const d of deadlines.slice(0, 100)) d.clear();
    for (const d of deadlines.slice(0, 100)) d.clear();
    const reason = new Error("caller gone");
    caller.abort(reason);
    for (const [i, d] of deadlines.entries()) {
      assert.equal(d.signal.aborted, i >= 100, `request ${i}`);
      if (i >= 100) assert.equal(d.signal.reason, reason);
      assert.equal(d.callerAborted, true);
      assert.equal(d.expired, false);
    }
    assert.equal(getEventListeners(caller.signal, "abort").length, 0);
  });

  test("a caller already aborted aborts the request at once; the deadline aborts with DeadlineExpired", async () => {
    const gone = AbortSignal.abort(new Error("before"));
    const early = new RequestDeadline(60_000, gone);
    assert.equal(early.signal.aborted, true);
    assert.equal((early.signal.reason as Error).message, "before");
    const caller = new AbortController();
    const late = new RequestDeadline(20, caller.signal);
    // The deadline's timer does not hold the process open (a body nobody reads): this does.
    const open = setTimeout(() => {}, 5_000);
    await new Promise((resolve) => late.signal.addEventListener("abort", resolve, { once: true }));
    clearTimeout(open);
    assert.ok(late.signal.reason instanceof DeadlineExpired);
    assert.equal(late.expired, true);
    // The expired one no longer follows the caller; a new one does.
    const next = new RequestDeadline(60_000, caller.signal);
    caller.abort(new Error("later"));
    assert.equal((next.signal.reason as Error).message, "later");
    assert.ok(late.signal.reason instanceof DeadlineExpired);
  });
});
