/**
 * A bounded in-process cache of decoded image records by id. Image records never change
 * (an id names one digest, platform choice or exclusion), so a hit needs no store read;
 * the bound is the encoded size of the records held; once over it, the least recently used
 * are evicted down to nine tenths of it, in one sweep (so that hits cost no reordering)
 * against a cut-off estimated from a sample of use marks: sorting every record by its mark
 * took tens of milliseconds at 40,000 records, on the event loop that answers the API.
 * This LRU is the one bound on decoded image records: what memoises image records beside it
 * (the Cache's resolved bucket rows) holds its slots, which it empties as it evicts, never
 * the records themselves.
 */
import type { SharedEntry } from "./records.js";

/**
 * Heap a decoded image record takes per byte of its encoding, with its id and its place in
 * the LRU: 2.0 measured over 20,000 typical records (1,120 bytes of heap for 560 encoded),
 * and 16.6 MB for 8 MiB in a heap snapshot of a replica at 10,000 repositories.
 */
export const IMAGE_HEAP_PER_ENCODED_BYTE = 2;

/**
 * Default heap for decoded image records: 8 MiB (about 7,500 typical images), which counts
 * against a replica's memory bound (256 MiB in issue 13: at 10,000 repositories, with 12 MiB,
 * the replica serving the reads peaked at 259.8 MiB).
 */
export const DEFAULT_IMAGE_CACHE_BYTES = 8 * 1024 * 1024;

/** Use marks sampled to estimate the eviction cut-off. */
const SAMPLE = 256;

/**
 * A record's place in the LRU, to hold instead of the record: `entry` becomes undefined once
 * the record is evicted, so that a holder pins a few bytes, not the decoded record.
 */
export interface ImageSlot {
  readonly entry: SharedEntry | undefined;
}

interface Held {
  entry: SharedEntry | undefined;
  bytes: number;
  used: number;
}

/** Least recently used decoded image records, up to a total encoded size. */
export class ImageLru {
  readonly #held = new Map<string, Held>();
  #bytes = 0;
  #clock = 0;

  /** @param maxBytes the most encoded bytes held; 0 keeps nothing. */
  constructor(readonly maxBytes: number = DEFAULT_IMAGE_CACHE_BYTES) {}

  /** The record held for `id`, marked as just used. */
  get(id: string): SharedEntry | undefined {
    const held = this.#held.get(id);
    if (!held) return undefined;
    held.used = ++this.#clock;
    return held.entry;
  }

  /** The slot holding `id`'s record, marked as just used. */
  slot(id: string): ImageSlot | undefined {
    const held = this.#held.get(id);
    if (!held) return undefined;
    held.used = ++this.#clock;
    return held;
  }

  /** The record a slot holds, marked as just used; undefined once it was evicted. */
  use(slot: ImageSlot): SharedEntry | undefined {
    const held = slot as Held;
    if (held.entry !== undefined) held.used = ++this.#clock;
    return held.entry;
  }

  /**
   * Holds `entry` (decoded from `bytes` encoded bytes), evicting the least recently used;
   * its slot, or undefined when it is not held (larger than the bound).
   */
  set(id: string, entry: SharedEntry, bytes: number): ImageSlot | undefined {
    if (bytes > this.maxBytes) return undefined;
    let held = this.#held.get(id);
    if (held) {
      // In place: slots handed out for this id stay good.
      this.#bytes += bytes - held.bytes;
      held.entry = entry;
      held.bytes = bytes;
      held.used = ++this.#clock;
    } else {
      held = { entry, bytes, used: ++this.#clock };
      this.#held.set(id, held);
      this.#bytes += bytes;
    }
    if (this.#bytes > this.maxBytes) this.#evict(this.maxBytes * 0.9);
    return held.entry === undefined ? undefined : held;
  }

  /** Evicts the least recently used, roughly, until at most `target` bytes are held. */
  #evict(target: number): void {
    // The share of records to drop, a little over the share of bytes (sizes vary).
    const share = Math.min(1, (this.#bytes - target) / this.#bytes + 0.02);
    const marks: number[] = [];
    const step = Math.max(1, Math.floor(this.#held.size / SAMPLE));
    let i = 0;
    for (const held of this.#held.values()) if (i++ % step === 0) marks.push(held.used);
    marks.sort((a, b) => a - b);
    // Sweeps with a rising cut-off: a sample that guessed low evicts again from the next
    // mark; the last sweep (cut-off at the clock) takes the oldest-inserted of what is left.
    let at = Math.floor(share * marks.length);
    while (this.#bytes > target) {
      const cutoff = at < marks.length ? (marks[at] as number) : this.#clock;
      for (const [key, held] of this.#held) {
        if (this.#bytes <= target) break;
        if (held.used > cutoff) continue;
        held.entry = undefined;
        this.#held.delete(key);
        this.#bytes -= held.bytes;
      }
      if (cutoff >= this.#clock) break;
      at += Math.max(1, Math.ceil(marks.length * 0.05));
    }
  }

  /** How many records and encoded bytes are held. */
  get size(): { records: number; bytes: number } {
    return { records: this.#held.size, bytes: this.#bytes };
  }
}
