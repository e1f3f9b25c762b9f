/**
 * The bytes of one simulated image, derived only from its id: a Docker schema 2 or OCI
 * manifest with its config and one small layer, or an OCI index / Docker manifest list over
 * two or three platform manifests. Digests are the sha256 of exactly these bytes.
 */
import { hash } from "node:crypto";
import { MediaTypes } from "../../test/support/media-types.js";
import { hash32, unit } from "./rng.js";

export type ImageKind = "docker" | "oci" | "oci-index" | "docker-list";

/** Shares of each manifest kind among a registry's images (they need not sum to 1). */
export interface KindMix {
  docker: number;
  oci: number;
  ociIndex: number;
  dockerList: number;
}

export const DEFAULT_KIND_MIX: KindMix = { docker: 0.6, oci: 0.2, ociIndex: 0.1, dockerList: 0.1 };

/**
 * An image id: repository index, the repository-local image number and the part (0 = the
 * tagged manifest; 1..3 = a platform manifest of an index). Packed into one safe integer.
 */
export interface ImageKey {
  repo: number;
  local: number;
  part: number;
}

const LOCAL_SPAN = 2 ** 21;
export const MAX_LOCAL_IMAGES = LOCAL_SPAN;

export function packImage(k: ImageKey): number {
  return (k.repo * LOCAL_SPAN + k.local) * 4 + k.part;
}

export function unpackImage(id: number): ImageKey {
  const part = id % 4;
  const rest = (id - part) / 4;
  const local = rest % LOCAL_SPAN;
  return { repo: (rest - local) / LOCAL_SPAN, local, part };
}

/** A blob or manifest as served: bytes, digest and media type. */
export interface Served {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

/** A generated manifest with what it refers to. */
export interface GeneratedImage extends Served {
  id: number;
  kind: ImageKind;
  /** Config and layer blobs (image manifests only). */
  blobs: Served[];
  /** Platform manifests (indexes only), in the index's order. */
  children: GeneratedImage[];
}

const PLATFORMS = [
  { os: "linux", architecture: "amd64" },
  { os: "linux", architecture: "arm64", variant: "v8" },
  { os: "linux", architecture: "arm", variant: "v7" },
] as const;

const BASE_TIME = Date.UTC(2024, 0, 1);

export function sha256(bytes: Buffer): string {
  // One-shot: a third of createHash's time for a few hundred bytes, and images are rebuilt
  // whenever the cache has let them go.
  return `sha256:${hash("sha256", bytes, "hex")}`;
}

function served(bytes: Buffer, mediaType: string): Served {
  return { bytes, digest: sha256(bytes), mediaType };
}

/** Which kind the tagged manifest `local` of `repo` is, from the registry's seed and mix. */
export function kindOf(seed: string, repo: number, local: number, mix: KindMix): ImageKind {
  const total = mix.docker + mix.oci + mix.ociIndex + mix.dockerList;
  const u = unit(seed, "kind", repo, local) * total;
  if (u < mix.docker) return "docker";
  if (u < mix.docker + mix.oci) return "oci";
  if (u < mix.docker + mix.oci + mix.ociIndex) return "oci-index";
  return "docker-list";
}

/** Generates the image `id` (and, for an index, its platform manifests). */
export function generateImage(seed: string, id: number, mix: KindMix): GeneratedImage {
  const key = unpackImage(id);
  const topKind = kindOf(seed, key.repo, key.local, mix);
  if (key.part === 0 && (topKind === "oci-index" || topKind === "docker-list")) {
    return generateIndex(seed, key, topKind);
  }
  const childFormat = topKind === "oci-index" || topKind === "oci" ? "oci" : "docker";
  return generateManifest(seed, key, childFormat);
}

function generateManifest(seed: string, key: ImageKey, format: "oci" | "docker"): GeneratedImage {
  const platform = PLATFORMS[key.part === 0 ? 0 : key.part - 1] ?? PLATFORMS[0];
  const created = new Date(BASE_TIME + key.local * 3_600_000 + key.part * 1000).toISOString();
  const layerBytes = Buffer.from(
    `sim-layer ${seed} ${key.repo} ${key.local} ${key.part} ${hash32(seed, key.repo, key.local)}`,
  );
  const layer = served(layerBytes, format === "oci" ? MediaTypes.ociLayer : MediaTypes.dockerLayer);
  const config = served(
    Buffer.from(
      JSON.stringify({
        architecture: platform.architecture,
        os: platform.os,
        ...("variant" in platform ? { variant: platform.variant } : {}),
        created,
        config: {
          Labels: {
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.revision": hash32(seed, "rev", key.repo, key.local)
              .toString(16)
              .padStart(8, "0"),
            "sim.image": `${key.repo}/${key.local}/${key.part}`,
          },
        },
        rootfs: { type: "layers", diff_ids: [layer.digest] },
      }),
    ),
    format === "oci" ? MediaTypes.ociConfig : MediaTypes.dockerConfig,
  );
  const mediaType = format === "oci" ? MediaTypes.ociManifest : MediaTypes.dockerManifest;
  const manifest = served(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: { mediaType: config.mediaType, size: config.bytes.length, digest: config.digest },
        layers: [{ mediaType: layer.mediaType, size: layer.bytes.length, digest: layer.digest }],
      }),
    ),
    mediaType,
  );
  return {
    ...manifest,
    id: packImage(key),
    kind: format,
    blobs: [config, layer],
    children: [],
  };
}

function generateIndex(
  seed: string,
  key: ImageKey,
  kind: "oci-index" | "docker-list",
): GeneratedImage {
  const platforms = unit(seed, "platforms", key.repo, key.local) < 0.5 ? 2 : 3;
  const format = kind === "oci-index" ? "oci" : "docker";
  const children: GeneratedImage[] = [];
  for (let p = 1; p <= platforms; p++) {
    children.push(generateManifest(seed, { ...key, part: p }, format));
  }
  const mediaType = kind === "oci-index" ? MediaTypes.ociIndex : MediaTypes.dockerManifestList;
  const manifest = served(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        manifests: children.map((c, i) => {
          const platform = PLATFORMS[i] ?? PLATFORMS[0];
          return {
            mediaType: c.mediaType,
            size: c.bytes.length,
            digest: c.digest,
            platform: { ...platform },
          };
        }),
      }),
    ),
    mediaType,
  );
  return { ...manifest, id: packImage(key), kind, blobs: [], children };
}
