/**
 * The Warmer's semantics against a scripted client and the memory store: HEAD first, one
 * fetch per digest, tag filters, 429 and MANIFEST_UNKNOWN, leases, stops, store failures.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { Cache } from "../../src/cache/cache.js";
import { bucketOf } from "../../src/cache/index-records.js";
import { Keys } from "../../src/cache/keys.js";
import type { Store } from "../../src/cache/store.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer, type WarmerOptions } from "../../src/cache/warmer.js";
import type { TagEvent } from "../../src/cache/warmer-types.js";
import { parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { waitFor } from "../support/wait-for.js";
import {
  CodedError,
  FakeClock,
  FakeFactory,
  type FakeRepository,
  fakeDigest,
  fakeRepository,
} from "./support/fake-registry.js";

const HOUR = 3_600_000;
const APP = parseImageName("registry.test/team/app");
const LIB = parseImageName("registry.test/team/lib");

function setup(repos: Record<string, FakeRepository>, extra: Partial<WarmerOptions> = {}) {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const factory = new FakeFactory(new Map(Object.entries(repos)));
  const metricsRegistry = new MetricsRegistry();
  const warmer = new Warmer({
    store,
    factory,
    now: clock.now,
    metricsRegistry,
    burst: 4,
    ...extra,
  });
  return {
    clock,
    store,
    factory,
    warmer,
    metricsRegistry,
    cache: new Cache({ store, metricsRegistry }),
  };
}

async function metricValue(registry: MetricsRegistry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} exists`);
  const got = await metric.get();
  return got.values.reduce((sum, v) => sum + v.value, 0);
}

async function tagInterval(store: Store, name = APP, tag = "v0"): Promise<number | undefined> {
  const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
  return (await cache.cachedTag(name, tag))?.record?.intervalMs;
}

describe("Warmer.scan", () => {
  it("caches every tag, fetching each digest once, then makes no fetch while fresh", async () => {
    const app = fakeRepository(APP, 50, 5);
    const { warmer, factory, cache, metricsRegistry } = setup({ [APP.toString()]: app });
    const [first] = await warmer.scan([{ name: APP }]);
    assert.equal(first?.outcome, "scanned");
    assert.equal(first?.tags, 50);
    assert.equal(first?.refreshed, 50);
    const c = factory.counts(APP.toString());
    assert.equal(c.tags, 1);
    assert.equal(c.head, 50, "one HEAD per tag");
    assert.equal(c.manifest, 5, "one manifest fetch per distinct digest");
    assert.equal(c.succeeded, 1, "succeed() after a clean pass");
    assert.ok(c.maxInFlight <= 4, `burst respected (saw ${c.maxInFlight})`);

    const md = await cache.getImageRepositoryMetadata(APP);
    assert.equal(md.tags.length, 50);
    assert.equal(md.images.size, 50);
    assert.equal(md.images.get("v7")?.digest, fakeDigest(3));
    assert.equal(md.images.get("v7")?.ref.tag, "v7");

    factory.reset();
    const [second] = await warmer.scan([{ name: APP }]);
    assert.equal(second?.fresh, 50);
    const c2 = factory.counts(APP.toString());
    assert.deepEqual([c2.tags, c2.head, c2.manifest], [1, 0, 0]);
    assert.equal(await metricValue(metricsRegistry, "regscan_warmer_tags_refreshed_total"), 50);
  });

  it("keeps four tag refreshes in flight while the host's budget has a queue, its burst otherwise", async () => {
    const app = fakeRepository(APP, 120, 120);
    app.delayMs = 2;
    let queueDelayMs = 500;
    const { warmer, factory } = setup({ [APP.toString()]: app }, { burst: 16 });
    factory.hostConditions = () => ({
      pullQuota: false,
      saturated: queueDelayMs >= 1000,
      utilisation: 1,
      queueDelayMs,
      requests: 0,
      waitedMs: 0,
    });
    const [queued] = await warmer.scan([{ name: APP }]);
    assert.equal(queued?.refreshed, 120);
    assert.ok(factory.counts(APP.toString()).maxInFlight <= 4, "held to four");
    // No queue (or a factory that cannot say): the whole burst.
    const lib = fakeRepository(LIB, 120, 120);
    lib.delayMs = 2;
    factory.repositories.set(LIB.toString(), lib);
    queueDelayMs = 0;
    const [free] = await warmer.scan([{ name: LIB }]);
    assert.equal(free?.refreshed, 120);
    const most = factory.counts(LIB.toString()).maxInFlight;
    assert.ok(most > 4 && most <= 16, `${most} in flight`);
  });

  it("checks due tags with HEAD only, doubling unchanged intervals and halving moved ones", async () => {
    const app = fakeRepository(APP, 10, 2);
    const { warmer, factory, clock, store, metricsRegistry } = setup({ [APP.toString()]: app });
    const events: TagEvent[] = [];
    warmer.onTagEvent((e) => events.push(e));
    await warmer.scan([{ name: APP }]);
    assert.equal(await tagInterval(store), HOUR);

    app.tags.set("v0", fakeDigest(2)); // moved from image 1 to image 2
    factory.reset();
    clock.advance(HOUR + 1);
    const [r] = await warmer.scan([{ name: APP }]);
    const c = factory.counts(APP.toString());
    assert.equal(c.head, 10);
    assert.equal(c.manifest, 0, "the new digest was already known from another tag");
    assert.equal(r?.unchanged, 9);
    assert.equal(r?.refreshed, 1);
    assert.deepEqual(r?.movedTags, ["v0"]);
    assert.equal(await tagInterval(store, APP, "v0"), HOUR / 2);
    assert.equal(await tagInterval(store, APP, "v1"), 2 * HOUR);
    assert.equal(
      await metricValue(metricsRegistry, "regscan_warmer_gets_avoided_by_head_total"),
      9,
    );
    assert.deepEqual(
      events.map((e) => [e.type, e.tag, e.digest, e.previousDigest]),
      [["moved-tag", "v0", fakeDigest(2), fakeDigest(1)]],
    );
  });

  it("spreads refresh intervals by refreshJitter, within its bounds", async () => {
    const app = fakeRepository(APP, 40, 2);
    const { warmer, store } = setup({ [APP.toString()]: app }, { refreshJitter: 0.2 });
    await warmer.scan([{ name: APP }]);
    const intervals = await Promise.all(
      Array.from({ length: 40 }, (_, i) => tagInterval(store, APP, `v${i}`)),
    );
    for (const ms of intervals) {
      assert.ok(ms !== undefined && ms >= 0.8 * HOUR && ms <= 1.2 * HOUR, `interval ${ms}`);
    }
    assert.ok(new Set(intervals).size > 1, "tags found together do not all fall due together");
  });

  it("fetches a moved tag's new image and emits new-tag events for new tags", async () => {
    const app = fakeRepository(APP, 3, 1);
    const { warmer, factory, clock } = setup({ [APP.toString()]: app });
    await warmer.scan([{ name: APP }]);
    const second = fakeRepository(APP, 1, 3);
    app.images.set(fakeDigest(3), second.images.get(fakeDigest(3))!);
    app.tags.set("v0", fakeDigest(3));
    app.tags.set("new", fakeDigest(3));
    const events: TagEvent[] = [];
    warmer.onTagEvent((e) => events.push(e));
    factory.reset();
    clock.advance(HOUR + 1);
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(
      factory.counts(APP.toString()).manifest,
      1,
      "new digest fetched once for two tags",
    );
    assert.deepEqual(r?.newTags, ["new"]);
    assert.deepEqual(events.map((e) => `${e.type}:${e.tag}`).sort(), [
      "moved-tag:v0",
      "new-tag:new",
    ]);
  });

  it("sends a scan's tag events once its record is written: a read on one finds the change", async () => {
    const app = fakeRepository(APP, 3, 1);
    const { warmer, clock, cache } = setup({ [APP.toString()]: app });
    await warmer.scan([{ name: APP }]);
    app.images.set(fakeDigest(3), fakeRepository(APP, 1, 3).images.get(fakeDigest(3))!);
    app.tags.set("v0", fakeDigest(3));
    app.tags.set("new", fakeDigest(3));
    // A consumer that reads the repository as soon as it hears of a change.
    const reads: Array<Promise<string[]>> = [];
    warmer.onTagEvent((e) => {
      reads.push(
        cache
          .getImageRepositoryMetadata(APP)
          .then((md) => [`${e.tag}:${md.images.get(e.tag)?.digest ?? "missing"}`]),
      );
    });
    clock.advance(HOUR + 1);
    await warmer.scan([{ name: APP }]);
    const seen = (await Promise.all(reads)).flat().sort();
    assert.deepEqual(seen, [`new:${fakeDigest(3)}`, `v0:${fakeDigest(3)}`]);
  });

  it("streams tag events to async iterators until their signal aborts", async () => {
    const app = fakeRepository(APP, 2, 1);
    const { warmer, clock } = setup({ [APP.toString()]: app });
    await warmer.scan([{ name: APP }]);
    const stop = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const e of warmer.tagEvents(stop.signal)) seen.push(`${e.type}:${e.tag}`);
    })();
    app.tags.set("v9", fakeDigest(1));
    app.tags.set("v1", fakeDigest(2));
    app.images.set(fakeDigest(2), fakeRepository(APP, 1, 2).images.get(fakeDigest(2))!);
    clock.advance(HOUR + 1);
    await warmer.scan([{ name: APP }]);
    await new Promise((r) => setImmediate(r));
    stop.abort();
    await reading;
    assert.deepEqual(seen.sort(), ["moved-tag:v1", "new-tag:v9"]);
  });

  it("rejects an invalid tag filter as the repository's error, without fetching", async () => {
    const app = fakeRepository(APP, 2, 1);
    const { warmer, factory, cache } = setup({ [APP.toString()]: app });
    const [r] = await warmer.scan([{ name: APP, options: { tagFilter: { include: ["/(/"] } } }]);
    assert.equal(r?.outcome, "failed");
    assert.equal(r?.error?.code, "INVALID_TAG_FILTER");
    assert.equal(factory.counts(APP.toString()).tags, 0);
    await assert.rejects(cache.getImageRepositoryMetadata(APP), { code: "INVALID_TAG_FILTER" });
  });

  it("applies the tag filter before any fetch", async () => {
    const app = fakeRepository(APP, 20, 20);
    const { warmer, factory } = setup({ [APP.toString()]: app });
    const [r] = await warmer.scan([{ name: APP, options: { tagFilter: { include: ["v1*"] } } }]);
    assert.equal(r?.tags, 11); // v1, v10..v19
    assert.equal(r?.filteredOut, 9);
    assert.equal(factory.counts(APP.toString()).head, 11);
  });

  it("records excluded images with a 24 h interval and reports them from the cache", async () => {
    const app = fakeRepository(APP, 2, 2);
    app.images.set(fakeDigest(2), "excluded");
    const { warmer, store, cache } = setup({ [APP.toString()]: app });
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(r?.excluded, 1);
    assert.equal(await tagInterval(store, APP, "v1"), 24 * HOUR);
    await assert.rejects(cache.getImage(APP.withTag("v1")), { code: "IMAGE_EXCLUDED" });
    assert.equal((await cache.getImage(APP.withTag("v0"))).digest, fakeDigest(1));
  });

  it("abandons a repository on 429 and records the error, but not the others", async () => {
    const app = fakeRepository(APP, 30, 30);
    app.failures = new Map([["manifest:*", new CodedError("TOO_MANY_REQUESTS", "slow down")]]);
    const lib = fakeRepository(LIB, 3, 1);
    const { warmer, factory, cache } = setup({ [APP.toString()]: app, [LIB.toString()]: lib });
    const [a, l] = await warmer.scan([{ name: APP }, { name: LIB }]);
    assert.equal(a?.outcome, "failed");
    assert.equal(a?.error?.code, "TOO_MANY_REQUESTS");
    assert.ok(factory.counts(APP.toString()).manifest < 30, "stopped fetching after the 429");
    assert.equal(factory.counts(APP.toString()).succeeded, 0);
    assert.equal(l?.outcome, "scanned");
    const record = await cache.repositoryRecord(APP);
    assert.equal(record?.lastError?.code, "TOO_MANY_REQUESTS");
    assert.equal(record?.tags?.length, 30, "the listing is kept");
  });

  it("reports MANIFEST_UNKNOWN of a listed tag as its error, without a GET", async () => {
    const app = fakeRepository(APP, 3, 1);
    app.failures = new Map([["head:v1", new CodedError("MANIFEST_UNKNOWN")]]);
    app.failures.set("manifest:v1", new CodedError("MANIFEST_UNKNOWN"));
    const { warmer, factory, cache } = setup({ [APP.toString()]: app });
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(r?.outcome, "scanned");
    assert.equal(r?.errors, 1);
    assert.equal(r?.error?.code, "MANIFEST_UNKNOWN");
    assert.equal((await cache.repositoryRecord(APP))?.lastError?.code, "MANIFEST_UNKNOWN");
    assert.equal(factory.counts(APP.toString()).manifestByTag, 0, "HEAD said unknown: no GET");
    // Never fetched: the tag's own error, not "not cached yet, run regscan scan".
    await assert.rejects(cache.getImage(APP.withTag("v1")), {
      name: "TagFetchError",
      code: "TAG_FETCH_FAILED",
      lastErrorCode: "MANIFEST_UNKNOWN",
    });
  });

  it("never writes a failure over a tag whose record the store could not read", async () => {
    const app = fakeRepository(APP, 3, 1);
    const { warmer, store, clock, cache } = setup({ [APP.toString()]: app });
    await warmer.scan([{ name: APP }]);
    clock.advance(HOUR + 1);
    app.failures = new Map([["head:*", new CodedError("UNKNOWN", "HEAD answered 500")]]);
    app.failures.set("manifest:*", new CodedError("UNKNOWN", "GET answered 500"));
    const getMany = store.getMany.bind(store);
    store.getMany = async () => {
      throw new CodedError("STORE_UNAVAILABLE", "read timed out");
    };
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(r?.errors, 3);
    store.getMany = getMany;
    const md = await cache.getImageRepositoryMetadata(APP);
    assert.equal(md.images.size, 3, "the good values are still there");
  });

  it("falls back to GET by tag when HEAD fails, and an unchanged digest still backs off", async () => {
    const app = fakeRepository(APP, 3, 1);
    const { warmer, factory, clock, store } = setup({ [APP.toString()]: app });
    await warmer.scan([{ name: APP }]);
    app.failures = new Map([["head:*", new CodedError("UNKNOWN", "HEAD answered 500")]]);
    factory.reset();
    clock.advance(HOUR + 1);
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(r?.outcome, "scanned");
    assert.equal(r?.errors, 0);
    assert.equal(factory.counts(APP.toString()).manifestByTag, 3);
    assert.deepEqual(r?.movedTags, []);
    assert.equal(await tagInterval(store, APP, "v0"), 2 * HOUR, "same digest: doubled, not halved");
  });

  it("keeps the last good result when a later scan fails, and the error when none succeeded", async () => {
    const app = fakeRepository(APP, 3, 1);
    const { warmer, cache } = setup({ [APP.toString()]: app });
    await assert.rejects(cache.getImageRepositoryMetadata(APP), { code: "NOT_CACHED" });
    await warmer.scan([{ name: APP }]);
    app.failures = new Map([["tags:", new CodedError("UNAUTHORIZED", "token refused")]]);
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(r?.outcome, "failed");
    const md = await cache.getImageRepositoryMetadata(APP);
    assert.equal(md.tags.length, 3);
    assert.equal((await cache.repositoryRecord(APP))?.lastError?.code, "UNAUTHORIZED");

    await warmer.scan([{ name: LIB }]);
    await assert.rejects(
      cache.getImageRepositoryMetadata(LIB),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, "NAME_UNKNOWN");
        assert.match(err.message, /never succeeded/);
        return true;
      },
    );
  });

  it("refetches tags whose stored value does not decode", async () => {
    const app = fakeRepository(APP, 4, 4);
    const { warmer, factory, store } = setup({ [APP.toString()]: app });
    await warmer.scan([{ name: APP }]);
    // The index buckets of v2 and v3 (each apart from v0's and v1's) hold something else.
    const bucket = (tag: string) => bucketOf(tag);
    assert.equal(new Set(["v0", "v1", "v2", "v3"].map(bucket)).size, 4, "four buckets");
    store.setRaw(new Keys().bucket(APP, bucket("v2")), new TextEncoder().encode("garbage"), HOUR);
    await store.set(
      new Keys().bucket(APP, bucket("v3")),
      new Date(Date.now() + HOUR),
      new TextEncoder().encode("{}"),
    );
    factory.reset();
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(r?.refreshed, 2);
    assert.equal(r?.fresh, 2);
    assert.equal(factory.counts(APP.toString()).head, 2);
  });
});

describe("Warmer and a failing store", () => {
  it("logs a refused write as the repository's last error and never rejects", async () => {
    const app = fakeRepository(APP, 5, 1);
    const { store, factory } = setup({ [APP.toString()]: app });
    let refuse = true;
    const flaky: Store = {
      get: (k, o) => store.get(k, o),
      getMany: (k, o) => store.getMany(k, o),
      set: async (k, d, v, o) => {
        if (refuse && (k.includes(":img:") || k.includes(":idx:")))
          throw new CodedError("STORE_UNAVAILABLE", "server gone");
        return store.set(k, d, v, o);
      },
      acquire: (k, t, w, o) => store.acquire(k, t, w, o),
      release: (k, w, o) => store.release(k, w, o),
      ping: () => store.ping(),
      close: () => store.close(),
    };
    const lines: string[] = [];
    const { default: pino } = await import("pino");
    const logger = pino({ level: "warn" }, { write: (s: string) => void lines.push(s) });
    const warmer = new Warmer({
      store: flaky,
      factory,
      logger,
      metricsRegistry: new MetricsRegistry(),
    });
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(r?.outcome, "failed");
    assert.equal(r?.error?.code, "STORE_ERROR");
    assert.match(r?.error?.message ?? "", /server gone/);
    assert.ok(
      lines.some((l) => l.includes("the store refused a write")),
      lines.join("\n"),
    );
    const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    assert.equal((await cache.repositoryRecord(APP))?.lastError?.code, "STORE_ERROR");

    refuse = false;
    const [again] = await warmer.scan([{ name: APP }]);
    assert.equal(again?.outcome, "scanned");
    assert.equal((await cache.getImageRepositoryMetadata(APP)).images.size, 5);
  });
});

describe("Warmer leases", () => {
  it("two warmers on one store scan each repository once per interval between them", async () => {
    const names = ["a", "b", "c", "d", "e", "f"].map((n) => parseImageName(`registry.test/r/${n}`));
    const repos: Record<string, FakeRepository> = {};
    for (const n of names) repos[n.toString()] = { ...fakeRepository(n, 5, 1), delayMs: 5 };
    const clock = new FakeClock();
    const store = new MemoryStore();
    const lookup = () => new Map(names.map((n) => [n.toString(), Credentials.none()]));
    const make = (owner: string) => {
      const factory = new FakeFactory(new Map(Object.entries(repos)));
      const warmer = new Warmer({
        store,
        factory,
        owner,
        lookup,
        now: clock.now,
        intervalMs: 60_000,
        concurrency: 1,
        metricsRegistry: new MetricsRegistry(),
      });
      return { factory, warmer };
    };
    const one = make("one");
    const two = make("two");
    const stop = new AbortController();
    const scannedBy = new Map<string, string[]>();
    for (const [who, w] of [
      ["one", one],
      ["two", two],
    ] as const) {
      w.warmer.onScan((r) => {
        if (r.outcome === "scanned")
          scannedBy.set(r.repository, [...(scannedBy.get(r.repository) ?? []), who]);
      });
    }
    const runs = [one.warmer.start(stop.signal), two.warmer.start(stop.signal)];
    await waitFor(() => scannedBy.size >= names.length, {
      what: "every repository to be scanned",
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    await new Promise((r) => setTimeout(r, 200)); // give a duplicate scan the chance to show
    stop.abort();
    await Promise.all(runs);
    assert.equal(scannedBy.size, names.length, "every repository was scanned");
    for (const [repo, who] of scannedBy)
      assert.equal(who.length, 1, `${repo} scanned by ${who.join(",")}`);
    const byOne = [...scannedBy.values()].filter((w) => w[0] === "one").length;
    assert.ok(byOne > 0 && byOne < names.length, `both warmers worked (one did ${byOne})`);
  });

  it("skips a repository whose lease another warmer holds", async () => {
    const app = fakeRepository(APP, 2, 1);
    const { warmer, store, factory } = setup({ [APP.toString()]: app });
    assert.ok(await store.acquire(new Keys().lease(APP), 60_000, "someone-else"));
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(r?.outcome, "skipped-lease");
    assert.equal(factory.counts(APP.toString()).tags, 0);
  });
});

describe("Warmer loop", () => {
  it("scans the lookup's repositories, serves priority requests, and stops gracefully", async () => {
    const app = { ...fakeRepository(APP, 40, 40), delayMs: 20 };
    const lib = fakeRepository(LIB, 2, 1);
    const { warmer, factory, cache } = setup(
      { [APP.toString()]: app, [LIB.toString()]: lib },
      {
        lookup: () =>
          new Map([
            [APP.toString(), Credentials.none()],
            [LIB.toString(), Credentials.none()],
          ]),
        concurrency: 1,
        burst: 2,
      },
    );
    const stop = new AbortController();
    const results: string[] = [];
    warmer.onScan((r) => results.push(`${r.repository}:${r.outcome}`));
    const run = warmer.start(stop.signal);
    // Let it get into APP's tags, then stop mid-scan.
    await waitFor(() => factory.counts(APP.toString()).manifest >= 6, {
      what: "the scan to get into the tags",
      timeoutMs: 5000,
      intervalMs: 5,
    });
    stop.abort();
    await run;
    assert.deepEqual(results, [`${APP}:aborted`]);
    const md = await cache.getImageRepositoryMetadata(APP);
    assert.equal(md.tags.length, 40, "the listing was written");
    assert.ok(
      md.images.size >= 4 && md.images.size < 40,
      `partial images kept (${md.images.size})`,
    );
    for (const info of md.images.values()) assert.ok(info.digest.startsWith("sha256:"));
    const status = warmer.repositoryStatus(APP);
    assert.equal(status?.scanning, false);
    assert.equal(warmer.repositoryStatus(LIB)?.tagCount, undefined);
  });

  it("refuses to start twice while running", async () => {
    const { warmer } = setup({}, { lookup: () => new Map() });
    const stop = new AbortController();
    const run = warmer.start(stop.signal);
    await assert.rejects(warmer.start(stop.signal), { code: "WARMER_RUNNING" });
    stop.abort();
    await run;
  });

  it("scans a prioritised repository first", async () => {
    const names = ["a", "b", "c"].map((n) => parseImageName(`registry.test/p/${n}`));
    const repos: Record<string, FakeRepository> = {};
    for (const n of names) repos[n.toString()] = { ...fakeRepository(n, 2, 1), delayMs: 10 };
    const { warmer } = setup(repos, {
      lookup: () => new Map(names.map((n) => [n.toString(), Credentials.none()])),
      concurrency: 1,
    });
    const order: string[] = [];
    const stop = new AbortController();
    warmer.onScan((r) => {
      order.push(r.repository);
      if (order.length === 1) warmer.prioritize(names[2]!);
      if (order.length === 3) stop.abort();
    });
    await warmer.start(stop.signal);
    assert.deepEqual(order, [names[0], names[2], names[1]].map(String));
    assert.equal(warmer.status().length, 3);
    assert.ok(warmer.repositoryStatus(names[0]!)?.nextRefresh);
  });

  it("a priority refresh checks every tag with HEAD, so a tag pushed over is seen at once", async () => {
    const app = fakeRepository(APP, 6, 2);
    const { warmer, factory } = setup(
      { [APP.toString()]: app },
      { lookup: () => new Map([[APP.toString(), Credentials.none()]]), concurrency: 1 },
    );
    const events: TagEvent[] = [];
    warmer.onTagEvent((e) => events.push(e));
    const stop = new AbortController();
    let scans = 0;
    warmer.onScan(() => {
      scans++;
      if (scans === 1) {
        // Every tag is fresh for an hour now; move one and ask for a refresh.
        app.tags.set("v0", fakeDigest(2));
        factory.reset();
        warmer.prioritize(APP);
      } else stop.abort();
    });
    await warmer.start(stop.signal);
    const c = factory.counts(APP.toString());
    assert.equal(c.head, 6, "every tag checked, though none was due");
    assert.equal(c.manifest, 0, "the moved tag's image was already known");
    assert.deepEqual(
      events.filter((e) => e.type === "moved-tag").map((e) => [e.tag, e.digest]),
      [["v0", fakeDigest(2)]],
    );
  });
});
