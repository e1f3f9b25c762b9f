/**
 * The values of the cache's first layout: a repository record under the repository key (tags,
 * last update, last error, when it was last scanned) and a tag record under each tag key (the
 * image entry plus its refresh bookkeeping). JSON inside the store's envelope; anything that
 * does not have the expected shape reads as a miss. The second layout (index-records.ts)
 * replaced it; these are still read, so that the first scan after an upgrade converts a
 * store without a registry request, and TagRecord stays the shape a tag is reported in.
 *
 * Tag records are read by the ten thousand (every answer for a repository reads all of
 * them), so their layout lets a reader parse each distinct image once: the bookkeeping and
 * the entry are two JSON texts separated by a newline (JSON.stringify never emits a raw
 * one), and a {@link TagRecordDecoder} remembers the entries it has parsed by their text.
 * Fields are checked by hand rather than with a schema library: on these hot paths the
 * per-record cost of building a validated copy was most of the time spent.
 */
import type { ImageEntry, ImageInfo, Platform } from "../image/info.js";
import type { ImageName } from "../image/ref.js";
import type { ErrorSummary } from "./warmer-types.js";

/** The repository record's layout version; other versions read as misses. */
const REPOSITORY_RECORD_VERSION = 1;
/**
 * The tag record's layout version: 2 is bookkeeping and entry on two lines; 3 is the same
 * with the image's labels the config's alone and its annotations apart. Versions 2 and 1
 * (one JSON object holding both) are still read, so that upgrading does not refetch every
 * tag at once; their images are marked `predatesAnnotations`.
 */
const TAG_RECORD_VERSION = 3;
/** The two-line layout whose labels may hold the manifest's and the index's annotations. */
const TAG_RECORD_VERSION_MERGED_LABELS = 2;

/** What the repository key holds (both layouts; see index-records.ts for the second). */
export interface RepositoryRecord {
  /** The tags (after filtering) from the last successful listing; absent if never listed. */
  tags?: string[] | undefined;
  /** Tags the filter left out in the last listing. */
  filteredOut?: number | undefined;
  /**
   * Listed tags that are artifacts of an image (cosign signatures, attestations, SBOMs, OCI
   * referrers fallback tags): in `tags`, excluded by name. Absent when there were none.
   */
  artifactTags?: number | undefined;
  /** When the tag list was last fetched successfully. */
  lastUpdate?: Date | undefined;
  /** The last scan's error; absent when it was clean. */
  lastError?: (ErrorSummary & { at: Date }) | undefined;
  /** When the last complete scan started (the mark that lets replicas skip a fresh one). */
  lastScanned?: Date | undefined;
  /** Which warmer made the last scan. */
  scannedBy?: string | undefined;
  /**
   * Second layout only: when every image record the repository's index points at was last
   * written or rewritten (see `IMAGE_RECORD_LIFETIME_MS` in index-records.ts).
   */
  imagesKeptAt?: Date | undefined;
  /**
   * Second layout only: when the record was last written. A check of pushed tags without a
   * listing keeps the listing's and the scan's marks, and only this tells its record apart.
   */
  writtenAt?: Date | undefined;
}

/** What a tag key holds. */
export interface TagRecord {
  entry: ImageEntry;
  /** The digest the tag pointed at when last checked (also for excluded images, when known). */
  digest?: string | undefined;
  /** The refresh interval the deadline was set with (doubled or halved on the next check). */
  intervalMs: number;
  /** When the tag was last checked (by `HEAD` or `GET`). */
  checkedAt: Date;
  /**
   * Set on an image stored before annotations were kept apart from labels (layouts 1 and 2):
   * its labels may hold annotations and it has none, so it is fetched again when next due,
   * even when a `HEAD` shows the same digest. Still served until then.
   */
  predatesAnnotations?: true;
  /**
   * Why the entry is stale: the last refresh failed (and the entry was kept, with its store
   * life extended). Absent when the last check succeeded. A stale tag is due at every scan.
   */
  lastError?: TagError;
}

/** A tag's last refresh error, and when it happened. */
export type TagError = ErrorSummary & { at: Date };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const NEWLINE = 0x0a;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);
/** A finite number (what JSON can carry of one). */
export const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
/** ECMAScript's time range (±100,000,000 days from the epoch): past it a `Date` is invalid. */
const MAX_TIME_MS = 8.64e15;
/**
 * A time a record can hold: in the `Date` range, so that a stored value past it is a record
 * that does not decode (a miss), not an Invalid Date handed to callers.
 */
export const isTime = (v: unknown): v is number => isNumber(v) && Math.abs(v) <= MAX_TIME_MS;
const optional = <T>(v: unknown, is: (x: unknown) => x is T): v is T | undefined =>
  v === undefined || is(v);
const isString = (v: unknown): v is string => typeof v === "string";
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const optDate = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms));
const optMs = (d: Date | undefined) => (d === undefined ? undefined : d.getTime());

/** The JSON in `bytes` (or text); undefined when they are not UTF-8 JSON. */
export function parseJson(bytes: Uint8Array | string): unknown {
  try {
    return JSON.parse(typeof bytes === "string" ? bytes : decoder.decode(bytes));
  } catch {
    return undefined;
  }
}

/** Serialises a repository record. */
export function encodeRepositoryRecord(record: RepositoryRecord): Uint8Array {
  return encoder.encode(
    JSON.stringify({ v: REPOSITORY_RECORD_VERSION, ...repositoryRecordFields(record) }),
  );
}

/**
 * A repository record's fields as stored, in their stored order, but for the version (and
 * what a later layout adds after them): both layouts' repository records share them.
 */
export function repositoryRecordFields(record: RepositoryRecord): Json {
  return {
    tags: record.tags,
    filteredOut: record.filteredOut,
    artifactTags: record.artifactTags,
    lastUpdate: optMs(record.lastUpdate),
    lastError: record.lastError && {
      code: record.lastError.code,
      message: record.lastError.message,
      at: record.lastError.at.getTime(),
    },
    lastScanned: optMs(record.lastScanned),
    scannedBy: record.scannedBy,
  };
}

/** Reads a repository record back; undefined when the bytes are not one. */
export function decodeRepositoryRecord(bytes: Uint8Array): RepositoryRecord | undefined {
  const r = parseJson(bytes);
  if (!isObject(r) || r.v !== REPOSITORY_RECORD_VERSION) return undefined;
  return repositoryRecordOfFields(r);
}

/** The fields `repositoryRecordFields` wrote, checked; undefined when one has the wrong type. */
export function repositoryRecordOfFields(r: Json): RepositoryRecord | undefined {
  const e = r.lastError;
  if (
    !optional(r.tags, isStringArray) ||
    !optional(r.filteredOut, isNumber) ||
    !optional(r.artifactTags, isNumber) ||
    !optional(r.lastUpdate, isTime) ||
    !optional(r.lastScanned, isTime) ||
    !optional(r.scannedBy, isString) ||
    !(e === undefined || (isObject(e) && isString(e.code) && isString(e.message) && isTime(e.at)))
  ) {
    return undefined;
  }
  const record: RepositoryRecord = {
    tags: r.tags,
    filteredOut: r.filteredOut,
    lastUpdate: optDate(r.lastUpdate),
    lastError: e && {
      code: e.code as string,
      message: e.message as string,
      at: new Date(e.at as number),
    },
    lastScanned: optDate(r.lastScanned),
    scannedBy: r.scannedBy,
  };
  // Absent, not zero, when there were none (as written).
  if (r.artifactTags) record.artifactTags = r.artifactTags;
  return record;
}

/**
 * Serialises a tag record. The image's reference is not stored: it is the key's repository
 * and tag, rebuilt on reading.
 */
export function encodeTagRecord(record: TagRecord): Uint8Array {
  const { info, excludedReason } = record.entry;
  const bookkeeping = JSON.stringify({
    v: TAG_RECORD_VERSION,
    digest: record.digest,
    intervalMs: record.intervalMs,
    checkedAt: record.checkedAt.getTime(),
    lastError: encodeTagError(record.lastError),
  });
  const entry = JSON.stringify(
    info
      ? {
          info: {
            digest: info.digest,
            platformDigest: info.platformDigest,
            imageID: info.imageID,
            mediaType: info.mediaType,
            createdAt: optMs(info.createdAt),
            labels: info.labels,
            annotations: info.annotations,
            indexAnnotations: info.indexAnnotations,
            platform: info.platform,
            platforms: info.platforms,
            lastFetched: optMs(info.lastFetched),
          },
        }
      : { excludedReason },
  );
  return encoder.encode(`${bookkeeping}\n${entry}`);
}

/** The entry line of a tag whose fetch failed before it ever succeeded (no image to keep). */
const FAILED_ENTRY = '{"failed":true}';

/**
 * Serialises the record of a listed tag that was never fetched successfully: only why its
 * fetch failed. {@link TagRecordDecoder} reads it as no record (there is no image); read it
 * with {@link decodeTagFailure}.
 */
export function encodeTagFailure(lastError: TagError): Uint8Array {
  const head = JSON.stringify({ v: TAG_RECORD_VERSION, lastError: encodeTagError(lastError) });
  return encoder.encode(`${head}\n${FAILED_ENTRY}`);
}

/** The error a failure record (see {@link encodeTagFailure}) holds; undefined for anything else. */
export function decodeTagFailure(bytes: Uint8Array): TagError | undefined {
  const split = bytes.indexOf(NEWLINE);
  if (split < 0) return undefined;
  let tail: string;
  try {
    tail = decoder.decode(bytes.subarray(split + 1));
  } catch {
    return undefined;
  }
  if (tail !== FAILED_ENTRY) return undefined;
  const head = parseJson(bytes.subarray(0, split));
  if (!isObject(head) || !isTwoLineVersion(head.v)) return undefined;
  return decodeTagError(head.lastError);
}

function encodeTagError(e: TagError | undefined) {
  return e && { code: e.code, message: e.message, at: e.at.getTime() };
}

function decodeTagError(e: unknown): TagError | undefined {
  if (!isObject(e) || !isString(e.code) || !isString(e.message) || !isTime(e.at)) {
    return undefined;
  }
  return { code: e.code, message: e.message, at: new Date(e.at) };
}

/** An image entry as stored: the info without its reference (which each tag supplies). */
export type SharedEntry = { info: Omit<ImageInfo, "ref"> } | { excludedReason: string };

/**
 * Decodes tag records, parsing each distinct stored entry once: tags that point at the same
 * image share its (frozen) labels and platforms. Use one decoder per batch of reads; it
 * keeps every distinct entry it has seen.
 */
export class TagRecordDecoder {
  readonly #entries = new Map<string, SharedEntry | null>();

  /** Reads a tag record back for `name:tag`; undefined when the bytes are not one. */
  decode(bytes: Uint8Array, name: ImageName, tag: string): TagRecord | undefined {
    const split = bytes.indexOf(NEWLINE);
    let head: unknown;
    let entry: SharedEntry | null | undefined;
    if (split < 0) {
      // Version 1: bookkeeping and entry in one object, parsed per tag.
      head = parseJson(bytes);
      if (!isObject(head) || head.v !== 1) return undefined;
      entry = sharedEntry(head);
    } else {
      head = parseJson(bytes.subarray(0, split));
      if (!isObject(head) || !isTwoLineVersion(head.v)) return undefined;
      entry = this.#entry(bytes.subarray(split + 1));
    }
    if (
      !entry ||
      !optional(head.digest, isString) ||
      !(isNumber(head.intervalMs) && head.intervalMs > 0) ||
      !isTime(head.checkedAt)
    ) {
      return undefined;
    }
    const record: TagRecord = {
      entry: "info" in entry ? { info: tagInfo(entry.info, name, tag) } : entry,
      digest: head.digest,
      intervalMs: head.intervalMs,
      checkedAt: new Date(head.checkedAt),
    };
    const lastError = decodeTagError(head.lastError);
    if (lastError) record.lastError = lastError;
    if (head.v !== TAG_RECORD_VERSION && "info" in entry) record.predatesAnnotations = true;
    return record;
  }

  #entry(bytes: Uint8Array): SharedEntry | null {
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      return null;
    }
    let entry = this.#entries.get(text);
    if (entry === undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      entry = isObject(parsed) ? sharedEntry(parsed) : null;
      this.#entries.set(text, entry);
    }
    return entry;
  }
}

/** Reads one tag record back for `name:tag`; undefined when the bytes are not one. */
export function decodeTagRecord(
  bytes: Uint8Array,
  name: ImageName,
  tag: string,
): TagRecord | undefined {
  return new TagRecordDecoder().decode(bytes, name, tag);
}

function isTwoLineVersion(v: unknown): boolean {
  return v === TAG_RECORD_VERSION || v === TAG_RECORD_VERSION_MERGED_LABELS;
}

/** The tag's own info over a shared entry: its reference, and Dates nobody else holds. */
export function tagInfo(shared: Omit<ImageInfo, "ref">, name: ImageName, tag: string): ImageInfo {
  return infoOver(shared, name.withTag(tag), {
    createdAt: shared.createdAt && new Date(shared.createdAt.getTime()),
    lastFetched: shared.lastFetched && new Date(shared.lastFetched.getTime()),
  });
}

/** The times an {@link infoOver} info carries (one object: two Dates are easy to swap). */
export interface InfoTimes {
  createdAt?: Date | undefined;
  lastFetched?: Date | undefined;
}

/**
 * An info for `ref` over a shared entry, with the given Dates as its times (the shared
 * entry's own are never handed out): a repository answer passes the Dates of an image's
 * first tag (that info itself as `times`) to its other tags, so that a tag costs one object
 * and its reference.
 */
export function infoOver(
  shared: Omit<ImageInfo, "ref">,
  ref: ImageInfo["ref"],
  { createdAt, lastFetched }: InfoTimes,
): ImageInfo {
  // Built field by field: a spread of the shared object costs several times as much here.
  const info: ImageInfo = {
    ref,
    digest: shared.digest,
    mediaType: shared.mediaType,
    labels: shared.labels,
    platforms: shared.platforms,
  };
  if (shared.platformDigest !== undefined) info.platformDigest = shared.platformDigest;
  if (shared.imageID !== undefined) info.imageID = shared.imageID;
  if (shared.annotations) info.annotations = shared.annotations;
  if (shared.indexAnnotations) info.indexAnnotations = shared.indexAnnotations;
  if (createdAt) info.createdAt = createdAt;
  if (shared.platform) info.platform = shared.platform;
  if (lastFetched) info.lastFetched = lastFetched;
  return info;
}

function isPlatform(v: unknown): v is Platform {
  return (
    isObject(v) &&
    isString(v.os) &&
    isString(v.architecture) &&
    optional(v.variant, isString) &&
    optional(v.osVersion, isString)
  );
}

function isLabels(v: unknown): v is Record<string, string> {
  if (!isObject(v)) return false;
  // A loop, not Object.values(v).every(...): no array per map on a path run per image.
  for (const key in v) if (typeof v[key] !== "string") return false;
  return true;
}

/** Whether `v` is an array of platforms, each frozen in place (JSON.parse's own arrays). */
function isPlatformsFrozen(v: unknown): v is Platform[] {
  if (!Array.isArray(v)) return false;
  for (const p of v) {
    if (!isPlatform(p)) return false;
    Object.freeze(p);
  }
  Object.freeze(v);
  return true;
}

/** The entry held in `r.info` / `r.excludedReason` (exactly one of them), checked and frozen. */
export function sharedEntry(r: Json): SharedEntry | null {
  const { info: i, excludedReason } = r;
  if (i === undefined) return isString(excludedReason) ? { excludedReason } : null;
  if (
    excludedReason !== undefined ||
    !isObject(i) ||
    !isString(i.digest) ||
    !isString(i.mediaType) ||
    !optional(i.platformDigest, isString) ||
    !optional(i.imageID, isString) ||
    !optional(i.createdAt, isTime) ||
    !optional(i.lastFetched, isTime) ||
    !isLabels(i.labels) ||
    !optional(i.annotations, isLabels) ||
    !optional(i.indexAnnotations, isLabels) ||
    !optional(i.platform, isPlatform) ||
    !isPlatformsFrozen(i.platforms)
  ) {
    return null;
  }
  const info: Omit<ImageInfo, "ref"> = {
    digest: i.digest,
    mediaType: i.mediaType,
    labels: Object.freeze(i.labels),
    platforms: i.platforms,
  };
  if (i.platformDigest !== undefined) info.platformDigest = i.platformDigest;
  if (i.imageID !== undefined) info.imageID = i.imageID;
  // Records written before annotations were kept have none: read as no annotations.
  if (i.annotations !== undefined) info.annotations = Object.freeze(i.annotations);
  if (i.indexAnnotations !== undefined) info.indexAnnotations = Object.freeze(i.indexAnnotations);
  if (i.createdAt !== undefined) info.createdAt = new Date(i.createdAt);
  if (i.platform !== undefined) info.platform = Object.freeze(i.platform);
  if (i.lastFetched !== undefined) info.lastFetched = new Date(i.lastFetched);
  return { info };
}
