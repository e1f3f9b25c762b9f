/**
 * The heavy-work gate: turns in order of arrival, work that takes several turns (a large
 * repository's answer), a bounded queue, and a waiter that gives up.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiError } from "../../src/server/api-error.js";
import { WorkGate } from "../../src/server/work-gate.js";

/** Work that runs until `finish()` is called; `started` says whether it began. */
function held() {
  let finish: () => void = () => {};
  const state = { started: false };
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const work = async () => {
    state.started = true;
    await done;
  };
  return { work, state, finish: () => finish() };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("WorkGate", () => {
  it("gives heavy work all the turns it asks for, in order of arrival", async () => {
    const gate = new WorkGate({ concurrency: 4, queue: 8, retryAfterSeconds: 1 });
    const a = held();
    const b = held();
    const huge = held();
    const c = held();
    const runs = [gate.run(a.work), gate.run(b.work), gate.run(huge.work, undefined, 4)];
    await tick();
    assert.deepEqual([a.state.started, b.state.started, huge.state.started], [true, true, false]);
    assert.deepEqual(gate.stats(), { running: 2, waiting: 1 });
    // Light work that would fit waits behind the heavy work at the head of the line.
    runs.push(gate.run(c.work));
    await tick();
    assert.equal(c.state.started, false, "no overtaking the heavy work");
    a.finish();
    await tick();
    assert.equal(huge.state.started, false, "three turns free of the four it needs");
    b.finish();
    await tick();
    assert.equal(huge.state.started, true);
    assert.deepEqual(gate.stats(), { running: 4, waiting: 1 });
    huge.finish();
    await tick();
    assert.equal(c.state.started, true);
    c.finish();
    await Promise.all(runs);
    assert.deepEqual(gate.stats(), { running: 0, waiting: 0 });
  });

  it("bounds a weight to the gate's turns (a huge answer runs alone, never forever waiting)", async () => {
    const gate = new WorkGate({ concurrency: 2, queue: 2, retryAfterSeconds: 1 });
    assert.equal(await gate.run(async () => "ran", undefined, 40), "ran");
    assert.equal(await gate.run(async () => "ran", undefined, 0), "ran", "at least one turn");
    assert.deepEqual(gate.stats(), { running: 0, waiting: 0 });
  });

  it("refuses past its queue with SERVER_BUSY, and lets lighter work in when a heavy waiter leaves", async () => {
    const gate = new WorkGate({ concurrency: 2, queue: 2, retryAfterSeconds: 7 });
    const a = held();
    const light = held();
    const running = gate.run(a.work);
    const leave = new AbortController();
    const heavy = gate.run(async () => {}, leave.signal, 2);
    const lighter = gate.run(light.work);
    await assert.rejects(
      gate.run(async () => {}),
      (err: unknown) => {
        assert.ok(err instanceof ApiError);
        assert.equal(err.code, "SERVER_BUSY");
        assert.equal(err.headers["retry-after"], "7");
        return true;
      },
    );
    await tick();
    assert.equal(light.state.started, false);
    leave.abort(new Error("client left"));
    await assert.rejects(heavy, /client left/);
    await tick();
    assert.equal(light.state.started, true, "the free turn goes to the next in line");
    a.finish();
    light.finish();
    await Promise.all([running, lighter]);
    assert.deepEqual(gate.stats(), { running: 0, waiting: 0 });
  });
});
