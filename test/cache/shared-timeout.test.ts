/**
 * SharedTimeout: one signal for the writes started close together, a new one after the
 * slack, and never an abort before the timeout.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SharedTimeout } from "../../src/cache/shared-timeout.js";
import { waitFor } from "../support/wait-for.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("SharedTimeout", () => {
  it("shares a signal within the slack, and aborts between timeout and timeout + slack", async () => {
    const timeouts = new SharedTimeout({ timeoutMs: 150, slackMs: 100, listeners: 50 });
    const started = performance.now();
    const first = timeouts.signal();
    assert.equal(timeouts.signal(), first, "asked again at once: the same signal");
    let abortedAfter = -1;
    first.addEventListener("abort", () => {
      abortedAfter = performance.now() - started;
    });
    await sleep(120);
    const second = timeouts.signal();
    assert.notEqual(second, first, "past the slack: a new signal");
    assert.equal(second.aborted, false);
    await waitFor(() => first.aborted, { what: "the first signal to abort", timeoutMs: 5_000 });
    assert.ok(abortedAfter >= 145, `first aborted after ${abortedAfter} ms`);
    assert.equal(first.reason?.name, "TimeoutError");
  });
});
