/**
 * The JSON the API answers with for images, repositories and statuses. Dates are ISO 8601
 * strings; an image map is an object keyed by tag. Tags and labels are keys chosen by
 * whoever pushes images, so maps keyed by them never go through a plain object's setter
 * (a tag `__proto__` would silently vanish).
 */
import type { ImageInfo, Labels, RepositoryMetadata } from "../image/info.js";
import { ApiError } from "./api-error.js";
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
 * `repositoryJson` laid out for writing, without holding the text: its exact UTF-8 length
 * (for `content-length`) and, per tag, what its text is made of. Every tag of one image
 * shares that image's JSON after `ref` (serialised once per image), so the layout of a
 * 100,000-tag repository over a few hundred images is a few MiB where its text is ~75 MB.
 */
export interface RepositoryJsonLayout {
  /** Bytes of the UTF-8 text, final newline included. */
  readonly byteLength: number;
  /** Bytes the layout itself keeps alive, roughly (what a cache of layouts counts). */
  readonly retainedBytes: number;
  /** The text, in slices of about `sliceChars` characters (default 64 Ki), in order. */
  slices(sliceChars?: number): Generator<string>;
}

/** Milliseconds of work between two turns of the event loop while laying out or writing. */
const TURN_MS = 4;

/** The image JSON after its `ref` (`,"digest":...}`), kept per image while laying out. */
interface Tail {
  info: ImageInfo;
  text: string;
  bytes: number;
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

/** Images whose JSON is remembered by their labels object while laying out one answer. */
const MAX_TAILS = 50_000;

/**
 * Lays out `repositoryJson(name, meta)` (see {@link RepositoryJsonLayout}), with a turn of
 * the event loop every few milliseconds: a big repository must not hold up other requests
 * (health checks included).
 */
export async function layoutRepositoryJson(
  name: string,
  meta: RepositoryMetadata,
): Promise<RepositoryJsonLayout> {
  const head = `{"name":${JSON.stringify(name)},"tags":${JSON.stringify(meta.tags)},"images":{`;
  const end = "}}\n";
  const count = meta.images.size;
  const tags: string[] = new Array(count);
  /** The tag's `ref` text when it is not `name:tag`. */
  const refs = new Map<number, string>();
  const tails: string[] = new Array(count);
  const byLabels = new Map<object, Tail>();
  const distinct = new Set<string>();
  let bytes = Buffer.byteLength(head) + end.length;
  let n = 0;
  let turn = performance.now();
  for (const [tag, info] of meta.images) {
    const ref = info.ref.toString();
    const own = `${name}:${tag}`;
    if (ref !== own) refs.set(n, ref);
    let tail = byLabels.get(info.labels);
    if (tail === undefined || !sameImageJson(tail.info, info)) {
      const full = JSON.stringify(imageJson(info));
      // `imageJson` puts `ref` first: what follows it is the same for every tag of the image.
      const text = full.slice(`{"ref":${JSON.stringify(ref)}`.length);
      tail = { info, text, bytes: Buffer.byteLength(text) };
      if (byLabels.size < MAX_TAILS) byLabels.set(info.labels, tail);
      distinct.add(text);
    }
    tags[n] = tag;
    tails[n] = tail.text;
    bytes += tagPrefixBytes(n, tag, ref) + tail.bytes;
    n++;
    if ((n & 255) === 0 && performance.now() - turn > TURN_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      turn = performance.now();
    }
  }
  let distinctChars = 0;
  for (const t of distinct) distinctChars += t.length;
  const retainedBytes = head.length + 16 * count + 64 * refs.size + distinctChars;
  return {
    byteLength: bytes,
    retainedBytes,
    *slices(sliceChars = 64 * 1024) {
      yield head;
      let slice = "";
      for (let i = 0; i < count; i++) {
        const tag = tags[i] as string;
        slice += tagPrefix(i, tag, refs.get(i) ?? `${name}:${tag}`) + (tails[i] as string);
        if (slice.length >= sliceChars) {
          yield slice;
          slice = "";
        }
      }
      yield slice + end;
    },
  };
}

/** What comes before a tag's image tail: `,"tag":{"ref":"..."`. */
function tagPrefix(n: number, tag: string, ref: string): string {
  return `${n === 0 ? "" : ","}${JSON.stringify(tag)}:{"ref":${JSON.stringify(ref)}`;
}

function tagPrefixBytes(n: number, tag: string, ref: string): number {
  return Buffer.byteLength(tagPrefix(n, tag, ref));
}

/**
 * The whole text of a layout in one Buffer of exactly its length (no intermediate copy of
 * the text), with a turn of the event loop every few milliseconds.
 */
export async function repositoryJsonBuffer(layout: RepositoryJsonLayout): Promise<Buffer> {
  const out = Buffer.allocUnsafe(layout.byteLength);
  let at = 0;
  let turn = performance.now();
  for (const slice of layout.slices()) {
    at += out.write(slice, at, "utf8");
    if (performance.now() - turn > TURN_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      turn = performance.now();
    }
  }
  if (at !== layout.byteLength) {
    throw new ApiError({
      status: 500,
      code: "INTERNAL",
      message: `repository JSON is ${at} bytes, laid out as ${layout.byteLength}`,
    });
  }
  return out;
}

/**
 * `repositoryJson` as UTF-8 text with a final newline, built with turns of the event loop in
 * between: a 5,000-tag repository is megabytes of JSON.
 */
export async function repositoryJsonText(name: string, meta: RepositoryMetadata): Promise<Buffer> {
  return repositoryJsonBuffer(await layoutRepositoryJson(name, meta));
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
