/**
 * The typed errors every store throws, so callers can log them and record them as a
 * repository's last error instead of crashing. Messages never carry a password.
 */
import { RegscanError } from "../../errors.js";

/** The store URL could not be understood; the message names it (credentials removed). */
export class InvalidStoreUrlError extends RegscanError {
  readonly code = "INVALID_STORE_URL";
  /** The URL with any password replaced by `***`. */
  readonly url: string;
  /** `url` must already be redacted: it is shown as given. */
  constructor(invalid: { url: string; reason: string }) {
    super(`invalid cache store URL "${invalid.url}": ${invalid.reason}`);
    this.url = invalid.url;
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
  /** Which store, e.g. `memcached 127.0.0.1:11211` (never a password). */
  readonly store: string;
  /** `detail`: what went wrong, e.g. `get timed out`; `cause`: the client's own error. */
  constructor(failure: { store: string; detail: string; cause?: unknown }) {
    super(
      `cache store ${failure.store} is unavailable: ${failure.detail}`,
      causeOption(failure.cause),
    );
    this.store = failure.store;
  }
}

/** The value is larger than the store accepts, even compressed and chunked. */
export class ValueTooLargeError extends RegscanError {
  readonly code = "VALUE_TOO_LARGE";
  readonly store: string;
  readonly key: string;
  /** Bytes that would have been stored. */
  readonly size: number;
  /** The most the store accepts. */
  readonly limit: number;
  constructor(refused: { store: string; key: string; size: number; limit: number }) {
    const { store, key, size, limit } = refused;
    super(`cache store ${store} refused "${key}": ${size} bytes is over the limit of ${limit}`);
    this.store = store;
    this.key = key;
    this.size = size;
    this.limit = limit;
  }
}

/** The store answered with an error that is not an outage (e.g. a refused command). */
export class StoreOperationError extends RegscanError {
  readonly code = "STORE_ERROR";
  readonly store: string;
  /** The store operation, e.g. `set` or `acquire`. */
  readonly operation: string;
  /** `detail`: the server's answer; `cause`: the client's own error. */
  constructor(failure: { store: string; operation: string; detail: string; cause?: unknown }) {
    const { store, operation, detail } = failure;
    super(`cache store ${store}: ${operation} failed: ${detail}`, causeOption(failure.cause));
    this.store = store;
    this.operation = operation;
  }
}

/** The store was used after `close()`. */
export class StoreClosedError extends RegscanError {
  readonly code = "STORE_CLOSED";
  constructor(readonly store: string) {
    super(`cache store ${store} is closed`);
  }
}

/**
 * `{ cause }` only when there is one: `Error` records a `cause` property even when given
 * `undefined`, and an error without a cause should not show one.
 */
function causeOption(cause: unknown): { cause: unknown } | undefined {
  return cause === undefined ? undefined : { cause };
}
