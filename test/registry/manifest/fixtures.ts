// Manifests and configs shaped like what registries send, built in code so each test can
// vary one field. Not a test file itself.
import { computeDigest } from "../../../src/registry/digest.js";

export const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v, null, 3));

export const digestOf = (s: string): string => computeDigest(new TextEncoder().encode(s));

export const CONFIG_DIGEST = digestOf("config");
export const LAYER_DIGEST = digestOf("layer");
export const AMD64_DIGEST = digestOf("amd64");
export const ARM64_DIGEST = digestOf("arm64");
export const ARMV7_DIGEST = digestOf("armv7");
export const ATTEST_DIGEST = digestOf("attestation");

export function ociManifest(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: CONFIG_DIGEST,
      size: 123,
    },
    layers: [
      { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: LAYER_DIGEST, size: 456 },
    ],
    annotations: {
      "org.opencontainers.image.source": "https://example.com/src",
      shared: "manifest",
    },
    ...extra,
  };
}

export function dockerSchema2(): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: {
      mediaType: "application/vnd.docker.container.image.v1+json",
      digest: CONFIG_DIGEST,
      size: 7,
    },
    layers: [
      {
        mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip",
        digest: LAYER_DIGEST,
        size: 8,
      },
    ],
  };
}

export function ociIndex(
  mediaType = "application/vnd.oci.image.index.v1+json",
): Record<string, unknown> {
  const m = mediaType.includes("docker")
    ? "application/vnd.docker.distribution.manifest.v2+json"
    : "application/vnd.oci.image.manifest.v1+json";
  return {
    schemaVersion: 2,
    mediaType,
    manifests: [
      {
        mediaType: m,
        digest: AMD64_DIGEST,
        size: 10,
        platform: { architecture: "amd64", os: "linux" },
      },
      {
        mediaType: m,
        digest: ARM64_DIGEST,
        size: 11,
        platform: { architecture: "arm64", os: "linux", variant: "v8" },
      },
      {
        mediaType: m,
        digest: ARMV7_DIGEST,
        size: 12,
        platform: { architecture: "arm", os: "linux", variant: "v7" },
      },
      {
        mediaType: m,
        digest: ATTEST_DIGEST,
        size: 13,
        platform: { architecture: "unknown", os: "unknown" },
        annotations: { "vnd.docker.reference.type": "attestation-manifest" },
      },
    ],
    annotations: { "org.opencontainers.image.ref.name": "idx", shared: "index" },
  };
}

export function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    created: "2024-03-04T05:06:07.123456789Z",
    architecture: "amd64",
    os: "linux",
    config: { Labels: { "org.label-schema.build-date": "2024-03-04", shared: "config" } },
    container_config: { Labels: { old: "yes" } },
    rootfs: { type: "layers", diff_ids: [] },
    ...extra,
  };
}

export function schema1(v1: Record<string, unknown>): Record<string, unknown> {
  return {
    schemaVersion: 1,
    name: "team/app",
    tag: "v1",
    architecture: "amd64",
    fsLayers: [{ blobSum: LAYER_DIGEST }],
    history: [{ v1Compatibility: JSON.stringify(v1) }, { v1Compatibility: "{}" }],
  };
}

/** A signed schema 1 manifest built the way libtrust does, and its JWS payload. */
export function signedSchema1(v1: Record<string, unknown>): {
  signed: Uint8Array;
  payload: Uint8Array;
} {
  const payload = JSON.stringify(schema1(v1), null, 3);
  const formatLength = payload.lastIndexOf("\n}");
  const formatTail = Buffer.from(payload.slice(formatLength)).toString("base64url");
  const protectedHeader = Buffer.from(
    JSON.stringify({ formatLength, formatTail, time: "2024-01-01T00:00:00Z" }),
  ).toString("base64url");
  const signatures = `,\n   "signatures": [\n      {\n         "header": {"alg": "ES256"},\n         "signature": "c2ln",\n         "protected": "${protectedHeader}"\n      }\n   ]`;
  const signed = payload.slice(0, formatLength) + signatures + payload.slice(formatLength);
  return { signed: new TextEncoder().encode(signed), payload: new TextEncoder().encode(payload) };
}
