/**
 * The values the cache keeps: a repository record under the repository key (tags, last
 * update, last error, when it was last scanned) and a tag record under each tag key (the
 * image entry plus its refresh bookkeeping). JSON inside the store's envelope; anything that
 * does not match the schema reads as a miss.
 */
import { z } from "zod";
import type { ImageEntry, ImageInfo } from "../image/info.js";
import type { ImageName } from "../image/ref.js";
import type { ErrorSummary } from "./warmer-types.js";

/** Bumped when a record's layout changes incompatibly; other versions read as misses. */
const RECORD_VERSION = 1;

/** What the repository key holds. */
export interface RepositoryRecord {
  /** The tags (after filtering) from the last successful listing; absent if never listed. */
  tags?: string[];
  /** Tags the filter left out in the last listing. */
  filteredOut?: number;
  /** When the tag list was last fetched successfully. */
  lastUpdate?: Date;
  /** The last scan's error; absent when it was clean. */
  lastError?: ErrorSummary & { at: Date };
  /** When the last complete scan started (the mark that lets replicas skip a fresh one). */
  lastScanned?: Date;
  /** Which warmer made the last scan. */
  scannedBy?: string;
}

/** What a tag key holds. */
export interface TagRecord {
  entry: ImageEntry;
  /** The digest the tag pointed at when last checked (also for excluded images, when known). */
  digest?: string;
  /** The refresh interval the deadline was set with (doubled or halved on the next check). */
  intervalMs: number;
  /** When the tag was last checked (by `HEAD` or `GET`). */
  checkedAt: Date;
}

const errorSchema = z.object({ code: z.string(), message: z.string(), at: z.number() });

const repositorySchema = z.object({
  v: z.literal(RECORD_VERSION),
  tags: z.array(z.string()).optional(),
  filteredOut: z.number().optional(),
  lastUpdate: z.number().optional(),
  lastError: errorSchema.optional(),
  lastScanned: z.number().optional(),
  scannedBy: z.string().optional(),
});

const platformSchema = z.object({
  os: z.string(),
  architecture: z.string(),
  variant: z.string().optional(),
  osVersion: z.string().optional(),
});

const infoSchema = z.object({
  digest: z.string(),
  platformDigest: z.string().optional(),
  imageID: z.string().optional(),
  mediaType: z.string(),
  createdAt: z.number().optional(),
  labels: z.record(z.string(), z.string()),
  platform: platformSchema.optional(),
  platforms: z.array(platformSchema),
  lastFetched: z.number().optional(),
});

const tagSchema = z.object({
  v: z.literal(RECORD_VERSION),
  info: infoSchema.optional(),
  excludedReason: z.string().optional(),
  digest: z.string().optional(),
  intervalMs: z.number().positive(),
  checkedAt: z.number(),
});

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    return undefined;
  }
}

const optDate = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms));
const optMs = (d: Date | undefined) => (d === undefined ? undefined : d.getTime());

/** Serialises a repository record. */
export function encodeRepositoryRecord(record: RepositoryRecord): Uint8Array {
  return encoder.encode(
    JSON.stringify({
      v: RECORD_VERSION,
      tags: record.tags,
      filteredOut: record.filteredOut,
      lastUpdate: optMs(record.lastUpdate),
      lastError: record.lastError && {
        code: record.lastError.code,
        message: record.lastError.message,
        at: record.lastError.at.getTime(),
      },
      lastScanned: optMs(record.lastScanned),
      scannedBy: record.scannedBy,
    }),
  );
}

/** Reads a repository record back; undefined when the bytes are not one. */
export function decodeRepositoryRecord(bytes: Uint8Array): RepositoryRecord | undefined {
  const parsed = repositorySchema.safeParse(parseJson(bytes));
  if (!parsed.success) return undefined;
  const r = parsed.data;
  return {
    tags: r.tags,
    filteredOut: r.filteredOut,
    lastUpdate: optDate(r.lastUpdate),
    lastError: r.lastError && {
      code: r.lastError.code,
      message: r.lastError.message,
      at: new Date(r.lastError.at),
    },
    lastScanned: optDate(r.lastScanned),
    scannedBy: r.scannedBy,
  };
}

/**
 * Serialises a tag record. The image's reference is not stored: it is the key's repository
 * and tag, rebuilt on reading.
 */
export function encodeTagRecord(record: TagRecord): Uint8Array {
  const { info, excludedReason } = record.entry;
  return encoder.encode(
    JSON.stringify({
      v: RECORD_VERSION,
      info: info && {
        digest: info.digest,
        platformDigest: info.platformDigest,
        imageID: info.imageID,
        mediaType: info.mediaType,
        createdAt: optMs(info.createdAt),
        labels: info.labels,
        platform: info.platform,
        platforms: info.platforms,
        lastFetched: optMs(info.lastFetched),
      },
      excludedReason,
      digest: record.digest,
      intervalMs: record.intervalMs,
      checkedAt: record.checkedAt.getTime(),
    }),
  );
}

/** Reads a tag record back for `name:tag`; undefined when the bytes are not one. */
export function decodeTagRecord(
  bytes: Uint8Array,
  name: ImageName,
  tag: string,
): TagRecord | undefined {
  const parsed = tagSchema.safeParse(parseJson(bytes));
  if (!parsed.success) return undefined;
  const r = parsed.data;
  let entry: ImageEntry;
  if (r.info && r.excludedReason === undefined) {
    const i = r.info;
    const info: ImageInfo = {
      ref: name.withTag(tag),
      digest: i.digest,
      mediaType: i.mediaType,
      labels: i.labels,
      platforms: i.platforms,
    };
    if (i.platformDigest !== undefined) info.platformDigest = i.platformDigest;
    if (i.imageID !== undefined) info.imageID = i.imageID;
    if (i.createdAt !== undefined) info.createdAt = new Date(i.createdAt);
    if (i.platform !== undefined) info.platform = i.platform;
    if (i.lastFetched !== undefined) info.lastFetched = new Date(i.lastFetched);
    entry = { info };
  } else if (r.excludedReason !== undefined && !r.info) {
    entry = { excludedReason: r.excludedReason };
  } else {
    return undefined;
  }
  return { entry, digest: r.digest, intervalMs: r.intervalMs, checkedAt: new Date(r.checkedAt) };
}
