/**
 * Acceptance 1 of the cache issue: the Warmer with the real RemoteClientFactory against the
 * real registry (requests counted by the harness's recording proxy) and the real stores.
 * First scan: at most one request per tag plus one per distinct manifest and config blob;
 * second: one tag list per repository; past deadlines: HEADs only; a moved tag is fetched
 * and its interval halved.
 *
 * The registry answers a few hundred HEADs a second, so the first scan (5,015 tags) is made
 * once and written into sqlite, memcached and Redis together (what the warmer asks of the
 * registry does not depend on which empty store it writes to); every later step runs on
 * each store by itself, reading back what the first scan wrote there. The past-deadline
 * step covers the 5,000-tag repository on sqlite only, the small ones on every store.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { Cache } from "../../src/cache/cache.js";
import { Keys } from "../../src/cache/keys.js";
import { openStore } from "../../src/cache/open-store.js";
import type { Store } from "../../src/cache/store.js";
import { Warmer } from "../../src/cache/warmer.js";
import { type ImageName, parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";
import { ImageBuilder, type PushedManifest } from "../support/image-builder.js";
import { type MemcachedServer, startMemcached } from "../support/memcached.js";
import { type RedisServer, startRedis } from "../support/redis.js";
import { type RecordedRequest, type RegistryHandle, startRegistry } from "../support/registry.js";
import { FakeClock } from "./support/fake-registry.js";
import { teeStore } from "./support/tee-store.js";

const HOUR = 3_600_000;
const TAGS = { big: 5000, small: 12, multi: 3 };

let registry: RegistryHandle;
let memcached: MemcachedServer;
let redis: RedisServer;
let builder: ImageBuilder;
let dir: string;
let big: ImageName;
let small: ImageName;
let multi: ImageName;
/** Distinct manifests (an index counts with its platform manifest) and config blobs. */
let distinct = 0;
/** When the first scan ran: every store's deadlines count from here. */
let firstScanAt = 0;

/** The stores, each with the key namespace the first scan wrote it under. */
const kinds: Array<{ name: string; url: () => string; bigPastDeadline: boolean }> = [
  { name: "sqlite", url: () => `sqlite:${join(dir, "cache.db")}`, bigPastDeadline: true },
  { name: "memcached", url: () => `memcached://${memcached.address}`, bigPastDeadline: false },
  { name: "redis", url: () => redis.url, bigPastDeadline: false },
];
const keys = new Keys("acceptance:");

function count(requests: RecordedRequest[]) {
  const c = { tagLists: 0, heads: 0, manifestGets: 0, blobGets: 0, other: 0, total: 0 };
  c.total = requests.length;
  for (const r of requests) {
    if (r.method === "GET" && r.path.endsWith("/tags/list")) c.tagLists++;
    else if (r.method === "HEAD" && r.path.includes("/manifests/")) c.heads++;
    else if (r.method === "GET" && r.path.includes("/manifests/")) c.manifestGets++;
    else if (r.method === "GET" && r.path.includes("/blobs/")) c.blobGets++;
    else c.other++;
  }
  return c;
}

async function intervalOf(store: Store, name: ImageName, tag: string) {
  const cache = new Cache({ store, keys, metricsRegistry: new MetricsRegistry() });
  return (await cache.cachedTag(name, tag))?.record?.intervalMs;
}

function factory() {
  return new RemoteClientFactory({
    insecureHosts: [registry.host],
    limiters: { rps: 100_000, burst: 1000 },
  });
}

const targets = () => [big, small, multi].map((name) => ({ name, creds: Credentials.none() }));

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "regscan-warmer-registry-"));
  [registry, memcached, redis] = await Promise.all([
    startRegistry(),
    startMemcached(),
    startRedis(),
  ]);
  builder = new ImageBuilder(registry);
  big = parseImageName(`${registry.host}/acceptance/big`);
  small = parseImageName(`${registry.host}/acceptance/small`);
  multi = parseImageName(`${registry.host}/acceptance/multi`);
  // 5,000 tags over 20 images, half Docker schema 2 and half OCI.
  const images: PushedManifest[] = [];
  for (let i = 0; i < 20; i++) {
    images.push(
      await builder.pushImage("acceptance/big", undefined, {
        format: i % 2 ? "oci" : "docker",
        labels: { n: String(i) },
        seed: `big-${i}`,
      }),
    );
  }
  distinct += 40;
  for (let i = 0; i < 20; i++) {
    const tags = Array.from({ length: TAGS.big / 20 }, (_, j) => `t${j * 20 + i}`);
    await builder.tagMany("acceptance/big", { tags, manifest: images[i]! });
  }
  for (let i = 0; i < 4; i++) {
    const img = await builder.pushImage("acceptance/small", undefined, { seed: `small-${i}` });
    await builder.tagMany("acceptance/small", {
      tags: [0, 1, 2].map((k) => `s${i}-${k}`),
      manifest: img,
    });
  }
  distinct += 8;
  // An index: the index, the chosen platform's manifest and its config.
  await builder.pushIndex("acceptance/multi", ["m0", "m1", "m2"], { seed: "multi" });
  distinct += 3;
});

after(async () => {
  await builder?.close();
  await Promise.all([registry?.stop(), memcached?.stop(), redis?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("Warmer against the real registry", () => {
  it("warms three repositories into sqlite, memcached and Redis with the fewest requests", async () => {
    const stores = await Promise.all(kinds.map((k) => openStore(k.url(), {})));
    const [primary, ...others] = stores as [Store, ...Store[]];
    firstScanAt = Date.now();
    const clock = new FakeClock(firstScanAt);
    const metricsRegistry = new MetricsRegistry();
    const remote = factory();
    const warmer = new Warmer({
      store: teeStore(primary, others),
      keys,
      factory: remote,
      now: clock.now,
      burst: 16,
      metricsRegistry,
    });
    try {
      registry.resetRequests();
      const first = await warmer.scan(targets());
      assert.deepEqual(
        first.map((r) => [r.outcome, r.tags, r.refreshed, r.errors]),
        [
          ["scanned", TAGS.big, TAGS.big, 0],
          ["scanned", TAGS.small, TAGS.small, 0],
          ["scanned", TAGS.multi, TAGS.multi, 0],
        ],
      );
      const c1 = count(registry.requests());
      const allTags = TAGS.big + TAGS.small + TAGS.multi;
      assert.equal(c1.tagLists, 3);
      assert.ok(
        c1.heads + c1.manifestGets + c1.blobGets <= allTags + distinct,
        `first scan: ${JSON.stringify(c1)} for ${allTags} tags, ${distinct} distinct`,
      );
      assert.ok(c1.manifestGets + c1.blobGets <= distinct, JSON.stringify(c1));
      for (const [i, store] of stores.entries()) {
        const cache = new Cache({ store, keys, metricsRegistry });
        const md = await cache.getImageRepositoryMetadata(big);
        assert.equal(md.images.size, TAGS.big, kinds[i]?.name);
        assert.equal(md.images.get("t41")?.labels.n, "1");
        assert.equal((await cache.getImage(multi.withTag("m1"))).platforms.length, 3);
      }
    } finally {
      await remote.close();
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  let moves = 0;
  for (const kind of kinds) {
    it(`rescans from ${kind.name}: tag lists only, then HEADs only, then the moved tag`, async () => {
      assert.ok(firstScanAt > 0, "the first scan ran");
      const store = await openStore(kind.url(), {});
      const clock = new FakeClock(firstScanAt);
      const metricsRegistry = new MetricsRegistry();
      const remote = factory();
      const warmer = new Warmer({
        store,
        keys,
        factory: remote,
        now: clock.now,
        burst: 16,
        metricsRegistry,
      });
      try {
        const cache = new Cache({ store, keys, metricsRegistry });
        registry.resetRequests();
        const second = await warmer.scan(targets());
        assert.deepEqual(
          second.map((r) => r.fresh),
          [TAGS.big, TAGS.small, TAGS.multi],
        );
        const c2 = count(registry.requests());
        assert.equal(c2.tagLists, 3, JSON.stringify(c2));
        assert.equal(c2.heads + c2.manifestGets + c2.blobGets, 0, JSON.stringify(c2));

        const later = kind.bigPastDeadline ? targets() : targets().slice(1);
        const laterTags = later.reduce(
          (n, t) => n + (t.name === big ? TAGS.big : t.name === small ? TAGS.small : TAGS.multi),
          0,
        );
        clock.advance(HOUR + 1000);
        registry.resetRequests();
        const third = await warmer.scan(later);
        assert.ok(third.every((r) => r.unchanged === r.tags && r.refreshed === 0));
        const c3 = count(registry.requests());
        assert.equal(c3.heads, laterTags, JSON.stringify(c3));
        assert.equal(c3.manifestGets + c3.blobGets, 0, JSON.stringify(c3));
        assert.equal(await intervalOf(store, small, "s0-0"), 2 * HOUR);

        // Move a tag to an image the repository has never had.
        const fresh = await builder.pushImage("acceptance/small", undefined, {
          seed: `moved-${kind.name}-${++moves}`,
          labels: { moved: "yes" },
        });
        const before = await builder.pushImage("acceptance/small", undefined, {
          seed: "small-1",
        });
        await builder.moveTag("acceptance/small", "s1-1", fresh);
        clock.advance(2 * HOUR + 1000);
        registry.resetRequests();
        const [moved] = await warmer.scan([{ name: small, creds: Credentials.none() }]);
        assert.deepEqual(moved?.movedTags, ["s1-1"]);
        const c4 = count(registry.requests());
        assert.equal(c4.heads, TAGS.small);
        assert.equal(c4.manifestGets, 1, JSON.stringify(c4));
        assert.equal(c4.blobGets, 1, JSON.stringify(c4));
        assert.equal(await intervalOf(store, small, "s1-1"), HOUR, "2 h halved");
        assert.equal(await intervalOf(store, small, "s1-0"), 4 * HOUR, "2 h doubled");
        assert.equal((await cache.getImage(small.withTag("s1-1"))).labels.moved, "yes");
        // Back to where it was, so the next store kind starts from the same registry.
        await builder.moveTag("acceptance/small", "s1-1", before);
      } finally {
        await remote.close();
        await store.close();
      }
    });
  }
});
