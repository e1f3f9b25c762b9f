/**
 * Assembles what regscan reports about one reference (`ImageEntry`) from the decoded
 * top-level manifest, the chosen platform's manifest and the config blob; an index with
 * no manifest for the wanted platform gives an excluded entry saying why.
 */
import type { ImageEntry, ImageInfo, Labels, Platform } from "../../image/info.js";
import type { ImageRef } from "../../image/ref.js";
import { withoutUndefined } from "../../without-undefined.js";
import type { ImageConfigSummary } from "./config.js";
import type { DecodedIndex, DecodedManifest, Descriptor } from "./decode.js";
import { choosePlatformDescriptor, formatPlatform } from "./platform.js";

/** Annotation buildx puts on the attestation manifests it adds to an index. */
const REFERENCE_TYPE = "vnd.docker.reference.type";

/** Whether an index entry is not an image for a platform (a buildx attestation, say). */
export function isAttestationDescriptor(d: Descriptor): boolean {
  if (d.annotations[REFERENCE_TYPE] !== undefined) return true;
  return d.platform?.os === "unknown" && d.platform.architecture === "unknown";
}

/** Every platform an index lists, in its order, attestations left out. */
export function listedPlatforms(index: DecodedIndex): Platform[] {
  const out: Platform[] = [];
  for (const d of index.manifests) {
    if (d.platform && !isAttestationDescriptor(d)) out.push({ ...d.platform });
  }
  return out;
}

/** The index entry to fetch for `wanted` (see `choosePlatformDescriptor`), or `undefined`. */
export function chooseIndexManifest(index: DecodedIndex, wanted: Platform): Descriptor | undefined {
  return choosePlatformDescriptor(
    index.manifests.filter((d) => !isAttestationDescriptor(d)),
    wanted,
  );
}

/** Why an index has nothing for `wanted`: names it and the platforms available. */
export function noMatchingPlatformReason(index: DecodedIndex, wanted: Platform): string {
  const available = listedPlatforms(index).map(formatPlatform);
  const list = available.length
    ? `available: ${available.join(", ")}`
    : "the index lists no platforms";
  return `no manifest for platform ${formatPlatform(wanted)} in the index (${list})`;
}

/** Everything `imageEntryFrom` assembles an entry from. */
export interface ImageEntryInput {
  /** The reference as asked for. */
  ref: ImageRef;
  /** Digest of the top-level manifest (verified). */
  digest: string;
  /** The decoded top-level manifest. */
  manifest: DecodedManifest;
  /** The platform wanted when the top level is an index. */
  wanted: Platform;
  /** When the top level is an index: the chosen entry's manifest, decoded. */
  platformManifest?: DecodedManifest | undefined;
  /** When the top level is an index: the chosen entry's digest (default: the chosen descriptor's). */
  platformDigest?: string | undefined;
  /** The decoded config blob of the image manifest, when it was an image config. */
  config?: ImageConfigSummary | undefined;
  /** When it was fetched. */
  fetchedAt?: Date | undefined;
}

function configPlatform(config: ImageConfigSummary | undefined): Platform | undefined {
  if (!config?.os || !config.architecture) return undefined;
  return withoutUndefined<Platform>({
    os: config.os,
    architecture: config.architecture,
    variant: config.variant,
    osVersion: config.osVersion,
  });
}

/**
 * The entry for one reference. For an index, pass the manifest of
 * `chooseIndexManifest(index, wanted)` as `platformManifest`; when nothing matches the entry
 * is excluded (no fetch needed). Labels are the config's alone (what docker and skopeo
 * show); the image manifest's annotations and the index's are reported beside them, each
 * as found, so that neither hides the other.
 */
export function imageEntryFrom(input: ImageEntryInput): ImageEntry {
  const top = input.manifest;
  let platform: Platform | undefined;
  let platforms: Platform[];
  let platformDigest: string | undefined;
  let inner: DecodedManifest = top;
  let indexAnnotations: Labels | undefined;
  if (top.kind === "index") {
    const chosen = chooseIndexManifest(top, input.wanted);
    if (chosen === undefined)
      return { excludedReason: noMatchingPlatformReason(top, input.wanted) };
    if (input.platformManifest === undefined) {
      throw new TypeError("imageEntryFrom: an index needs the chosen platform manifest");
    }
    inner = input.platformManifest;
    if (inner.kind === "index") {
      return {
        excludedReason: `the manifest for platform ${formatPlatform(input.wanted)} is itself an index (nested indexes are not supported)`,
      };
    }
    platform = chosen.platform ? { ...chosen.platform } : undefined;
    platforms = listedPlatforms(top);
    platformDigest = input.platformDigest ?? chosen.digest;
    indexAnnotations = { ...top.annotations };
  } else {
    platforms = [];
  }

  let createdAt: Date | undefined;
  let labels: Labels = {};
  let annotations: Labels = {};
  let imageID: string | undefined;
  if (inner.kind === "schema1") {
    createdAt = inner.createdAt;
    labels = { ...inner.labels };
    platform ??=
      inner.os && inner.architecture
        ? { os: inner.os, architecture: inner.architecture }
        : undefined;
  } else if (inner.kind === "image") {
    imageID = inner.config.digest;
    createdAt = input.config?.createdAt;
    labels = { ...(input.config?.labels ?? {}) };
    annotations = { ...inner.annotations };
    platform ??= configPlatform(input.config);
  }
  if (top.kind !== "index" && platform) platforms = [{ ...platform }];

  const info = withoutUndefined<ImageInfo>({
    ref: input.ref,
    digest: input.digest,
    platformDigest,
    imageID,
    mediaType: top.mediaType,
    createdAt,
    labels,
    annotations,
    indexAnnotations,
    platform,
    platforms,
    lastFetched: input.fetchedAt,
  });
  return { info };
}
