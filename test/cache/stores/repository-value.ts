/**
 * A realistic repository value for size tests and benchmarks: the JSON a cache writes for
 * a repository with N tags. Like a CI-built repository, every tag is its own build (own
 * manifest, config, revision, creation time), so hashes keep it from compressing much.
 */
import { createHash } from "node:crypto";

const hex = (text: string, algorithm = "sha256") =>
  createHash(algorithm).update(text).digest("hex");

/** The JSON bytes of a repository with `tags` tags, each a distinct image. */
export function repositoryValue(tags: number): Buffer {
  const entries = Array.from({ length: tags }, (_, t) => ({
    tag: `v${Math.floor(t / 1000)}.${Math.floor(t / 10) % 100}.${t % 10}-build.${t}`,
    digest: `sha256:${hex(`manifest-${t}`)}`,
    configDigest: `sha256:${hex(`config-${t}`)}`,
    createdAt: new Date(Date.UTC(2024, 0, 1) + t * 3_600_000).toISOString(),
    platform: { os: "linux", architecture: t % 3 === 0 ? "arm64" : "amd64" },
    labels: {
      "org.opencontainers.image.source": "https://github.com/example/app",
      "org.opencontainers.image.revision": hex(`rev-${t}`, "sha1"),
      "org.opencontainers.image.version": `${Math.floor(t / 1000)}.${Math.floor(t / 10) % 100}`,
    },
    size: 12_345_678 + t * 17,
    lastFetched: new Date(Date.UTC(2026, 10, 1) + t * 1000).toISOString(),
    refreshMs: 3_600_000 * (1 + (t % 4)),
  }));
  return Buffer.from(
    JSON.stringify({ name: "registry.example.com/team/app", tags: entries, lastError: "" }),
  );
}
