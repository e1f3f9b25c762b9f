/**
 * The JSON forms of ImageInfo, ImageEntry and RepositoryMetadata, and the encoders that make
 * them. Apart from the decoders (json.ts) so that printing an image does not load the
 * validation library the decoders need.
 */

import { type Undefinable, withoutUndefined } from "../without-undefined.js";
import type { ImageEntry, ImageInfo, Labels, Platform, RepositoryMetadata } from "./info.js";
import { formatRfc3339 } from "./rfc3339.js";

/** JSON form of a Platform. */
export interface PlatformJSON {
  os: string;
  architecture: string;
  variant?: string;
  osVersion?: string;
}

/** JSON form of an ImageInfo. */
export interface ImageInfoJSON {
  /** Canonical reference, e.g. `docker.io/library/alpine:3.19`. */
  ref: string;
  digest: string;
  platformDigest?: string;
  imageID?: string;
  mediaType: string;
  /** RFC 3339. */
  createdAt?: string;
  /** The config's labels only (as docker and skopeo show them). */
  labels: Labels;
  /** The image manifest's annotations (the chosen platform's, for an index); `{}` when none. */
  annotations: Labels;
  /** The index's annotations; present only when the reference resolves to an index. */
  indexAnnotations?: Labels;
  platform?: PlatformJSON;
  platforms: PlatformJSON[];
  /** RFC 3339. */
  lastFetched?: string;
}

/** JSON form of an ImageEntry: exactly one of the two keys. */
export type ImageEntryJSON = { info: ImageInfoJSON } | { excludedReason: string };

/** JSON form of RepositoryMetadata: images keyed by tag. */
export interface RepositoryMetadataJSON {
  tags: string[];
  images: Record<string, ImageInfoJSON>;
}

/**
 * Copies own keys into a fresh object, keeping even a key named `__proto__` (fromEntries
 * defines properties where assignment would set the prototype).
 */
export function copyRecord<T>(from: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(from));
}

/**
 * The JSON form of a Platform: its four fields only, absent (or undefined, as a parsed JSON
 * form has them) ones left out.
 */
export function platformToJSON(p: Undefinable<Platform>): PlatformJSON {
  const out: PlatformJSON = { os: p.os, architecture: p.architecture };
  if (p.variant !== undefined) out.variant = p.variant;
  if (p.osVersion !== undefined) out.osVersion = p.osVersion;
  return out;
}

/**
 * The JSON form of an image's info, keys in the order of ImageInfoJSON. Absent values are
 * left out (`annotations` is always there, `{}` when none); an invalid `Date` counts as
 * absent, since no RFC 3339 string can say it.
 */
export function imageInfoToJSON(info: ImageInfo): ImageInfoJSON {
  const createdAt = info.createdAt && formatRfc3339(info.createdAt);
  const lastFetched = info.lastFetched && formatRfc3339(info.lastFetched);
  return withoutUndefined<ImageInfoJSON>({
    ref: info.ref.toString(),
    digest: info.digest,
    platformDigest: info.platformDigest,
    imageID: info.imageID,
    mediaType: info.mediaType,
    createdAt,
    labels: copyRecord(info.labels),
    annotations: copyRecord(info.annotations ?? {}),
    indexAnnotations: info.indexAnnotations && copyRecord(info.indexAnnotations),
    platform: info.platform && platformToJSON(info.platform),
    platforms: info.platforms.map(platformToJSON),
    lastFetched,
  });
}

/** The JSON form of an entry: `{"info": ...}` or `{"excludedReason": ...}`, never both. */
export function imageEntryToJSON(entry: ImageEntry): ImageEntryJSON {
  return entry.info !== undefined
    ? { info: imageInfoToJSON(entry.info) }
    : { excludedReason: entry.excludedReason };
}

/** The JSON form of a repository's metadata, images keyed by tag. */
export function repositoryMetadataToJSON(meta: RepositoryMetadata): RepositoryMetadataJSON {
  const images = Object.fromEntries(
    [...meta.images].map(([tag, info]) => [tag, imageInfoToJSON(info)] as const),
  );
  return { tags: [...meta.tags], images };
}
