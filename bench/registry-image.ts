/**
 * Image metadata as registries serve it, for the benches that fill a cache without a
 * registry (layout, answer-misses): a few labels and annotations, one platform.
 */
import type { ImageEntry } from "../src/image/info.js";
import type { ImageName } from "../src/image/ref.js";
import { fakeDigest } from "../test/cache/support/fake-registry.js";

/** Image number `i` of `name` (its digest is `fakeDigest(i + 1)`). */
export function registryImage(name: ImageName, i: number): ImageEntry {
  const digest = fakeDigest(i + 1);
  const created = new Date(Date.UTC(2024, 0, 1) + i * 60_000);
  return {
    info: {
      ref: name.withDigest(digest),
      digest,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      imageID: fakeDigest(1_000_000 + i),
      createdAt: created,
      labels: {
        "org.opencontainers.image.created": created.toISOString(),
        "org.opencontainers.image.revision": (i * 7919).toString(16).padStart(40, "0"),
        maintainer: "team@example.com",
      },
      annotations: { "org.opencontainers.image.source": "https://github.com/example/app" },
      platform: { os: "linux", architecture: "amd64" },
      platforms: [{ os: "linux", architecture: "amd64" }],
      lastFetched: new Date(Date.UTC(2026, 0, 1)),
    },
  };
}
