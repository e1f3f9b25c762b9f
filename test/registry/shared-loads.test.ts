/**
 * SharedLoads: concurrent callers share one load, each keeps its own AbortSignal, and the
 * caller who started a load giving up neither cancels it for the rest nor hands them its
 * abort.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { SharedLoads } from "../../src/registry/shared-loads.js";

/** A load that waits until its signal aborts or `release()` is called. */
function gatedLoad() {
  const signals: (AbortSignal | undefined)[] = [];
  let release: (v: string) => void = () => {};
  const released = new Promise<string>((resolve) => {
    release = resolve;
  });
  const load = (signal?: AbortSignal) => {
    signals.push(signal);
    return new Promise<string>((resolve, reject) => {
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      void released.then(resolve);
    });
  };
  return { load, signals, release: (v: string) => release(v) };
}

test("concurrent callers share one load, which is forgotten once it settles", async () => {
  const loads = new SharedLoads<string, string>();
  const gate = gatedLoad();
  const a = loads.run("k", gate.load);
  const b = loads.run("k", gate.load);
  gate.release("value");
  assert.deepEqual(await Promise.all([a, b]), ["value", "value"]);
  assert.equal(gate.signals.length, 1);
  await loads.run("k", async () => "again");
  assert.equal(await loads.run("k", async () => "third"), "third", "a settled load is not kept");
});

test("the starter giving up: it gets its abort, the other caller restarts on its own signal", async () => {
  const loads = new SharedLoads<string, string>();
  const gate = gatedLoad();
  const starter = new AbortController();
  const stays = new AbortController();
  const a = loads.run("k", gate.load, starter.signal);
  const b = loads.run("k", gate.load, stays.signal);
  starter.abort(new Error("starter gave up"));
  await assert.rejects(a, /starter gave up/);
  gate.release("value");
  assert.equal(await b, "value");
  assert.equal(gate.signals.length, 2, "restarted once");
  assert.equal(gate.signals[1], stays.signal);
});

test("a joining caller giving up leaves the shared load running for the starter", async () => {
  const loads = new SharedLoads<string, string>();
  const gate = gatedLoad();
  const joiner = new AbortController();
  const a = loads.run("k", gate.load);
  const b = loads.run("k", gate.load, joiner.signal);
  joiner.abort(new Error("joiner gave up"));
  await assert.rejects(b, /joiner gave up/);
  gate.release("value");
  assert.equal(await a, "value");
  assert.equal(gate.signals.length, 1);
});

test("a failure that is not an abort reaches every caller, without a restart", async () => {
  const loads = new SharedLoads<string, string>();
  let calls = 0;
  const failing = async () => {
    calls++;
    await new Promise((r) => setTimeout(r, 5));
    throw new Error("registry down");
  };
  const results = await Promise.allSettled([loads.run("k", failing), loads.run("k", failing)]);
  assert.deepEqual(
    results.map((r) => r.status),
    ["rejected", "rejected"],
  );
  assert.equal(calls, 1);
});
