/**
 * The Warmer's repository leases against the memory store: renewed while a scan runs,
 * given back when it is stopped, a lost lease stops the scan, a store that cannot grant
 * one means no scan, and one warmer never scans a repository twice at once.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { hostname } from "node:os";
import { describe, it } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { Cache } from "../../src/cache/cache.js";
import { Keys } from "../../src/cache/keys.js";
import type { Store } from "../../src/cache/store.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer, type WarmerOptions } from "../../src/cache/warmer.js";
import { parseImageName } from "../../src/image/ref.js";
import { waitFor } from "../support/wait-for.js";
import { CodedError, FakeFactory, fakeRepository } from "./support/fake-registry.js";

const APP = parseImageName("registry.test/lease/app");
const LEASE = new Keys().lease(APP);
const HOLDER = new Keys().leaseHolder(APP);

/** A process id that ran on this host and has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", ""]);
  assert.ok(child.pid && child.status === 0);
  return child.pid;
}

/** Leaves `APP`'s lease held by `owner`, with its holder record, as a warmer would. */
async function leaveLease(store: Store, owner: string, host: string, pid: number) {
  assert.ok(await store.acquire(LEASE, 5 * 60_000, owner));
  const holder = JSON.stringify({ owner, host, pid, since: Date.now() - 5000 });
  await store.set(HOLDER, new Date(Date.now() + 60_000), new TextEncoder().encode(holder));
}

/** `store` with its lease calls replaced. */
function withLeases(store: Store, acquire: Store["acquire"]): Store {
  return {
    get: (k, o) => store.get(k, o),
    getMany: (k, o) => store.getMany(k, o),
    set: (k, d, v, o) => store.set(k, d, v, o),
    acquire,
    release: (k, w, o) => store.release(k, w, o),
    ping: (o) => store.ping(o),
    close: () => store.close(),
  };
}

/** A repository whose scan takes about `tags * delayMs / burst` ms. */
function slowSetup(tags: number, delayMs: number, extra: Partial<WarmerOptions> = {}) {
  const store = new MemoryStore();
  const repo = { ...fakeRepository(APP, tags, tags), delayMs };
  const factory = new FakeFactory(new Map([[APP.toString(), repo]]));
  const warmer = new Warmer({
    store,
    factory,
    burst: 1,
    owner: "me",
    metricsRegistry: new MetricsRegistry(),
    ...extra,
  });
  return { store, factory, warmer };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Warmer leases", () => {
  it("renews the lease while a long scan runs, and gives it back at the end", async () => {
    const { store, warmer } = slowSetup(28, 50, { leaseTtlMs: 2000 });
    const scanning = warmer.scan([{ name: APP }]);
    // Renewed every 1 s: without renewal the 2 s lease would be free again by now.
    await sleep(2600);
    assert.equal(await store.acquire(LEASE, 60_000, "other"), false, "still held at 2.6 s");
    const [r] = await scanning;
    assert.equal(r?.outcome, "scanned");
    assert.equal(await store.acquire(LEASE, 60_000, "other"), true, "released after the scan");
  });

  it("gives the lease back when the scan is stopped", async () => {
    const { store, factory, warmer } = slowSetup(40, 20);
    const stop = new AbortController();
    const scanning = warmer.scan([{ name: APP }], { signal: stop.signal });
    await waitFor(() => factory.counts(APP.toString()).head >= 3, {
      what: "the scan to be under way",
      timeoutMs: 5000,
      intervalMs: 5,
    });
    stop.abort();
    const [r] = await scanning;
    assert.equal(r?.outcome, "aborted");
    assert.equal(await store.acquire(LEASE, 60_000, "other"), true);
  });

  it("stops the scan and leaves the record alone when another warmer took the lease", async () => {
    const inner = new MemoryStore();
    let calls = 0;
    // Granted once, then "someone else has it" at the first renewal.
    const store = withLeases(inner, async () => ++calls === 1);
    const repo = { ...fakeRepository(APP, 60, 60), delayMs: 40 };
    const factory = new FakeFactory(new Map([[APP.toString(), repo]]));
    const warmer = new Warmer({
      store,
      factory,
      burst: 1,
      leaseTtlMs: 1000,
      metricsRegistry: new MetricsRegistry(),
    });
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(r?.outcome, "failed");
    assert.equal(r?.error?.code, "LEASE_LOST");
    assert.ok(factory.counts(APP.toString()).head < 60, "stopped before the end");
    assert.equal(factory.counts(APP.toString()).succeeded, 0);
    const cache = new Cache({ store: inner, metricsRegistry: new MetricsRegistry() });
    assert.equal(await cache.repositoryRecord(APP), undefined, "the new holder writes it");
  });

  it("does not scan when the store cannot grant the lease", async () => {
    const inner = new MemoryStore();
    const store = withLeases(inner, async () => {
      throw new CodedError("STORE_UNAVAILABLE", "connection refused");
    });
    const factory = new FakeFactory(new Map([[APP.toString(), fakeRepository(APP, 3, 1)]]));
    const warmer = new Warmer({ store, factory, metricsRegistry: new MetricsRegistry() });
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(r?.outcome, "failed");
    assert.equal(r?.error?.code, "STORE_ERROR");
    assert.match(r?.error?.message ?? "", /lease.*connection refused/);
    assert.equal(factory.counts(APP.toString()).tags, 0, "no registry request");
  });

  it("never scans one repository twice at once in one warmer", async () => {
    const { factory, warmer } = slowSetup(5, 20);
    const [[a], [b]] = await Promise.all([
      warmer.scan([{ name: APP }]),
      warmer.scan([{ name: APP }]),
    ]);
    assert.deepEqual([a?.outcome, b?.outcome].sort(), ["scanned", "skipped-lease"]);
    assert.equal(factory.counts(APP.toString()).tags, 1);
  });

  it("takes over at once a lease left by a process of this host that no longer runs", async () => {
    const { store, factory, warmer } = slowSetup(3, 0);
    await leaveLease(store, "killed-scan", hostname(), deadPid());
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(r?.outcome, "scanned");
    assert.equal(factory.counts(APP.toString()).tags, 1);
    assert.equal(await store.acquire(LEASE, 60_000, "other"), true, "released after the scan");
  });

  it("leaves alone a lease of a live process, or of another host, and says who holds it", async () => {
    for (const [host, pid] of [
      [hostname(), process.pid],
      ["another-host.example", deadPid()],
    ] as const) {
      const { store, factory, warmer } = slowSetup(3, 0);
      await leaveLease(store, "busy-scan", host, pid);
      const [r] = await warmer.scan([{ name: APP }]);
      assert.equal(r?.outcome, "skipped-lease", host);
      assert.deepEqual([r?.leaseHolder?.host, r?.leaseHolder?.pid], [host, pid]);
      assert.equal(factory.counts(APP.toString()).tags, 0, "no registry request");
    }
  });
});
