/**
 * A bounded in-process cache of decoded image records by id. Image records never change
 * (an id names one digest, platform choice or exclusion), so a hit needs no store read;
 * the bound is the encoded size of the records held; once over it, the least recently used
 * are evicted down to nine tenths of it (in one sweep, so that hits cost no reordering).
 */
import type { SharedEntry } from "./records.js";

/** Default bound: 16 MiB of encoded image records (about 40,000 typical images). */
export const DEFAULT_IMAGE_CACHE_BYTES = 16 * 1024 * 1024;

interface Held {
  entry: SharedEntry;
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

  /** Holds `entry` (decoded from `bytes` encoded bytes), evicting the least recently used. */
  set(id: string, entry: SharedEntry, bytes: number): void {
    if (bytes > this.maxBytes) return;
    const old = this.#held.get(id);
    if (old) this.#bytes -= old.bytes;
    this.#held.set(id, { entry, bytes, used: ++this.#clock });
    this.#bytes += bytes;
    if (this.#bytes <= this.maxBytes) return;
    const byAge = [...this.#held].sort((a, b) => a[1].used - b[1].used);
    for (const [key, held] of byAge) {
      if (this.#bytes <= this.maxBytes * 0.9) break;
      this.#held.delete(key);
      this.#bytes -= held.bytes;
    }
  }

  /** How many records and encoded bytes are held. */
  get size(): { records: number; bytes: number } {
    return { records: this.#held.size, bytes: this.#bytes };
  }
}
