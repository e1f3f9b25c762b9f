/**
 * Reads a repository's tag records with `Store.getMany` a chunk of keys at a time: few
 * round trips, and never more than a few chunks of raw values held at once, however many
 * tags the repository has (100,000 tags would otherwise mean ~70 MB of values in one array).
 */
import type { OperationOptions } from "../abort.js";
import { forEachBounded } from "../bounded-parallel.js";
import type { Store, StoreEntry } from "./store.js";

/** Keys per `getMany` call. */
export const READ_CHUNK_KEYS = 1000;
/** Default number of `getMany` calls in flight. */
export const DEFAULT_READ_CHUNKS_IN_FLIGHT = 2;

/** One chunk of a chunked read: the items' range, and their values or the read's error. */
export type ReadChunk =
  | { start: number; entries: (StoreEntry | undefined)[]; error?: undefined }
  | { start: number; end: number; entries?: undefined; error: unknown };

/** What {@link readChunked} reads, and where each chunk goes. */
export interface ChunkedRead {
  store: Store;
  /** How many items: their indices are `[0, count)`. */
  count: number;
  keyOf: (index: number) => string;
  /** Chunks read at once. */
  inFlight: number;
  /** Keys per chunk (default {@link READ_CHUNK_KEYS}; fewer for large values). */
  chunkKeys?: number | undefined;
  onChunk: (chunk: ReadChunk) => void;
  opts?: OperationOptions | undefined;
}

/**
 * Reads the key of every item (`keyOf(i)` for `i` in `[0, count)`) in chunks, at most
 * `inFlight` chunks at once, handing each chunk to `onChunk` as it arrives (chunks arrive
 * out of order; `entries[j]` belongs to item `start + j`). A failed chunk is handed over as
 * its error; stops starting chunks once `opts.signal` aborts.
 */
export async function readChunked({
  store,
  count,
  keyOf,
  inFlight,
  chunkKeys = READ_CHUNK_KEYS,
  onChunk,
  opts,
}: ChunkedRead): Promise<void> {
  const size = Math.max(1, Math.floor(chunkKeys));
  await forEachBounded(
    chunkStarts(count, size),
    { limit: inFlight, signal: opts?.signal },
    async (start) => {
      const end = Math.min(count, start + size);
      const keys: string[] = [];
      for (let i = start; i < end; i++) keys.push(keyOf(i));
      let entries: (StoreEntry | undefined)[];
      try {
        entries = await store.getMany(keys, opts);
      } catch (error) {
        onChunk({ start, end, error });
        return;
      }
      onChunk({ start, entries });
    },
  );
}

function* chunkStarts(count: number, size: number): Generator<number> {
  for (let start = 0; start < count; start += size) yield start;
}
