/**
 * The memcached binary-protocol status codes that the store's own requests (the ones
 * memjs lacks: multi-get, compare-and-swap) act on, and the error for a refused request.
 */

/** The request succeeded. */
export const STATUS_OK = 0x0000;
/** No item at the key. */
export const STATUS_KEY_NOT_FOUND = 0x0001;
/** The item exists but its CAS value changed: somebody wrote it since it was read. */
export const STATUS_KEY_EXISTS = 0x0002;

/**
 * The server refused a request this store sends itself; the message has memjs's
 * `MemJS OPERATION:` form, which the store reports as a refusal, not an outage.
 */
export class MemcachedStatusError extends Error {
  constructor(
    operation: string,
    readonly status: number,
  ) {
    super(`MemJS ${operation}: status 0x${status.toString(16).padStart(4, "0")}`);
  }
}
