/**
 * The JSON the API answers with for images, repositories and statuses. Dates are ISO 8601
 * strings; an image map is an object keyed by tag.
 */
import type { ImageInfo, RepositoryMetadata } from "../image/info.js";
import type { RepositoryStatus, TagEvent } from "./warmer-control.js";

/** One image, in the same shape as `regscan inspect --output json`. */
export function imageJson(info: ImageInfo): Record<string, unknown> {
  return {
    ref: info.ref.toString(),
    digest: info.digest,
    platformDigest: info.platformDigest,
    imageID: info.imageID,
    mediaType: info.mediaType,
    createdAt: iso(info.createdAt),
    labels: info.labels,
    annotations: info.annotations ?? {},
    indexAnnotations: info.indexAnnotations,
    platform: info.platform,
    platforms: info.platforms,
    lastFetched: iso(info.lastFetched),
  };
}

/** A repository's tags and the images behind them. */
export function repositoryJson(name: string, meta: RepositoryMetadata): Record<string, unknown> {
  const images: Record<string, unknown> = {};
  for (const [tag, info] of meta.images) images[tag] = imageJson(info);
  return { name, tags: meta.tags, images };
}

/** A watched repository's status. */
export function statusJson(s: RepositoryStatus): Record<string, unknown> {
  return {
    name: s.repository,
    tagCount: s.tagCount,
    artifactTags: s.artifactTags,
    lastUpdate: iso(s.lastUpdate),
    lastScanned: iso(s.lastScanned),
    lastError: s.lastError,
    nextRefresh: iso(s.nextRefresh),
    scanning: s.scanning,
  };
}

/** A tag event as sent on `/v1/events`. */
export function eventJson(e: TagEvent): Record<string, unknown> {
  return {
    type: e.type,
    repository: e.repository,
    tag: e.tag,
    digest: e.digest,
    previousDigest: e.previousDigest,
    at: e.at.toISOString(),
  };
}

function iso(d: Date | undefined): string | undefined {
  return d === undefined || Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}
