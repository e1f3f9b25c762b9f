/**
 * The cache's records: round trips, the version 1 tag layout still read, one parse per
 * distinct entry with shared frozen parts, and malformed values read as misses.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeRepositoryRecord,
  decodeTagFailure,
  decodeTagRecord,
  encodeRepositoryRecord,
  encodeTagFailure,
  encodeTagRecord,
  TagRecordDecoder,
} from "../../src/cache/records.js";
import type { ImageInfo } from "../../src/image/info.js";
import { parseImageName } from "../../src/image/ref.js";

const NAME = parseImageName("ghcr.io/acme/web");
const DIGEST = `sha256:${"b".repeat(64)}`;
const enc = (s: string) => new TextEncoder().encode(s);

function info(tag: string): ImageInfo {
  return {
    ref: NAME.withTag(tag),
    digest: DIGEST,
    platformDigest: `sha256:${"c".repeat(64)}`,
    imageID: `sha256:${"d".repeat(64)}`,
    mediaType: "application/vnd.oci.image.index.v1+json",
    createdAt: new Date("2024-05-06T07:08:09.010Z"),
    labels: { team: "blue", "org.opencontainers.image.created": "2024-05-06T07:08:09Z" },
    platform: { os: "linux", architecture: "arm64", variant: "v8" },
    platforms: [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64", variant: "v8" },
    ],
    lastFetched: new Date("2026-01-01T00:00:00.000Z"),
  };
}

describe("tag records", () => {
  it("round-trip an image and an excluded entry, the reference rebuilt from the key", () => {
    const checkedAt = new Date("2026-02-03T04:05:06.007Z");
    const bytes = encodeTagRecord({
      entry: { info: info("ignored") },
      digest: DIGEST,
      intervalMs: 7_200_000,
      checkedAt,
    });
    const back = decodeTagRecord(bytes, NAME, "1.2");
    assert.deepEqual(back, {
      entry: { info: info("1.2") },
      digest: DIGEST,
      intervalMs: 7_200_000,
      checkedAt,
    });
    const excluded = encodeTagRecord({
      entry: { excludedReason: "no linux/amd64 manifest" },
      intervalMs: 86_400_000,
      checkedAt,
    });
    assert.deepEqual(decodeTagRecord(excluded, NAME, "x"), {
      entry: { excludedReason: "no linux/amd64 manifest" },
      digest: undefined,
      intervalMs: 86_400_000,
      checkedAt,
    });
  });

  it("still reads the version 1 layout (one JSON object)", () => {
    const v1 = JSON.stringify({
      v: 1,
      info: {
        digest: DIGEST,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        createdAt: 1_700_000_000_000,
        labels: { a: "b" },
        platforms: [{ os: "linux", architecture: "amd64" }],
      },
      digest: DIGEST,
      intervalMs: 3_600_000,
      checkedAt: 1_800_000_000_000,
    });
    const back = decodeTagRecord(enc(v1), NAME, "old");
    assert.equal(back?.entry.info?.ref.toString(), "ghcr.io/acme/web:old");
    assert.equal(back?.predatesAnnotations, true, "its labels may hold annotations");
    assert.equal(back?.entry.info?.createdAt?.getTime(), 1_700_000_000_000);
    assert.equal(back?.intervalMs, 3_600_000);
  });

  it("carries the manifest's and the index's annotations; a record without them reads as none", () => {
    const annotated: ImageInfo = {
      ...info("v1"),
      annotations: { "org.opencontainers.image.source": "https://example.com/src" },
      indexAnnotations: { "org.opencontainers.image.ref.name": "v1" },
    };
    const bytes = encodeTagRecord({
      entry: { info: annotated },
      intervalMs: 1,
      checkedAt: new Date(0),
    });
    const back = decodeTagRecord(bytes, NAME, "v1")?.entry.info;
    assert.deepEqual(back?.labels, annotated.labels);
    assert.deepEqual(back?.annotations, annotated.annotations);
    assert.deepEqual(back?.indexAnnotations, annotated.indexAnnotations);
    assert.equal(decodeTagRecord(bytes, NAME, "v1")?.predatesAnnotations, undefined);
    // Layout 2, written before annotations were kept apart (no such keys): still a hit, with
    // none, marked so that the warmer fetches it again when next due.
    const old = new TextDecoder()
      .decode(
        encodeTagRecord({ entry: { info: info("v1") }, intervalMs: 1, checkedAt: new Date(0) }),
      )
      .replace('{"v":3,', '{"v":2,');
    assert.ok(old.startsWith('{"v":2,') && !old.includes("annotations"));
    const oldRecord = decodeTagRecord(enc(old), NAME, "v1");
    assert.equal(oldRecord?.predatesAnnotations, true);
    const oldBack = oldRecord?.entry.info;
    assert.ok(oldBack);
    assert.deepEqual(oldBack.labels, info("v1").labels);
    assert.equal(oldBack.annotations, undefined);
    assert.equal(oldBack.indexAnnotations, undefined);
    const bad = old.replace('"labels":', '"annotations":{"a":1},"labels":');
    assert.equal(decodeTagRecord(enc(bad), NAME, "v1"), undefined);
    // An excluded entry has no labels to doubt; a layout 2 failure record still reads.
    const excluded = new TextDecoder()
      .decode(
        encodeTagRecord({ entry: { excludedReason: "x" }, intervalMs: 1, checkedAt: new Date(0) }),
      )
      .replace('{"v":3,', '{"v":2,');
    assert.equal(decodeTagRecord(enc(excluded), NAME, "x")?.predatesAnnotations, undefined);
    const failure = new TextDecoder()
      .decode(encodeTagFailure({ code: "DENIED", message: "no", at: new Date(5) }))
      .replace('{"v":3,', '{"v":2,');
    assert.equal(decodeTagFailure(enc(failure))?.code, "DENIED");
    assert.equal(decodeTagRecord(enc('{"v":4}\n{"excludedReason":"x"}'), NAME, "x"), undefined);
  });

  it("parses each distinct entry once; tags share frozen labels but not dates", () => {
    const decoder = new TagRecordDecoder();
    const record = (tag: string) =>
      encodeTagRecord({
        entry: { info: info(tag) },
        digest: DIGEST,
        intervalMs: 3_600_000,
        checkedAt: new Date(),
      });
    const a = decoder.decode(record("a"), NAME, "a")?.entry.info;
    const b = decoder.decode(record("b"), NAME, "b")?.entry.info;
    assert.ok(a && b);
    assert.equal(a.ref.tag, "a");
    assert.equal(b.ref.tag, "b");
    assert.equal(a.labels, b.labels, "one labels object for both tags");
    assert.ok(Object.isFrozen(a.labels) && Object.isFrozen(a.platforms[0]));
    assert.throws(() => {
      (a.labels as Record<string, string>).team = "red";
    }, TypeError);
    assert.notEqual(a.createdAt, b.createdAt, "each tag has its own Date");
    a.createdAt?.setTime(0);
    assert.equal(b.createdAt?.toISOString(), "2024-05-06T07:08:09.010Z");
  });

  it("reads malformed values as misses", () => {
    const good = new TextDecoder().decode(
      encodeTagRecord({ entry: { info: info("t") }, intervalMs: 1, checkedAt: new Date(0) }),
    );
    const [head = "", entry = ""] = good.split("\n");
    const bad = [
      "",
      "not json",
      "[1,2]",
      "{}",
      '{"v":4,"intervalMs":1,"checkedAt":0}\n{"excludedReason":"x"}',
      `${head}\n{}`,
      `${head}\n{"excludedReason":"x","info":${JSON.stringify(JSON.parse(entry).info)}}`,
      `${head}\n${entry.replace('"labels":{', '"labels":{"n":1,')}`,
      `${head}\n${entry.replace('"platforms":[', '"platforms":[{"os":"linux"},')}`,
      `${head.replace('"intervalMs":1', '"intervalMs":0')}\n${entry}`,
      `${head.replace('"checkedAt":0', '"checkedAt":"0"')}\n${entry}`,
      // Past the Date range: a miss, not an Invalid Date.
      `${head.replace('"checkedAt":0', '"checkedAt":8640000000000001')}\n${entry}`,
      `${head}\n${entry.slice(0, -1)}`,
    ];
    for (const text of bad) {
      assert.equal(decodeTagRecord(enc(text), NAME, "t"), undefined, text);
    }
    assert.equal(decodeTagRecord(new Uint8Array([0xff, 0x0a, 0xfe]), NAME, "t"), undefined);
    assert.ok(decodeTagRecord(enc(good), NAME, "t"), "the unaltered record decodes");
  });
});

describe("stale and failed tags", () => {
  it("keep a stale record's last error, and read a failure record as no record", () => {
    const lastError = { code: "TOO_MANY_REQUESTS", message: "slow down", at: new Date(5000) };
    const record = {
      entry: { excludedReason: "no linux/amd64" },
      digest: DIGEST,
      intervalMs: 3_600_000,
      checkedAt: new Date(4000),
      lastError,
    };
    assert.deepEqual(decodeTagRecord(encodeTagRecord(record), NAME, "t"), record);
    const failure = encodeTagFailure(lastError);
    assert.equal(decodeTagRecord(failure, NAME, "t"), undefined, "no image to serve");
    assert.deepEqual(decodeTagFailure(failure), lastError);
    assert.equal(decodeTagFailure(encodeTagRecord(record)), undefined);
    assert.equal(decodeTagFailure(enc("garbage")), undefined);
  });
});

describe("repository records", () => {
  it("round-trip, and read anything else as a miss", () => {
    const record = {
      tags: ["a", "b"],
      filteredOut: 3,
      artifactTags: 2,
      lastUpdate: new Date(1000),
      lastError: { code: "DENIED", message: "no", at: new Date(2000) },
      lastScanned: new Date(3000),
      scannedBy: "host:1:abc",
    };
    assert.deepEqual(decodeRepositoryRecord(encodeRepositoryRecord(record)), record);
    assert.deepEqual(decodeRepositoryRecord(encodeRepositoryRecord({})), {
      tags: undefined,
      filteredOut: undefined,
      lastUpdate: undefined,
      lastError: undefined,
      lastScanned: undefined,
      scannedBy: undefined,
    });
    for (const text of [
      "",
      "{}",
      '{"v":2}',
      '{"v":1,"tags":"a"}',
      '{"v":1,"tags":["a",1]}',
      '{"v":1,"lastError":{"code":"X","message":"m"}}',
      '{"v":1,"lastUpdate":"yesterday"}',
      // Times past the Date range (±8.64e15 ms): a miss, not an Invalid Date.
      '{"v":1,"lastUpdate":8640000000000001}',
      '{"v":1,"lastScanned":-1e16}',
      '{"v":1,"lastError":{"code":"X","message":"m","at":1e300}}',
    ]) {
      assert.equal(decodeRepositoryRecord(enc(text)), undefined, text);
    }
    assert.ok(decodeRepositoryRecord(enc('{"v":1,"lastUpdate":8640000000000000}')), "the last one");
  });
});
