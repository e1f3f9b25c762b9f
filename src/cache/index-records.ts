/**
 * The values of the cache's second layout: image records stored once by digest, a tag index
 * per repository split into buckets by a hash of the tag, and the repository record on top.
 * Compact JSON inside the store's envelope; anything without the expected shape is a miss.
 *
 * A bucket holds its entries as one flat array (tag, image, checked, interval per entry) with
 * the image ids it points at listed once, so that decoding a 20,000-tag index allocates no
 * object per tag.
 */
import { createHash } from "node:crypto";
import type { ImageEntry } from "../image/info.js";
import type { RepositoryRecord, SharedEntry, TagError } from "./records.js";
import {
  isNumber,
  isTime,
  parseJson,
  repositoryRecordFields,
  repositoryRecordOfFields,
  sharedEntry,
} from "./records.js";

/** Buckets per repository index: a changed tag rewrites about 1/32 of the index. */
export const INDEX_BUCKETS = 32;

/**
 * An image record's deadline (the store keeps it twice as long, 60 days). Image records never
 * change; the warmer writes each one again before half of that store life is gone while an
 * index points at it (see `imagesKeptAt`), and no bucket lives longer than
 * {@link MAX_BUCKET_LIFE_MS} past its last write, so an image outlives every index entry.
 */
export const IMAGE_RECORD_LIFETIME_MS = 30 * 24 * 3_600_000;
/** How long the store keeps an image record written now. */
export const IMAGE_RECORD_STORE_LIFE_MS = 2 * IMAGE_RECORD_LIFETIME_MS;
/** Once this long has passed since the images of an index were last written, they are rewritten. */
export const IMAGE_KEEP_AFTER_MS = IMAGE_RECORD_STORE_LIFE_MS / 2;
/** The longest a bucket is kept by the store past its last write (its deadline is clamped). */
export const MAX_BUCKET_LIFE_MS = IMAGE_KEEP_AFTER_MS / 2;

const REPOSITORY_INDEX_VERSION = 2;
const BUCKET_VERSION = 1;
/** Image records: 2 is the array form; 1, an object, is still read. */
const IMAGE_VERSION = 2;
const IMAGE_VERSION_OBJECT = 1;

/** Marks an image id converted from a first-layout record written before annotations were kept. */
const LEGACY_SUFFIX = "~2";
/** Entry image references that are not indexes into the bucket's image list. */
const REF_FAILED = -1;
const REF_ARTIFACT = -2;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** One tag of a repository index, as the warmer works with it. */
export interface IndexEntry {
  /** The image record's id (see {@link imageIdOf}); absent for a failed or artifact tag. */
  image?: string;
  /** An artifact tag (signature, attestation, SBOM, referrers): excluded by name. */
  artifact?: true;
  /** When the tag was last checked (ms); 0 for a tag never fetched. */
  checkedAt: number;
  /** The refresh interval the deadline was set with (ms). */
  intervalMs: number;
  /** The refresh deadline (ms): checkedAt + intervalMs, later for a kept stale tag. */
  deadline: number;
  /** Why the entry is stale (the last refresh failed), or why a tag was never fetched. */
  lastError?: TagError;
}

/** A decoded bucket: tag -> entry. */
export type Bucket = Map<string, IndexEntry>;

/** The bucket a tag lives in: FNV-1a of its characters (tags are ASCII by grammar). */
export function bucketOf(tag: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < tag.length; i++) {
    h ^= tag.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % INDEX_BUCKETS;
}

/**
 * The id an image record is stored under: the top-level digest, `@` the chosen platform
 * manifest's digest for an index, `!` a hash of the reason for an excluded entry, and `~2`
 * with `legacy`: converted from a record whose labels may hold annotations (fetched again
 * when due).
 */
export function imageIdOf(
  entry: ImageEntry,
  digest: string | undefined,
  { legacy = false }: { legacy?: boolean | undefined } = {},
): string {
  let id: string;
  if (entry.info) {
    const { info } = entry;
    id = info.platformDigest ? `${info.digest}@${info.platformDigest}` : info.digest;
  } else {
    const hash = createHash("sha256").update(entry.excludedReason).digest("hex").slice(0, 16);
    id = `${digest ?? ""}!${hash}`;
  }
  return legacy ? `${id}${LEGACY_SUFFIX}` : id;
}

/** The top-level digest an image id names, if any. */
export function digestOfImageId(id: string): string | undefined {
  let end = id.length;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    // '@', '!', '~'
    if (c === 0x40 || c === 0x21 || c === 0x7e) {
      end = i;
      break;
    }
  }
  return end === 0 ? undefined : id.slice(0, end);
}

/** Whether the id names an excluded entry. */
export function isExcludedImageId(id: string): boolean {
  return id.includes("!");
}

/** Whether the id was converted from a record whose labels may hold annotations. */
export function isLegacyImageId(id: string): boolean {
  return id.endsWith(LEGACY_SUFFIX);
}

/**
 * Serialises an image record: a JSON array (`[2, digest, platformDigest, imageID,
 * mediaType, createdAt, lastFetched, labels, annotations, indexAnnotations, platform,
 * platforms]`, null for what is absent; `[2, reason]` for an excluded entry), which parses
 * about a third faster than the object form of version 1 (still read). Label maps and
 * platforms stay objects, their keys in the order they came in.
 */
export function encodeImageRecord(entry: ImageEntry): Uint8Array {
  const { info } = entry;
  if (!info) return encoder.encode(JSON.stringify([IMAGE_VERSION, entry.excludedReason]));
  return encoder.encode(
    JSON.stringify([
      IMAGE_VERSION,
      info.digest,
      info.platformDigest ?? null,
      info.imageID ?? null,
      info.mediaType,
      info.createdAt?.getTime() ?? null,
      info.lastFetched?.getTime() ?? null,
      info.labels,
      info.annotations ?? null,
      info.indexAnnotations ?? null,
      info.platform ?? null,
      info.platforms,
    ]),
  );
}

/** Reads an image record back (labels and platforms frozen); undefined when it is not one. */
export function decodeImageRecord(bytes: Uint8Array): SharedEntry | undefined {
  return decodeImageJson(parseJson(bytes));
}

/** An image record already parsed from JSON (either version); undefined when it is not one. */
export function decodeImageJson(parsed: unknown): SharedEntry | undefined {
  if (Array.isArray(parsed)) return parsed[0] === IMAGE_VERSION ? imageOfArray(parsed) : undefined;
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const r = parsed as Record<string, unknown>;
  if (r.v !== IMAGE_VERSION_OBJECT) return undefined;
  return sharedEntry(r) ?? undefined;
}

/** The entry a version-2 array holds, checked by the same rules as version 1's object. */
function imageOfArray(a: unknown[]): SharedEntry | undefined {
  if (a.length === 2) return typeof a[1] === "string" ? { excludedReason: a[1] } : undefined;
  if (a.length !== 12) return undefined;
  const info: Record<string, unknown> = {
    digest: a[1],
    mediaType: a[4],
    labels: a[7],
    platforms: a[11],
  };
  if (a[2] !== null) info.platformDigest = a[2];
  if (a[3] !== null) info.imageID = a[3];
  if (a[5] !== null) info.createdAt = a[5];
  if (a[6] !== null) info.lastFetched = a[6];
  if (a[8] !== null) info.annotations = a[8];
  if (a[9] !== null) info.indexAnnotations = a[9];
  if (a[10] !== null) info.platform = a[10];
  return sharedEntry({ info }) ?? undefined;
}

/**
 * Image records parsed by one JSON.parse in {@link decodeImageRecords}. The lot of a
 * 25,000-tag repository over distinct images is 11 MB: parsed at once, its text alone was 11
 * MB of a replica's 128 MiB heap beside its concatenated bytes and every record it became,
 * and a replica reading such repositories ran out of heap in that parse (bench:scale,
 * 10,000 repositories and 1,000,000 tags). A few hundred records keep most of the speed.
 */
const RECORDS_PER_PARSE = 256;

/**
 * Parses many image records a slice at a time (one JSON.parse per slice, the fastest way V8
 * has); an element that does not decode is undefined. Falls back to one parse per record
 * in a slice that is not valid JSON (a damaged record).
 */
export function decodeImageRecords(
  values: readonly (Uint8Array | undefined)[],
): (SharedEntry | undefined)[] {
  const out = new Array<SharedEntry | undefined>(values.length);
  let from = 0;
  while (from < values.length) {
    // The next slice: up to RECORDS_PER_PARSE present values (and the gaps among them).
    const at: number[] = [];
    let to = from;
    while (to < values.length && at.length < RECORDS_PER_PARSE) {
      if (values[to]) at.push(to);
      to++;
    }
    decodeSlice(values, at, out);
    from = to;
  }
  return out;
}

/** Decodes the present values at positions `at` into `out`, with one parse if it can. */
function decodeSlice(
  values: readonly (Uint8Array | undefined)[],
  at: readonly number[],
  out: (SharedEntry | undefined)[],
): void {
  if (at.length === 0) return;
  let parsed: unknown[] | undefined;
  try {
    const parts: Uint8Array[] = [OPEN];
    for (let k = 0; k < at.length; k++) {
      if (k > 0) parts.push(COMMA);
      parts.push(values[at[k] as number] as Uint8Array);
    }
    parts.push(CLOSE);
    const all = JSON.parse(decoder.decode(Buffer.concat(parts))) as unknown;
    if (Array.isArray(all) && all.length === at.length) parsed = all;
  } catch {
    parsed = undefined;
  }
  for (let k = 0; k < at.length; k++) {
    const i = at[k] as number;
    out[i] = parsed ? decodeImageJson(parsed[k]) : decodeImageRecord(values[i] as Uint8Array);
  }
}

const OPEN = encoder.encode("[");
const COMMA = encoder.encode(",");
const CLOSE = encoder.encode("]");

/** The raw, undecoded form of a bucket: what the fast read path walks without allocating per tag. */
export interface RawBucket {
  /** ms every checked time and deadline is relative to. */
  t0: number;
  /** Image ids, referenced by index. */
  images: string[];
  /** Flat: tag, image ref, checked offset, interval, repeated. */
  entries: unknown[];
  /** Flat: entry number, deadline offset (or null), error number (or -1), repeated. */
  extras: unknown[];
  /** [code, message, at] per distinct error. */
  errors: TagError[];
}

/** The stride of {@link RawBucket.entries}. */
export const ENTRY_STRIDE = 4;
const EXTRA_STRIDE = 3;

/** Serialises a bucket. */
export function encodeBucket(bucket: Bucket): Uint8Array {
  let t0 = Number.POSITIVE_INFINITY;
  for (const e of bucket.values()) if (e.checkedAt > 0 && e.checkedAt < t0) t0 = e.checkedAt;
  if (!Number.isFinite(t0)) t0 = 0;
  const images: string[] = [];
  const imageIndex = new Map<string, number>();
  const errors: unknown[] = [];
  const errorIndex = new Map<TagError, number>();
  const errorByText = new Map<string, number>();
  const entries: unknown[] = [];
  const extras: unknown[] = [];
  let n = 0;
  for (const [tag, e] of bucket) {
    let ref: number;
    if (e.image !== undefined) {
      let i = imageIndex.get(e.image);
      if (i === undefined) {
        i = images.length;
        images.push(e.image);
        imageIndex.set(e.image, i);
      }
      ref = i;
    } else {
      ref = e.artifact ? REF_ARTIFACT : REF_FAILED;
    }
    entries.push(tag, ref, e.checkedAt - t0, e.intervalMs);
    const explicitDeadline = e.deadline !== e.checkedAt + e.intervalMs;
    if (explicitDeadline || e.lastError) {
      let err = -1;
      if (e.lastError) {
        const le = e.lastError;
        let k = errorIndex.get(le);
        if (k === undefined) {
          const text = `${le.code}\n${le.message}\n${le.at.getTime()}`;
          k = errorByText.get(text);
          if (k === undefined) {
            k = errors.length;
            errors.push([le.code, le.message, le.at.getTime()]);
            errorByText.set(text, k);
          }
          errorIndex.set(le, k);
        }
        err = k;
      }
      extras.push(n, explicitDeadline ? e.deadline - t0 : null, err);
    }
    n++;
  }
  const out: Record<string, unknown> = { v: BUCKET_VERSION, t0, i: images, e: entries };
  if (extras.length > 0) {
    out.x = extras;
    out.r = errors;
  }
  return encoder.encode(JSON.stringify(out));
}

/** Reads a bucket's raw form back, checked; undefined when the bytes are not a bucket. */
export function decodeRawBucket(bytes: Uint8Array): RawBucket | undefined {
  const r = parseJson(bytes);
  if (typeof r !== "object" || r === null || Array.isArray(r)) return undefined;
  const o = r as Record<string, unknown>;
  if (o.v !== BUCKET_VERSION || !isTime(o.t0)) return undefined;
  const t0 = o.t0;
  const images = o.i;
  const entries = o.e;
  const extras = o.x ?? [];
  const rawErrors = o.r ?? [];
  if (
    !Array.isArray(images) ||
    !images.every((x) => typeof x === "string") ||
    !Array.isArray(entries) ||
    entries.length % ENTRY_STRIDE !== 0 ||
    !Array.isArray(extras) ||
    extras.length % EXTRA_STRIDE !== 0 ||
    !Array.isArray(rawErrors)
  ) {
    return undefined;
  }
  const count = entries.length / ENTRY_STRIDE;
  for (let at = 0; at < entries.length; at += ENTRY_STRIDE) {
    const ref = entries[at + 1];
    if (
      typeof entries[at] !== "string" ||
      !Number.isInteger(ref) ||
      (ref as number) < REF_ARTIFACT ||
      (ref as number) >= images.length ||
      !isNumber(entries[at + 2]) ||
      !isTime(t0 + (entries[at + 2] as number)) ||
      !(isNumber(entries[at + 3]) && (entries[at + 3] as number) >= 0) ||
      !isTime(t0 + (entries[at + 2] as number) + (entries[at + 3] as number))
    ) {
      return undefined;
    }
  }
  const errors: TagError[] = [];
  for (const e of rawErrors) {
    if (
      !Array.isArray(e) ||
      typeof e[0] !== "string" ||
      typeof e[1] !== "string" ||
      !isTime(e[2])
    ) {
      return undefined;
    }
    errors.push({ code: e[0], message: e[1], at: new Date(e[2]) });
  }
  for (let at = 0; at < extras.length; at += EXTRA_STRIDE) {
    const n = extras[at];
    const d = extras[at + 1];
    const err = extras[at + 2];
    if (
      !Number.isInteger(n) ||
      (n as number) < 0 ||
      (n as number) >= count ||
      !(d === null || (isNumber(d) && isTime(t0 + d))) ||
      !Number.isInteger(err) ||
      (err as number) < -1 ||
      (err as number) >= errors.length
    ) {
      return undefined;
    }
  }
  return { t0, images: images as string[], entries, extras, errors };
}

/** The entry at `n` of a raw bucket (allocates: for the warmer and single-tag reads). */
export function rawEntry(
  raw: RawBucket,
  n: number,
  extra?: { deadline: number | null; error: number },
): IndexEntry {
  const at = n * ENTRY_STRIDE;
  const ref = raw.entries[at + 1] as number;
  const checkedAt = (raw.entries[at + 2] as number) + raw.t0;
  const intervalMs = raw.entries[at + 3] as number;
  const deadline =
    extra?.deadline === null || extra === undefined
      ? checkedAt + intervalMs
      : extra.deadline + raw.t0;
  // Each kind whole in one literal: a property added after the literal goes to a separate
  // property array, 40 bytes more per entry (1.7 MB in one 42,000-tag repository's scan).
  let entry: IndexEntry;
  if (ref >= 0) entry = { image: raw.images[ref] as string, checkedAt, intervalMs, deadline };
  else if (ref === REF_ARTIFACT) entry = { artifact: true, checkedAt, intervalMs, deadline };
  else entry = { checkedAt, intervalMs, deadline };
  const lastError = extra && extra.error >= 0 ? raw.errors[extra.error] : undefined;
  if (lastError) entry.lastError = lastError;
  return entry;
}

/** The extras of a raw bucket by entry number. */
export function rawExtras(raw: RawBucket): Map<number, { deadline: number | null; error: number }> {
  const out = new Map<number, { deadline: number | null; error: number }>();
  for (let at = 0; at < raw.extras.length; at += EXTRA_STRIDE) {
    out.set(raw.extras[at] as number, {
      deadline: raw.extras[at + 1] as number | null,
      error: raw.extras[at + 2] as number,
    });
  }
  return out;
}

/** Decodes a whole bucket into entries (the warmer's form). */
export function decodeBucket(bytes: Uint8Array): Bucket | undefined {
  const raw = decodeRawBucket(bytes);
  return raw && bucketFromRaw(raw);
}

/** Entries of a raw bucket. */
export function bucketFromRaw(raw: RawBucket): Bucket {
  const extras = rawExtras(raw);
  const out: Bucket = new Map();
  for (let n = 0; n * ENTRY_STRIDE < raw.entries.length; n++) {
    out.set(raw.entries[n * ENTRY_STRIDE] as string, rawEntry(raw, n, extras.get(n)));
  }
  return out;
}

/**
 * When the store would have dropped an entry had it been its own value (as tags were in the
 * first layout): twice the time from its write to its deadline, at least an hour. Readers
 * treat an entry past this as absent, so a stopped warmer's values expire as before.
 */
export function entryExpiresAt(e: IndexEntry, minExpiryMs: number): number {
  const written = e.lastError ? Math.max(e.lastError.at.getTime(), e.checkedAt) : e.checkedAt;
  return written + Math.max(2 * (e.deadline - written), minExpiryMs);
}

/**
 * Serialises a second-layout repository record: the first layout's fields, then imagesKeptAt
 * and writtenAt.
 */
export function encodeRepositoryIndexRecord(record: RepositoryRecord): Uint8Array {
  return encoder.encode(
    JSON.stringify({
      v: REPOSITORY_INDEX_VERSION,
      ...repositoryRecordFields(record),
      imagesKeptAt: record.imagesKeptAt?.getTime(),
      writtenAt: record.writtenAt?.getTime(),
    }),
  );
}

/** Reads a second-layout repository record; undefined when the bytes are not one. */
export function decodeRepositoryIndexRecord(bytes: Uint8Array): RepositoryRecord | undefined {
  return repositoryIndexRecordOf(parseJson(bytes));
}

/** A second-layout repository record without its tags, and how many its last listing had. */
export interface RepositoryIndexHead {
  /** The record's fields but `tags` (always undefined here). */
  record: RepositoryRecord;
  /** Tags of the last listing; undefined before the first. */
  tagCount: number | undefined;
}

/**
 * A second-layout repository record's fields with its tag list counted, not decoded: the
 * status list reads every repository's record, and the warmer reads the record of each one
 * another replica scanned, for these fields alone. At 2,000,000 tags decoding the lists made
 * 2,000,000 strings per status list (about 500 ms of CPU, against 150 ms counted). A record
 * not written as {@link encodeRepositoryIndexRecord} writes it is decoded whole, so the
 * answer is the same for every input; undefined when the bytes are not a record.
 */
export function decodeRepositoryIndexHead(bytes: Uint8Array): RepositoryIndexHead | undefined {
  const list = canonicalTagList(bytes);
  if (list === undefined) {
    const record = decodeRepositoryIndexRecord(bytes);
    if (record === undefined) return undefined;
    const tagCount = record.tags?.length;
    record.tags = undefined;
    return { record, tagCount };
  }
  let rest: string;
  try {
    rest = decoder.decode(bytes.subarray(list.end + 1));
  } catch {
    return undefined;
  }
  const record = repositoryIndexRecordOf(
    parseJson(`{"v":${REPOSITORY_INDEX_VERSION},"tags":[]${rest}`),
  );
  if (record === undefined) return undefined;
  record.tags = undefined;
  return { record, tagCount: list.count };
}

/** How a record written by {@link encodeRepositoryIndexRecord} starts when it has a tag list. */
const LISTED_RECORD_START = encoder.encode(`{"v":${REPOSITORY_INDEX_VERSION},"tags":[`);
const QUOTE_BYTE = 0x22;
const COMMA_BYTE = 0x2c;
const CLOSE_BYTE = 0x5d;

/**
 * The tag list at the start of a record as the encoder writes it: every tag quoted, of the
 * tag grammar's characters, no escapes (a listing's tags are checked against it, so a stored
 * list has no others). Its tag count and the index of its `]`; undefined for anything else.
 */
function canonicalTagList(bytes: Uint8Array): { count: number; end: number } | undefined {
  if (bytes.length <= LISTED_RECORD_START.length) return undefined;
  for (let i = 0; i < LISTED_RECORD_START.length; i++) {
    if (bytes[i] !== LISTED_RECORD_START[i]) return undefined;
  }
  let i = LISTED_RECORD_START.length;
  if (bytes[i] === CLOSE_BYTE) return { count: 0, end: i };
  let count = 0;
  for (;;) {
    if (bytes[i] !== QUOTE_BYTE) return undefined;
    const first = ++i;
    while (i < bytes.length && isTagByte(bytes[i] as number)) i++;
    if (i === first || bytes[i] !== QUOTE_BYTE) return undefined;
    count++;
    i++;
    if (bytes[i] === CLOSE_BYTE) return { count, end: i };
    if (bytes[i] !== COMMA_BYTE) return undefined;
    i++;
  }
}

/** `[\w.-]`: the bytes of the tag grammar. */
function isTagByte(b: number): boolean {
  return (
    (b >= 0x61 && b <= 0x7a) || // a-z
    (b >= 0x30 && b <= 0x39) || // 0-9
    (b >= 0x41 && b <= 0x5a) || // A-Z
    b === 0x2e || // .
    b === 0x2d || // -
    b === 0x5f // _
  );
}

/** A parsed second-layout repository record, checked; undefined when it has the wrong shape. */
function repositoryIndexRecordOf(r: unknown): RepositoryRecord | undefined {
  if (typeof r !== "object" || r === null || Array.isArray(r)) return undefined;
  const o = r as Record<string, unknown>;
  if (o.v !== REPOSITORY_INDEX_VERSION) return undefined;
  if (!(o.imagesKeptAt === undefined || isTime(o.imagesKeptAt))) return undefined;
  if (!(o.writtenAt === undefined || isTime(o.writtenAt))) return undefined;
  const record = repositoryRecordOfFields(o);
  if (record !== undefined && o.imagesKeptAt !== undefined) {
    record.imagesKeptAt = new Date(o.imagesKeptAt);
  }
  if (record !== undefined && o.writtenAt !== undefined) record.writtenAt = new Date(o.writtenAt);
  return record;
}
