/**
 * Bounds how many expensive answers (a whole repository's JSON) are built at once, with a
 * bounded queue behind them; past the queue a request is refused at once, so that a burst
 * of costly reads within the rate limit cannot take the process's memory and event loop.
 */
import { ApiError } from "./api-error.js";

/** How much work the gate lets in. */
export interface WorkGateLimits {
  /** Pieces of work running at once (at least 1). */
  concurrency: number;
  /** Pieces of work waiting for a turn; more are refused (0: none wait). */
  queue: number;
  /** Seconds a refused client is told to wait (`Retry-After`). */
  retryAfterSeconds: number;
}

/** A piece of work waiting for its turn. */
interface Waiter {
  units: number;
  turn: () => void;
}

/**
 * A counting semaphore with a bounded, abortable wait. A piece of work may take several of
 * the turns (`weight`): a large repository's answer holds every image record it reads until
 * it is written, so four 25,000-tag builds at once took a replica past its 128 MiB heap
 * (bench:scale, 10,000 repositories, the bench's own reads of whole repositories); weighed
 * by their tags, one such build runs alone. Turns are given in order of arrival.
 */
export class WorkGate {
  #running = 0;
  readonly #waiting: Waiter[] = [];

  readonly #limits: WorkGateLimits;

  constructor(limits: WorkGateLimits) {
    this.#limits = limits;
  }

  /**
   * Runs `work` when `weight` turns are free (at least 1, at most all of them); throws a 503
   * `SERVER_BUSY` ApiError at once when the queue is full, or the signal's reason when the
   * caller gives up while waiting.
   */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal, weight = 1): Promise<T> {
    const units = Math.min(this.#limits.concurrency, Math.max(1, Math.ceil(weight)));
    await this.#acquire(signal, units);
    try {
      return await work();
    } finally {
      this.#release(units);
    }
  }

  /** Turns taken and work waiting, for metrics and tests. */
  stats(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#waiting.length };
  }

  #acquire(signal: AbortSignal | undefined, units: number): Promise<void> {
    signal?.throwIfAborted();
    if (this.#waiting.length === 0 && this.#running + units <= this.#limits.concurrency) {
      this.#running += units;
      return Promise.resolve();
    }
    if (this.#waiting.length >= this.#limits.queue) {
      return Promise.reject(
        new ApiError({
          status: 503,
          code: "SERVER_BUSY",
          message: "too many expensive requests at once; try again later",
          headers: {
            "retry-after": String(this.#limits.retryAfterSeconds),
          },
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        units,
        turn: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const at = this.#waiting.indexOf(waiter);
        if (at >= 0) this.#waiting.splice(at, 1);
        reject(signal?.reason);
        // A heavy waiter at the head may have held back lighter ones that fit now.
        this.#admit();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  #release(units: number): void {
    this.#running -= units;
    this.#admit();
  }

  /** Gives turns to the waiters at the head of the line while they fit. */
  #admit(): void {
    for (;;) {
      const next = this.#waiting[0];
      if (next === undefined || this.#running + next.units > this.#limits.concurrency) return;
      this.#waiting.shift();
      this.#running += next.units;
      next.turn();
    }
  }
}
