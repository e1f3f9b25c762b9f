/**
 * Turns of the event loop during long work on it: the process that warms also answers the
 * API, so decoding an index, encoding buckets or writing a large answer yields every few
 * milliseconds rather than holding every other request (health checks included) up.
 */

/** Milliseconds of work between two turns of the event loop. */
export const TURN_MS = 4;

/** When the event loop last had a turn, and a turn for it once that is `TURN_MS` ago. */
export class EventLoopTurns {
  #last = performance.now();

  /** Gives the event loop a turn when the last one was more than `TURN_MS` ago. */
  async take(): Promise<void> {
    if (performance.now() - this.#last < TURN_MS) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#last = performance.now();
  }

  /** Counts now as a turn: the caller just waited (for a socket's `drain`, say). */
  reset(): void {
    this.#last = performance.now();
  }
}
