/**
 * Request counts of one simulated registry, per second and per kind of request, kept for the
 * last hour in a ring, so a bench can check a client's rate against its budget in any window.
 */

export const REQUEST_KINDS = [
  "ping",
  "token",
  "tags",
  "manifestGet",
  "manifestHead",
  "blob",
  "other",
] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

/** Counts of one second (or of all time). */
export interface Counts {
  total: number;
  ping: number;
  token: number;
  tags: number;
  manifestGet: number;
  manifestHead: number;
  blob: number;
  other: number;
  /** Answers with status 429 (injected or quota). */
  throttled: number;
  /** Docker Hub pulls counted against the quota. */
  pulls: number;
}

function zero(): Counts {
  return {
    total: 0,
    ping: 0,
    token: 0,
    tags: 0,
    manifestGet: 0,
    manifestHead: 0,
    blob: 0,
    other: 0,
    throttled: 0,
    pulls: 0,
  };
}

/**
 * Seconds of per-second counts kept: longer than the full bench:scale fill (75 minutes at
 * 2,000,000 tags on a loaded machine), whose windows are checked against the budget from
 * its start. At an hour, the first 15 minutes of that fill were gone and counted as none.
 */
const RING_SECONDS = 3 * 3600;

export interface SecondCounts extends Counts {
  /** Unix second. */
  second: number;
}

export class RequestStats {
  readonly totals: Counts = zero();
  readonly #ring: Array<SecondCounts | undefined> = new Array(RING_SECONDS);

  #at(now: number): SecondCounts {
    const second = Math.floor(now / 1000);
    const slot = second % RING_SECONDS;
    let c = this.#ring[slot];
    if (c === undefined || c.second !== second) {
      c = { ...zero(), second };
      this.#ring[slot] = c;
    }
    return c;
  }

  count(kind: RequestKind, now = Date.now()): void {
    const c = this.#at(now);
    c.total++;
    c[kind]++;
    this.totals.total++;
    this.totals[kind]++;
  }

  throttled(now = Date.now()): void {
    this.#at(now).throttled++;
    this.totals.throttled++;
  }

  pulled(now = Date.now()): void {
    this.#at(now).pulls++;
    this.totals.pulls++;
  }

  /** Seconds with any request in the last `seconds` (at most three hours), oldest first. */
  perSecond(seconds = RING_SECONDS, now = Date.now()): SecondCounts[] {
    const from = Math.floor(now / 1000) - Math.min(seconds, RING_SECONDS) + 1;
    return this.#ring
      .filter((c): c is SecondCounts => c !== undefined && c.second >= from)
      .sort((a, b) => a.second - b.second);
  }

  /** Most requests in any window of `windowSeconds` over the last three hours. */
  maxInWindow(windowSeconds: number, now = Date.now()): number {
    const seconds = this.perSecond(RING_SECONDS, now);
    let best = 0;
    let sum = 0;
    let start = 0;
    for (const c of seconds) {
      sum += c.total;
      while ((seconds[start] as SecondCounts).second <= c.second - windowSeconds) {
        sum -= (seconds[start] as SecondCounts).total;
        start++;
      }
      best = Math.max(best, sum);
    }
    return best;
  }
}
