/**
 * Counts failed webhook authentications per client address and turns a client away (429)
 * once it has failed too often, so that secrets in paths, headers or signatures cannot be
 * guessed at speed. The table of clients is bounded: the least recently seen go first.
 */

/** How many failures are allowed and how fast they are forgiven. */
export interface AuthFailureLimit {
  /** Failures allowed in a burst (default 10). */
  burst?: number;
  /** Failures forgiven per minute (default 10). */
  perMinute?: number;
  /** Most client addresses remembered (default 10,000). */
  maxClients?: number;
}

interface Count {
  failures: number;
  at: number;
}

/** Failed-authentication counts per client address. */
export class AuthFailureLimiter {
  readonly #counts = new Map<string, Count>();
  readonly #burst: number;
  readonly #perMs: number;
  readonly #maxClients: number;

  readonly #now: () => number;

  constructor(limit: AuthFailureLimit = {}, now: () => number = Date.now) {
    this.#now = now;
    this.#burst = limit.burst ?? 10;
    this.#perMs = (limit.perMinute ?? 10) / 60_000;
    this.#maxClients = limit.maxClients ?? 10_000;
  }

  /** 0 when `client` may try, else the seconds it should wait. */
  retryAfter(client: string): number {
    const count = this.#current(client);
    if (count === undefined || count.failures < this.#burst) return 0;
    return Math.max(1, Math.ceil((count.failures - this.#burst + 1) / this.#perMs / 1000));
  }

  /** Records one failed authentication of `client`. */
  fail(client: string): void {
    const count = this.#current(client) ?? { failures: 0, at: this.#now() };
    count.failures += 1;
    this.#counts.delete(client);
    if (this.#counts.size >= this.#maxClients) {
      const oldest = this.#counts.keys().next().value;
      if (oldest !== undefined) this.#counts.delete(oldest);
    }
    // Re-inserting keeps the map in least-recently-seen order for eviction.
    this.#counts.set(client, count);
  }

  #current(client: string): Count | undefined {
    const count = this.#counts.get(client);
    if (count === undefined) return undefined;
    const now = this.#now();
    count.failures = Math.max(0, count.failures - (now - count.at) * this.#perMs);
    count.at = now;
    return count;
  }
}
