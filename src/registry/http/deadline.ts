/**
 * The total deadline of one request, headers and body together. undici's own timeouts fire
 * only on an idle gap, so a registry dripping a body a byte a second would hold a scan for
 * hours; this deadline aborts the request however the bytes trickle in.
 */

import { followAbort } from "../../abort.js";

/** Default total deadline of one registry request (headers and body). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** Default total deadline of a whole tag listing, every page included. */
export const DEFAULT_TAG_LIST_TIMEOUT_MS = 5 * 60_000;

/** The reason a deadline aborts its request with; never seen outside the transport. */
export class DeadlineExpired extends Error {
  constructor(readonly timeoutMs: number) {
    super(`deadline of ${timeoutMs} ms expired`);
  }
}

/**
 * A timer and the signal it aborts, tied to the caller's signal (a caller's abort aborts the
 * request too, with the caller's reason). `clear()` must be called once the exchange is over:
 * it stops the timer and lets go of the caller's signal.
 */
export class RequestDeadline {
  readonly signal: AbortSignal;
  readonly #controller = new AbortController();
  readonly #caller: AbortSignal | undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #onCallerAbort = () => this.#abort(this.#caller?.reason);
  #unfollow: (() => void) | undefined;
  #expired = false;

  constructor(
    readonly timeoutMs: number,
    caller?: AbortSignal,
  ) {
    this.signal = this.#controller.signal;
    this.#caller = caller;
    this.#timer = setTimeout(() => {
      this.#expired = true;
      this.#abort(new DeadlineExpired(timeoutMs));
    }, timeoutMs);
    // A body nobody reads must not keep the process alive until the deadline.
    this.#timer.unref();
    if (caller?.aborted) this.#onCallerAbort();
    else if (caller) this.#unfollow = followAbort(caller, this.#onCallerAbort);
  }

  /** Whether the deadline (not the caller) ended the request. */
  get expired(): boolean {
    return this.#expired;
  }

  /** Whether the caller's own signal aborted. */
  get callerAborted(): boolean {
    return this.#caller?.aborted ?? false;
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#unfollow?.();
  }

  #abort(reason: unknown): void {
    this.clear();
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }
}
