/**
 * The first scan after an upgrade: reads the first layout's tag records of the repository's
 * listing and converts them into image records and index entries, so that nothing cached
 * is fetched again (images that predate annotations keep their mark and are refetched when
 * due, as before).
 */
import type { Logger } from "pino";
import { forEachBounded } from "../bounded-parallel.js";
import type { ImageEntry } from "../image/info.js";
import type { ImageName } from "../image/ref.js";
import { artifactTag, isArtifactExcludedReason } from "./artifact-tags.js";
import { readChunked } from "./chunked-read.js";
import { summarizeError } from "./error-summary.js";
import {
  encodeImageRecord,
  IMAGE_RECORD_LIFETIME_MS,
  type IndexEntry,
  imageIdOf,
} from "./index-records.js";
import { decodeTagFailure, TagRecordDecoder } from "./records.js";
import type { IndexContext, ScanIndex } from "./scan-index.js";

/** One repository's conversion from the first layout, during its scan. */
export interface LegacyUpgrade {
  ctx: IndexContext;
  index: ScanIndex;
  name: ImageName;
  /** The listed tags: those of them not yet in the index are converted. */
  tags: readonly string[];
  log: Logger;
  signal: AbortSignal;
}

/**
 * Converts the first layout's records of `tags` into `index` (tags it already holds are
 * left alone: they were written by this layout). Image records are written here, before
 * any bucket names them. Returns how many tags were converted; never throws but for an
 * abort (a failed read or write leaves those tags to be fetched).
 */
export async function upgradeFromLegacy({
  ctx,
  index,
  name,
  tags,
  log,
  signal,
}: LegacyUpgrade): Promise<number> {
  const todo = tags.filter((tag) => !index.has(tag) && !index.unread(tag));
  if (todo.length === 0) return 0;
  const decoder = new TagRecordDecoder();
  const images = new Map<string, ImageEntry>();
  const entries = new Map<string, IndexEntry>();
  await readChunked({
    store: ctx.store,
    count: todo.length,
    keyOf: (i) => ctx.keys.tag(name, todo[i] as string),
    inFlight: ctx.storeConcurrency,
    onChunk: (chunk) => {
      if (chunk.entries === undefined) {
        log.warn({ error: summarizeError(chunk.error) }, "could not read first-layout tag records");
        return;
      }
      for (let j = 0; j < chunk.entries.length; j++) {
        const got = chunk.entries[j];
        if (!got) continue;
        const tag = todo[chunk.start + j] as string;
        const record = decoder.decode(got.value, name, tag);
        const deadline = got.deadline.getTime();
        if (!record) {
          const failure = decodeTagFailure(got.value);
          if (failure) {
            entries.set(tag, { checkedAt: 0, intervalMs: 0, deadline, lastError: failure });
          }
          continue;
        }
        const entry: IndexEntry = {
          checkedAt: record.checkedAt.getTime(),
          intervalMs: record.intervalMs,
          deadline,
        };
        if (record.lastError) entry.lastError = record.lastError;
        const reason = record.entry.excludedReason;
        if (reason !== undefined && isArtifactExcludedReason(reason) && artifactTag(tag)) {
          entry.artifact = true;
        } else {
          const digest = record.digest ?? record.entry.info?.digest;
          const id = imageIdOf(record.entry, digest, {
            legacy: record.predatesAnnotations === true,
          });
          if (!images.has(id)) images.set(id, record.entry);
          entry.image = id;
        }
        entries.set(tag, entry);
      }
    },
    opts: { signal },
  });
  const written = new Set<string>();
  const deadline = new Date(ctx.now() + IMAGE_RECORD_LIFETIME_MS);
  await forEachBounded(images.keys(), { limit: ctx.storeConcurrency * 4, signal }, async (id) => {
    try {
      await ctx.store.set(
        ctx.keys.image(id),
        deadline,
        encodeImageRecord(images.get(id) as ImageEntry),
        {
          signal: AbortSignal.timeout(ctx.finalWriteTimeoutMs),
        },
      );
      written.add(id);
    } catch (error) {
      log.warn(
        { image: id, error: summarizeError(error) },
        "could not write a converted image record",
      );
    }
  });
  let converted = 0;
  for (const [tag, entry] of entries) {
    if (entry.image !== undefined && !written.has(entry.image)) continue;
    index.set(tag, entry);
    converted++;
  }
  if (converted > 0)
    log.info({ tags: converted }, "converted the first cache layout's tag records");
  return converted;
}
