/**
 * The first step of a repository scan after the listing: sort the listed tags into fresh
 * ones (left alone) and due ones (missing, expired or past their deadline, stale or failed)
 * from the repository's index alone (no image record is read for this), noting the images
 * already known by digest.
 */
import type { Logger } from "pino";
import { DEFAULT_READ_CHUNKS_IN_FLIGHT, readChunked } from "./chunked-read.js";
import { summarizeError } from "./error-summary.js";
import { decodeImageRecords, type IndexEntry, isExcludedImageId } from "./index-records.js";
import { KnownImages } from "./known-images.js";
import type { TagError } from "./records.js";
import type { ScanIndex } from "./scan-index.js";
import type { WarmContext } from "./warm-context.js";
import type { RepositoryScanResult } from "./warmer-types.js";

/** A tag to check in this scan. */
export interface DueTag {
  tag: string;
  /** The index entry when the tag is known but past its deadline (or stale). */
  entry?: IndexEntry;
  /** Why the tag's only fetches so far failed, when its entry records only that. */
  failure?: TagError;
  /** The entry's deadline (epoch ms), when there is one: a number, not a Date per listed tag. */
  deadline?: number;
  /** The index read failed: what it holds is unknown (never overwrite it with a failure). */
  unread?: true;
}

/** What {@link dueTags} found. */
export interface DueTags {
  /**
   * The tags to check, those with nothing cached first (new, never fetched, unread), then
   * the kept ones whose last check is oldest; in listing order among equals.
   */
  due: DueTag[];
  /** Image ids by digest, so that a new tag on a known image costs no GET. */
  known: KnownImages;
}

/** What {@link dueTags} sorts, and where it counts the fresh tags. */
export interface DueTagsOptions {
  ctx: Pick<WarmContext, "now">;
  index: ScanIndex;
  /** The listed tags, in listing order. */
  tags: readonly string[];
  /** Where the fresh (and fresh excluded) tags are counted. */
  result: RepositoryScanResult;
  log: Logger;
  /** Treat every tag as due (a priority refresh), however fresh its entry. */
  everyTagDue?: boolean | undefined;
  /** Check only these of the tags already in the index (a refresh that named tags). */
  onlyTags?: readonly string[] | undefined;
  /**
   * Treat a kept tag last checked this long ago or more as due, however far its deadline
   * (the warming loop's polling, so that a moved tag is seen within the repository's
   * interval; artifact tags, which cannot move, excepted).
   */
  checkedWithinMs?: number | undefined;
  /**
   * With `checkedWithinMs`: also treat as due every kept tag checked at or before this time
   * (ms), the end of the repository's previous scan (its record's `lastUpdate`), however
   * recently. A scan longer than `checkedWithinMs` otherwise left the tags it checked last
   * fresh at the next scan, for the scan after it: up to one and a half intervals between
   * two checks of a tag at the warmer's half-interval, a move seen that late. Only a tag
   * checked since (by a scan that ended without writing the record, a stopped one) waits.
   */
  previousScanEndedAt?: number | undefined;
}

/**
 * Where a due tag goes in the scan's order: nothing cached first (-1: a check time is never
 * negative), then the oldest check.
 */
function checkOrder(d: DueTag): number {
  return d.entry === undefined ? -1 : d.entry.checkedAt;
}

/**
 * Counts the fresh tags of `tags` in `result` and returns the due ones (stale and failed
 * ones included), from the index.
 */
export function dueTags({
  ctx,
  index,
  tags,
  result,
  log,
  everyTagDue = false,
  onlyTags,
  checkedWithinMs,
  previousScanEndedAt,
}: DueTagsOptions): DueTags {
  const due: DueTag[] = [];
  const now = ctx.now();
  const checkedSince =
    checkedWithinMs === undefined
      ? undefined
      : Math.max(now - checkedWithinMs, previousScanEndedAt ?? Number.NEGATIVE_INFINITY);
  const named = onlyTags && new Set(onlyTags);
  for (const tag of tags) {
    if (index.unread(tag)) {
      due.push({ tag, unread: true });
      continue;
    }
    const entry = index.entry(tag);
    if (!entry) {
      due.push({ tag });
      continue;
    }
    if (named && !named.has(tag) && entry.image !== undefined) {
      // Left for the regular scans: one HEAD per named tag is what the refresh is for.
      result.fresh++;
      continue;
    }
    const { deadline } = entry;
    if (entry.image === undefined && !entry.artifact) {
      due.push(entry.lastError ? { tag, failure: entry.lastError, deadline } : { tag });
      continue;
    }
    // A stale tag (its last refresh failed) is retried at every scan.
    const polled = checkedSince !== undefined && !entry.artifact && entry.checkedAt <= checkedSince;
    if (!everyTagDue && !entry.lastError && entry.deadline > now && !polled) {
      result.fresh++;
      if (entry.artifact || isExcludedImageId(entry.image as string)) result.excluded++;
    } else {
      due.push({ tag, entry, deadline });
    }
  }
  // New tags are fetched before known ones are checked again (in listing order, a new tag at
  // the end of a 5,000-tag repository waited for every HEAD before it), and the tags a scan
  // cut short (a 429, a lost lease, a stop) did not reach go first at the next scan; the
  // others keep the order they were checked in, so that each tag's checks stay about one
  // scan apart. Array sort is stable: listing order among equals (a cold fill's).
  due.sort((a, b) => checkOrder(a) - checkOrder(b));
  // One line, not one per bucket: a format change can make every bucket undecodable at once.
  if (index.undecodable > 0) {
    log.warn({ buckets: index.undecodable }, "index buckets do not decode; refetching their tags");
  }
  return { due, known: new KnownImages(() => index.knownImages()) };
}

/** The due tags of one scan and what {@link dropMissingImages} needs to check them. */
export interface DropMissingImagesOptions {
  ctx: WarmContext;
  /** Changed in place: a tag whose image is gone loses its entry and deadline. */
  due: DueTag[];
  /** Told which images are gone. */
  known: KnownImages;
  log: Logger;
  signal: AbortSignal;
}

/**
 * Checks that the images the due tags point at are still in the store (memcached or Redis
 * may have evicted one): a due tag whose image is gone is fetched as if new. The distinct
 * images are read a chunk at a time and only whether each decodes is kept: read at once,
 * the 38,270 images of one 40,000-tag repository's rescan held 31 MB of values and their
 * records, and took every replica past its heap (bench:scale, 2,000,000 tags). A chunk
 * that fails to read changes nothing.
 */
export async function dropMissingImages({
  ctx,
  due,
  known,
  log,
  signal,
}: DropMissingImagesOptions): Promise<void> {
  const distinct = new Set<string>();
  for (const d of due) if (d.entry?.image !== undefined) distinct.add(d.entry.image);
  if (distinct.size === 0) return;
  const ids = [...distinct];
  const missing = new Set<string>();
  let readError: unknown;
  await readChunked({
    store: ctx.store,
    count: ids.length,
    keyOf: (i) => ctx.keys.image(ids[i] as string),
    inFlight: DEFAULT_READ_CHUNKS_IN_FLIGHT,
    onChunk: (chunk) => {
      if (chunk.entries === undefined) {
        readError ??= chunk.error;
        return;
      }
      const decoded = decodeImageRecords(chunk.entries.map((e) => e?.value));
      for (let j = 0; j < decoded.length; j++) {
        if (!decoded[j]) missing.add(ids[chunk.start + j] as string);
      }
    },
    opts: { signal },
  });
  signal.throwIfAborted();
  if (readError !== undefined) {
    log.warn({ error: summarizeError(readError) }, "could not read the due tags' images");
  }
  if (missing.size === 0) return;
  known.drop(missing);
  for (const d of due) {
    if (d.entry?.image !== undefined && missing.has(d.entry.image)) {
      delete d.entry;
      delete d.deadline;
    }
  }
}
