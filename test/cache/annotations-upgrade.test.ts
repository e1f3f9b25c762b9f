/**
 * Upgrading a cache written before annotations were kept apart from labels (tag record
 * layout 2, whose labels hold the manifest's annotations): the old records are still
 * served, each image is fetched again when next due although a `HEAD` shows the same
 * digest, and from then on `HEAD`s suffice again. Real registry, real sqlite store.
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
import { encodeRepositoryRecord, encodeTagRecord } from "../../src/cache/records.js";
import type { Store } from "../../src/cache/store.js";
import { Warmer } from "../../src/cache/warmer.js";
import type { ImageInfo } from "../../src/image/info.js";
import { type ImageName, parseImageName } from "../../src/image/ref.js";
import { Credentials } from "../../src/registry/credentials/credentials.js";
import { RemoteClientFactory } from "../../src/registry/factory.js";
import { ImageBuilder, type PushedImage } from "../support/image-builder.js";
import { type RecordedRequest, type RegistryHandle, startRegistry } from "../support/registry.js";
import { FakeClock } from "./support/fake-registry.js";

const HOUR = 3_600_000;
const TAGS = ["v1", "v2"];
const ANNOTATIONS = { "org.opencontainers.image.base.name": "docker.io/library/alpine:3.20" };

let registry: RegistryHandle;
let dir: string;
let store: Store;
let name: ImageName;
let image: PushedImage;
const keys = new Keys("upgrade:");

function count(requests: RecordedRequest[]) {
  const c = { heads: 0, manifestGets: 0, blobGets: 0 };
  for (const r of requests) {
    if (r.method === "HEAD" && r.path.includes("/manifests/")) c.heads++;
    else if (r.method === "GET" && r.path.includes("/manifests/")) c.manifestGets++;
    else if (r.method === "GET" && r.path.includes("/blobs/")) c.blobGets++;
  }
  return c;
}

/** A tag record as the previous version wrote it: layout 2, annotations merged into labels. */
function layout2Record(tag: string, checkedAt: Date): Uint8Array {
  const info: ImageInfo = {
    ref: name.withTag(tag),
    digest: image.digest,
    imageID: image.config.digest,
    mediaType: image.mediaType,
    labels: { ...ANNOTATIONS, ...image.labels },
    platform: { os: "linux", architecture: "amd64" },
    platforms: [{ os: "linux", architecture: "amd64" }],
  };
  const text = new TextDecoder().decode(
    encodeTagRecord({ entry: { info }, digest: image.digest, intervalMs: HOUR, checkedAt }),
  );
  assert.ok(text.startsWith('{"v":3,'), text);
  return new TextEncoder().encode(text.replace('{"v":3,', '{"v":2,'));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "regscan-annotations-upgrade-"));
  registry = await startRegistry();
  const builder = new ImageBuilder(registry);
  try {
    image = await builder.pushImage("upgrade/app", TAGS, {
      format: "oci",
      labels: { team: "blue" },
      annotations: ANNOTATIONS,
    });
  } finally {
    await builder.close();
  }
  name = parseImageName(`${registry.host}/upgrade/app`);
  store = await openStore(`sqlite:${join(dir, "cache.db")}`, {});
});

after(async () => {
  await store?.close();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a cache written before annotations were kept apart", () => {
  it("is served, then refetched once by GET when due, then refreshed by HEAD alone", async () => {
    const written = Date.now();
    const deadline = new Date(written + HOUR);
    await store.set(
      keys.repository(name),
      deadline,
      encodeRepositoryRecord({ tags: TAGS, lastUpdate: new Date(written) }),
    );
    for (const tag of TAGS) {
      await store.set(keys.tag(name, tag), deadline, layout2Record(tag, new Date(written)));
    }
    const metricsRegistry = new MetricsRegistry();
    const cache = new Cache({ store, keys, metricsRegistry });
    const served = await cache.getImage(name.withTag("v1"));
    assert.equal(
      served.labels["org.opencontainers.image.base.name"],
      ANNOTATIONS["org.opencontainers.image.base.name"],
    );

    const clock = new FakeClock(written + HOUR + 1000);
    const factory = new RemoteClientFactory({ insecureHosts: [registry.host] });
    const warmer = new Warmer({ store, keys, factory, now: clock.now, burst: 4, metricsRegistry });
    try {
      registry.resetRequests();
      const [first] = await warmer.scan([{ name, creds: Credentials.none() }]);
      assert.equal(first?.refreshed, TAGS.length, JSON.stringify(first));
      assert.equal(first?.unchanged, 0);
      assert.deepEqual(first?.movedTags, [], "the same digest is no move");
      // Both tags share one image: fetched once (manifest and config), not per tag.
      assert.deepEqual(count(registry.requests()), { heads: 2, manifestGets: 1, blobGets: 1 });
      for (const tag of TAGS) {
        const got = await cache.cachedTag(name, tag);
        assert.ok(got);
        const record = got.record;
        assert.equal(record?.predatesAnnotations, undefined, `${tag} fetched again, in layout 2`);
        assert.deepEqual(record?.entry.info?.labels, { team: "blue" });
        assert.deepEqual(record?.entry.info?.annotations, ANNOTATIONS);
        assert.equal(record?.intervalMs, 2 * HOUR, "unchanged digest: interval doubled");
      }
      const fixed = await cache.getImage(name.withTag("v2"));
      assert.deepEqual(fixed.labels, { team: "blue" });

      clock.advance(2 * HOUR + 1000);
      registry.resetRequests();
      const [second] = await warmer.scan([{ name, creds: Credentials.none() }]);
      assert.equal(second?.unchanged, TAGS.length, JSON.stringify(second));
      assert.deepEqual(count(registry.requests()), { heads: 2, manifestGets: 0, blobGets: 0 });
    } finally {
      await factory.close();
    }
  });
});
