/**
 * Issue 11's upgrade, against the real registry behind the recording proxy: a store filled
 * in the first layout (one record per tag, as the previous warmer wrote it) is served as
 * it is, then converted by one scan that makes no manifest or blob request, answering
 * exactly as before; the next due scan needs HEADs only.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { Cache } from "../../src/cache/cache.js";
import { decodeRepositoryIndexRecord } from "../../src/cache/index-records.js";
import { Keys } from "../../src/cache/keys.js";
import { openStore } from "../../src/cache/open-store.js";
import { encodeRepositoryRecord, encodeTagRecord } from "../../src/cache/records.js";
import type { Store } from "../../src/cache/store.js";
import { Warmer } from "../../src/cache/warmer.js";
import { imageInfoToJSON } from "../../src/image/json-form.js";
import { type ImageName, parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";
import { ImageBuilder } from "../support/image-builder.js";
import { type RecordedRequest, type RegistryHandle, startRegistry } from "../support/registry.js";
import { FakeClock } from "./support/fake-registry.js";

const HOUR = 3_600_000;

let dir: string;
let registry: RegistryHandle;
let store: Store;
let app: ImageName;
let multi: ImageName;
const tags = new Map<string, string[]>();

function count(requests: RecordedRequest[]) {
  const c = { tagLists: 0, heads: 0, manifestGets: 0, blobGets: 0 };
  for (const r of requests) {
    if (r.method === "GET" && r.path.endsWith("/tags/list")) c.tagLists++;
    else if (r.method === "HEAD" && r.path.includes("/manifests/")) c.heads++;
    else if (r.method === "GET" && r.path.includes("/manifests/")) c.manifestGets++;
    else if (r.method === "GET" && r.path.includes("/blobs/")) c.blobGets++;
  }
  return c;
}

/** What the cache answers for a repository, as the API and `regscan get -o json` print it. */
async function answers(cache: Cache, name: ImageName): Promise<string> {
  const md = await cache.getImageRepositoryMetadata(name);
  const out: unknown[] = [md.tags, [...md.images].map(([t, i]) => [t, imageInfoToJSON(i)])];
  for (const t of await cache.cachedTags(name)) {
    const r = t.record;
    out.push([t.tag, r?.digest, r?.intervalMs, r?.checkedAt, t.deadline, r?.entry.excludedReason]);
  }
  for (const tag of md.tags) out.push(imageInfoToJSON(await cache.getImage(name.withTag(tag))));
  return JSON.stringify(out);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "regscan-layout-upgrade-"));
  registry = await startRegistry();
  const builder = new ImageBuilder(registry);
  try {
    const appTags: string[] = [];
    for (let i = 0; i < 3; i++) {
      const image = await builder.pushImage("layout/app", undefined, {
        format: i % 2 ? "oci" : "docker",
        labels: { n: String(i) },
        seed: `layout-${i}`,
      });
      const some = Array.from({ length: 20 }, (_, j) => `r${i}-${j}`);
      await builder.tagMany("layout/app", { tags: some, manifest: image });
      appTags.push(...some);
    }
    tags.set("layout/app", appTags);
    await builder.pushIndex("layout/multi", ["m0", "m1"], { seed: "layout-multi" });
    tags.set("layout/multi", ["m0", "m1"]);
  } finally {
    await builder.close();
  }
  app = parseImageName(`${registry.host}/layout/app`);
  multi = parseImageName(`${registry.host}/layout/multi`);
  store = await openStore(`sqlite:${join(dir, "cache.db")}`, {});
});

after(async () => {
  await store?.close();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("upgrading a store from the first layout", () => {
  it("converts it in one scan with no manifest or blob request, answering the same", async () => {
    const keys = new Keys();
    const factory = new RemoteClientFactory({ insecureHosts: [registry.host] });
    const written = Date.now();
    try {
      // The first layout, as the previous warmer wrote it: a record per tag, the repository last.
      for (const name of [app, multi]) {
        const client = factory.clientFor(name, Credentials.none());
        const listed = await client.tags();
        const byDigest = new Map<string, Awaited<ReturnType<typeof client.manifest>>>();
        for (const tag of listed) {
          const head = await client.head(tag);
          assert.ok(head);
          let entry = byDigest.get(head.digest);
          if (!entry) {
            entry = await client.manifest(head.digest);
            if (entry.info) entry.info.lastFetched = new Date(written);
            byDigest.set(head.digest, entry);
          }
          const info = entry.info && { ...entry.info, ref: name.withTag(tag) };
          await store.set(
            keys.tag(name, tag),
            new Date(written + HOUR),
            encodeTagRecord({
              entry: info ? { info } : { excludedReason: entry.excludedReason ?? "" },
              digest: head.digest,
              intervalMs: HOUR,
              checkedAt: new Date(written),
            }),
          );
        }
        await store.set(
          keys.legacyRepository(name),
          new Date(written + 7 * 24 * HOUR),
          encodeRepositoryRecord({
            tags: listed,
            lastUpdate: new Date(written),
            lastScanned: new Date(written),
          }),
        );
      }
      const reader = new Cache({ store, metricsRegistry: new MetricsRegistry() });
      const before = [await answers(reader, app), await answers(reader, multi)];
      assert.equal(
        (await reader.getImageRepositoryMetadata(app)).images.size,
        tags.get("layout/app")?.length,
      );

      const clock = new FakeClock(written + 60_000);
      const warmer = new Warmer({
        store,
        factory,
        now: clock.now,
        metricsRegistry: new MetricsRegistry(),
      });
      registry.resetRequests();
      const results = await warmer.scan([
        { name: app, creds: Credentials.none() },
        { name: multi, creds: Credentials.none() },
      ]);
      assert.deepEqual(
        results.map((r) => [r.outcome, r.fresh, r.refreshed, r.unchanged]),
        [
          ["scanned", 60, 0, 0],
          ["scanned", 2, 0, 0],
        ],
      );
      assert.deepEqual(count(registry.requests()), {
        tagLists: 2,
        heads: 0,
        manifestGets: 0,
        blobGets: 0,
      });
      for (const name of [app, multi]) {
        const got = await store.get(keys.repository(name));
        assert.ok(got && decodeRepositoryIndexRecord(got.value), "written in the second layout");
      }
      const converted = new Cache({ store, metricsRegistry: new MetricsRegistry() });
      assert.deepEqual([await answers(converted, app), await answers(converted, multi)], before);

      // When due, HEADs alone: the converted images are this layout's own.
      clock.advance(HOUR);
      registry.resetRequests();
      const [again] = await warmer.scan([{ name: app, creds: Credentials.none() }]);
      assert.equal(again?.unchanged, 60);
      assert.deepEqual(count(registry.requests()), {
        tagLists: 1,
        heads: 60,
        manifestGets: 0,
        blobGets: 0,
      });
    } finally {
      await factory.close();
    }
  });
});
