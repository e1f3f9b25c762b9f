import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { openStore } from "../../../src/cache/open-store.js";
import type { Store } from "../../../src/cache/store.js";
import type { MemcachedStore } from "../../../src/cache/stores/memcached.js";
import { memcachedKey } from "../../../src/cache/stores/memcached-keys.js";
import { type MemcachedServer, startMemcached } from "../../support/memcached.js";
import { waitFor } from "../../support/wait-for.js";
import { rawHas, rawSet, rawTtl } from "./memcached-text.js";
import { repositoryValue } from "./repository-value.js";
import {
  assertFailsFast,
  assertRecovers,
  capturingLogger,
  storeContract,
  uniqueKey,
} from "./store-contract.js";

let server: MemcachedServer;
let a: MemcachedStore;
let b: Store;
const { logger, lines } = capturingLogger();

before(async () => {
  // Memcached's default item size (1 MiB): no -I.
  server = await startMemcached();
  a = (await openStore(`memcached://${server.address}`, { logger })) as MemcachedStore;
  b = await openStore(`memcached://${server.address}`);
});
after(async () => {
  await a?.close();
  await b?.close();
});

// The tests that mostly wait (on lease clocks, a silent server, servers of their own) run
// beside the others, which run one at a time. All of them use keys of their own. The outage
// below stops the server, so it waits for them all; the tests after it find the shared
// clients reconnected.
describe("memcached, the shared server up", { concurrency: true }, () => {
  describe("one at a time", { concurrency: 1 }, () => {
    storeContract("memcached", () => ({
      a,
      b,
      logs: lines,
      writeRaw: (key, bytes) => rawSet({ address: server.address, key: memcachedKey(key), bytes }),
      leaseTtlMs: 1000,
      // Whole seconds, plus the two seconds the store adds for memcached's possibly late clock.
      leaseSlackMs: 3000,
    }));

    test("memcached: items expire at twice the time to the deadline, at least an hour", async () => {
      const short = uniqueKey("ttl-short");
      const long = uniqueKey("ttl-long");
      await a.set(short, new Date(Date.now() + 60_000), Buffer.from("x"));
      await a.set(long, new Date(Date.now() + 5 * 3600_000), Buffer.from("y"));
      const shortTtl = (await rawTtl(server.address, short))!;
      const longTtl = (await rawTtl(server.address, long))!;
      assert.ok(shortTtl > 3590 && shortTtl <= 3600, `short ttl ${shortTtl}`);
      assert.ok(longTtl > 35_990 && longTtl <= 36_000, `long ttl ${longTtl}`);
    });

    test("memcached: keys over 250 bytes or with spaces are hashed and still work", async () => {
      const long = `${uniqueKey("long")}:${"x".repeat(300)}`;
      const spaced = `${uniqueKey("spaced")} with spaces\tand tabs`;
      for (const key of [long, spaced]) {
        const mk = memcachedKey(key);
        assert.notEqual(mk, key);
        assert.ok(Buffer.byteLength(mk) <= 250 && !/\s/.test(mk));
        await a.set(key, new Date(Date.now() + 60_000), Buffer.from(key));
        assert.equal(Buffer.from((await b.get(key))!.value).toString(), key);
        assert.equal(await rawHas(server.address, mk), true);
      }
    });

    test("memcached: a 20,000-tag repository round-trips through 1 MiB items (Acceptance 2)", async () => {
      const value = repositoryValue(20_000);
      assert.ok(value.byteLength > 4 * 1024 * 1024, `value is ${value.byteLength} bytes`);
      const key = uniqueKey("repo-20000");
      const deadline = new Date(Date.now() + 3_600_000);
      await a.set(key, deadline, value);
      const got = await b.get(key);
      assert.ok(got, "read back");
      assert.equal(got.deadline.getTime(), deadline.getTime());
      assert.ok(Buffer.from(got.value).equals(value), "byte for byte");
      const parsed = JSON.parse(Buffer.from(got.value).toString("utf8")) as { tags: unknown[] };
      assert.equal(parsed.tags.length, 20_000);
      // Compressed it is still over 1 MiB, so it went the chunked way: the head names chunks.
      const head = await rawGet(server.address, memcachedKey(key));
      assert.equal(head[0], 0x03, "a chunk head");
      const { count } = JSON.parse(head.subarray(1).toString("utf8")) as { count: number };
      assert.ok(count >= 2, `${count} chunks`);
    });

    test("memcached: incompressible values past the item size are chunked, and a lost chunk is a miss", async () => {
      const value = randomBytes(3 * 1024 * 1024);
      const key = uniqueKey("chunked");
      await a.set(key, new Date(Date.now() + 60_000), value);
      assert.ok(Buffer.from((await b.get(key))!.value).equals(value));
      // Overwrite: the new value wins, old chunks are never mixed in.
      const next = randomBytes(2 * 1024 * 1024);
      await a.set(key, new Date(Date.now() + 60_000), next);
      assert.ok(Buffer.from((await a.get(key))!.value).equals(next));
      // A chunk gone (evicted) or replaced behind our back: a miss, not garbage.
      const head = JSON.parse(
        await (async () => {
          const got = await rawGet(server.address, memcachedKey(key));
          return got.subarray(1).toString("utf8");
        })(),
      ) as { id: string };
      await rawSet({
        address: server.address,
        key: memcachedKey(`${key}:chunk:${head.id}:1`),
        bytes: Buffer.from([4, 1, 2, 3]),
      });
      assert.equal(await a.get(key), undefined);
    });

    test("memcached: a chunked value rewritten leaves its old chunks a short grace, not hours", async () => {
      const key = uniqueKey("rewritten");
      const deadline = new Date(Date.now() + 3_600_000);
      const headId = async () =>
        JSON.parse((await rawGet(server.address, memcachedKey(key))).subarray(1).toString()) as {
          id: string;
          count: number;
        };
      await a.set(key, deadline, randomBytes(2 * 1024 * 1024));
      const old = await headId();
      const next = randomBytes(2 * 1024 * 1024);
      await a.set(key, deadline, next);
      assert.notEqual((await headId()).id, old.id);
      for (let i = 0; i < old.count; i++) {
        const ttl = await rawTtl(server.address, memcachedKey(`${key}:chunk:${old.id}:${i}`));
        assert.ok(ttl === undefined || ttl <= 60, `old chunk ${i} lives ${ttl} s more`);
      }
      const fresh = await headId();
      for (let i = 0; i < fresh.count; i++) {
        const ttl = (await rawTtl(server.address, memcachedKey(`${key}:chunk:${fresh.id}:${i}`)))!;
        assert.ok(ttl > 7000, `new chunk ${i} lives ${ttl} s`);
      }
      assert.ok(Buffer.from((await b.get(key))!.value).equals(next));
    });

    test("memcached: deadlines past 15 days give an expiry past 30 days, sent as a Unix time", async () => {
      const key = uniqueKey("ttl-40-days");
      await a.set(key, new Date(Date.now() + 20 * 86_400_000), Buffer.from("far"));
      const ttl = (await rawTtl(server.address, key))!;
      assert.ok(Math.abs(ttl - 40 * 86_400) < 30, `ttl ${ttl} s, expected 40 days`);
      assert.equal(Buffer.from((await b.get(key))!.value).toString(), "far");
    });

    test("memcached: getMany reads chunked, compressed, hashed and small values together", async () => {
      const deadline = new Date(Date.now() + 3_600_000);
      const repo = repositoryValue(20_000);
      const random = randomBytes(3 * 1024 * 1024);
      const keys = {
        repo: uniqueKey("many-repo"),
        random: uniqueKey("many-random"),
        small: uniqueKey("many-small"),
        long: `${uniqueKey("many-long")}:${"y".repeat(300)}`,
        spaced: `${uniqueKey("many-spaced")} with a space`,
        lost: uniqueKey("many-lost-chunk"),
      };
      await a.set(keys.repo, deadline, repo);
      await a.set(keys.random, deadline, random);
      await a.set(keys.small, deadline, Buffer.from("small"));
      await a.set(keys.long, deadline, Buffer.from("long"));
      await a.set(keys.spaced, deadline, Buffer.from("spaced"));
      await a.set(keys.lost, deadline, randomBytes(2 * 1024 * 1024));
      // One chunk of `lost` replaced behind the store's back: that value is a miss.
      const head = JSON.parse(
        (await rawGet(server.address, memcachedKey(keys.lost))).subarray(1).toString("utf8"),
      ) as { id: string };
      await rawSet({
        address: server.address,
        key: memcachedKey(`${keys.lost}:chunk:${head.id}:0`),
        bytes: Buffer.of(4, 9),
      });
      const missing = uniqueKey("many-missing");
      const got = await b.getMany([
        keys.small,
        keys.repo,
        missing,
        keys.long,
        keys.lost,
        keys.random,
        keys.spaced,
        keys.repo,
      ]);
      assert.equal(Buffer.from(got[0]!.value).toString(), "small");
      assert.ok(Buffer.from(got[1]!.value).equals(repo), "the 20,000-tag value, byte for byte");
      assert.equal(got[1]!.deadline.getTime(), deadline.getTime());
      assert.equal(got[2], undefined);
      assert.equal(Buffer.from(got[3]!.value).toString(), "long");
      assert.equal(got[4], undefined, "a value with a replaced chunk is a miss");
      assert.ok(Buffer.from(got[5]!.value).equals(random), "the incompressible chunked value");
      assert.equal(Buffer.from(got[6]!.value).toString(), "spaced");
      assert.ok(Buffer.from(got[7]!.value).equals(repo), "a repeated key is answered again");
    });

    test("memcached: a value over the configured maximum is VALUE_TOO_LARGE (Acceptance 6)", async () => {
      const small = await openStore(`memcached://${server.address}?maxValueSize=2m`);
      try {
        const key = uniqueKey("too-large");
        await assert.rejects(
          small.set(key, new Date(Date.now() + 60_000), randomBytes(3 * 1024 * 1024)),
          {
            code: "VALUE_TOO_LARGE",
            message: new RegExp(key),
          },
        );
        assert.equal(await small.get(key), undefined);
      } finally {
        await small.close();
      }
    });

    test("memcached: told a bigger item size than the server has, a refused item is VALUE_TOO_LARGE", async () => {
      const wrong = await openStore(`memcached://${server.address}?itemSize=4m`);
      try {
        await assert.rejects(
          wrong.set(
            uniqueKey("refused"),
            new Date(Date.now() + 60_000),
            randomBytes(2 * 1024 * 1024),
          ),
          { code: "VALUE_TOO_LARGE" },
        );
      } finally {
        await wrong.close();
      }
    });
  });

  test("memcached: a lease lasts at least its TTL, though memcached counts whole seconds", async () => {
    // memcached's clock ticks once a second, so an item given N seconds expires after N - 1
    // to N: a 1 s lease could be gone at once. Four tries started a quarter second apart land
    // on four phases of that clock, side by side.
    await Promise.all(
      Array.from({ length: 4 }, async (_, attempt) => {
        await new Promise((r) => setTimeout(r, attempt * 250));
        const key = uniqueKey(`lease-floor-${attempt}`);
        const taken = Date.now();
        assert.equal(await a.acquire(key, 1000, "holder"), true);
        while (Date.now() - taken < 950) {
          assert.equal(
            await b.acquire(key, 60_000, "other"),
            false,
            `lease free after ${Date.now() - taken} ms of 1000`,
          );
          await new Promise((r) => setTimeout(r, 50));
        }
        await a.release(key, "holder");
      }),
    );
  });

  test("memcached: getMany on a server that never answers is STORE_UNAVAILABLE within the timeout", async () => {
    const { createServer } = await import("node:net");
    const sockets: import("node:net").Socket[] = [];
    const silent = createServer((socket) => {
      sockets.push(socket);
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as import("node:net").AddressInfo;
    const store = await openStore(`memcached://127.0.0.1:${port}?timeout=1s`);
    try {
      const started = Date.now();
      await assert.rejects(store.getMany([uniqueKey("silent-1"), uniqueKey("silent-2")]), {
        code: "STORE_UNAVAILABLE",
        message: new RegExp(`127\\.0\\.0\\.1:${port}`),
      });
      const took = Date.now() - started;
      assert.ok(took >= 400 && took < 3000, `failed after ${took} ms`);
    } finally {
      await store.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test("memcached: keys spread over several servers, mapped alike by every client", async () => {
    const [second, third] = await Promise.all([startMemcached(), startMemcached()]);
    const url = `memcached://${[server.address, second.address, third.address].join(",")}`;
    const reversed = `memcached://${[third.address, server.address, second.address].join(",")}`;
    const one = (await openStore(url)) as MemcachedStore;
    const two = (await openStore(reversed)) as MemcachedStore;
    try {
      const perServer = new Map<string, number>();
      const written: string[] = [];
      for (let i = 0; i < 60; i++) {
        const key = uniqueKey(`spread-${i}`);
        written.push(key);
        await one.set(key, new Date(Date.now() + 60_000), Buffer.from(String(i)));
        assert.equal(Buffer.from((await two.get(key))!.value).toString(), String(i));
        const where = one.serverOf(key)!;
        assert.equal(two.serverOf(key), where);
        assert.equal(await rawHas(where, memcachedKey(key)), true);
        perServer.set(where, (perServer.get(where) ?? 0) + 1);
      }
      assert.equal(perServer.size, 3, "every server holds some keys");
      // One getMany over the three servers answers every key, in order, from either client.
      const keys = [...written, uniqueKey("spread-missing")].reverse();
      for (const client of [one, two]) {
        const got = await client.getMany(keys);
        assert.equal(got[0], undefined);
        for (let i = 1; i < keys.length; i++) {
          assert.equal(Buffer.from(got[i]!.value).toString(), String(keys.length - 1 - i));
        }
      }
    } finally {
      await one.close();
      await two.close();
      await second.stop();
      await third.stop();
    }
  });
});

test("memcached: stopped, operations fail fast with STORE_UNAVAILABLE; restarted, they work (Acceptance 3)", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  const store = await openStore(`memcached://${server.address}?timeout=2s`);
  try {
    const key = uniqueKey("outage");
    await store.set(key, new Date(Date.now() + 60_000), Buffer.from("before"));
    await server.stop();
    await assertFailsFast({ store, key, address: server.address });
    await server.start();
    await assertRecovers(store, key, 50);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off("unhandledRejection", onUnhandled);
    await store.close();
    // The shared stores reconnect on their own.
  }
});

/** Reads an item's raw bytes through the text protocol. */
async function rawGet(address: string, key: string): Promise<Buffer> {
  const { connect } = await import("node:net");
  const at = address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)) });
    let reply = Buffer.alloc(0);
    socket.on("data", (d: Buffer) => {
      reply = Buffer.concat([reply, d]);
      if (reply.subarray(-5).toString() === "END\r\n") {
        socket.end();
        const headerEnd = reply.indexOf("\r\n");
        const size = Number(reply.subarray(0, headerEnd).toString().split(" ")[3]);
        resolve(reply.subarray(headerEnd + 2, headerEnd + 2 + size));
      }
    });
    socket.once("error", reject);
    socket.write(`get ${key}\r\n`);
  });
}

for (const operation of ["get", "getMany"] as const) {
  test(`memcached: a server that closes mid-answer to ${operation} fails fast, and later answers are never misframed`, async () => {
    const { createServer, connect } = await import("node:net");
    const key = uniqueKey(`mid-answer-${operation}`);
    const value = Buffer.from("v".repeat(400));
    await a.set(key, new Date(Date.now() + 60_000), value);
    // A proxy to the real server whose first connection passes on only the first 40 bytes
    // of the answer (a header and a bit of the value), then closes cleanly.
    let connections = 0;
    const sockets: import("node:net").Socket[] = [];
    const proxy = createServer((client) => {
      const cut = connections++ === 0;
      const upstream = connect(server.port, server.host);
      sockets.push(client, upstream);
      client.on("error", () => {});
      upstream.on("error", () => {});
      client.pipe(upstream);
      let passed = 0;
      upstream.on("data", (d: Buffer) => {
        if (!cut) {
          client.write(d);
          return;
        }
        const room = 40 - passed;
        if (room > 0) client.write(d.subarray(0, room));
        passed += d.byteLength;
        if (passed >= 40) {
          client.end();
          upstream.destroy();
        }
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const { port } = proxy.address() as import("node:net").AddressInfo;
    const store = await openStore(`memcached://127.0.0.1:${port}?timeout=4s`);
    try {
      const started = Date.now();
      // The cut answer fails its attempt at once; the retry, on a new connection, must not
      // parse its answer after the 40 stale bytes (it used to get part of them as its value).
      const first =
        operation === "get" ? await store.get(key) : (await store.getMany([key, key]))[1];
      assert.ok(first, "the retry on a fresh connection answers");
      assert.ok(Buffer.from(first.value).equals(value), "byte for byte");
      assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
      const [many] = await store.getMany([key]);
      assert.ok(Buffer.from(many!.value).equals(value));
      assert.equal(Buffer.from((await store.get(key))!.value).toString(), value.toString());
      assert.equal(connections, 2);
    } finally {
      await store.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
}

test("memcached: concurrent multi-gets on one connection each get their own answers", async () => {
  const keys = Array.from({ length: 40 }, (_, i) => uniqueKey(`concurrent-${i}`));
  await Promise.all(
    keys.map((k, i) => a.set(k, new Date(Date.now() + 60_000), Buffer.from(`value-${i}`))),
  );
  // Twenty reads at once, each of a different slice: any opaque mix-up shows as a wrong value.
  const reads = Array.from({ length: 20 }, (_, r) => keys.slice(r, r + 20));
  const answers = await Promise.all(reads.map((slice) => b.getMany(slice)));
  answers.forEach((got, r) => {
    got.forEach((entry, i) => {
      assert.equal(Buffer.from(entry!.value).toString(), `value-${r + i}`, `read ${r} key ${i}`);
    });
  });
});

test("memcached: SASL credentials in the environment are not sent to the servers", async () => {
  const saved = { user: process.env.MEMCACHE_USERNAME, pass: process.env.MEMCACHE_PASSWORD };
  process.env.MEMCACHE_USERNAME = "someone";
  process.env.MEMCACHE_PASSWORD = "secret-for-another-server";
  // A proxy that records what the client sends to the real server.
  const { createServer, connect } = await import("node:net");
  const sent: Buffer[] = [];
  const sockets: import("node:net").Socket[] = [];
  const proxy = createServer((client) => {
    const upstream = connect(server.port, server.host);
    sockets.push(client, upstream);
    client.on("error", () => {});
    upstream.on("error", () => {});
    client.on("data", (d: Buffer) => sent.push(d));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const { port } = proxy.address() as import("node:net").AddressInfo;
  const store = await openStore(`memcached://127.0.0.1:${port}?timeout=2s`);
  try {
    const key = uniqueKey("no-sasl");
    await store.set(key, new Date(Date.now() + 60_000), Buffer.from("plain"));
    assert.equal(Buffer.from((await store.get(key))!.value).toString(), "plain");
    const wire = Buffer.concat(sent).toString("latin1");
    assert.ok(wire.includes(memcachedKey(key)), "the proxy saw the requests");
    assert.ok(!wire.includes("secret-for-another-server"), "no password on the wire");
  } finally {
    await store.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => proxy.close(resolve));
    for (const [name, v] of [
      ["MEMCACHE_USERNAME", saved.user],
      ["MEMCACHE_PASSWORD", saved.pass],
    ] as const) {
      if (v === undefined) delete process.env[name];
      else process.env[name] = v;
    }
  }
});

test("memcached: request ids stay in the protocol's unsigned range past 2^31 requests", async () => {
  const { memcachedClient } = await import("../../../src/cache/stores/memcached-connection.js");
  const { multiGet } = await import("../../../src/cache/stores/memcached-multiget.js");
  const key = uniqueKey("seq-wrap");
  await a.set(key, new Date(Date.now() + 60_000), Buffer.from("wrapped"));
  const client = memcachedClient(server.address, {
    timeoutMs: 2000,
    retryDelayS: 0.05,
    logger: capturingLogger().logger,
    store: "test",
  });
  try {
    (client as unknown as { seq: number }).seq = 0x7fffffff - 1;
    for (let i = 0; i < 3; i++) {
      const got = await client.get(memcachedKey(key));
      assert.ok(got.value, `get ${i} answered`);
      const many = await multiGet(client, [memcachedKey(key)]);
      assert.equal(many.size, 1, `multi-get ${i} answered`);
      assert.ok(client.seq > 0 && client.seq <= 0x7fffffff, `seq ${client.seq}`);
    }
  } finally {
    client.close();
  }
});

test("memcached: a lease taken over between the holder's read and its renewal or release stays with the new holder", async () => {
  const proxy = await gatedProxy(server);
  const slow = await openStore(`memcached://127.0.0.1:${proxy.port}?timeout=4s`);
  try {
    // Release: the holder's read passes, its delete is held while the lease expires and
    // another replica takes it; the held delete must then leave the new lease alone.
    const released = uniqueKey("lease-race-release");
    const mk = memcachedKey(released);
    assert.equal(await slow.acquire(released, 60_000, "old-holder"), true);
    proxy.holdAfter(1);
    const releasing = slow.release(released, "old-holder");
    await proxy.holding();
    await rawSet({ address: server.address, key: mk, bytes: Buffer.from("new-holder"), ttlS: 60 });
    proxy.open();
    await releasing;
    assert.equal((await rawGet(server.address, mk)).toString(), "new-holder");

    // Renewal: add fails and the read passes; the write that extends is held meanwhile.
    const renewed = uniqueKey("lease-race-renew");
    const rk = memcachedKey(renewed);
    assert.equal(await slow.acquire(renewed, 60_000, "old-holder"), true);
    proxy.holdAfter(2);
    const renewing = slow.acquire(renewed, 60_000, "old-holder");
    await proxy.holding();
    await rawSet({ address: server.address, key: rk, bytes: Buffer.from("new-holder"), ttlS: 60 });
    proxy.open();
    assert.equal(await renewing, false, "the old holder no longer holds it");
    assert.equal((await rawGet(server.address, rk)).toString(), "new-holder");
    assert.equal(await b.acquire(renewed, 60_000, "new-holder"), true, "the new holder renews");
  } finally {
    await slow.close();
    await proxy.close();
  }
});

/**
 * A TCP proxy to `target` that can hold the client's requests: after `holdAfter(n)`, the
 * next `n` writes pass and later ones wait until `open()`.
 */
async function gatedProxy(target: MemcachedServer) {
  const { createServer, connect } = await import("node:net");
  const sockets: import("node:net").Socket[] = [];
  let passLeft = Number.POSITIVE_INFINITY;
  let held: Array<() => void> = [];
  const proxy = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.push(client, upstream);
    client.on("error", () => {});
    upstream.on("error", () => {});
    upstream.pipe(client);
    client.on("data", (d: Buffer) => {
      if (passLeft > 0) {
        passLeft--;
        upstream.write(d);
      } else {
        held.push(() => upstream.write(d));
      }
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    port: (proxy.address() as import("node:net").AddressInfo).port,
    holdAfter(n: number) {
      passLeft = n;
    },
    /** Resolves once a write is being held (bounded: 3 s). */
    async holding() {
      await waitFor(() => held.length > 0, {
        what: "a request to be held",
        timeoutMs: 3000,
        intervalMs: 10,
      });
    },
    open() {
      passLeft = Number.POSITIVE_INFINITY;
      const release = held;
      held = [];
      for (const send of release) send();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}
