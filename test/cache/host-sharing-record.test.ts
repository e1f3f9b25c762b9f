/**
 * What replicas learn together of how often a host's tags share images (issue 13,
 * acceptance 4: three replicas must not each pay the learning). Two replicas are two
 * HostSharing + HostSharingSync pairs on two clients of one real Redis and one real
 * memcached: what one learns, the other starts from; their records merge; a record that does
 * not decode, and a store that does not answer, leave a replica learning on its own, with a
 * warning, never an error.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pino, { type Logger } from "pino";
import {
  decodeHostSharing,
  encodeHostSharing,
  HostSharingSync,
  PUBLISH_EVERY_MS,
  RECORD_REPOSITORIES,
  REFRESH_MS,
  STORE_TIMEOUT_MS,
} from "../../src/cache/host-sharing-record.js";
import { Keys } from "../../src/cache/keys.js";
import {
  HostSharing,
  NewTagFetchPlan,
  PARTIAL_RECORD_EVERY,
  SHARING_SAMPLE,
} from "../../src/cache/new-tag-fetch.js";
import { openStore } from "../../src/cache/open-store.js";
import type { Store } from "../../src/cache/store.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { type MemcachedServer, startMemcached } from "../support/memcached.js";
import { type RedisServer, startRedis } from "../support/redis.js";
import { waitFor } from "../support/wait-for.js";
import { capturingLogger } from "./stores/store-contract.js";
import { countingStore } from "./support/counting-store.js";

const digest = (i: number) => `sha256:${i.toString(16).padStart(64, "0")}`;
let run = 0;

/** One replica's view: its sharing, kept in step through its own store client. */
function replica(store: Store, keys: Keys, now?: () => number) {
  const log = capturingLogger();
  const sharing = new HostSharing();
  const sync = new HostSharingSync({
    store,
    keys,
    sharing,
    // capturingLogger is a pino logger typed as the stores' narrower logger.
    logger: log.logger as Logger,
    now: now ?? Date.now,
  });
  return { sharing, sync, log };
}

/** A scan of `tags` new tags of which every `every`-th shares the previous one's image. */
function scan(sharing: HostSharing, host: string, repository: string, tags: number, every = 0) {
  const plan = new NewTagFetchPlan({
    host,
    repository,
    pullQuota: () => false,
    indexDigests: () => [],
    history: sharing,
  });
  for (let i = 0; i < tags; i++) {
    plan.chooseHeadFirst();
    plan.observe(digest(every > 0 && i % every === 1 ? i - 1 : i));
  }
  plan.finish();
}

for (const kind of ["redis", "memcached"] as const) {
  describe(`host sharing records on ${kind}`, () => {
    let redis: RedisServer | undefined;
    let memcached: MemcachedServer | undefined;
    let url: string;
    const stores: Store[] = [];
    const open = async () => {
      const store = await openStore(url);
      stores.push(store);
      return store;
    };

    before(async () => {
      if (kind === "redis") {
        redis = await startRedis();
        url = redis.url;
      } else {
        memcached = await startMemcached();
        url = `memcached://${memcached.address}`;
      }
    });
    after(async () => {
      await Promise.all(stores.map((s) => s.close()));
      await redis?.stop();
      await memcached?.stop();
    });
    const fresh = () => new Keys(`regscan:test:${process.pid}:${++run}:v2:`);

    it("a replica that meets a host starts from what another replica learnt of it", async () => {
      const keys = fresh();
      const host = "ghcr.example";
      const a = replica(await open(), keys);
      const b = replica(await open(), keys);
      await a.sync.ready(host);
      // Distinct images: A's two scans show that GET first pays on this host.
      scan(a.sharing, host, "ghcr.example/team/one", 20);
      scan(a.sharing, host, "ghcr.example/team/two", 20);
      await a.sync.settle();
      assert.equal(a.sharing.prior(host), 0);

      assert.equal(b.sharing.prior(host), undefined, "B has learnt nothing by itself");
      await b.sync.ready(host);
      assert.equal(b.sharing.prior(host), 0);
      // So B's first new tag of a new repository on the host is fetched with one GET.
      const plan = new NewTagFetchPlan({
        host,
        repository: "ghcr.example/team/three",
        pullQuota: () => false,
        indexDigests: () => [],
        history: b.sharing,
      });
      assert.equal(plan.chooseHeadFirst(), false);
      assert.deepEqual(
        [...a.log.lines(), ...b.log.lines()].filter((l) => Number(l.level) >= 40),
        [],
      );
    });

    it("records merge: each replica's repositories end up in the record, the other adopts them", async () => {
      const keys = fresh();
      const host = "quay.example";
      let clock = 0;
      const a = replica(await open(), keys, () => clock);
      const b = replica(await open(), keys, () => clock);
      await Promise.all([a.sync.ready(host), b.sync.ready(host)]);
      // A sees a repository whose tags all share images, B one whose tags share none.
      scan(a.sharing, host, "quay.example/x/shared", 32, 2);
      await a.sync.settle();
      scan(b.sharing, host, "quay.example/y/distinct", 32);
      await b.sync.settle();

      const entry = await stores[stores.length - 1]?.get(keys.hostSharing(host));
      assert.ok(entry, "the record is written");
      const names = decodeHostSharing(entry.value)?.map((e) => e.repository);
      assert.deepEqual(names?.sort(), ["quay.example/x/shared", "quay.example/y/distinct"]);
      // B merged A's before writing: its prior is over both.
      const both = b.sharing.prior(host);
      assert.equal(both, 0.25, "a quarter of the tags seen repeat an earlier tag's image");

      // A knows only its own repository. Its own is not its prior for that repository, so a
      // choice there misses; a read follows only once REFRESH_MS has passed since the last.
      assert.equal(a.sharing.prior(host, "quay.example/x/shared"), undefined);
      await a.sync.settle();
      assert.equal(a.sharing.prior(host, "quay.example/x/shared"), undefined, "read too soon");
      clock += REFRESH_MS;
      assert.equal(a.sharing.prior(host, "quay.example/x/shared"), undefined);
      await a.sync.settle();
      assert.equal(a.sharing.prior(host, "quay.example/x/shared"), 0, "B's repository adopted");
      // A's own scan of its repository stays its own word on it.
      const own = a.sharing.entries(host).find((e) => e.repository === "quay.example/x/shared");
      assert.equal(own?.repeats, SHARING_SAMPLE / 2);
    });

    it("a record that does not decode is ignored with a warning, then written over", async () => {
      const keys = fresh();
      const host = "harbor.example";
      const store = await open();
      await store.set(
        keys.hostSharing(host),
        new Date(Date.now() + 60_000),
        new TextEncoder().encode('{"v":2,"repositories":[["r",1e9,-1]]}'),
      );
      const a = replica(store, keys);
      await a.sync.ready(host);
      assert.equal(a.sharing.prior(host), undefined);
      const warnings = a.log.lines().filter((l) => l.level === 40);
      assert.equal(warnings.length, 1);
      assert.match(String(warnings[0]?.msg), /does not decode/);

      scan(a.sharing, host, "harbor.example/p/r", 40);
      await a.sync.settle();
      const entry = await store.get(keys.hostSharing(host));
      assert.ok(entry);
      assert.deepEqual(decodeHostSharing(entry.value), [
        { repository: "harbor.example/p/r", tags: SHARING_SAMPLE, repeats: 0 },
      ]);
    });

    it("a store that does not answer leaves the replica learning on its own, within the bound", async () => {
      const keys = fresh();
      const host = "ecr.example";
      const a = replica(await open(), keys);
      await a.sync.ready(host);
      await (redis ?? memcached)?.stop();
      try {
        const started = performance.now();
        scan(a.sharing, host, "ecr.example/a/b", 40);
        // A host met while the store is down: its first scan waits no longer than the bound.
        await Promise.all([a.sync.settle(), a.sync.ready("other.example")]);
        const took = performance.now() - started;
        assert.ok(took < STORE_TIMEOUT_MS * 3, `took ${took} ms`);
        assert.equal(a.sharing.prior(host), 0, "its own learning is kept");
        const warned = a.log.lines().filter((l) => l.level === 40);
        assert.ok(
          warned.some((l) => /could not write/.test(String(l.msg))),
          "the write failure is logged",
        );
        assert.ok(
          warned.some((l) => /could not read/.test(String(l.msg))),
          "the read failure is logged",
        );
        await a.sync.close();
      } finally {
        await (redis ?? memcached)?.start();
      }
    });
  });
}

describe("host sharing record values", () => {
  it("round-trip; counts out of range, other layouts and garbage are refused whole", () => {
    const entries = [
      { repository: "r/a", tags: 32, repeats: 16 },
      { repository: "r/b", tags: 3, repeats: 0 },
    ];
    assert.deepEqual(decodeHostSharing(encodeHostSharing(entries)), entries);
    const bad = [
      "not json",
      "null",
      '{"v":3,"repositories":[]}',
      '{"v":2,"repositories":[["r/a",33,0]]}',
      '{"v":2,"repositories":[["r/a",4,5]]}',
      '{"v":2,"repositories":[["",4,1]]}',
      '{"v":2,"repositories":[["r/a","4",1]]}',
      `{"v":2,"repositories":${JSON.stringify(
        Array.from({ length: RECORD_REPOSITORIES + 1 }, (_, i) => [`r/${i}`, 1, 0]),
      )}}`,
    ];
    for (const text of bad) {
      assert.equal(decodeHostSharing(new TextEncoder().encode(text)), undefined, text);
    }
    assert.equal(decodeHostSharing(new Uint8Array([0xff, 0xfe])), undefined);
    // The first layout counted tags on an image any other tag has: read as nothing, no warning.
    const first = '{"v":1,"repositories":[["r/a",32,32]]}';
    assert.deepEqual(decodeHostSharing(new TextEncoder().encode(first)), []);
  });

  it("a scan tells its host (and so the listener) as it takes its sample, before it ends", () => {
    const sharing = new HostSharing();
    const changes: string[] = [];
    sharing.listen({ miss: () => {}, change: (host) => changes.push(host) });
    const plan = new NewTagFetchPlan({
      host: "h",
      repository: "h/r",
      pullQuota: () => false,
      indexDigests: () => [],
      history: sharing,
    });
    for (let i = 0; i < PARTIAL_RECORD_EVERY - 1; i++) plan.observe(digest(i));
    assert.deepEqual(changes, []);
    plan.observe(digest(PARTIAL_RECORD_EVERY));
    assert.deepEqual(changes, ["h"]);
    assert.equal(sharing.entries("h")[0]?.tags, PARTIAL_RECORD_EVERY);
    for (let i = PARTIAL_RECORD_EVERY; i < SHARING_SAMPLE + 10; i++) plan.observe(digest(100 + i));
    const times = SHARING_SAMPLE / PARTIAL_RECORD_EVERY;
    assert.equal(changes.length, times, "every few tags until the sample, then no more");
    assert.equal(sharing.prior("h"), 0);
    plan.finish();
    assert.equal(changes.length, times + 1);
    assert.equal(sharing.entries("h").length, 1, "one entry per repository");
  });

  it("once a host is known its record is written at most once a PUBLISH_EVERY_MS; settle writes what waits", async () => {
    const { store, log } = countingStore(new MemoryStore());
    const keys = new Keys("regscan:test:publish:v2:");
    const host = "spaced.example";
    const sharing = new HostSharing();
    const sync = new HostSharingSync({ store, keys, sharing, logger: pino({ level: "silent" }) });
    const writes = () => log.sets.filter((k) => k === keys.hostSharing(host)).length;
    try {
      await sync.ready(host);
      // Learning (fewer than twice a sample's tags): every change is written at once.
      scan(sharing, host, `${host}/a`, SHARING_SAMPLE);
      await sync.settle();
      assert.ok(writes() >= 1, "written as the sample was taken");
      scan(sharing, host, `${host}/b`, SHARING_SAMPLE);
      await sync.settle();
      // Known now: scans 10 ms apart (each its own write before) make one write at most
      // within the second; the rest waits.
      const known = writes();
      const started = performance.now();
      for (let r = 0; r < 20; r++) {
        scan(sharing, host, `${host}/c${r}`, 10);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // (A loaded machine may stretch the 200 ms: one more write per second it took.)
      const allowed = 1 + Math.floor((performance.now() - started) / PUBLISH_EVERY_MS);
      assert.ok(writes() - known <= allowed, `writes while held back: ${writes() - known}`);
      await sync.settle();
      const record = await store.get(keys.hostSharing(host));
      const names = decodeHostSharing(record?.value ?? new Uint8Array())?.map((e) => e.repository);
      assert.equal(names?.length, 22, "settle wrote every repository counted");
      // Without settle, the held-back write is made by its timer.
      const settled = writes();
      scan(sharing, host, `${host}/late`, 10);
      scan(sharing, host, `${host}/later`, 10);
      await waitFor(() => writes() > settled, { what: "the timer's write", timeoutMs: 3000 });
    } finally {
      await sync.close();
    }
  });
});
