/**
 * The first step of a repository scan after the listing: read every listed tag's record
 * and sort the tags into fresh ones (left alone) and due ones (missing, undecodable or past
 * their deadline), noting the images already known by digest.
 */
import type { Logger } from "pino";
import type { ImageEntry } from "../image/info.js";
import type { ImageName } from "../image/ref.js";
import { readChunked } from "./chunked-read.js";
import { summarizeError } from "./error-summary.js";
import { decodeTagFailure, type TagError, type TagRecord, TagRecordDecoder } from "./records.js";
import type { WarmContext } from "./warm-pass.js";
import type { RepositoryScanResult } from "./warmer-types.js";

/** A tag to check in this scan. */
export interface DueTag {
  tag: string;
  /** The decoded record when the tag is known but past its deadline (or stale). */
  record?: TagRecord;
  /** Why the tag's only fetches so far failed, when its key holds a failure record. */
  failure?: TagError;
  /** The stored value's deadline, when there is one. */
  deadline?: Date;
  /** The store read failed: what it holds is unknown (never overwrite it with a failure). */
  unread?: true;
}

/** What {@link dueTags} found. */
export interface DueTags {
  /** The tags to check, in listing order. */
  due: DueTag[];
  /** Entries already in the store by digest, so that a new tag on a known image costs no GET. */
  known: Map<string, ImageEntry>;
}

/**
 * Reads the records of `tags` (at most `ctx.storeConcurrency` chunked reads at once),
 * counts the fresh ones in `result` and returns the due ones (stale and failed ones included). A read that fails makes its
 * tags due: the writes that follow will tell whether the store is really gone.
 */
export async function dueTags(
  ctx: WarmContext,
  name: ImageName,
  tags: readonly string[],
  result: RepositoryScanResult,
  log: Logger,
  signal: AbortSignal,
  /** Treat every tag as due (a priority refresh), however fresh its record. */
  everyTagDue = false,
): Promise<DueTags> {
  const due: Array<DueTag & { index: number }> = [];
  const known = new Map<string, ImageEntry>();
  const decoder = new TagRecordDecoder();
  let undecodable = 0;
  const now = ctx.now();
  await readChunked(
    ctx.store,
    tags.length,
    (i) => ctx.keys.tag(name, tags[i] as string),
    ctx.storeConcurrency,
    (chunk) => {
      if (chunk.entries === undefined) {
        if (signal.aborted) return;
        log.warn({ error: summarizeError(chunk.error) }, "could not read tags from the store");
        for (let index = chunk.start; index < chunk.end; index++) {
          due.push({ tag: tags[index] as string, unread: true, index });
        }
        return;
      }
      for (let j = 0; j < chunk.entries.length; j++) {
        const index = chunk.start + j;
        const tag = tags[index] as string;
        const got = chunk.entries[j];
        const record = got && decoder.decode(got.value, name, tag);
        if (!got || !record) {
          const failure = got && decodeTagFailure(got.value);
          if (got && !failure) undecodable++;
          due.push(failure ? { tag, failure, deadline: got.deadline, index } : { tag, index });
          continue;
        }
        const digest = record.digest ?? record.entry.info?.digest;
        // An image stored before annotations were kept apart is fetched again, not reused.
        if (digest && !known.has(digest) && !record.predatesAnnotations) {
          known.set(digest, record.entry);
        }
        // A stale tag (its last refresh failed) is retried at every scan.
        if (!everyTagDue && !record.lastError && got.deadline.getTime() > now) {
          result.fresh++;
          if (record.entry.excludedReason !== undefined) result.excluded++;
        } else {
          due.push({ tag, record, deadline: got.deadline, index });
        }
      }
    },
    { signal },
  );
  // One line, not one per tag: a format change can make thousands undecodable at once.
  if (undecodable > 0)
    log.warn({ tags: undecodable }, "tag records do not decode; refetching them");
  // Reads finish out of order; keep the registry's, so that progress and logs follow it.
  due.sort((a, b) => a.index - b.index);
  return { due, known };
}
