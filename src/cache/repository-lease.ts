/**
 * The lease a warmer holds on a repository while it scans it, so that replicas sharing a
 * store never scan one repository at the same time: taken before the scan, renewed while it
 * runs, given back when it ends (including when it is stopped).
 */
import type { Logger } from "pino";
import { RegscanError } from "../errors.js";
import { summarizeError } from "./error-summary.js";
import type { Store } from "./store.js";

/** The lease expired and another warmer took it while this one was still scanning. */
export class LeaseLostError extends RegscanError {
  readonly code = "LEASE_LOST";
  constructor(readonly key: string) {
    super(`another warmer took over the lease ${key}; this scan stopped to leave it the work`);
  }
}

/** What taking a lease gave. */
export type LeaseOutcome =
  | { taken: true; lease: RepositoryLease }
  | { taken: false; held: true }
  | { taken: false; held: false; error: unknown };

/** A lease this warmer holds; call {@link RepositoryLease.release} exactly once. */
export class RepositoryLease {
  readonly #timer: NodeJS.Timeout;
  #renewing = false;

  private constructor(
    private readonly store: Store,
    private readonly key: string,
    private readonly owner: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
    onLost: (error: LeaseLostError) => void,
  ) {
    // Renewed every third of its lifetime, so that one failed renewal still leaves time.
    const every = Math.max(1000, Math.floor(ttlMs / 3));
    this.#timer = setInterval(() => void this.#renew(every, onLost), every);
    this.#timer.unref();
  }

  /**
   * Takes the lease on `key` for `owner`. A store that cannot answer is reported, not
   * thrown: the caller decides (the warmer does not scan what it could not store anyway).
   * Rejects only when `signal` aborts.
   */
  static async take(
    store: Store,
    key: string,
    owner: string,
    ttlMs: number,
    log: Logger,
    onLost: (error: LeaseLostError) => void,
    signal: AbortSignal,
  ): Promise<LeaseOutcome> {
    try {
      if (!(await store.acquire(key, ttlMs, owner, { signal })))
        return { taken: false, held: true };
    } catch (error) {
      signal.throwIfAborted();
      return { taken: false, held: false, error };
    }
    return { taken: true, lease: new RepositoryLease(store, key, owner, ttlMs, log, onLost) };
  }

  /** Stops renewing and gives the lease back (bounded by `timeoutMs`; failures are logged). */
  async release(timeoutMs: number): Promise<void> {
    clearInterval(this.#timer);
    try {
      await this.store.release(this.key, this.owner, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      // It expires by itself; until then other warmers skip the repository.
      this.log.warn({ error: summarizeError(error) }, "could not release the repository lease");
    }
  }

  async #renew(timeoutMs: number, onLost: (error: LeaseLostError) => void): Promise<void> {
    if (this.#renewing) return; // the previous renewal is still waiting for the store
    this.#renewing = true;
    try {
      const kept = await this.store.acquire(this.key, this.ttlMs, this.owner, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!kept) {
        clearInterval(this.#timer);
        onLost(new LeaseLostError(this.key));
      }
    } catch (error) {
      // Still ours until it expires; the next renewal tries again.
      this.log.warn({ error: summarizeError(error) }, "could not renew the repository lease");
    } finally {
      this.#renewing = false;
    }
  }
}
