/**
 * The rate-limit layer: waits for the host's token bucket (its request budget) before each
 * request, and for its pull budget before a manifest GET; halves the host's rate on a `429`
 * (once per client, as Flux did), keeps the host paused for its `Retry-After`, and feeds
 * Docker Hub's `ratelimit-*` headers to the limiter so that pulls slow before the quota ends.
 */

import type { HttpRequest, HttpResponse, Layer, Transport } from "./exchange.js";
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
    const pull = isPull(req) ? { counted: await limiters.waitPull(host, req.signal) } : undefined;
    let res: HttpResponse;
    try {
      res = await next(req);
    } finally {
      if (pull) limiters.pullDone(host, pull.counted);
    }
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

/**
 * A manifest GET: what Docker Hub counts as a pull (GET requests on manifest URLs,
 * `/v2/NAME/manifests/REF`, docs.docker.com/docker-hub/usage/pulls; a `HEAD` is not one,
 * nor a blob). An index's GET, which Docker Hub does not count, is reckoned as one all the
 * same: its answer's headers correct the reckoning.
 */
function isPull(req: HttpRequest): boolean {
  if (req.method !== "GET") return false;
  const path = req.url instanceof URL ? req.url.pathname : req.url.path;
  return /^\/v2\/.+\/manifests\/[^/]+$/.test(path.split("?")[0] ?? "");
}
