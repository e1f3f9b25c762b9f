/**
 * The total deadline of one request, headers and body together. undici's own timeouts fire
 * only on an idle gap, so a registry dripping a body a byte a second would hold a scan for
 * hours; this deadline aborts the request however the bytes trickle in.
 */

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
    else if (caller) follow(caller, this.#onCallerAbort);
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
    if (this.#caller) followers.get(this.#caller)?.delete(this.#onCallerAbort);
  }

  #abort(reason: unknown): void {
    this.clear();
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }
}

/**
 * The requests that follow each caller's signal, behind one listener per signal. A scan's
 * signal is followed by each of its requests, and Node walks a signal's whole list of
 * listeners to remove one: a listener per request was 3.6% of a replica's CPU at 2,000,000
 * tags (a bench:scale profile).
 */
const followers = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `onAbort` when `signal` aborts, until it is taken out of `followers`. */
function follow(signal: AbortSignal, onAbort: () => void): void {
  let following = followers.get(signal);
  if (following === undefined) {
    const mine = new Set<() => void>();
    following = mine;
    followers.set(signal, mine);
    signal.addEventListener(
      "abort",
      () => {
        followers.delete(signal);
        for (const abort of mine) abort();
      },
      { once: true },
    );
  }
  following.add(onAbort);
}
