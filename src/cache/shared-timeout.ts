/**
 * Timeout signals for the warmer's store writes, one shared by all the writes started
 * within a second of each other. A signal per write (`AbortSignal.timeout`) keeps a timer
 * and a signal alive for the whole timeout: 100,000 tag writes within ten seconds held
 * about 90 MB that way.
 */
import { setMaxListeners } from "node:events";

/** How long a {@link SharedTimeout}'s signals last and how widely they are shared. */
export interface SharedTimeoutOptions {
  /** The least time a write may take before its signal aborts. */
  timeoutMs: number;
  /** How long one signal is handed out; a write may wait up to `timeoutMs + slackMs`. */
  slackMs: number;
  /**
   * How many operations may listen on one signal at once (the writes in flight), so that
   * Node does not warn about a leak.
   */
  listeners: number;
}

/** Hands out signals that abort no sooner than `timeoutMs` after they were asked for. */
export class SharedTimeout {
  #signal: AbortSignal | undefined;
  #reuseUntil = 0;
  readonly timeoutMs: number;
  readonly slackMs: number;
  readonly listeners: number;

  constructor({ timeoutMs, slackMs, listeners }: SharedTimeoutOptions) {
    this.timeoutMs = timeoutMs;
    this.slackMs = slackMs;
    this.listeners = listeners;
  }

  /** A signal that aborts between `timeoutMs` and `timeoutMs + slackMs` from now. */
  signal(): AbortSignal {
    const now = performance.now();
    if (this.#signal === undefined || now >= this.#reuseUntil) {
      this.#signal = AbortSignal.timeout(this.timeoutMs + this.slackMs);
      setMaxListeners(this.listeners, this.#signal);
      this.#reuseUntil = now + this.slackMs;
    }
    return this.#signal;
  }
}
