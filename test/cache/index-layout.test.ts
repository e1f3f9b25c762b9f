/**
 * The second cache layout against the memory store and a scripted registry: what one read
 * and one moved tag cost the store (counted by key kind), answers equal to the first
 * layout's, its conversion without a registry request, failed refreshes kept by a bucket
 * rewrite alone, image records kept alive while an index points at them, and the codecs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { Cache } from "../../src/cache/cache.js";
import {
  bucketOf,
  decodeBucket,
  decodeImageRecord,
  decodeImageRecords,
  decodeRepositoryIndexRecord,
  encodeBucket,
  encodeImageRecord,
  encodeRepositoryIndexRecord,
  IMAGE_KEEP_AFTER_MS,
  INDEX_BUCKETS,
  imageIdOf,
} from "../../src/cache/index-records.js";
import { Keys } from "../../src/cache/keys.js";
import {
  encodeRepositoryRecord,
  encodeTagFailure,
  encodeTagRecord,
} from "../../src/cache/records.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import { Warmer } from "../../src/cache/warmer.js";
import type { ImageEntry, ImageInfo } from "../../src/image/info.js";
import { imageInfoToJSON } from "../../src/image/json-form.js";
import { type ImageName, parseImageName, parseImageRef } from "../../src/image/ref.js";
import { countingStore, countKinds, keyKind } from "./support/counting-store.js";

/** The cache's own values among keys written (leases and their holders left out). */
const data = (keys: readonly string[]) => keys.filter((k) => !keyKind(k).startsWith("lease"));

import {
  CodedError,
  FakeClock,
  FakeFactory,
  type FakeRepository,
  fakeDigest,
  fakeRepository,
} from "./support/fake-registry.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const APP = parseImageName("registry.test/team/app");

const WEB = parseImageName("registry.test/team/web");

const index = (digest: string, platformDigest: string): ImageInfo => ({
  ref: WEB.withDigest(digest),
  digest,
  platformDigest,
  imageID: fakeDigest(900),
  mediaType: "application/vnd.oci.image.index.v1+json",
  createdAt: new Date("2024-03-04T05:06:07.089Z"),
  labels: { team: "blue" },
  annotations: { "org.opencontainers.image.source": "https://example.com" },
  indexAnnotations: { a: "b" },
  platform: { os: "linux", architecture: "arm64", variant: "v8" },
  platforms: [
    { os: "linux", architecture: "amd64" },
    { os: "linux", architecture: "arm64", variant: "v8" },
  ],
  lastFetched: new Date("2025-01-01T00:00:00.000Z"),
});

function warmerOn(
  store: MemoryStore | ReturnType<typeof countingStore>["store"],
  repos: Record<string, FakeRepository>,
  clock: FakeClock,
) {
  const factory = new FakeFactory(new Map(Object.entries(repos)));
  const warmer = new Warmer({
    store,
    factory,
    now: clock.now,
    metricsRegistry: new MetricsRegistry(),
    burst: 8,
  });
  return { factory, warmer };
}

/** Everything a Cache answers about a repository, as JSON text (the forms the API and CLI print). */
async function answers(cache: Cache, name: ImageName, tags: string[]): Promise<string> {
  const md = await cache.getImageRepositoryMetadata(name);
  const images = [...md.images].map(([tag, info]) => [tag, imageInfoToJSON(info)]);
  const cached = (await cache.cachedTags(name)).map((t) => ({
    tag: t.tag,
    entry: t.record?.entry.info ? imageInfoToJSON(t.record.entry.info) : t.record?.entry,
    digest: t.record?.digest,
    intervalMs: t.record?.intervalMs,
    checkedAt: t.record?.checkedAt,
    lastError: t.record?.lastError,
    predates: t.record?.predatesAnnotations,
    deadline: t.deadline,
    fetchError: t.fetchError,
  }));
  const single: unknown[] = [];
  for (const tag of tags) {
    try {
      single.push(imageInfoToJSON(await cache.getImage(name.withTag(tag))));
    } catch (error) {
      single.push({ code: (error as { code?: string }).code, message: (error as Error).message });
    }
  }
  return JSON.stringify({ tags: md.tags, images, cached, single });
}

describe("layout 2: costs", () => {
  it("one moved tag in a 20,000-tag repository writes one bucket, one image and the record", async () => {
    const clock = new FakeClock();
    const { store, log } = countingStore(new MemoryStore());
    const app = fakeRepository(APP, 1, 20);
    const { warmer, factory } = warmerOn(store, { [APP.toString()]: app }, clock);
    await warmer.scan([{ name: APP }]); // v0 alone, checked at T
    clock.advance(HOUR / 2);
    const big = fakeRepository(APP, 20_000, 20);
    for (const [tag, digest] of big.tags) app.tags.set(tag, digest);
    await warmer.scan([{ name: APP }]); // the others, checked at T + 30 min
    const moved = fakeRepository(APP, 1, 21).images.get(fakeDigest(21));
    assert.ok(moved);
    app.images.set(fakeDigest(21), moved);
    app.tags.set("v0", fakeDigest(21));
    clock.advance(HOUR / 2 + 1000); // v0 alone is due
    log.reset();
    factory.reset();
    const [r] = await warmer.scan([{ name: APP }]);
    assert.deepEqual(r?.movedTags, ["v0"]);
    assert.equal(r?.fresh, 19_999);
    assert.deepEqual(factory.counts(APP.toString()).head, 1);
    const written = data(log.sets);
    assert.deepEqual(countKinds(written), { idx: 1, img: 1, repo: 1 }, written.join("\n"));
    // The image first, the record last.
    assert.deepEqual(written.map(keyKind), ["img", "idx", "repo"]);
    const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    assert.equal((await cache.getImage(APP.withTag("v0"))).digest, fakeDigest(21));
  });

  it("reads a repository with one getMany of buckets and one of images; a tag with one bucket and one image", async () => {
    const clock = new FakeClock();
    const { store, log } = countingStore(new MemoryStore());
    const { warmer } = warmerOn(store, { [APP.toString()]: fakeRepository(APP, 500, 7) }, clock);
    await warmer.scan([{ name: APP }]);
    const cold = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    log.reset();
    const md = await cold.getImageRepositoryMetadata(APP);
    assert.equal(md.images.size, 500);
    assert.deepEqual(
      log.reads.map((keys) => countKinds(keys)),
      [{ repo: 1 }, { idx: INDEX_BUCKETS }, { img: 7 }],
    );
    log.reset();
    await cold.getImageRepositoryMetadata(APP);
    assert.deepEqual(
      log.reads.map((keys) => countKinds(keys)),
      [{ repo: 1 }, { idx: INDEX_BUCKETS }],
      "decoded images are kept in the process",
    );
    const fresh = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    log.reset();
    const one = await fresh.getImage(APP.withTag("v42"));
    assert.equal(one.ref.toString(), "registry.test/team/app:v42");
    assert.deepEqual(
      log.reads.map((keys) => countKinds(keys)),
      [{ idx: 1 }, { img: 1 }],
    );
    // Tags sharing an image share its frozen labels, not its dates.
    const a = md.images.get("v0");
    const b = md.images.get("v7");
    assert.ok(a && b && a.labels === b.labels && Object.isFrozen(a.labels));
    assert.notEqual(a.createdAt, b.createdAt);
  });

  it("a second scan with nothing due reads the index only, never an image record", async () => {
    const clock = new FakeClock();
    const { store, log } = countingStore(new MemoryStore());
    const { warmer, factory } = warmerOn(
      store,
      { [APP.toString()]: fakeRepository(APP, 300, 30) },
      clock,
    );
    await warmer.scan([{ name: APP }]);
    log.reset();
    factory.reset();
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(r?.fresh, 300);
    const read = countKinds(log.reads.flat());
    assert.equal(read.img, undefined, JSON.stringify(read));
    assert.deepEqual(countKinds(data(log.sets)), { repo: 1 });
  });
});

describe("layout 2: a repository streamed a slice of tags at a time", () => {
  /** Every slice of `name`'s stream, its tags and the JSON of its images. */
  async function streamed(cache: Cache, name: ImageName, tagsPerSlice: number) {
    const stream = await cache.streamImageRepository(name);
    const slices: [string, unknown][][] = [];
    for await (const slice of stream.images(tagsPerSlice)) {
      slices.push(slice.map(([tag, info]) => [tag, imageInfoToJSON(info)]));
    }
    return { tags: stream.tags, slices };
  }

  it("answers what getImageRepositoryMetadata does, one getMany of images per slice", async () => {
    const clock = new FakeClock();
    const memory = new MemoryStore();
    const { store, log } = countingStore(memory);
    const app = fakeRepository(APP, 3_000, 1_500);
    // An excluded image and an image record that no longer decodes: their tags left out.
    app.images.set(fakeDigest(3), "excluded");
    const { warmer } = warmerOn(store, { [APP.toString()]: app }, clock);
    await warmer.scan([{ name: APP }]);
    const lost = app.images.get(fakeDigest(7)) as ImageEntry;
    memory.setRaw(new Keys().image(imageIdOf(lost, fakeDigest(7))), new Uint8Array([1]), HOUR);
    const whole = await new Cache({
      store,
      metricsRegistry: new MetricsRegistry(),
    }).getImageRepositoryMetadata(APP);
    const want = [...whole.images].map(([tag, info]) => [tag, imageInfoToJSON(info)]);
    assert.ok(want.length > 2_900 && want.length < 3_000, `${want.length} images`);
    const cold = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    log.reset();
    const { tags, slices } = await streamed(cold, APP, 256);
    assert.deepEqual(tags, whole.tags);
    assert.deepEqual(slices.flat(), want);
    assert.equal(slices.length, Math.ceil(3_000 / 256));
    assert.ok(slices.every((s) => s.length <= 256));
    const reads = log.reads.map((keys) => countKinds(keys));
    assert.deepEqual(reads.slice(0, 2), [{ repo: 1 }, { idx: INDEX_BUCKETS }]);
    // Images the LRU holds by then (tags v1500 on share v0's) are not read again; the record
    // that does not decode is, in the later slice naming it (1,499 images read, then 1).
    assert.ok(reads.length <= 2 + slices.length, JSON.stringify(reads));
    for (const r of reads.slice(2)) assert.ok((r.img ?? 0) <= 256, JSON.stringify(r));
    assert.equal(
      reads.slice(2).reduce((sum, r) => sum + (r.img ?? 0), 0),
      1_500,
    );
    // Read again, every good image is held in the process: the index is read, and the record
    // that does not decode, once per slice naming it.
    log.reset();
    assert.deepEqual((await streamed(cold, APP, 1_000)).slices.flat(), want);
    assert.deepEqual(
      log.reads.map((keys) => countKinds(keys)),
      [{ repo: 1 }, { idx: INDEX_BUCKETS }, { img: 1 }, { img: 1 }],
    );
  });

  it("opened from the record repositoryRecord handed out: the record is not read again", async () => {
    const clock = new FakeClock();
    const memory = new MemoryStore();
    const { store, log } = countingStore(memory);
    const web = parseImageName("registry.test/team/web");
    const { warmer } = warmerOn(
      store,
      {
        [APP.toString()]: fakeRepository(APP, 300, 30),
        [web.toString()]: fakeRepository(web, 20, 5),
      },
      clock,
    );
    await warmer.scan([{ name: APP }, { name: web }]);
    const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    const json = async (stream: Awaited<ReturnType<Cache["streamImageRepository"]>>) => {
      const out: [string, unknown][] = [];
      for await (const slice of stream.images()) {
        for (const [tag, info] of slice) out.push([tag, imageInfoToJSON(info)]);
      }
      return { tags: stream.tags, out };
    };
    const want = await json(await cache.streamImageRepository(APP));
    const record = await cache.repositoryRecord(APP);
    assert.ok(record);
    log.reset();
    assert.deepEqual(await json(await cache.streamImageRepository(APP, { record })), want);
    const kinds = log.reads.map((keys) => countKinds(keys));
    assert.equal(kinds[0]?.repo, undefined, JSON.stringify(kinds));
    assert.deepEqual(kinds[0], { idx: INDEX_BUCKETS });
    // Not this repository's, or not handed out by this Cache: the stored record is read.
    for (const other of [await cache.repositoryRecord(web), { ...record }]) {
      log.reset();
      assert.deepEqual(await json(await cache.streamImageRepository(APP, { record: other })), want);
      assert.deepEqual(countKinds(log.reads[0] ?? []), { repo: 1 });
    }
  });

  it("a store failing on a later slice fails the iteration, not the opening", async () => {
    const clock = new FakeClock();
    const memory = new MemoryStore();
    const { warmer } = warmerOn(memory, { [APP.toString()]: fakeRepository(APP, 600, 600) }, clock);
    await warmer.scan([{ name: APP }]);
    let imageReads = 0;
    const { store: failing } = countingStore(memory);
    failing.getMany = async (keys, opts) => {
      if (keys.some((k) => keyKind(k) === "img") && ++imageReads === 2) {
        throw new CodedError("STORE_UNAVAILABLE", "the store went away");
      }
      return memory.getMany(keys, opts);
    };
    const stream = await new Cache({
      store: failing,
      metricsRegistry: new MetricsRegistry(),
    }).streamImageRepository(APP);
    assert.equal(stream.tags.length, 600);
    const got: number[] = [];
    await assert.rejects(async () => {
      for await (const slice of stream.images(200)) got.push(slice.length);
    }, /the store went away/);
    assert.deepEqual(got, [200]);
  });
});

describe("layout 2: failed refreshes and image lifetimes", () => {
  it("keeps a failed tag's last good value with one bucket rewrite, no image written", async () => {
    const clock = new FakeClock();
    const { store, log } = countingStore(new MemoryStore());
    const app = fakeRepository(APP, 40, 4);
    const { warmer } = warmerOn(store, { [APP.toString()]: app }, clock);
    await warmer.scan([{ name: APP }]);
    clock.advance(HOUR + 1);
    app.failures = new Map([["head:v3", new CodedError("UNKNOWN", "HEAD answered 503")]]);
    app.failures.set("manifest:v3", new CodedError("UNKNOWN", "GET answered 503"));
    log.reset();
    // Every tag is due: 39 unchanged by HEAD, v3 failing.
    const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(r?.errors, 1);
    assert.equal(countKinds(log.sets).img, undefined, log.sets.join("\n"));
    const v3 = await cache.cachedTag(APP, "v3");
    assert.equal(v3?.record?.lastError?.message, "GET answered 503", "HEAD failed, then GET");
    assert.ok((v3?.deadline?.getTime() ?? 0) > clock.now(), "its deadline was extended");
    assert.equal((await cache.getImage(APP.withTag("v3"))).digest, fakeDigest(4));
  });

  it("rewrites the images an index points at once half their store life is gone", async () => {
    const clock = new FakeClock();
    const memory = new MemoryStore({ now: clock.now });
    const { store, log } = countingStore(memory);
    const app = fakeRepository(APP, 30, 3);
    const { warmer } = warmerOn(store, { [APP.toString()]: app }, clock);
    await warmer.scan([{ name: APP }]);
    // Hourly scans keep the index (tags unchanged: HEAD only), the images untouched.
    let imageWrites = 0;
    for (let elapsed = 0; elapsed < IMAGE_KEEP_AFTER_MS - 2 * HOUR; elapsed += HOUR) {
      clock.advance(HOUR);
      log.reset();
      await warmer.scan([{ name: APP }]);
      imageWrites += countKinds(log.sets).img ?? 0;
    }
    assert.equal(imageWrites, 0);
    // Past half their life: the next scan writes each image again, before the buckets.
    clock.advance(3 * HOUR);
    log.reset();
    await warmer.scan([{ name: APP }]);
    assert.equal(countKinds(log.sets).img, 3, log.sets.join("\n"));
    for (let elapsed = 0; elapsed < 40 * DAY; elapsed += 6 * HOUR) {
      clock.advance(6 * HOUR);
      await warmer.scan([{ name: APP }]);
    }
    const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    assert.equal((await cache.getImageRepositoryMetadata(APP)).images.size, 30);
  });

  it("fetches again the image of a due tag when the store lost it (eviction)", async () => {
    const clock = new FakeClock();
    const store = new MemoryStore();
    const app = fakeRepository(APP, 6, 2);
    const { warmer, factory } = warmerOn(store, { [APP.toString()]: app }, clock);
    await warmer.scan([{ name: APP }]);
    const entry = app.images.get(fakeDigest(1)) as ImageEntry;
    store.setRaw(new Keys().image(imageIdOf(entry, fakeDigest(1))), new Uint8Array([1]), HOUR);
    clock.advance(HOUR + 1);
    factory.reset();
    const [r] = await warmer.scan([{ name: APP }]);
    assert.equal(factory.counts(APP.toString()).manifest, 1, "the lost image fetched once");
    assert.equal(r?.refreshed, 3);
    assert.equal(r?.unchanged, 3);
    const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    assert.equal((await cache.getImageRepositoryMetadata(APP)).images.size, 6);
  });
});

describe("layout 2: the due tags' images checked a chunk at a time", () => {
  it("reads at most 1,000 image records at once, and fetches again exactly the lost ones", async () => {
    const clock = new FakeClock();
    const memory = new MemoryStore({ now: clock.now });
    const { store, log } = countingStore(memory);
    // 2,500 tags over as many images: three chunks of the rescan's check.
    const app = fakeRepository(APP, 2_500, 2_500);
    const { warmer, factory } = warmerOn(store, { [APP.toString()]: app }, clock);
    await warmer.scan([{ name: APP }]);
    // One image gone (evicted), one that no longer decodes, in different chunks.
    const gone = app.images.get(fakeDigest(10)) as ImageEntry;
    memory.setRaw(new Keys().image(imageIdOf(gone, fakeDigest(10))), new Uint8Array([1]), -1);
    const broken = app.images.get(fakeDigest(2_400)) as ImageEntry;
    memory.setRaw(
      new Keys().image(imageIdOf(broken, fakeDigest(2_400))),
      new Uint8Array([1]),
      HOUR,
    );
    clock.advance(HOUR + 1);
    factory.reset();
    log.reset();
    const [r] = await warmer.scan([{ name: APP }]);
    const imageReads = log.reads.map((keys) => countKinds(keys).img ?? 0).filter((n) => n > 0);
    assert.ok(
      imageReads.every((n) => n <= 1_000),
      `image records per read: ${imageReads.join(", ")}`,
    );
    assert.ok(
      imageReads.reduce((a, b) => a + b, 0) >= 2_500,
      `every due image checked: ${imageReads.join(", ")}`,
    );
    assert.equal(factory.counts(APP.toString()).manifest, 2, "the two lost images fetched again");
    assert.equal(r?.refreshed, 2);
    const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    assert.equal((await cache.getImageRepositoryMetadata(APP)).images.size, 2_500);
  });
});

describe("layout 2: upgrade from the first layout", () => {
  it("serves the first layout, then converts it in one scan with no registry request, answering the same", async () => {
    const name = WEB;
    const clock = new FakeClock(Date.now());
    const store = new MemoryStore();
    const keys = new Keys();
    const now = clock.now();
    const deadline = new Date(now + 2 * HOUR);
    const main = index(fakeDigest(1), fakeDigest(2));
    const hex = "c".repeat(64);
    const tags = ["1.0", "latest", "old", "arm", "stale", "failed", `sha256-${hex}.sig`];
    await store.set(
      keys.legacyRepository(name),
      deadline,
      encodeRepositoryRecord({
        tags,
        lastUpdate: new Date(now - 1000),
        lastScanned: new Date(now - 1000),
      }),
    );
    const put = (tag: string, bytes: Uint8Array) => store.set(keys.tag(name, tag), deadline, bytes);
    const checkedAt = new Date(now - 1000);
    await put(
      "1.0",
      encodeTagRecord({
        entry: { info: main },
        digest: main.digest,
        intervalMs: 2 * HOUR,
        checkedAt,
      }),
    );
    await put(
      "latest",
      encodeTagRecord({
        entry: { info: main },
        digest: main.digest,
        intervalMs: 4 * HOUR,
        checkedAt,
      }),
    );
    // Layout 2 had no annotations apart from the labels.
    const {
      annotations: _annotations,
      indexAnnotations: _indexAnnotations,
      ...withoutAnnotations
    } = index(fakeDigest(3), fakeDigest(4));
    const oldText = new TextDecoder()
      .decode(
        encodeTagRecord({
          entry: { info: withoutAnnotations },
          digest: fakeDigest(3),
          intervalMs: 2 * HOUR,
          checkedAt,
        }),
      )
      .replace('{"v":3,', '{"v":2,');
    await put("old", new TextEncoder().encode(oldText));
    await put(
      "arm",
      encodeTagRecord({
        entry: { excludedReason: "no manifest for platform linux/s390x" },
        digest: fakeDigest(5),
        intervalMs: DAY,
        checkedAt,
      }),
    );
    await put(
      "stale",
      encodeTagRecord({
        entry: { info: main },
        digest: main.digest,
        intervalMs: HOUR,
        checkedAt: new Date(now - 2 * HOUR),
        lastError: { code: "UNKNOWN", message: "HEAD answered 503", at: new Date(now - 1000) },
      }),
    );
    await put(
      "failed",
      encodeTagFailure({ code: "DENIED", message: "no", at: new Date(now - 1000) }),
    );
    await put(
      `sha256-${hex}.sig`,
      encodeTagRecord({
        entry: { excludedReason: `artifact tag: cosign signature of sha256:${hex}, not an image` },
        intervalMs: 7 * DAY,
        checkedAt,
      }),
    );
    const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    const before = await answers(cache, name, tags);
    assert.match(before, /HEAD answered 503/);

    // The registry still lists the same tags; every one of them is fresh but the stale one.
    const repo: FakeRepository = {
      tags: new Map(tags.map((t) => [t, main.digest])),
      images: new Map(),
    };
    // The two tags due (stale, failed) are gone from the registry: an error, and no GET.
    repo.failures = new Map([["head:stale", new CodedError("MANIFEST_UNKNOWN")]]);
    repo.failures.set("head:failed", new CodedError("MANIFEST_UNKNOWN"));
    const { warmer, factory } = warmerOn(store, { [name.toString()]: repo }, clock);
    const [r] = await warmer.scan([{ name }], { force: false });
    assert.equal(r?.outcome, "scanned");
    const c = factory.counts(name.toString());
    assert.equal(c.manifest + c.manifestByTag, 0, "no manifest fetched");
    assert.equal(r?.fresh, 5, JSON.stringify(r));
    assert.ok(await store.get(keys.repository(name)), "written under the new prefix");
    const after = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    const converted = await answers(after, name, tags);
    // Same answers (the stale and failed tags' errors were recorded too recently to rewrite).
    assert.equal(converted, before);
    const cached = await after.cachedTag(name, "old");
    assert.equal(cached?.record?.predatesAnnotations, true, "still fetched again when due");
  });
});

describe("layout 2: codecs", () => {
  it("round-trip buckets, image records and repository records; anything else is a miss", () => {
    const at = new Date(5000);
    const bucket = new Map([
      ["a", { image: fakeDigest(1), checkedAt: 1000, intervalMs: HOUR, deadline: 1000 + HOUR }],
      [
        "b",
        {
          image: fakeDigest(1),
          checkedAt: 2000,
          intervalMs: 2 * HOUR,
          deadline: 9 * HOUR,
          lastError: { code: "X", message: "m", at },
        },
      ],
      [
        "c",
        { artifact: true as const, checkedAt: 3000, intervalMs: 7 * DAY, deadline: 3000 + 7 * DAY },
      ],
      [
        "d",
        { checkedAt: 0, intervalMs: 0, deadline: HOUR, lastError: { code: "Y", message: "n", at } },
      ],
    ]);
    assert.deepEqual(decodeBucket(encodeBucket(bucket)), bucket);
    const last = '{"v":1,"t0":8640000000000000,"i":["x"],"e":["a",0,0,0]}';
    assert.ok(decodeBucket(new TextEncoder().encode(last)), "the last time a Date holds");
    for (const text of [
      "",
      "{}",
      '{"v":1,"t0":0,"i":[],"e":["a",0,0,1]}',
      '{"v":1,"t0":0,"i":["x"],"e":["a",0,0]}',
      '{"v":2,"t0":0,"i":[],"e":[]}',
      // Times past the Date range (±8.64e15 ms): a miss, not an Invalid Date.
      '{"v":1,"t0":8640000000000001,"i":[],"e":[]}',
      '{"v":1,"t0":8640000000000000,"i":["x"],"e":["a",0,1,0]}',
      '{"v":1,"t0":8640000000000000,"i":["x"],"e":["a",0,0,1]}',
    ]) {
      assert.equal(decodeBucket(new TextEncoder().encode(text)), undefined, text);
    }
    const info = index(fakeDigest(1), fakeDigest(2));
    const back = decodeImageRecord(encodeImageRecord({ info }));
    assert.ok(back && "info" in back);
    const { ref: _ref, ...shared } = info;
    assert.deepEqual(back.info, shared);
    assert.deepEqual(decodeImageRecord(encodeImageRecord({ excludedReason: "why" })), {
      excludedReason: "why",
    });
    // The object form image records had before the array form is still read.
    const text = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
    const objectForm = {
      v: 1,
      info: {
        ...shared,
        createdAt: info.createdAt?.getTime(),
        lastFetched: info.lastFetched?.getTime(),
      },
    };
    assert.deepEqual(decodeImageRecord(text(objectForm)), { info: shared });
    assert.deepEqual(decodeImageRecord(text({ v: 1, excludedReason: "old" })), {
      excludedReason: "old",
    });
    assert.ok(encodeImageRecord({ info }).byteLength < text(objectForm).byteLength);
    for (const bad of [
      [2],
      [2, 7],
      [3, "why"],
      [2, info.digest, null, null, info.mediaType, null, null, { a: 1 }, null, null, null, []],
      [2, info.digest, null, null, info.mediaType, null, null, {}, null, null, null, [{}]],
      [2, info.digest, null, null, info.mediaType, "soon", null, {}, null, null, null, []],
      [2, info.digest, null, null, info.mediaType, 1e16, null, {}, null, null, null, []],
      [2, info.digest, null, null, info.mediaType, null, -1e16, {}, null, null, null, []],
      [2, info.digest, null, null, info.mediaType, null, null, {}, null, null, null],
    ]) {
      assert.equal(decodeImageRecord(text(bad)), undefined, JSON.stringify(bad));
    }
    const many = decodeImageRecords([
      text(objectForm),
      encodeImageRecord({ info }),
      undefined,
      new Uint8Array([0x7b]),
      encodeImageRecord({ excludedReason: "x" }),
    ]);
    assert.deepEqual(many[0], { info: shared });
    assert.ok(many[1] && "info" in many[1]);
    assert.equal(many[2], undefined);
    assert.equal(many[3], undefined, "a damaged record is a miss, the others still decode");
    assert.deepEqual(many[4], { excludedReason: "x" });
    // Many records are parsed a slice at a time: across slices, with gaps and a damaged
    // record in a later slice, each element still decodes to its own record.
    const lot = Array.from({ length: 700 }, (_, i) =>
      i % 7 === 3 ? undefined : encodeImageRecord({ excludedReason: `r${i}` }),
    );
    lot[600] = new Uint8Array([0x7b]);
    const decodedLot = decodeImageRecords(lot);
    assert.equal(decodedLot.length, 700);
    for (let i = 0; i < 700; i++) {
      const want = i === 600 || i % 7 === 3 ? undefined : { excludedReason: `r${i}` };
      assert.deepEqual(decodedLot[i], want, `record ${i}`);
    }
    const record = {
      tags: ["a"],
      filteredOut: 1,
      lastUpdate: at,
      lastError: { code: "D", message: "m", at },
      lastScanned: at,
      scannedBy: "me",
      imagesKeptAt: at,
    };
    assert.deepEqual(decodeRepositoryIndexRecord(encodeRepositoryIndexRecord(record)), record);
    assert.equal(
      decodeRepositoryIndexRecord(encodeRepositoryRecord(record)),
      undefined,
      "the first layout's is not this one",
    );
    assert.ok(bucketOf("v1.2.3") >= 0 && bucketOf("v1.2.3") < INDEX_BUCKETS);
    assert.equal(imageIdOf({ info }, info.digest), `${fakeDigest(1)}@${fakeDigest(2)}`);
    assert.notEqual(
      imageIdOf({ excludedReason: "a" }, fakeDigest(1)),
      imageIdOf({ excludedReason: "b" }, fakeDigest(1)),
    );
  });

  it("answers a digest from the index", async () => {
    const clock = new FakeClock();
    const store = new MemoryStore();
    const { warmer } = warmerOn(store, { [APP.toString()]: fakeRepository(APP, 10, 3) }, clock);
    await warmer.scan([{ name: APP }]);
    const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    const got = await cache.getImage(parseImageRef(`${APP.toString()}@${fakeDigest(2)}`));
    assert.equal(got.digest, fakeDigest(2));
    assert.equal(got.ref.digest, fakeDigest(2));
    await assert.rejects(cache.getImage(parseImageRef(`${APP.toString()}@${fakeDigest(9)}`)), {
      code: "UNKNOWN_DIGEST",
    });
  });
});
