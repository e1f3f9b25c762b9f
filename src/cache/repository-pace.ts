/**
 * How often a repository is listed: its interval, doubled for each scan past the first few
 * that found its listing unchanged, up to a maximum multiple; a change puts it back at its
 * interval (tags back off the same way, one by one). Kept in memory by each warmer.
 */
import type { RepositoryScanResult } from "./warmer-types.js";

/** The longest a quiet repository waits, as a multiple of its interval (default). */
export const DEFAULT_MAX_INTERVAL_FACTOR = 8;
/** Unchanged scans in a row before the interval starts doubling (default). */
export const DEFAULT_QUIET_SCANS_BEFORE_BACKOFF = 3;

/** How repositories back off. */
export interface RepositoryPaceOptions {
  /** The longest interval as a multiple of the repository's own (1: never back off). */
  maxFactor?: number;
  /** Unchanged scans in a row before the interval doubles. */
  quietScans?: number;
}

/** Whether a scan found the listing changed: new, moved or gone tags, or the first listing. */
export function listingChanged(
  result: RepositoryScanResult,
  previousTagCount: number | undefined,
): boolean {
  return (
    previousTagCount === undefined ||
    previousTagCount !== result.tags ||
    result.newTags.length > 0 ||
    result.movedTags.length > 0
  );
}

/** One repository's pace. */
export class RepositoryPace {
  readonly #maxFactor: number;
  readonly #quietScans: number;
  #quiet = 0;
  /** The multiple of the repository's interval applied now. */
  factor = 1;

  constructor(opts: RepositoryPaceOptions = {}) {
    this.#maxFactor = Math.max(1, opts.maxFactor ?? DEFAULT_MAX_INTERVAL_FACTOR);
    this.#quietScans = Math.max(
      1,
      Math.floor(opts.quietScans ?? DEFAULT_QUIET_SCANS_BEFORE_BACKOFF),
    );
  }

  /** A complete scan: a change resets the pace, a quiet one may double the interval. */
  record(changed: boolean): void {
    if (changed) {
      this.#quiet = 0;
      this.factor = 1;
      return;
    }
    this.#quiet++;
    if (this.#quiet >= this.#quietScans) this.factor = Math.min(this.#maxFactor, this.factor * 2);
  }

  /** The interval to apply now to a repository whose own interval is `baseMs`. */
  intervalMs(baseMs: number): number {
    return baseMs * this.factor;
  }
}
