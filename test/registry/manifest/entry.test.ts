/**
 * `imageEntryFrom`: the ImageEntry assembled from a manifest, the chosen platform manifest
 * and the config (labels the config's alone, the manifest's and the index's annotations
 * beside them), and the excluded entry when an index has no wanted platform.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ImageName, ImageRef } from "../../../src/image/ref.js";
import { decodeImageConfig } from "../../../src/registry/manifest/config.js";
import { decodeManifest } from "../../../src/registry/manifest/decode.js";
import {
  chooseIndexManifest,
  imageEntryFrom,
  listedPlatforms,
} from "../../../src/registry/manifest/entry.js";
import {
  DOCKER_MANIFEST_LIST,
  DOCKER_SCHEMA1,
  DOCKER_SCHEMA2,
  OCI_INDEX,
  OCI_MANIFEST,
} from "../../../src/registry/manifest/media-types.js";
import { DEFAULT_PLATFORM, parsePlatform } from "../../../src/registry/manifest/platform.js";
import {
  ARM64_DIGEST,
  ARMV7_DIGEST,
  CONFIG_DIGEST,
  config,
  digestOf,
  dockerSchema2,
  enc,
  ociIndex,
  ociManifest,
  schema1,
} from "./fixtures.js";

const ref = new ImageRef({ name: new ImageName("registry.example.com", "team/app"), tag: "v1" });
const TOP = digestOf("top");

describe("imageEntryFrom", () => {
  it("a single OCI manifest: the config's labels, the manifest's annotations apart, platform from the config", () => {
    const fetchedAt = new Date("2025-01-01T00:00:00Z");
    const entry = imageEntryFrom({
      ref,
      digest: TOP,
      manifest: decodeManifest(enc(ociManifest()), OCI_MANIFEST),
      config: decodeImageConfig(enc(config())),
      wanted: DEFAULT_PLATFORM,
      fetchedAt,
    });
    assert.equal(entry.excludedReason, undefined);
    assert.deepEqual(entry.info, {
      ref,
      digest: TOP,
      imageID: CONFIG_DIGEST,
      mediaType: OCI_MANIFEST,
      createdAt: new Date("2024-03-04T05:06:07.123Z"),
      labels: {
        "org.label-schema.build-date": "2024-03-04",
        shared: "config",
      },
      annotations: {
        "org.opencontainers.image.source": "https://example.com/src",
        shared: "manifest",
      },
      platform: { os: "linux", architecture: "amd64" },
      platforms: [{ os: "linux", architecture: "amd64" }],
      lastFetched: fetchedAt,
    });
  });

  it("an artifact without an image config: no labels, its annotations, no platform", () => {
    const entry = imageEntryFrom({
      ref,
      digest: TOP,
      manifest: decodeManifest(enc(ociManifest()), OCI_MANIFEST),
      wanted: DEFAULT_PLATFORM,
    });
    assert.deepEqual(entry.info?.labels, {});
    assert.deepEqual(entry.info?.annotations, {
      "org.opencontainers.image.source": "https://example.com/src",
      shared: "manifest",
    });
    assert.equal(entry.info?.indexAnnotations, undefined);
    assert.equal(entry.info?.platform, undefined);
    assert.deepEqual(entry.info?.platforms, []);
    assert.equal(entry.info?.createdAt, undefined);
  });

  for (const [mediaType, wanted, digest, platform] of [
    [OCI_INDEX, "linux/arm64", ARM64_DIGEST, { os: "linux", architecture: "arm64", variant: "v8" }],
    [
      DOCKER_MANIFEST_LIST,
      "linux/arm/v7",
      ARMV7_DIGEST,
      { os: "linux", architecture: "arm", variant: "v7" },
    ],
  ] as const) {
    it(`an index (${mediaType.split(".").at(-1)}) for ${wanted}: platformDigest, every platform listed`, () => {
      const index = decodeManifest(enc(ociIndex(mediaType)), mediaType);
      assert.equal(index.kind, "index");
      if (index.kind !== "index") return;
      const chosen = chooseIndexManifest(index, parsePlatform(wanted));
      assert.equal(chosen?.digest, digest);
      const entry = imageEntryFrom({
        ref,
        digest: TOP,
        manifest: index,
        wanted: parsePlatform(wanted),
        platformManifest: decodeManifest(enc(ociManifest()), OCI_MANIFEST),
        config: decodeImageConfig(enc(config({ architecture: platform.architecture }))),
      });
      const info = entry.info;
      assert.ok(info);
      assert.equal(info.digest, TOP);
      assert.equal(info.platformDigest, digest);
      assert.equal(info.imageID, CONFIG_DIGEST);
      assert.equal(info.mediaType, mediaType);
      assert.deepEqual(info.platform, platform);
      assert.deepEqual(info.platforms, [
        { os: "linux", architecture: "amd64" },
        { os: "linux", architecture: "arm64", variant: "v8" },
        { os: "linux", architecture: "arm", variant: "v7" },
      ]);
      // Each map as found: nothing of the index or the manifest leaks into the labels.
      assert.deepEqual(info.labels, {
        "org.label-schema.build-date": "2024-03-04",
        shared: "config",
      });
      assert.deepEqual(info.annotations, {
        "org.opencontainers.image.source": "https://example.com/src",
        shared: "manifest",
      });
      assert.deepEqual(info.indexAnnotations, {
        "org.opencontainers.image.ref.name": "idx",
        shared: "index",
      });
    });
  }

  it("Docker schema 2 and an index without annotations: empty annotations, indexAnnotations {}", () => {
    const single = imageEntryFrom({
      ref,
      digest: TOP,
      manifest: decodeManifest(enc(dockerSchema2()), DOCKER_SCHEMA2),
      config: decodeImageConfig(enc(config())),
      wanted: DEFAULT_PLATFORM,
    });
    assert.deepEqual(single.info?.annotations, {});
    assert.equal(single.info && "indexAnnotations" in single.info, false);
    const list = decodeManifest(
      enc({ ...ociIndex(DOCKER_MANIFEST_LIST), annotations: undefined }),
      DOCKER_MANIFEST_LIST,
    );
    const fromList = imageEntryFrom({
      ref,
      digest: TOP,
      manifest: list,
      wanted: DEFAULT_PLATFORM,
      platformManifest: decodeManifest(enc(dockerSchema2()), DOCKER_SCHEMA2),
      config: decodeImageConfig(enc(config())),
    });
    assert.deepEqual(fromList.info?.indexAnnotations, {});
    assert.deepEqual(fromList.info?.annotations, {});
    assert.deepEqual(fromList.info?.labels, {
      "org.label-schema.build-date": "2024-03-04",
      shared: "config",
    });
  });

  it("an index without the wanted platform is excluded, naming wanted and available platforms", () => {
    const index = decodeManifest(enc(ociIndex()), OCI_INDEX);
    const entry = imageEntryFrom({
      ref,
      digest: TOP,
      manifest: index,
      wanted: parsePlatform("linux/s390x"),
    });
    assert.equal(entry.info, undefined);
    assert.equal(
      entry.excludedReason,
      "no manifest for platform linux/s390x in the index (available: linux/amd64, linux/arm64/v8, linux/arm/v7)",
    );
    if (index.kind === "index") assert.equal(listedPlatforms(index).length, 3);
  });

  it("never chooses an attestation manifest", () => {
    const index = decodeManifest(enc(ociIndex()), OCI_INDEX);
    if (index.kind !== "index") throw new Error("not an index");
    assert.equal(chooseIndexManifest(index, { os: "unknown", architecture: "unknown" }), undefined);
  });

  it("a nested index is excluded", () => {
    const entry = imageEntryFrom({
      ref,
      digest: TOP,
      manifest: decodeManifest(enc(ociIndex()), OCI_INDEX),
      wanted: DEFAULT_PLATFORM,
      platformManifest: decodeManifest(enc(ociIndex()), OCI_INDEX),
    });
    assert.match(entry.excludedReason ?? "", /nested/);
  });

  it("schema 1: created, labels and platform from history", () => {
    const entry = imageEntryFrom({
      ref,
      digest: TOP,
      manifest: decodeManifest(
        enc(
          schema1({
            created: "2016-05-06T07:08:09Z",
            os: "linux",
            container_config: { Labels: { x: "y" } },
          }),
        ),
        DOCKER_SCHEMA1,
      ),
      wanted: DEFAULT_PLATFORM,
    });
    assert.deepEqual(entry.info, {
      ref,
      digest: TOP,
      mediaType: DOCKER_SCHEMA1,
      createdAt: new Date("2016-05-06T07:08:09Z"),
      labels: { x: "y" },
      annotations: {},
      platform: { os: "linux", architecture: "amd64" },
      platforms: [{ os: "linux", architecture: "amd64" }],
    });
  });
});
