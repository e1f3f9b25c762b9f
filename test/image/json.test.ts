/**
 * JSON forms of ImageInfo, ImageEntry and RepositoryMetadata: exact shapes (RFC 3339 times,
 * absent values omitted, canonical refs, the entry's either-or), round trips (also as a
 * property), and InvalidImageDataError naming what was wrong.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { ImageInfo, RepositoryMetadata } from "../../src/image/info.js";
import {
  InvalidImageDataError,
  imageEntryFromJSON,
  imageEntryToJSON,
  imageInfoFromJSON,
  imageInfoToJSON,
  repositoryMetadataFromJSON,
  repositoryMetadataToJSON,
} from "../../src/image/json.js";
import { parseImageRef } from "../../src/image/ref.js";

const DIGEST = `sha256:${"a".repeat(64)}`;

function fullInfo(): ImageInfo {
  return {
    ref: parseImageRef("alpine:3.19"),
    digest: DIGEST,
    platformDigest: `sha256:${"b".repeat(64)}`,
    imageID: `sha256:${"c".repeat(64)}`,
    mediaType: "application/vnd.oci.image.index.v1+json",
    createdAt: new Date("2024-01-02T03:04:05.678Z"),
    labels: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z", a: "b" },
    annotations: { "org.opencontainers.image.source": "https://example.com/src", a: "manifest" },
    indexAnnotations: { "org.opencontainers.image.ref.name": "3.19", a: "index" },
    platform: { os: "linux", architecture: "arm", variant: "v7" },
    platforms: [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm", variant: "v7" },
      { os: "windows", architecture: "amd64", osVersion: "10.0.17763.1" },
    ],
    lastFetched: new Date("2024-02-03T04:05:06Z"),
  };
}

function minimalInfo(): ImageInfo {
  return {
    ref: parseImageRef("ghcr.io/a/b:v1"),
    digest: DIGEST,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    labels: {},
    annotations: {},
    platforms: [],
  };
}

function assertInvalid(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidImageDataError, `threw ${String(err)}`);
    assert.equal(err.code, "INVALID_IMAGE_DATA");
    for (const f of fragments) assert.ok(err.message.includes(f), `${err.message} lacks ${f}`);
    return true;
  });
}

describe("ImageInfo JSON", () => {
  it("writes times as RFC 3339, the ref as its canonical string, every field", () => {
    const json = imageInfoToJSON(fullInfo());
    assert.deepEqual(json, {
      ref: "docker.io/library/alpine:3.19",
      digest: DIGEST,
      platformDigest: `sha256:${"b".repeat(64)}`,
      imageID: `sha256:${"c".repeat(64)}`,
      mediaType: "application/vnd.oci.image.index.v1+json",
      createdAt: "2024-01-02T03:04:05.678Z",
      labels: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z", a: "b" },
      annotations: { "org.opencontainers.image.source": "https://example.com/src", a: "manifest" },
      indexAnnotations: { "org.opencontainers.image.ref.name": "3.19", a: "index" },
      platform: { os: "linux", architecture: "arm", variant: "v7" },
      platforms: [
        { os: "linux", architecture: "amd64" },
        { os: "linux", architecture: "arm", variant: "v7" },
        { os: "windows", architecture: "amd64", osVersion: "10.0.17763.1" },
      ],
      lastFetched: "2024-02-03T04:05:06.000Z",
    });
    // The order people read it in, labels and annotations side by side.
    assert.deepEqual(Object.keys(json), [
      "ref",
      "digest",
      "platformDigest",
      "imageID",
      "mediaType",
      "createdAt",
      "labels",
      "annotations",
      "indexAnnotations",
      "platform",
      "platforms",
      "lastFetched",
    ]);
  });

  it("reads JSON written before annotations were reported as none, and no index's", () => {
    const { annotations: _a, ...old } = imageInfoToJSON(minimalInfo());
    const back = imageInfoFromJSON(old);
    assert.deepEqual(back.annotations, {});
    assert.equal("indexAnnotations" in back, false);
    // An info built by hand without annotations writes them as none.
    const { annotations: _b, ...byHand } = minimalInfo();
    assert.deepEqual(imageInfoToJSON(byHand).annotations, {});
  });

  it("omits absent values (no keys, not nulls) and survives JSON text", () => {
    const json = imageInfoToJSON(minimalInfo());
    assert.deepEqual(Object.keys(json).sort(), [
      "annotations",
      "digest",
      "labels",
      "mediaType",
      "platforms",
      "ref",
    ]);
    const text = JSON.stringify(json);
    assert.ok(!text.includes("null") && !text.includes("undefined"));
    assert.deepEqual(imageInfoFromJSON(JSON.parse(text)), minimalInfo());
  });

  it("treats an invalid Date as absent", () => {
    const info = { ...minimalInfo(), createdAt: new Date(Number.NaN) };
    assert.equal("createdAt" in imageInfoToJSON(info), false);
  });

  it("round-trips a full info through JSON text", () => {
    const back = imageInfoFromJSON(JSON.parse(JSON.stringify(imageInfoToJSON(fullInfo()))));
    assert.deepEqual(back, fullInfo());
    assert.ok(back.ref.equals(fullInfo().ref));
  });

  it("reads RFC 3339 times with offsets", () => {
    const json = { ...imageInfoToJSON(minimalInfo()), createdAt: "2024-01-02T03:04:05+02:00" };
    assert.equal(imageInfoFromJSON(json).createdAt?.toISOString(), "2024-01-02T01:04:05.000Z");
  });

  it("keeps a label named __proto__", () => {
    const info = minimalInfo();
    info.labels = Object.fromEntries([["__proto__", "x"]]);
    const text = JSON.stringify(imageInfoToJSON(info));
    assert.ok(text.includes('"__proto__":"x"'));
    const back = imageInfoFromJSON(JSON.parse(text));
    assert.deepEqual(Object.entries(back.labels), [["__proto__", "x"]]);
  });

  it("keeps an annotation named __proto__, in the manifest's and the index's", () => {
    const info = minimalInfo();
    info.annotations = Object.fromEntries([["__proto__", "m"]]);
    info.indexAnnotations = Object.fromEntries([["__proto__", "i"]]);
    const back = imageInfoFromJSON(JSON.parse(JSON.stringify(imageInfoToJSON(info))));
    assert.deepEqual(Object.entries(back.annotations ?? {}), [["__proto__", "m"]]);
    assert.deepEqual(Object.entries(back.indexAnnotations ?? {}), [["__proto__", "i"]]);
  });

  it("rejects bad data with InvalidImageDataError naming the field", () => {
    const good = imageInfoToJSON(fullInfo());
    assertInvalid(() => imageInfoFromJSON(null), "ImageInfo", "(root)");
    assertInvalid(() => imageInfoFromJSON("x"), "ImageInfo");
    assertInvalid(() => imageInfoFromJSON({ ...good, ref: "Not/Valid/UPPER" }), "ref");
    assertInvalid(() => imageInfoFromJSON({ ...good, createdAt: "yesterday" }), "createdAt");
    assertInvalid(
      () => imageInfoFromJSON({ ...good, lastFetched: "2024-01-02 03:04:05" }),
      "lastFetched",
      "RFC 3339",
    );
    assertInvalid(() => imageInfoFromJSON({ ...good, createdAt: 1700000000 }), "createdAt");
    assertInvalid(() => imageInfoFromJSON({ ...good, labels: { a: 1 } }), "labels");
    assertInvalid(() => imageInfoFromJSON({ ...good, labels: [] }), "labels");
    assertInvalid(() => imageInfoFromJSON({ ...good, annotations: { a: 1 } }), "annotations");
    assertInvalid(() => imageInfoFromJSON({ ...good, annotations: "x" }), "annotations");
    assertInvalid(() => imageInfoFromJSON({ ...good, indexAnnotations: null }), "indexAnnotations");
    assertInvalid(
      () => imageInfoFromJSON({ ...good, platforms: [{ os: "linux" }] }),
      "platforms.0.architecture",
    );
    const { digest: _d, ...noDigest } = good;
    assertInvalid(() => imageInfoFromJSON(noDigest), "digest");
  });
});

describe("ImageEntry JSON", () => {
  it("keeps the either-or shape", () => {
    const info = minimalInfo();
    assert.deepEqual(Object.keys(imageEntryToJSON({ info })), ["info"]);
    assert.deepEqual(imageEntryToJSON({ excludedReason: "no linux/amd64 manifest" }), {
      excludedReason: "no linux/amd64 manifest",
    });
    assert.deepEqual(imageEntryFromJSON(imageEntryToJSON({ info })), { info });
    assert.deepEqual(imageEntryFromJSON({ excludedReason: "why" }), { excludedReason: "why" });
  });

  it("rejects both, neither, or an empty reason", () => {
    const info = imageInfoToJSON(minimalInfo());
    assertInvalid(() => imageEntryFromJSON({ info, excludedReason: "x" }), "exactly one");
    assertInvalid(() => imageEntryFromJSON({}), "exactly one");
    assertInvalid(() => imageEntryFromJSON({ excludedReason: "" }), "excludedReason");
    assertInvalid(() => imageEntryFromJSON({ info: { ...info, digest: 5 } }), "info.digest");
  });
});

describe("RepositoryMetadata JSON", () => {
  it("writes images as an object keyed by tag and reads it back as a Map", () => {
    const meta: RepositoryMetadata = {
      tags: ["v1", "v2", "__proto__"],
      images: new Map([
        ["v1", minimalInfo()],
        ["__proto__", { ...minimalInfo(), ref: parseImageRef("ghcr.io/a/b:__proto__") }],
      ]),
    };
    const json = repositoryMetadataToJSON(meta);
    assert.deepEqual(json.tags, ["v1", "v2", "__proto__"]);
    assert.deepEqual(Object.keys(json.images), ["v1", "__proto__"]);
    const back = repositoryMetadataFromJSON(JSON.parse(JSON.stringify(json)));
    assert.deepEqual(back, meta);
  });

  it("names the tag whose image is bad", () => {
    const good = imageInfoToJSON(minimalInfo());
    assertInvalid(
      () =>
        repositoryMetadataFromJSON({
          tags: ["a", "b"],
          images: { a: good, b: { ...good, createdAt: "nope" } },
        }),
      "RepositoryMetadata",
      "images.b.createdAt",
    );
    assertInvalid(() => repositoryMetadataFromJSON({ tags: "a", images: {} }), "tags");
    assertInvalid(() => repositoryMetadataFromJSON({ tags: [], images: [] }), "images");
  });
});

describe("JSON properties", () => {
  const date = fc.date({
    min: new Date("0001-01-01T00:00:00Z"),
    max: new Date("9999-12-31T23:59:59Z"),
    noInvalidDate: true,
  });
  const platform = fc.record(
    {
      os: fc.string(),
      architecture: fc.string(),
      variant: fc.string(),
      osVersion: fc.string(),
    },
    { requiredKeys: ["os", "architecture"], noNullPrototype: true },
  );
  const info = fc.record(
    {
      ref: fc.constantFrom("alpine:3", `ghcr.io/a/b@sha256:${"d".repeat(64)}`, "[::1]:5000/x:y"),
      digest: fc.string({ minLength: 1 }),
      platformDigest: fc.string({ minLength: 1 }),
      imageID: fc.string({ minLength: 1 }),
      mediaType: fc.string(),
      createdAt: date,
      labels: fc.dictionary(fc.string(), fc.string(), { noNullPrototype: true }),
      annotations: fc.dictionary(fc.string(), fc.string(), { noNullPrototype: true }),
      indexAnnotations: fc.dictionary(fc.string(), fc.string(), { noNullPrototype: true }),
      platform,
      platforms: fc.array(platform, { maxLength: 3 }),
      lastFetched: date,
    },
    {
      requiredKeys: ["ref", "digest", "mediaType", "labels", "annotations", "platforms"],
      noNullPrototype: true,
    },
  );

  it("any ImageInfo round-trips through JSON text", () => {
    fc.assert(
      fc.property(info, (raw) => {
        const value: ImageInfo = { ...raw, ref: parseImageRef(raw.ref) };
        const back = imageInfoFromJSON(JSON.parse(JSON.stringify(imageInfoToJSON(value))));
        assert.deepEqual(back, value);
      }),
      { numRuns: 300 },
    );
  });

  it("decoding any JSON value throws nothing but InvalidImageDataError", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        for (const decode of [imageInfoFromJSON, imageEntryFromJSON, repositoryMetadataFromJSON]) {
          try {
            decode(value);
          } catch (err) {
            if (!(err instanceof InvalidImageDataError)) throw err;
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
