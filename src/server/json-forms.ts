/**
 * The JSON the API answers with for images, repositories and statuses. Dates are ISO 8601
 * strings; an image map is an object keyed by tag. Tags and labels are keys chosen by
 * whoever pushes images, so maps keyed by them never go through a plain object's setter
 * (a tag `__proto__` would silently vanish).
 */
import type { ImageInfo, Labels, RepositoryMetadata } from "../image/info.js";
import type { RepositoryStream } from "../registry/repository-stream.js";
import type { RepositoryStatus, TagEvent } from "./warmer-control.js";

/** One image, in the same shape as `regscan inspect --output json`. */
export function imageJson(info: ImageInfo): Record<string, unknown> {
  return { ref: info.ref.toString(), ...imageJsonAfterRef(info) };
}

/** `imageJson` without its `ref`: the same for every tag of one image. */
function imageJsonAfterRef(info: ImageInfo): Record<string, unknown> {
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

/** Milliseconds of work between two turns of the event loop while writing an answer. */
const TURN_MS = 4;

/** An image's JSON after its `ref`, kept while writing one answer. */
interface Tail {
  info: ImageInfo;
  /** `{"digest":...}`: the image's JSON without `ref`, a string of its own. */
  text: string;
}

/** Whether `a` and `b` print the same image JSON apart from `ref`. */
function sameImageJson(a: ImageInfo, b: ImageInfo): boolean {
  return (
    a.digest === b.digest &&
    a.platformDigest === b.platformDigest &&
    a.imageID === b.imageID &&
    a.mediaType === b.mediaType &&
    a.labels === b.labels &&
    a.annotations === b.annotations &&
    a.indexAnnotations === b.indexAnnotations &&
    a.platform === b.platform &&
    a.platforms === b.platforms &&
    sameTime(a.createdAt, b.createdAt) &&
    sameTime(a.lastFetched, b.lastFetched)
  );
}

function sameTime(a: Date | undefined, b: Date | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.getTime() === b.getTime());
}

/**
 * Images whose JSON is remembered (by their labels object) while writing one answer: tags
 * sharing an image cost a lookup, and an answer over more distinct images than this holds
 * no more of them (at about a kilobyte each).
 */
const MAX_TAILS = 2_048;

/**
 * `repositoryJson(name, ...)` as UTF-8 text with a final newline, in pieces of about
 * `pieceChars` characters (default 64 Ki), produced as the images are read: what it holds
 * is a slice of the stream and at most {@link MAX_TAILS} images' JSON, whatever the size of
 * the repository. Every tag of one image shares that image's JSON after `ref`, serialised
 * once. The event loop gets a turn every few milliseconds.
 */
export async function* repositoryJsonPieces(
  name: string,
  stream: RepositoryStream,
  pieceChars = 64 * 1024,
): AsyncGenerator<string> {
  let piece = `{"name":${JSON.stringify(name)},"tags":${JSON.stringify(stream.tags)},"images":{`;
  const byLabels = new Map<object, Tail>();
  let n = 0;
  let turn = performance.now();
  for await (const slice of stream.images()) {
    for (const [tag, info] of slice) {
      let tail = byLabels.get(info.labels);
      if (tail === undefined || !sameImageJson(tail.info, info)) {
        tail = { info, text: JSON.stringify(imageJsonAfterRef(info)) };
        if (byLabels.size >= MAX_TAILS) byLabels.clear();
        byLabels.set(info.labels, tail);
      }
      // `{"digest":...}` follows `"ref":"..."` after a comma, in place of its opening brace.
      piece += `${n === 0 ? "" : ","}${JSON.stringify(tag)}:{"ref":${JSON.stringify(info.ref.toString())},${tail.text.slice(1)}`;
      n++;
      if (piece.length >= pieceChars) {
        yield piece;
        piece = "";
      }
      if ((n & 255) === 0 && performance.now() - turn > TURN_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        turn = performance.now();
      }
    }
  }
  yield `${piece}}}\n`;
}

/**
 * `repositoryJson` as UTF-8 text with a final newline, in one Buffer, built with turns of
 * the event loop in between (a 5,000-tag repository is megabytes of JSON); undefined as soon
 * as the text passes `maxBytes` (default: no bound), having held at most that much.
 */
export async function repositoryJsonText(
  name: string,
  stream: RepositoryStream,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<Buffer | undefined> {
  const pieces: Buffer[] = [];
  let bytes = 0;
  for await (const piece of repositoryJsonPieces(name, stream)) {
    const buf = Buffer.from(piece, "utf8");
    bytes += buf.length;
    if (bytes > maxBytes) return undefined;
    pieces.push(buf);
  }
  return Buffer.concat(pieces, bytes);
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
