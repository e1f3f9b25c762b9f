import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { openStore } from "../../../src/cache/open-store.js";
import { StoreUnavailableError } from "../../../src/cache/stores/errors.js";
import { MemcachedStore } from "../../../src/cache/stores/memcached.js";
import { memcachedKey } from "../../../src/cache/stores/memcached-keys.js";
import { SrvLookupTimeoutError } from "../../../src/cache/stores/memcached-servers.js";
import { type DnsServer, startDnsmasq } from "../../support/dnsmasq.js";
import { type MemcachedServer, startMemcached } from "../../support/memcached.js";
import { waitFor } from "../../support/processes.js";
import { rawHas } from "./memcached-text.js";
import { capturingLogger, uniqueKey } from "./store-contract.js";

const NAME = "cache.regscan.test";
let m1: MemcachedServer;
let m2: MemcachedServer;
let m3: MemcachedServer;
let dns: DnsServer;

before(async () => {
  [m1, m2, m3] = await Promise.all([startMemcached(), startMemcached(), startMemcached()]);
  dns = await startDnsmasq([
    { name: `_memcached._tcp.${NAME}`, target: "127.0.0.1", port: m1.port },
  ]);
});
after(async () => {
  await dns?.stop();
});

test("memcached+srv: finds its servers through SRV records and follows a change (Acceptance 7)", async () => {
  const { logger, lines } = capturingLogger();
  const store = await openStore(`memcached+srv://${NAME}?dns=${dns.address}&refresh=200ms`, {
    logger,
  });
  try {
    assert.ok(store instanceof MemcachedStore);
    assert.deepEqual(store.servers(), [m1.address]);
    const first = uniqueKey("srv-before");
    await store.set(first, new Date(Date.now() + 60_000), Buffer.from("one"));
    assert.equal(await rawHas(m1.address, memcachedKey(first)), true);

    // Records now name two other servers, one by host name (resolved through the same DNS).
    await dns.setRecords(
      [
        { name: `_memcached._tcp.${NAME}`, target: "127.0.0.1", port: m2.port },
        { name: `_memcached._tcp.${NAME}`, target: "mc3.regscan.test", port: m3.port },
      ],
      { "mc3.regscan.test": "127.0.0.1" },
    );
    await waitFor(async () => store.servers().length === 2, {
      what: "the store to pick up the new SRV records",
      timeoutMs: 10_000,
    });
    assert.deepEqual(store.servers(), [m2.address, m3.address].sort());
    assert.ok(lines().some((l) => /memcached servers changed/.test(String(l.msg))));
    const spread = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const key = uniqueKey(`srv-after-${i}`);
      await store.set(key, new Date(Date.now() + 60_000), Buffer.from(String(i)));
      const where: string = store.serverOf(key)!;
      spread.add(where);
      assert.equal(await rawHas(where, memcachedKey(key)), true);
      assert.equal(await rawHas(m1.address, memcachedKey(key)), false);
      assert.equal(Buffer.from((await store.get(key))!.value).toString(), String(i));
    }
    assert.deepEqual([...spread].sort(), [m2.address, m3.address].sort());
  } finally {
    await store.close();
  }
});

test("memcached+srv: the SRV service name is configurable", async () => {
  await dns.setRecords([{ name: `_cache._tcp.${NAME}`, target: "127.0.0.1", port: m1.port }]);
  const store = (await openStore(`memcached+srv://${NAME}?service=cache`, {
    dnsServers: [dns.address],
  })) as MemcachedStore;
  try {
    assert.deepEqual(store.servers(), [m1.address]);
    const key = uniqueKey("service");
    await store.set(key, new Date(Date.now() + 60_000), Buffer.from("x"));
    assert.ok(await store.get(key));
  } finally {
    await store.close();
  }
});

test("memcached+srv: with no records, operations are STORE_UNAVAILABLE naming the store", async () => {
  const store = await openStore(
    `memcached+srv://nothing.regscan.test?dns=${dns.address}&timeout=1s`,
  );
  try {
    await assert.rejects(store.get("k"), {
      code: "STORE_UNAVAILABLE",
      message: /nothing\.regscan\.test/,
    });
  } finally {
    await store.close();
  }
});

test("memcached+srv: a DNS server that stops answering keeps the servers already known", async () => {
  const own = await startDnsmasq([
    { name: `_memcached._tcp.${NAME}`, target: "127.0.0.1", port: m2.port },
  ]);
  const { logger, lines } = capturingLogger();
  const store = (await openStore(`memcached+srv://${NAME}?dns=${own.address}&refresh=100ms`, {
    logger,
  })) as MemcachedStore;
  try {
    assert.deepEqual(store.servers(), [m2.address]);
    await own.stop();
    await waitFor(
      async () => lines().some((l) => /keeping the previous servers/.test(String(l.msg))),
      {
        what: "a failed re-resolution to be logged",
        timeoutMs: 10_000,
      },
    );
    assert.deepEqual(store.servers(), [m2.address], "the old list is kept");
    const key = uniqueKey("srv-dns-down");
    await store.set(key, new Date(Date.now() + 60_000), Buffer.from("still"));
    assert.equal(Buffer.from((await store.get(key))!.value).toString(), "still");
    assert.equal(await rawHas(m2.address, memcachedKey(key)), true);
  } finally {
    await store.close();
    await own.stop();
  }
});

test("memcached+srv: an abort is honoured while a silent DNS server is asked for servers", async () => {
  const { createSocket } = await import("node:dgram");
  // Says at first that the name does not exist (NXDOMAIN), so the store opens with no
  // servers at once instead of waiting out the resolver's timeouts (6 s); then it takes
  // queries and never answers.
  const silent = createSocket("udp4");
  let answering = true;
  let unanswered = 0;
  silent.on("message", (query, from) => {
    if (!answering) {
      unanswered++;
      return;
    }
    silent.send(nxdomain(query), from.port, from.address);
  });
  await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
  const dnsAddress = `127.0.0.1:${silent.address().port}`;
  const store = await openStore(`memcached+srv://${NAME}?dns=${dnsAddress}&refresh=1h`);
  try {
    answering = false;
    // The initial resolution found nothing; past the store's one-second gap between
    // resolutions, the next operation asks again, and is aborted.
    await new Promise((r) => setTimeout(r, 1100));
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("stop asking")), 100);
    const started = Date.now();
    await assert.rejects(store.get("k", { signal: ac.signal }), /stop asking/);
    assert.ok(Date.now() - started < 1000, `aborted after ${Date.now() - started} ms`);
    assert.ok(unanswered > 0, "the silent server was asked");
  } finally {
    await store.close();
    silent.close();
  }
});

test("memcached+srv: a silent DNS server fails the lookup at the store's timeout, naming the record", async () => {
  const { createSocket } = await import("node:dgram");
  // Takes queries and never answers, from the start: the resolver's own retries (about 6 s
  // by default) must not outlast the store's timeout=.
  const silent = createSocket("udp4");
  let queries = 0;
  silent.on("message", () => {
    queries++;
  });
  await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
  const dnsAddress = `127.0.0.1:${silent.address().port}`;
  const timeoutMs = 1000;
  const marginMs = 500;
  const opening = Date.now();
  const store = await openStore(`memcached+srv://${NAME}?dns=${dnsAddress}&timeout=1s&refresh=1h`);
  try {
    // Opening resolves once, under the same deadline.
    const openMs = Date.now() - opening;
    assert.ok(openMs < timeoutMs + marginMs, `opened after ${openMs} ms`);
    assert.ok(queries > 0, "the silent server was asked");
    // Past the one-second gap between resolutions, an operation asks again and fails at
    // the deadline with the error that says which record and how long.
    await new Promise((r) => setTimeout(r, 1100));
    const asked = queries;
    const started = Date.now();
    const err = await store.get("k").then(
      () => assert.fail("get succeeded with no servers"),
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    assert.ok(err instanceof SrvLookupTimeoutError, `got ${String(err)}`);
    assert.ok(err instanceof StoreUnavailableError, "callers that handle outages handle it");
    assert.equal(err.code, "STORE_UNAVAILABLE");
    assert.equal(err.record, `_memcached._tcp.${NAME}`);
    assert.equal(err.timeoutMs, timeoutMs);
    assert.match(err.message, /_memcached\._tcp\.cache\.regscan\.test/);
    assert.match(err.message, /1000 ms/);
    assert.ok(queries > asked, "the operation's resolution asked the server again");
    assert.ok(elapsed >= timeoutMs - 50, `failed after ${elapsed} ms, before the deadline`);
    assert.ok(elapsed < timeoutMs + marginMs, `failed after ${elapsed} ms`);
  } finally {
    await store.close();
    silent.close();
  }
});

/** The answer to a DNS `query`: its header and question, the name does not exist. */
function nxdomain(query: Buffer): Buffer {
  let end = 12;
  while (query[end]! !== 0) end += query[end]! + 1;
  const reply = Buffer.from(query.subarray(0, end + 5));
  reply[2] = 0x80 | (query[2]! & 0x79); // a response: the query's opcode and recursion flag
  reply[3] = 0x80 | 3; // recursion available; NXDOMAIN
  reply.writeUInt16BE(1, 4); // one question
  reply.fill(0, 6, 12); // no answer, authority or additional records
  return reply;
}
