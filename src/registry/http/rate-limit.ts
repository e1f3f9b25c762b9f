/**
 * The rate-limit layer: waits for the host's token bucket before each request, halves the
 * host's rate on a `429` (once per client, as Flux did), keeps the host paused for its
 * `Retry-After`, and feeds Docker Hub's `ratelimit-remaining` to the limiter so that it
 * slows down before the quota runs out.
 */

import type { Layer, Transport } from "./exchange.js";
import { parseRetryAfter } from "./headers.js";
import type { RateLimiters } from "./rate-limiters.js";

/**
 * The longest a `Retry-After` holds the host's other requests. A registry asking for more
 * (an hour, a day) gets its `429` passed up, as a `TooManyRequestsError` carrying the wait,
 * for the caller to decide; requests already queued must not hang that long.
 */
export const MAX_PAUSE_MS = 60_000;

/**
 * The rate-limit layer; make one per client: every chain it wraps shares the client's
 * `backedOff` state (see `rateLimitTransport`).
 */
export function rateLimitLayer(limiters: RateLimiters, now: () => number = Date.now): Layer {
  const backedOff = new Set<string>();
  return (next) => rateLimitTransport(next, limiters, now, backedOff);
}

/** Wraps `next`; `backedOff` is per client so that one client halves a host's rate once. */
export function rateLimitTransport(
  next: Transport,
  limiters: RateLimiters,
  now: () => number = Date.now,
  backedOff: Set<string> = new Set(),
): Transport {
  return async (req) => {
    const host = req.url.host;
    await limiters.wait(host, req.signal);
    const res = await next(req);
    limiters.observeQuota(host, res.headers);
    if (res.status === 429) {
      if (!backedOff.has(host)) {
        backedOff.add(host);
        limiters.backOff(host);
      }
      const after = parseRetryAfter(res.headers.get("retry-after") ?? undefined, now());
      if (after !== undefined) limiters.pauseUntil(host, now() + Math.min(after, MAX_PAUSE_MS));
    }
    return res;
  };
}
