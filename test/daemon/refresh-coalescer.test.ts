/**
 * RefreshCoalescer: one refresh in flight per repository, at most one queued that takes in
 * every request made meanwhile (and their tags), and a minimum gap between refreshes.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RefreshCoalescer } from "../../src/daemon/refresh-coalescer.js";

const REPO = "localhost:5000/team/app";

/** A runner that records its calls and finishes each when told to. */
function recordingRunner() {
  const calls: Array<{
    repository: string;
    tags: string[] | undefined;
    listing: boolean;
    at: number;
  }> = [];
  const finishers: Array<() => void> = [];
  const run = (repository: string, tags: string[] | undefined, listing = true) => {
    calls.push({ repository, tags, listing, at: Date.now() });
    return new Promise<void>((resolve) => finishers.push(resolve));
  };
  const finishAll = () => {
    for (const finish of finishers.splice(0)) finish();
  };
  return { calls, run, finishAll };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("RefreshCoalescer", () => {
  test("30 requests during one refresh become one more refresh, after the gap", async () => {
    const runner = recordingRunner();
    const c = new RefreshCoalescer({ run: runner.run, minGapMs: 300 });
    assert.equal(c.requestRefresh(REPO), "started");
    await until(() => runner.calls.length === 1, "the first refresh");
    const outcomes = Array.from({ length: 30 }, () => c.requestRefresh(REPO));
    assert.equal(outcomes[0], "queued");
    assert.ok(outcomes.slice(1).every((o) => o === "coalesced"));
    const ended = Date.now();
    runner.finishAll();
    await until(() => runner.calls.length === 2, "the queued refresh");
    assert.ok((runner.calls[1]?.at ?? 0) - ended >= 280, "the gap after the first refresh");
    runner.finishAll();
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(runner.calls.length, 2);
    c.close();
  });

  test("requests spread over time cost one refresh per gap, not one each", async () => {
    const runner = recordingRunner();
    const c = new RefreshCoalescer({
      run: async (repository, tags) => {
        await runner.run(repository, tags).catch(() => {});
      },
      minGapMs: 200,
    });
    // Refreshes that finish at once: without the gap, every request would start one.
    const done = setInterval(() => runner.finishAll(), 1);
    const started = Date.now();
    while (Date.now() - started < 1_000) {
      c.requestRefresh(REPO);
      await new Promise((r) => setTimeout(r, 20));
    }
    clearInterval(done);
    runner.finishAll();
    // About 1,000 / 200 = 5 refreshes for about 50 requests.
    assert.ok(runner.calls.length <= 7, `${runner.calls.length} refreshes`);
    assert.ok(runner.calls.length >= 3, `${runner.calls.length} refreshes`);
    c.close();
  });

  test("named tags are merged; a request without a tag means the whole repository", async () => {
    const runner = recordingRunner();
    const c = new RefreshCoalescer({ run: runner.run, minGapMs: 0 });
    c.requestRefresh(REPO, { tag: "v1" });
    await until(() => runner.calls.length === 1, "the first refresh");
    assert.deepEqual(runner.calls[0]?.tags, ["v1"]);
    c.requestRefresh(REPO, { tag: "v2" });
    c.requestRefresh(REPO, { tag: "v3" });
    c.requestRefresh(REPO, { tag: "v2" });
    runner.finishAll();
    await until(() => runner.calls.length === 2, "the merged refresh");
    assert.deepEqual(runner.calls[1]?.tags, ["v2", "v3"]);
    c.requestRefresh(REPO, { tag: "v4" });
    c.requestRefresh(REPO);
    runner.finishAll();
    await until(() => runner.calls.length === 3, "the whole-repository refresh");
    assert.equal(runner.calls[2]?.tags, undefined);
    runner.finishAll();
    c.close();
  });

  test("pushed tags alone need no listing; a deleted tag or a tagless event in the same refresh does", async () => {
    const runner = recordingRunner();
    const c = new RefreshCoalescer({ run: runner.run, minGapMs: 0 });
    c.requestRefresh(REPO, { tag: "v1" });
    await until(() => runner.calls.length === 1, "the first refresh");
    assert.equal(runner.calls[0]?.listing, false, "a push alone");
    c.requestRefresh(REPO, { tag: "v2" });
    c.requestRefresh(REPO, { tag: "v3", listing: true });
    c.requestRefresh(REPO, { tag: "v4" });
    runner.finishAll();
    await until(() => runner.calls.length === 2, "the merged refresh");
    assert.deepEqual(runner.calls[1]?.tags, ["v2", "v3", "v4"]);
    assert.equal(runner.calls[1]?.listing, true, "a deletion among them");
    c.requestRefresh(REPO, { listing: true });
    c.requestRefresh(REPO, { tag: "v5" });
    runner.finishAll();
    await until(() => runner.calls.length === 3, "the third refresh");
    assert.deepEqual(runner.calls[2]?.tags, ["v5"]);
    assert.equal(runner.calls[2]?.listing, true, "an event naming no tag");
    runner.finishAll();
    c.close();
  });

  test("repositories are independent; a failing refresh is reported and does not block", async () => {
    const failures: string[] = [];
    let calls = 0;
    const c = new RefreshCoalescer({
      run: async (repository) => {
        calls++;
        if (repository.endsWith("bad")) throw new Error("boom");
      },
      minGapMs: 50,
      onError: (repository) => failures.push(repository),
    });
    assert.equal(c.requestRefresh(`${REPO}-bad`), "started");
    assert.equal(c.requestRefresh("localhost:5000/other"), "started");
    await until(() => failures.length === 1 && calls === 2, "both refreshes");
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(c.requestRefresh(`${REPO}-bad`), "started");
    await until(() => calls === 3, "the next refresh after a failure");
    c.close();
  });

  test("a first request can wait for a burst to settle", async () => {
    const runner = recordingRunner();
    const c = new RefreshCoalescer({ run: runner.run, minGapMs: 0, settleMs: 100 });
    assert.equal(c.requestRefresh(REPO, { tag: "a" }), "queued");
    assert.equal(c.requestRefresh(REPO, { tag: "b" }), "coalesced");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(runner.calls.length, 0);
    await until(() => runner.calls.length === 1, "the settled refresh");
    assert.deepEqual(runner.calls[0]?.tags, ["a", "b"]);
    runner.finishAll();
    c.close();
  });

  test("a burst longer than the window stays one refresh while its events come closer than the window", async () => {
    const runner = recordingRunner();
    const c = new RefreshCoalescer({
      run: runner.run,
      minGapMs: 100,
      settleMs: 100,
      settleMaxMs: 2_000,
    });
    // 12 events 40 ms apart: 480 ms of burst, far longer than the 100 ms window.
    for (let i = 0; i < 12; i++) {
      c.requestRefresh(REPO, { tag: `t${i}` });
      await new Promise((r) => setTimeout(r, 40));
      assert.equal(runner.calls.length, 0, `no refresh during the burst (event ${i})`);
    }
    await until(() => runner.calls.length === 1, "the burst's refresh");
    assert.equal(runner.calls[0]?.tags?.length, 12);
    runner.finishAll();
    c.close();
  });

  test("a burst that never pauses is refreshed at the bound", async () => {
    const runner = recordingRunner();
    const c = new RefreshCoalescer({
      run: runner.run,
      minGapMs: 0,
      settleMs: 60,
      settleMaxMs: 200,
    });
    const started = Date.now();
    while (runner.calls.length === 0 && Date.now() - started < 2_000) {
      c.requestRefresh(REPO, { tag: "x" });
      await new Promise((r) => setTimeout(r, 20));
    }
    const waited = (runner.calls[0]?.at ?? Number.POSITIVE_INFINITY) - started;
    assert.ok(waited >= 190 && waited < 600, `refreshed after ${waited} ms`);
    runner.finishAll();
    c.close();
  });
});
