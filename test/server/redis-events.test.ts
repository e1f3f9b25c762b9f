/**
 * The shared tag-event stream on a real Redis: what one replica publishes every replica
 * reads (with the stream id), replay after an id, a bad id refused, a prompt stop while
 * blocked, and reading that goes on after Redis restarts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { RedisStore } from "../../src/cache/stores/redis.js";
import type { TagEvent } from "../../src/cache/warmer-types.js";
import {
  InvalidEventIdError,
  RedisTagEvents,
  type StreamedTagEvent,
} from "../../src/server/redis-events.js";
import { cleanupAll } from "../support/processes.js";
import { type RedisServer, startRedis } from "../support/redis.js";

after(cleanupAll);

const logger = pino({ level: "silent" });

function event(tag: string): TagEvent {
  return {
    type: "moved-tag",
    repository: "localhost:5000/team/app",
    tag,
    digest: "sha256:bb",
    previousDigest: "sha256:aa",
    at: new Date("2026-12-04T12:00:00.000Z"),
  };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("RedisTagEvents on a real Redis", () => {
  let redis: RedisServer;
  let store: RedisStore;
  const replicas: Array<{
    events: RedisTagEvents;
    stop: AbortController;
    seen: StreamedTagEvent[];
  }> = [];
  const opened: Array<{ disconnect(): void }> = [];

  const replica = (name: string, blockMs = 500) => {
    const reader = store.duplicateConnection(blockMs + 5_000);
    const writer = store.duplicateConnection(5_000);
    for (const c of [reader, writer]) {
      c.on("error", () => {});
      opened.push(c);
    }
    const events = new RedisTagEvents({ reader, writer, replica: name, logger, blockMs });
    const seen: StreamedTagEvent[] = [];
    events.subscribe((e) => seen.push(e));
    const stop = new AbortController();
    const running = events.run(stop.signal);
    const r = { events, stop, seen, running };
    replicas.push(r);
    return r;
  };

  before(async () => {
    redis = await startRedis();
    store = new RedisStore({ nodes: [{ host: redis.host, port: redis.port }], timeoutMs: 2_000 });
  });

  after(async () => {
    for (const r of replicas) r.stop.abort();
    for (const c of opened) c.disconnect();
    await store?.close();
    await redis?.stop();
  });

  test("each replica reads every replica's events once, with the stream id", async () => {
    const a = replica("a");
    const b = replica("b");
    // Both readers have learnt where the stream ends before anything is published: each is
    // blocked in its XREAD (a fixed 300 ms pause was too short for a loaded machine).
    const probe = store.duplicateConnection(5_000);
    probe.on("error", () => {});
    opened.push(probe);
    let blocked = 0;
    const deadline = Date.now() + 10_000;
    while (blocked < 2) {
      if (Date.now() > deadline) assert.fail(`${blocked} of 2 readers blocked in XREAD after 10 s`);
      blocked = Number(/blocked_clients:(\d+)/.exec(await probe.info("clients"))?.[1] ?? 0);
      if (blocked < 2) await new Promise((r) => setTimeout(r, 20));
    }
    const id1 = await a.events.publish(event("v1"));
    const id2 = await b.events.publish(event("v2"));
    assert.match(id1 ?? "", /^\d+-\d+$/);
    await until(() => a.seen.length === 2 && b.seen.length === 2, "both events on both");
    for (const r of [a, b]) {
      assert.deepEqual(
        r.seen.map((s) => [s.id, s.event.tag]),
        [
          [id1, "v1"],
          [id2, "v2"],
        ],
      );
      assert.deepEqual(r.seen[0]?.event, event("v1"));
    }
  });

  test("replay hands back the events after an id, and refuses what is not a stream id", async () => {
    const a = replica("replay");
    const first = await a.events.publish(event("r1"));
    await a.events.publish(event("r2"));
    await a.events.publish(event("r3"));
    const missed = await a.events.replay(first as string, AbortSignal.timeout(5_000));
    assert.deepEqual(
      missed.map((m) => m.event.tag),
      ["r2", "r3"],
    );
    await assert.rejects(
      a.events.replay("12", AbortSignal.timeout(5_000)),
      (err: unknown) => err instanceof InvalidEventIdError && err.code === "INVALID_EVENT_ID",
    );
  });

  test("stopping ends a blocked read at once", async () => {
    const reader = store.duplicateConnection(65_000);
    const writer = store.duplicateConnection(5_000);
    for (const c of [reader, writer]) {
      c.on("error", () => {});
      opened.push(c);
    }
    const events = new RedisTagEvents({ reader, writer, replica: "x", logger, blockMs: 60_000 });
    const stop = new AbortController();
    const running = events.run(stop.signal);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    stop.abort();
    await running;
    assert.ok(Date.now() - started < 1_000, `stopped after ${Date.now() - started} ms`);
  });

  test("reading goes on after Redis restarts", async () => {
    const a = replica("restart", 300);
    await new Promise((r) => setTimeout(r, 300));
    await redis.stop();
    assert.equal(await a.events.publish(event("lost")), undefined, "an outage is no throw");
    await redis.start();
    let id: string | undefined;
    await until(() => {
      void a.events.publish(event("after")).then((got) => {
        id ??= got;
      });
      return id !== undefined;
    }, "a publish after the restart");
    await until(() => a.seen.some((s) => s.event.tag === "after"), "the event read back");
  });
});
