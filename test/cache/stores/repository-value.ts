/**
 * A realistic repository value for size tests and benchmarks: the JSON a cache writes for
 * a repository with N tags (tag, digest, creation time, labels, platform per tag).
 */
import { createHash } from "node:crypto";

/** The JSON bytes of a repository with `tags` tags over a few dozen distinct images. */
export function repositoryValue(tags: number): Buffer {
  const images = Array.from({ length: 40 }, (_, i) => {
    const digest = `sha256:${createHash("sha256").update(`image-${i}`).digest("hex")}`;
    return {
      digest,
      configDigest: `sha256:${createHash("sha256").update(`config-${i}`).digest("hex")}`,
      createdAt: new Date(Date.UTC(2024, 0, 1) + i * 86_400_000).toISOString(),
      platform: { os: "linux", architecture: i % 3 === 0 ? "arm64" : "amd64" },
      labels: {
        "org.opencontainers.image.source": "https://github.com/example/app",
        "org.opencontainers.image.revision": createHash("sha1").update(String(i)).digest("hex"),
        "org.opencontainers.image.version": `1.${i}.0`,
      },
      size: 12_345_678 + i,
    };
  });
  const entries = Array.from({ length: tags }, (_, t) => {
    const image = images[(t * 7) % images.length]!;
    return {
      tag: `v${Math.floor(t / 1000)}.${Math.floor(t / 10) % 100}.${t % 10}-build.${t}`,
      ...image,
      lastFetched: new Date(Date.UTC(2026, 10, 1) + t * 1000).toISOString(),
      refreshMs: 3_600_000 * (1 + (t % 4)),
    };
  });
  return Buffer.from(
    JSON.stringify({ name: "registry.example.com/team/app", tags: entries, lastError: "" }),
  );
}
