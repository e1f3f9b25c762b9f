/**
 * The typed errors every store throws, so callers can log them and record them as a
 * repository's last error instead of crashing. Messages never carry a password.
 */
import { RegscanError } from "../../errors.js";

/** The store URL could not be understood; the message names it (credentials removed). */
export class InvalidStoreUrlError extends RegscanError {
  readonly code = "INVALID_STORE_URL";
  constructor(
    /** The URL with any password replaced by `***`. */
    readonly url: string,
    reason: string,
  ) {
    super(`invalid cache store URL "${url}": ${reason}`);
  }
}

/** A value was written with a deadline that is not a valid date. */
export class InvalidDeadlineError extends RegscanError {
  readonly code = "INVALID_DEADLINE";
  constructor() {
    // Without this, an Invalid Date became NaN expiries: never-expiring items in memcached
    // and memory, refused writes in Redis and SQLite, and a "bad deadline" miss on read.
    super("cache value deadline is not a valid date");
  }
}

/** The store's server cannot be reached or did not answer in time. */
export class StoreUnavailableError extends RegscanError {
  readonly code = "STORE_UNAVAILABLE";
  constructor(
    /** Which store, e.g. `memcached 127.0.0.1:11211` (never a password). */
    readonly store: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`cache store ${store} is unavailable: ${detail}`, options);
  }
}

/** The value is larger than the store accepts, even compressed and chunked. */
export class ValueTooLargeError extends RegscanError {
  readonly code = "VALUE_TOO_LARGE";
  constructor(
    readonly store: string,
    readonly key: string,
    /** Bytes that would have been stored. */
    readonly size: number,
    /** The most the store accepts. */
    readonly limit: number,
  ) {
    super(`cache store ${store} refused "${key}": ${size} bytes is over the limit of ${limit}`);
  }
}

/** The store answered with an error that is not an outage (e.g. a refused command). */
export class StoreOperationError extends RegscanError {
  readonly code = "STORE_ERROR";
  constructor(
    readonly store: string,
    readonly operation: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`cache store ${store}: ${operation} failed: ${detail}`, options);
  }
}

/** The store was used after `close()`. */
export class StoreClosedError extends RegscanError {
  readonly code = "STORE_CLOSED";
  constructor(readonly store: string) {
    super(`cache store ${store} is closed`);
  }
}
