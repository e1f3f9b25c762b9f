/**
 * The JSON the API answers with for images, repositories and statuses. Dates are ISO 8601
 * strings; an image map is an object keyed by tag. Tags and labels are keys chosen by
 * whoever pushes images, so maps keyed by them never go through a plain object's setter
 * (a tag `__proto__` would silently vanish).
 */
import type { ImageInfo, Labels, RepositoryMetadata } from "../image/info.js";
import type { RepositoryStatus, TagEvent } from "./warmer-control.js";

/** One image, in the same shape as `regscan inspect --output json`. */
export function imageJson(info: ImageInfo): Record<string, unknown> {
  return { ref: info.ref.toString(), ...imageJsonAfterRef(info) };
}

/** `imageJson` without its `ref`: the same for every tag of one image. */
export function imageJsonAfterRef(info: ImageInfo): Record<string, unknown> {
  return {
    digest: info.digest,
    platformDigest: info.platformDigest,
    imageID: info.imageID,
    mediaType: info.mediaType,
    createdAt: iso(info.createdAt),
    labels: ownEntries(info.labels),
    annotations: ownEntries(info.annotations ?? {}),
    indexAnnotations: info.indexAnnotations && ownEntries(info.indexAnnotations),
    platform: info.platform,
    platforms: info.platforms,
    lastFetched: iso(info.lastFetched),
  };
}

/** A repository's tags and the images behind them. */
export function repositoryJson(name: string, meta: RepositoryMetadata): Record<string, unknown> {
  const images: Record<string, unknown> = Object.create(null);
  // defineProperty, not assignment: `images.__proto__ = x` would set the prototype instead.
  for (const [tag, info] of meta.images) {
    Object.defineProperty(images, tag, { value: imageJson(info), enumerable: true });
  }
  return { name, tags: meta.tags, images };
}

/**
 * `GET /v1/repositories`' whole body (with the final newline every answer has): built where
 * the statuses are, so that an API on a thread of its own is handed bytes, not 10,000
 * statuses to clone and serialize while its readers wait.
 */
export function statusListBody(statuses: readonly RepositoryStatus[]): Buffer {
  return Buffer.from(`${JSON.stringify({ repositories: statuses.map(statusJson) })}\n`, "utf8");
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
    ...staleness(s),
  };
}

/** How stale a repository may be: seconds since its tags were last listed, and its interval now. */
export function staleness(s: { lastUpdate?: Date | undefined; intervalMs?: number | undefined }): {
  staleSeconds: number | undefined;
  intervalSeconds: number | undefined;
} {
  return {
    staleSeconds:
      s.lastUpdate && Math.max(0, Math.round((Date.now() - s.lastUpdate.getTime()) / 1000)),
    intervalSeconds: s.intervalMs === undefined ? undefined : s.intervalMs / 1000,
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

/** A copy of a label map whose keys all stay keys, `__proto__` included. */
function ownEntries(labels: Labels): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(labels)) {
    Object.defineProperty(out, k, { value: v, enumerable: true });
  }
  return out;
}

function iso(d: Date | undefined): string | undefined {
  return d === undefined || Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}
