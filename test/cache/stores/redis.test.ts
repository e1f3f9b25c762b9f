import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Cluster, Redis } from "ioredis";
import { openStore } from "../../../src/cache/open-store.js";
import type { Store } from "../../../src/cache/store.js";
import { keySlot } from "../../../src/cache/stores/redis-slots.js";
import {
  type RedisCluster,
  type RedisServer,
  startRedis,
  startRedisCluster,
} from "../../support/redis.js";
import { waitFor } from "../../support/wait-for.js";
import { repositoryValue } from "./repository-value.js";
import {
  assertFailsFast,
  assertRecovers,
  capturingLogger,
  storeContract,
  uniqueKey,
} from "./store-contract.js";

let server: RedisServer;
let cluster: RedisCluster;
let raw: Redis;
let rawCluster: Cluster;
let a: Store;
let b: Store;
let ca: Store;
let cb: Store;
const single = capturingLogger();
const clustered = capturingLogger();

before(async () => {
  [server, cluster] = await Promise.all([startRedis(), startRedisCluster()]);
  raw = new Redis({ host: server.host, port: server.port, lazyConnect: true });
  rawCluster = new Cluster(cluster.nodes.map((n) => ({ host: n.host, port: n.port })));
  a = await openStore(server.url, { logger: single.logger });
  b = await openStore(server.url);
  ca = await openStore(cluster.url, { logger: clustered.logger });
  cb = await openStore(cluster.url);
});
after(async () => {
  for (const s of [a, b, ca, cb]) await s?.close();
  raw?.disconnect();
  rawCluster?.disconnect();
});

storeContract(
  "redis",
  () => ({
    a,
    b,
    logs: single.lines,
    writeRaw: async (key, bytes) => {
      await raw.set(key, bytes, "PX", 60_000);
    },
    leaseTtlMs: 300,
  }),
  { abortsWhileRunning: true, leaseWrites: true },
);

storeContract("redis cluster", () => ({
  a: ca,
  b: cb,
  logs: clustered.lines,
  writeRaw: async (key, bytes) => {
    await rawCluster.set(key, bytes, "PX", 60_000);
  },
  leaseTtlMs: 300,
}));

test("redis: values expire at twice the time to the deadline, at least an hour", async () => {
  const short = uniqueKey("ttl-short");
  const long = uniqueKey("ttl-long");
  await a.set(short, new Date(Date.now() + 60_000), Buffer.from("x"));
  await a.set(long, new Date(Date.now() + 5 * 3600_000), Buffer.from("y"));
  const shortTtl = await raw.pttl(short);
  const longTtl = await raw.pttl(long);
  assert.ok(shortTtl > 3_590_000 && shortTtl <= 3_600_000, `short ${shortTtl}`);
  assert.ok(longTtl > 35_990_000 && longTtl <= 36_000_000, `long ${longTtl}`);
});

test("redis cluster: keys land on all three masters and every client reads them", async () => {
  const nodesUsed = new Set<number>();
  const written: string[] = [];
  for (let i = 0; i < 30; i++) {
    const key = uniqueKey(`spread-${i}`);
    written.push(key);
    await ca.set(key, new Date(Date.now() + 60_000), Buffer.from(String(i)));
    assert.equal(Buffer.from((await cb.get(key))!.value).toString(), String(i));
    const slot = Number(await rawCluster.cluster("KEYSLOT", key));
    const shards = await rawCluster.cluster("SLOTS");
    const owner = shards.find(([lo, hi]) => slot >= lo && slot <= hi);
    nodesUsed.add(owner![2]![1]);
  }
  assert.equal(nodesUsed.size, 3);
  // One getMany reads them back from the three masters, in order.
  const got = await cb.getMany([...written].reverse());
  for (const [i, entry] of got.entries()) {
    assert.equal(Buffer.from(entry!.value).toString(), String(29 - i));
  }
});

test("redis cluster: keySlot agrees with CLUSTER KEYSLOT, hash tags and UTF-8 included", async () => {
  const keys = [
    "",
    "foo",
    "123456789",
    "{user1000}.following",
    "{user1000}.followers",
    "foo{}{bar}",
    "foo{{bar}}zap",
    "foo{bar}{zap}",
    "{}",
    "}{",
    "regscan:v1:tag:registry.example.com/team/app:v1.2.3",
    "regscan:v1:tag:localhost:5000/émoji/ünïcode:日本",
    ...Array.from({ length: 200 }, (_, i) => uniqueKey(`slot-${i}`)),
  ];
  for (const key of keys) {
    const server = Number(await rawCluster.cluster("KEYSLOT", key));
    assert.equal(keySlot(key), server, `slot of ${JSON.stringify(key)}`);
  }
});

test("redis cluster: getMany still answers when slots are not loaded yet (a fresh client)", async () => {
  // 30 keys: spread over the three masters, so one pipeline cannot carry them all.
  const keys = Array.from({ length: 30 }, (_, i) => uniqueKey(`fresh-${i}`));
  for (const [i, key] of keys.entries()) {
    await ca.set(key, new Date(Date.now() + 60_000), Buffer.from(`fresh-${i}`));
  }
  const fresh = await openStore(cluster.url);
  try {
    const got = await fresh.getMany([...keys, uniqueKey("fresh-miss")]);
    for (const [i, entry] of got.slice(0, 30).entries()) {
      assert.equal(Buffer.from(entry!.value).toString(), `fresh-${i}`);
    }
    assert.equal(got[30], undefined);
  } finally {
    await fresh.close();
  }
});

test("redis: a 20,000-tag repository round-trips", async () => {
  const value = repositoryValue(20_000);
  for (const s of [a, ca]) {
    const key = uniqueKey("repo");
    await s.set(key, new Date(Date.now() + 60_000), value);
    assert.ok(Buffer.from((await s.get(key))!.value).equals(value));
  }
});

test("redis: a value over the configured maximum is VALUE_TOO_LARGE, naming the key", async () => {
  const small = await openStore(`${server.url}?maxValueSize=1m`);
  try {
    const key = uniqueKey("too-large");
    await assert.rejects(small.set(key, new Date(), randomBytes(2 * 1024 * 1024)), {
      code: "VALUE_TOO_LARGE",
      message: new RegExp(key),
    });
  } finally {
    await small.close();
  }
});

test("redis: a refused password never shows in the error, its cause or the log", async () => {
  const guarded = await startRedis();
  const admin = new Redis({ host: guarded.host, port: guarded.port, lazyConnect: true });
  await admin.config("SET", "requirepass", "the-real-one-5c2a");
  const log = capturingLogger();
  const password = "not-the-password-81f3";
  const store = await openStore(`redis://:${password}@${guarded.host}:${guarded.port}?timeout=2s`, {
    logger: log.logger,
  });
  try {
    const err = await store.get(uniqueKey("auth")).then(
      () => assert.fail("a wrong password must fail"),
      (e: unknown) => e,
    );
    assert.match(String((err as { code?: unknown }).code), /^STORE_/);
    const { inspect } = await import("node:util");
    for (const text of [
      inspect(err, { depth: 20 }),
      JSON.stringify(err),
      String(err),
      JSON.stringify(log.lines()),
    ]) {
      assert.ok(!text.includes(password), `no password in ${text.slice(0, 200)}`);
    }
  } finally {
    await store.close();
    admin.disconnect();
    await guarded.stop();
  }
});

// The outages come last, as they stop the servers the tests above share; each stops its own
// (the single node, the cluster), so the two run side by side: they wait on reconnect
// back-offs and command timeouts, not on the CPU.
describe("outages", { concurrency: true }, () => {
  test("redis: stopped, operations fail fast with STORE_UNAVAILABLE; restarted, they work (Acceptance 3)", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const log = capturingLogger();
    const store = await openStore(`${server.url}?timeout=2s`, { logger: log.logger });
    try {
      const key = uniqueKey("outage");
      await store.set(key, new Date(Date.now() + 60_000), Buffer.from("before"));
      await server.stop();
      await assertFailsFast({
        store,
        key,
        address: `127\\.0\\.0\\.1:${server.port}`,
        release: true,
      });
      await server.start();
      await assertRecovers(store, key, 100);
      assert.ok(
        log.lines().some((l) => l.level === 40 && /connection error/.test(String(l.msg))),
        "the lost connection was logged",
      );
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off("unhandledRejection", onUnhandled);
      await store.close();
    }
  });

  test("redis cluster: all masters stopped, operations fail with STORE_UNAVAILABLE, no unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    // With every master down each operation waits out the command timeout: 1 s, not 2, keeps
    // the three of them short. The write before the outage only has to land once, so a
    // loaded machine's slow first connection is given more than one timeout for it.
    const store = await openStore(`${cluster.url}?timeout=1s`);
    try {
      const key = uniqueKey("cluster-outage");
      await waitFor(
        () => store.set(key, new Date(Date.now() + 60_000), Buffer.from("before")).then(() => true),
        { what: "the write before the outage" },
      );
      await cluster.stop();
      const started = Date.now();
      await assert.rejects(store.get(key), { code: "STORE_UNAVAILABLE" });
      await assert.rejects(store.set(key, new Date(), Buffer.from("x")), {
        code: "STORE_UNAVAILABLE",
      });
      await assert.rejects(store.getMany([key, uniqueKey("cluster-outage-2")]), {
        code: "STORE_UNAVAILABLE",
      });
      assert.ok(Date.now() - started < 10_000, `failed within ${Date.now() - started} ms`);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off("unhandledRejection", onUnhandled);
      await store.close();
    }
  });
});
