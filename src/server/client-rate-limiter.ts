/**
 * A token bucket per API client (by remote address), so that one client cannot starve the
 * others. The table of clients is bounded: the least recently seen are forgotten first.
 */

/** Settings of the per-client bucket. */
export interface ClientRateLimit {
  /** Tokens added per second. */
  rps: number;
  /** Bucket size. */
  burst: number;
  /** Most clients remembered at once (default 10,000). */
  maxClients?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Per-client token buckets. */
export class ClientRateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #maxClients: number;
  readonly #limit: ClientRateLimit;
  readonly #now: () => number;

  constructor(limit: ClientRateLimit, now: () => number = Date.now) {
    this.#limit = limit;
    this.#now = now;
    this.#maxClients = limit.maxClients ?? 10_000;
  }

  /** Takes a token for `client`: 0 when allowed, else the seconds to wait before retrying. */
  take(client: string): number {
    const now = this.#now();
    let bucket = this.#buckets.get(client);
    if (bucket) {
      this.#buckets.delete(client);
      bucket.tokens = Math.min(
        this.#limit.burst,
        bucket.tokens + ((now - bucket.at) / 1000) * this.#limit.rps,
      );
      bucket.at = now;
    } else {
      bucket = { tokens: this.#limit.burst, at: now };
      if (this.#buckets.size >= this.#maxClients) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
    }
    // Re-inserting keeps the map in least-recently-seen order for eviction.
    this.#buckets.set(client, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#limit.rps));
  }
}
