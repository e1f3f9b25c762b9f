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

/** A counting semaphore with a bounded, abortable wait. */
export class WorkGate {
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  readonly #limits: WorkGateLimits;

  constructor(limits: WorkGateLimits) {
    this.#limits = limits;
  }

  /**
   * Runs `work` when a turn is free; throws a 503 `SERVER_BUSY` ApiError at once when the
   * queue is full, or the signal's reason when the caller gives up while waiting.
   */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#acquire(signal);
    try {
      return await work();
    } finally {
      this.#release();
    }
  }

  /** Running and waiting work, for metrics and tests. */
  stats(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#waiting.length };
  }

  #acquire(signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    if (this.#running < this.#limits.concurrency) {
      this.#running++;
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
      const turn = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        const at = this.#waiting.indexOf(turn);
        if (at >= 0) this.#waiting.splice(at, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(turn);
    });
  }

  #release(): void {
    const next = this.#waiting.shift();
    // The turn passes straight to the next in line: `running` stays the same.
    if (next) next();
    else this.#running--;
  }
}
