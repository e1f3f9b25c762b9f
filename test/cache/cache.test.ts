/**
 * The Cache as a Registry over a store written by hand: not cached, never succeeded, last
 * good result, excluded images, digests, undecodable records, decorators and metrics.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry as MetricsRegistry } from "prom-client";
import { Cache } from "../../src/cache/cache.js";
import { timestampLabelDecorator } from "../../src/cache/decorators.js";
import { NoImageDataError } from "../../src/cache/errors.js";
import { encodeRepositoryIndexRecord } from "../../src/cache/index-records.js";
import { Keys } from "../../src/cache/keys.js";
import {
  encodeRepositoryRecord,
  encodeTagRecord,
  type RepositoryRecord,
} from "../../src/cache/records.js";
import { MemoryStore } from "../../src/cache/stores/memory.js";
import type { ImageInfo } from "../../src/image/info.js";
import { parseImageName, parseImageRef } from "../../src/image/ref.js";

const NAME = parseImageName("ghcr.io/acme/web");
const keys = new Keys();
const DIGEST_A = `sha256:${"a".repeat(64)}`;
const later = () => new Date(Date.now() + 3_600_000);

function info(tag: string, digest: string, labels: Record<string, string> = {}): ImageInfo {
  return {
    ref: NAME.withTag(tag),
    digest,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    createdAt: new Date("2024-01-01T00:00:00Z"),
    labels,
    platforms: [{ os: "linux", architecture: "amd64" }],
  };
}

async function seed(
  store: MemoryStore,
  record: RepositoryRecord,
  tags: Record<string, ImageInfo | string>,
) {
  await store.set(keys.repository(NAME), later(), encodeRepositoryRecord(record));
  for (const [tag, value] of Object.entries(tags)) {
    const entry = typeof value === "string" ? { excludedReason: value } : { info: value };
    await store.set(
      keys.tag(NAME, tag),
      later(),
      encodeTagRecord({ entry, intervalMs: 3_600_000, checkedAt: new Date() }),
    );
  }
}

describe("Cache", () => {
  it("says NOT_CACHED with a helpful message before the first scan", async () => {
    const cache = new Cache({ store: new MemoryStore(), metricsRegistry: new MetricsRegistry() });
    await assert.rejects(
      cache.getImageRepositoryMetadata(NAME),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, "NOT_CACHED");
        assert.match(err.message, /ghcr\.io\/acme\/web is not in the cache yet.*regscan scan/s);
        return true;
      },
    );
    await assert.rejects(cache.getImage(NAME.withTag("1")), { code: "NOT_CACHED" });
  });

  it("replays the last error when no scan ever succeeded", async () => {
    const store = new MemoryStore();
    await seed(
      store,
      { lastError: { code: "DENIED", message: "access denied", at: new Date(0) } },
      {},
    );
    const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    await assert.rejects(cache.getImageRepositoryMetadata(NAME), { code: "DENIED" });
    await assert.rejects(cache.getImage(NAME.withTag("1")), { code: "DENIED" });
  });

  it("answers the last good result, with excluded and missing tags left out of images", async () => {
    const store = new MemoryStore();
    await seed(
      store,
      {
        tags: ["1", "2", "3"],
        lastUpdate: new Date(),
        lastError: { code: "TOO_MANY_REQUESTS", message: "slow down", at: new Date() },
      },
      { "1": info("1", DIGEST_A), "2": "no linux/amd64 manifest" },
    );
    const registry = new MetricsRegistry();
    const cache = new Cache({ store, metricsRegistry: registry });
    const md = await cache.getImageRepositoryMetadata(NAME);
    assert.deepEqual(md.tags, ["1", "2", "3"]);
    assert.deepEqual([...md.images.keys()], ["1"]);
    assert.equal(md.images.get("1")?.ref.toString(), "ghcr.io/acme/web:1");
    await assert.rejects(cache.getImage(NAME.withTag("2")), (err: Error & { code?: string }) => {
      assert.equal(err.code, "IMAGE_EXCLUDED");
      assert.match(err.message, /no linux\/amd64 manifest/);
      return true;
    });
    await assert.rejects(cache.getImage(NAME.withTag("3")), { code: "NOT_CACHED" });
    await assert.rejects(cache.getImage(NAME.withTag("4")), (err: Error & { code?: string }) => {
      assert.equal(err.code, "UNKNOWN_TAG");
      assert.match(err.message, /no such tag in the cached listing of \d{4}-/);
      return true;
    });
    const byDigest = await cache.getImage(parseImageRef(`ghcr.io/acme/web@${DIGEST_A}`));
    assert.equal(byDigest.digest, DIGEST_A);
    const unknownDigest = `sha256:${"e".repeat(64)}`;
    await assert.rejects(
      cache.getImage(parseImageRef(`ghcr.io/acme/web@${unknownDigest}`)),
      (err: Error) => {
        assert.ok(err instanceof NoImageDataError);
        assert.equal((err as Error & { code?: string }).code, "UNKNOWN_DIGEST");
        return true;
      },
    );
    const text = await registry.getSingleMetricAsString("regscan_cache_request_duration_seconds");
    assert.match(text, /method="getImageRepositoryMetadata",success="true"/);
    assert.match(text, /method="getImage",success="false"/);
  });

  it("treats an undecodable record as a miss", async () => {
    const store = new MemoryStore();
    await seed(store, { tags: ["1"] }, { "1": info("1", DIGEST_A) });
    store.setRaw(keys.tag(NAME, "1"), new TextEncoder().encode("not ours"), 60_000);
    await store.set(keys.repository(NAME), later(), new TextEncoder().encode('{"v":99}'));
    const cache = new Cache({ store, metricsRegistry: new MetricsRegistry() });
    await assert.rejects(cache.getImageRepositoryMetadata(NAME), { code: "NOT_CACHED" });
    await assert.rejects(cache.getImage(NAME.withTag("1")), { code: "NOT_CACHED" });
  });

  it("prefers timestamp labels for repositories matching the globs", async () => {
    const store = new MemoryStore();
    await seed(
      store,
      { tags: ["oci", "schema", "none", "bad"] },
      {
        oci: info("oci", "sha256:1", {
          "org.opencontainers.image.created": "2020-05-06T07:08:09Z",
          "org.label-schema.build-date": "2019-01-01T00:00:00Z",
        }),
        schema: info("schema", "sha256:2", {
          "org.label-schema.build-date": "2019-01-01T00:00:00Z",
        }),
        none: info("none", "sha256:3"),
        bad: info("bad", "sha256:4", { "org.opencontainers.image.created": "yesterday" }),
      },
    );
    const created = async (globs: string[]) => {
      const cache = new Cache({
        store,
        metricsRegistry: new MetricsRegistry(),
        decorators: [timestampLabelDecorator(globs)],
      });
      const md = await cache.getImageRepositoryMetadata(NAME);
      return Object.fromEntries([...md.images].map(([t, i]) => [t, i.createdAt?.toISOString()]));
    };
    assert.deepEqual(await created(["ghcr.io/acme/*"]), {
      oci: "2020-05-06T07:08:09.000Z",
      schema: "2019-01-01T00:00:00.000Z",
      none: "2024-01-01T00:00:00.000Z",
      bad: "2024-01-01T00:00:00.000Z",
    });
    const untouched = await created(["docker.io/**"]);
    assert.equal(untouched.oci, "2024-01-01T00:00:00.000Z");
    const cache = new Cache({
      store,
      metricsRegistry: new MetricsRegistry(),
      decorators: [timestampLabelDecorator(["ghcr.io/**"])],
    });
    assert.equal(
      (await cache.getImage(NAME.withTag("oci"))).createdAt?.toISOString(),
      "2020-05-06T07:08:09.000Z",
    );
  });
});

describe("Cache.repositorySummaries", () => {
  it("reads every record a chunk at a time: either layout, none, or one that does not decode", async () => {
    const store = new MemoryStore();
    const cache = new Cache({ store, keys, metricsRegistry: new MetricsRegistry() });
    const scanned = new Date("2026-12-01T10:00:00Z");
    const listed = new Date("2026-12-01T10:00:02Z");
    // 450 repositories: more than two chunks of records.
    const names = Array.from({ length: 450 }, (_, i) => parseImageName(`ghcr.io/acme/app-${i}`));
    for (const [i, name] of names.entries()) {
      if (i % 3 !== 0) continue;
      const record = {
        tags: Array.from({ length: i % 7 }, (_, t) => `v${t}`),
        lastScanned: scanned,
        lastUpdate: listed,
        ...(i % 2 === 0 ? { lastError: { code: "TIMEOUT", message: "slow", at: listed } } : {}),
      };
      await store.set(keys.repository(name), later(), encodeRepositoryIndexRecord(record));
    }
    const legacy = names[1] as (typeof names)[number];
    await store.set(
      keys.legacyRepository(legacy),
      later(),
      encodeRepositoryRecord({ tags: ["old"], lastUpdate: listed }),
    );
    const broken = names[2] as (typeof names)[number];
    await store.set(keys.repository(broken), later(), new TextEncoder().encode("{not json"));

    const got = await cache.repositorySummaries(names);
    assert.equal(got.length, 450);
    for (const [i, summary] of got.entries()) {
      if (i === 1) {
        assert.deepEqual(summary, {
          tagCount: 1,
          lastUpdate: listed,
          lastError: undefined,
          lastScanned: undefined,
        });
      } else if (i % 3 !== 0) {
        assert.equal(summary, undefined, `app-${i} has no record`);
      } else {
        assert.deepEqual(summary, {
          tagCount: i % 7,
          lastUpdate: listed,
          lastError: i % 2 === 0 ? { code: "TIMEOUT", message: "slow" } : undefined,
          lastScanned: scanned,
        });
      }
    }
    // The same answers as one repository's record read alone.
    const one = await cache.repositoryRecord(names[3] as (typeof names)[number]);
    assert.equal(one?.tags?.length, got[3]?.tagCount);
  });
});
