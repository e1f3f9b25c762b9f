/**
 * The behaviour every Store must show, run by each store's test file against its real
 * server: round trips with deadlines, misses, batched reads (getMany), leases between two
 * clients, prefix isolation, undecodable values as misses with a warning, aborts.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import pino from "pino";
import { Keys } from "../../../src/cache/keys.js";
import { type Store, setEach } from "../../../src/cache/store.js";
import type { StoreLogger } from "../../../src/cache/stores/options.js";
import { parseImageName } from "../../../src/image/ref.js";
import { waitFor } from "../../support/wait-for.js";

/** A pino logger that keeps what it logs, for asserting on warnings. */
export function capturingLogger(): {
  logger: StoreLogger;
  lines: () => Array<Record<string, unknown>>;
} {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString("utf8"));
      done();
    },
  });
  const logger = pino({ level: "debug" }, stream);
  return {
    logger,
    lines: () =>
      lines
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface ContractSubject {
  /** Two independent clients of one store (two replicas). */
  a: Store;
  b: Store;
  /** What `a` logs. */
  logs: () => Array<Record<string, unknown>>;
  /** Writes bytes straight into the store under `key`, bypassing the envelope. */
  writeRaw(key: string, bytes: Buffer): Promise<void>;
  /** The lease TTL granularity of the store, in ms (memcached: whole seconds). */
  leaseTtlMs: number;
  /**
   * How much longer than its TTL a lease may live (default: its TTL). memcached adds two
   * seconds for its coarse clock, on top of its whole-second granularity.
   */
  leaseSlackMs?: number;
}

/** What the contract registration needs to know before the stores exist. */
export interface ContractTraits {
  /** A getMany already running can be aborted (every store but memory, which answers at once). */
  abortsWhileRunning: boolean;
  /**
   * The store has `acquireAndSet`, `acquireAndGet` and `setAndRelease` (Redis on one node):
   * each checked.
   */
  leaseWrites?: boolean;
}

let counter = 0;
/** A key unique to this process and call, so contract runs never see each other's data. */
export function uniqueKey(label: string): string {
  return `regscan:test:${process.pid}:${Date.now()}:${++counter}:${label}`;
}

/** Registers the shared contract tests for one store. */
export function storeContract(
  name: string,
  subject: () => ContractSubject,
  traits: ContractTraits = { abortsWhileRunning: true },
): void {
  test(`${name}: a key never written is a miss`, async () => {
    assert.equal(await subject().a.get(uniqueKey("none")), undefined);
  });

  test(`${name}: set then get returns the value and the deadline, from another client too`, async () => {
    const { a, b } = subject();
    const key = uniqueKey("rt");
    const deadline = new Date(Date.now() + 3_600_000 + 123);
    const value = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await a.set(key, deadline, value);
    for (const s of [a, b]) {
      const got = await s.get(key);
      assert.ok(got, "written value is read back");
      assert.deepEqual(Buffer.from(got.value), value);
      assert.equal(got.deadline.getTime(), deadline.getTime());
    }
  });

  test(`${name}: a value past its deadline is still served, and overwrites replace`, async () => {
    const { a } = subject();
    const key = uniqueKey("past");
    await a.set(key, new Date(Date.now() - 60_000), Buffer.from("old"));
    const past = await a.get(key);
    assert.equal(Buffer.from(past!.value).toString(), "old");
    assert.ok(past!.deadline.getTime() < Date.now());
    const next = new Date(Date.now() + 10_000);
    await a.set(key, next, new Uint8Array());
    const got = await a.get(key);
    assert.equal(got!.value.byteLength, 0);
    assert.equal(got!.deadline.getTime(), next.getTime());
  });

  test(`${name}: setMany (or set per value) writes every value with its deadline, in order`, async () => {
    const { a, b } = subject();
    const base = Date.now() + 3_600_000;
    const writes = Array.from({ length: 40 }, (_, i) => ({
      key: uniqueKey(`many-${i}`),
      deadline: new Date(base + i * 1000 + 7),
      // Some values larger than a socket write, so that a batch spans several.
      value: Buffer.alloc(i % 5 === 0 ? 200_000 : 10 + i, i),
    }));
    const first = writes[0] as (typeof writes)[number];
    // The same key again later in the call: the later value wins.
    const again = { key: first.key, deadline: new Date(base - 5000), value: Buffer.from("last") };
    await setEach(a, [...writes, again], { limit: 4 });
    const got = await b.getMany(writes.map((w) => w.key));
    got.forEach((entry, i) => {
      const w = writes[i] as (typeof writes)[number];
      const want = i === 0 ? again : w;
      assert.ok(entry, `value ${i} is read back`);
      assert.deepEqual(Buffer.from(entry.value), want.value);
      assert.equal(entry.deadline.getTime(), want.deadline.getTime());
    });
    await setEach(a, [], { limit: 4 });
  });

  test(`${name}: a value written with keepMs is gone after it, not an hour later`, async () => {
    const { a, b } = subject();
    const key = uniqueKey("keep");
    await a.set(key, new Date(Date.now() + 3_600_000), Buffer.from("brief"), { keepMs: 1_000 });
    assert.equal(Buffer.from((await b.get(key))!.value).toString(), "brief");
    // memcached counts expiry in whole seconds: gone within two.
    await waitFor(async () => (await b.get(key)) === undefined, {
      what: "the value to expire",
      timeoutMs: 4_000,
      intervalMs: 100,
    });
  });

  test(`${name}: a write with an Invalid Date deadline is refused and stores nothing`, async () => {
    const { a } = subject();
    const key = uniqueKey("nan-deadline");
    await assert.rejects(a.set(key, new Date(Number.NaN), Buffer.from("x")), {
      code: "INVALID_DEADLINE",
    });
    assert.equal(await a.get(key), undefined);
  });

  test(`${name}: leases are exclusive between clients, renewable by the holder`, async () => {
    const { a, b } = subject();
    const key = uniqueKey("lease");
    assert.equal(await a.acquire(key, 60_000, "replica-a"), true);
    assert.equal(await b.acquire(key, 60_000, "replica-b"), false);
    assert.equal(await a.acquire(key, 60_000, "replica-a"), true, "holder renews");
    await b.release(key, "replica-b");
    assert.equal(await b.acquire(key, 60_000, "replica-b"), false, "non-holder cannot release");
    await a.release(key, "replica-a");
    assert.equal(await b.acquire(key, 60_000, "replica-b"), true);
    assert.equal(await a.acquire(key, 60_000, "replica-a"), false);
    await b.release(key, "replica-b");
  });

  if (traits.leaseWrites) {
    test(`${name}: acquireAndSet writes the value only with the lease`, async () => {
      const { a, b } = subject();
      assert.ok(a.acquireAndSet && b.acquireAndSet, "the store has acquireAndSet");
      const lease = uniqueKey("lease-and-set");
      const beside = uniqueKey("beside");
      const deadline = new Date(Date.now() + 60_000);
      const write = (who: string) => ({ key: beside, deadline, value: Buffer.from(who) });
      const holding = async () => Buffer.from((await b.get(beside))?.value ?? []).toString();
      const take = (s: Store, who: string) =>
        (s.acquireAndSet as NonNullable<Store["acquireAndSet"]>)(
          { key: lease, ttlMs: 60_000, owner: who },
          write(who),
        );
      assert.equal(await take(a, "replica-a"), true);
      assert.equal(await holding(), "replica-a");
      assert.equal((await b.get(beside))?.deadline.getTime(), deadline.getTime());
      assert.equal(await take(b, "replica-b"), false, "held by another: not taken");
      assert.equal(await holding(), "replica-a", "nor its value written");
      assert.equal(await b.acquire(lease, 60_000, "replica-b"), false, "a plain acquire agrees");
      assert.equal(await take(a, "replica-a"), true, "the holder renews");
      await a.release(lease, "replica-a");
      assert.equal(await take(b, "replica-b"), true);
      assert.equal(await holding(), "replica-b");
      await b.release(lease, "replica-b");
    });

    test(`${name}: acquireAndGet reads the value, with the lease or without it`, async () => {
      const { a, b } = subject();
      assert.ok(a.acquireAndGet && b.acquireAndGet, "the store has acquireAndGet");
      const lease = uniqueKey("lease-and-get");
      const record = uniqueKey("record");
      const take = (s: Store, who: string) =>
        (s.acquireAndGet as NonNullable<Store["acquireAndGet"]>)(
          { key: lease, ttlMs: 60_000, owner: who },
          record,
        );
      assert.deepEqual(await take(a, "replica-a"), { taken: true, entry: undefined }, "a miss");
      const deadline = new Date(Date.now() + 60_000);
      await a.set(record, deadline, Buffer.from("v1"));
      const held = await take(b, "replica-b");
      assert.equal(held.taken, false, "held by another: not taken");
      assert.equal(Buffer.from(held.entry?.value ?? []).toString(), "v1", "but read");
      assert.equal(held.entry?.deadline.getTime(), deadline.getTime());
      assert.equal((await take(a, "replica-a")).taken, true, "the holder renews");
      assert.equal(await b.acquire(lease, 60_000, "replica-b"), false, "a plain acquire agrees");
      await a.release(lease, "replica-a");
      const taken = await take(b, "replica-b");
      assert.equal(taken.taken, true);
      assert.equal(Buffer.from(taken.entry?.value ?? []).toString(), "v1");
      await b.release(lease, "replica-b");
    });

    test(`${name}: setAndRelease writes the value, then gives back the lease only if its owner's`, async () => {
      const { a, b } = subject();
      assert.ok(a.setAndRelease && b.setAndRelease, "the store has setAndRelease");
      const lease = uniqueKey("set-and-release");
      const record = uniqueKey("record");
      const deadline = new Date(Date.now() + 60_000);
      const write = (v: string) => ({ key: record, deadline, value: Buffer.from(v) });
      const read = async () => Buffer.from((await a.get(record))?.value ?? []).toString();
      assert.equal(await b.acquire(lease, 60_000, "replica-b"), true);
      await a.setAndRelease(write("by-a"), { key: lease, owner: "replica-a" });
      assert.equal(await read(), "by-a");
      assert.equal(await a.acquire(lease, 60_000, "replica-a"), false, "b's lease is kept");
      await b.setAndRelease(write("by-b"), { key: lease, owner: "replica-b" });
      assert.equal(await read(), "by-b");
      assert.equal((await a.get(record))?.deadline.getTime(), deadline.getTime());
      assert.equal(await a.acquire(lease, 60_000, "replica-a"), true, "given back by its owner");
      await a.release(lease, "replica-a");
    });
  }

  test(`${name}: a lease expires after its TTL`, async () => {
    const { a, b, leaseTtlMs, leaseSlackMs = leaseTtlMs } = subject();
    const key = uniqueKey("lease-ttl");
    assert.equal(await a.acquire(key, leaseTtlMs, "replica-a"), true);
    assert.equal(await b.acquire(key, 60_000, "replica-b"), false);
    // Free again by its TTL and the store's slack, asked until it is.
    await waitFor(() => b.acquire(key, 60_000, "replica-b"), {
      what: "the lease to expire",
      timeoutMs: leaseTtlMs + leaseSlackMs + 200,
    });
  });

  test(`${name}: key prefixes keep deployments apart`, async () => {
    const { a } = subject();
    const image = parseImageName(`localhost:5000/team/app${++counter}`);
    const prod = new Keys(`prod:${process.pid}:`);
    const staging = new Keys(`staging:${process.pid}:`);
    assert.notEqual(prod.repository(image), staging.repository(image));
    const deadline = new Date(Date.now() + 60_000);
    await a.set(prod.repository(image), deadline, Buffer.from("prod"));
    await a.set(staging.tag(image, "v1"), deadline, Buffer.from("staging"));
    assert.equal(await a.get(staging.repository(image)), undefined);
    assert.equal(Buffer.from((await a.get(prod.repository(image)))!.value).toString(), "prod");
    assert.equal(await a.get(prod.tag(image, "v1")), undefined);
  });

  test(`${name}: a value that does not decode is a miss with a warning`, async () => {
    const { a, writeRaw, logs } = subject();
    const key = uniqueKey("garbage");
    await writeRaw(key, Buffer.from("not an envelope at all"));
    assert.equal(await a.get(key), undefined);
    const warned = logs().some(
      (l) => l.level === 40 && l.key === key && /does not decode/.test(String(l.msg)),
    );
    assert.ok(warned, "a warning names the key");
    // Written properly again, it reads back.
    await a.set(key, new Date(Date.now() + 1000), Buffer.from("ok"));
    assert.equal(Buffer.from((await a.get(key))!.value).toString(), "ok");
  });

  test(`${name}: an aborted signal rejects with its reason`, async () => {
    const { a } = subject();
    const ac = new AbortController();
    ac.abort(new Error("stop now"));
    await assert.rejects(a.get(uniqueKey("abort"), { signal: ac.signal }), /stop now/);
    await assert.rejects(
      a.set(uniqueKey("abort"), new Date(), Buffer.from("x"), { signal: ac.signal }),
      /stop now/,
    );
  });

  test(`${name}: getMany answers in the order of the keys, misses and duplicates included`, async () => {
    const { a, b } = subject();
    const keys = Array.from({ length: 6 }, (_, i) => uniqueKey(`many-${i}`));
    const deadlines = keys.map((_, i) => new Date(Date.now() + 3_600_000 + i * 1000 + 7));
    // Even-numbered keys are written; odd ones stay misses.
    for (let i = 0; i < keys.length; i += 2) {
      await a.set(keys[i]!, deadlines[i]!, Buffer.from(`value-${i}`));
    }
    const asked = [keys[4]!, keys[1]!, keys[0]!, keys[4]!, keys[3]!, keys[2]!, keys[5]!];
    for (const s of [a, b]) {
      const got = await s.getMany(asked);
      assert.equal(got.length, asked.length, "one answer per key asked");
      const expected = [4, undefined, 0, 4, undefined, 2, undefined];
      got.forEach((entry, i) => {
        const want = expected[i];
        if (want === undefined) {
          assert.equal(entry, undefined, `answer ${i} is a miss`);
          return;
        }
        assert.ok(entry, `answer ${i} is a hit`);
        assert.equal(Buffer.from(entry.value).toString(), `value-${want}`, `answer ${i}`);
        assert.equal(entry.deadline.getTime(), deadlines[want]!.getTime(), `deadline ${i}`);
      });
      // Each answer is what get says for the same key.
      for (const [i, key] of asked.entries()) {
        assert.deepEqual(got[i], await s.get(key), `getMany and get agree on ${key}`);
      }
    }
  });

  test(`${name}: getMany of no keys is an empty list`, async () => {
    assert.deepEqual(await subject().a.getMany([]), []);
  });

  test(`${name}: getMany over several batches returns every value (2,500 keys, 1 in 5 a miss)`, async () => {
    const { a, b } = subject();
    const base = uniqueKey("batch");
    const keys = Array.from({ length: 2500 }, (_, i) => `${base}:tag:v${i}`);
    const deadline = new Date(Date.now() + 7_200_000);
    const written = keys.filter((_, i) => i % 5 !== 3);
    await forEachInBatches(written, 64, (key) =>
      a.set(key, deadline, Buffer.from(`{"tag":"${key}"}`)),
    );
    const got = await b.getMany(keys);
    assert.equal(got.length, keys.length);
    let hits = 0;
    got.forEach((entry, i) => {
      if (i % 5 === 3) {
        assert.equal(entry, undefined, `key ${i} was never written`);
        return;
      }
      hits++;
      assert.equal(Buffer.from(entry!.value).toString(), `{"tag":"${keys[i]}"}`, `key ${i}`);
      assert.equal(entry!.deadline.getTime(), deadline.getTime());
    });
    assert.equal(hits, written.length);
  });

  test(`${name}: getMany treats a value that does not decode as a miss, with a warning`, async () => {
    const { a, writeRaw, logs } = subject();
    const good = uniqueKey("many-good");
    const bad = uniqueKey("many-garbage");
    await a.set(good, new Date(Date.now() + 60_000), Buffer.from("fine"));
    await writeRaw(bad, Buffer.from("RSC\u0009 not one of ours"));
    const [badEntry, goodEntry] = await a.getMany([bad, good]);
    assert.equal(badEntry, undefined);
    assert.equal(Buffer.from(goodEntry!.value).toString(), "fine");
    const warned = logs().some(
      (l) => l.level === 40 && l.key === bad && /does not decode/.test(String(l.msg)),
    );
    assert.ok(warned, "a warning names the key");
  });

  test(`${name}: getMany with an aborted signal rejects with its reason`, async () => {
    const { a } = subject();
    const key = uniqueKey("many-abort");
    await a.set(key, new Date(Date.now() + 60_000), Buffer.from("x"));
    const ac = new AbortController();
    ac.abort(new Error("stop the batch"));
    await assert.rejects(a.getMany([key, uniqueKey("x")], { signal: ac.signal }), /stop the batch/);
    await assert.rejects(a.getMany([], { signal: ac.signal }), /stop the batch/);
  });

  // The memory store answers before an abort can come; the others read in batches.
  if (traits.abortsWhileRunning) {
    test(`${name}: getMany aborted while it runs rejects with the reason`, async () => {
      const { a } = subject();
      const keys = Array.from({ length: 3000 }, (_, i) => uniqueKey(`many-abort-${i}`));
      const ac = new AbortController();
      const reading = a.getMany(keys, { signal: ac.signal });
      ac.abort(new Error("stopped midway"));
      await assert.rejects(reading, /stopped midway/);
    });
  }

  test(`${name}: ping answers`, async () => {
    await subject().a.ping();
    await subject().b.ping();
  });
}

/**
 * The outage half of Acceptance 3: with its server stopped, every operation of `store`
 * fails with STORE_UNAVAILABLE, fast (a write's message naming the server at `address`).
 */
export async function assertFailsFast(outage: {
  store: Store;
  key: string;
  /** A regular expression the failed write's message must match: the server's address. */
  address: string;
  /** Whether `release` is checked to fail too. */
  release?: boolean | undefined;
}): Promise<void> {
  const { store, key, address } = outage;
  const started = Date.now();
  await assert.rejects(store.get(key), { code: "STORE_UNAVAILABLE" });
  await assert.rejects(store.set(key, new Date(), Buffer.from("during")), {
    code: "STORE_UNAVAILABLE",
    message: new RegExp(address),
  });
  await assert.rejects(store.acquire(key, 1000, "me"), { code: "STORE_UNAVAILABLE" });
  if (outage.release) {
    await assert.rejects(store.release(key, "me"), { code: "STORE_UNAVAILABLE" });
  }
  await assert.rejects(store.ping(), { code: "STORE_UNAVAILABLE" });
  await assert.rejects(store.getMany([key, uniqueKey("outage-2")]), {
    code: "STORE_UNAVAILABLE",
  });
  assert.ok(Date.now() - started < 10_000, `failed within ${Date.now() - started} ms`);
}

/**
 * The recovery half: once the restarted (empty) server answers, within `tries` polls
 * 100 ms apart, `key` is a miss and writes and reads work again.
 */
export async function assertRecovers(store: Store, key: string, tries: number): Promise<void> {
  let got: Awaited<ReturnType<Store["get"]>> | "error" = "error";
  for (let i = 0; i < tries && got === "error"; i++) {
    got = await store.get(key).catch(() => "error" as const);
    if (got === "error") await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(got, undefined, "the server restarted empty (nothing saved)");
  await store.set(key, new Date(Date.now() + 60_000), Buffer.from("after"));
  assert.equal(Buffer.from((await store.get(key))!.value).toString(), "after");
  const [after] = await store.getMany([key]);
  assert.equal(Buffer.from(after!.value).toString(), "after");
}

/** Runs `fn` over `items`, `size` at a time (test setup: quick, bounded writes). */
async function forEachInBatches<T>(
  items: readonly T[],
  size: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  for (let at = 0; at < items.length; at += size) {
    await Promise.all(items.slice(at, at + size).map(fn));
  }
}
