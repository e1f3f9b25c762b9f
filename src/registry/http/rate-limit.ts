/**
 * The rate-limit layer: waits for the host's pull budget before a manifest GET, then for a
 * free connection to the host and its token bucket (its request budget) before each request;
 * halves the host's rate on a `429` (once per client, as Flux did), keeps the host paused for
 * its `Retry-After`, and feeds Docker Hub's `ratelimit-*` headers to the limiter so that
 * pulls slow before the quota ends.
 */

import type { HttpRequest, HttpResponse, Layer, Transport } from "./exchange.js";
import { parseRetryAfter } from "./headers.js";
import type { Priority, RateLimiters } from "./rate-limiters.js";

/**
 * The longest a `Retry-After` holds the host's other requests. A registry asking for more
 * (an hour, a day) gets its `429` passed up, as a `TooManyRequestsError` carrying the wait,
 * for the caller to decide; requests already queued must not hang that long.
 */
export const MAX_PAUSE_MS = 60_000;

/** Options of the rate-limit layer. */
export interface RateLimitLayerOptions {
  /** Clock for `Retry-After` dates (default `Date.now`). */
  now?: (() => number) | undefined;
  /**
   * The client's requests go ahead of other clients' in the host's queue (webhook and
   * refresh scans): a pushed tag must not wait behind a fill's or a poll's requests.
   */
  priority?: Priority | undefined;
}

/**
 * The rate-limit layer; make one per client: every chain it wraps shares the client's
 * `backedOff` state (see `rateLimitTransport`).
 */
export function rateLimitLayer(limiters: RateLimiters, opts: RateLimitLayerOptions = {}): Layer {
  const backedOff = new Set<string>();
  return (next) => rateLimitTransport(next, limiters, { ...opts, backedOff });
}

/** Options of `rateLimitTransport`. */
export interface RateLimitTransportOptions extends RateLimitLayerOptions {
  /** Hosts this client has backed off already: per client, so that it halves a rate once. */
  backedOff?: Set<string> | undefined;
}

/** Wraps `next` in the host's rate limits. */
export function rateLimitTransport(
  next: Transport,
  limiters: RateLimiters,
  opts: RateLimitTransportOptions = {},
): Transport {
  const now = opts.now ?? Date.now;
  const backedOff = opts.backedOff ?? new Set<string>();
  const priority = opts.priority ?? false;
  return async (req) => {
    const host = req.url.host;
    // The pull budget first: a request that took its turn of the request budget and then
    // waited for a pull would go out late, beside requests that took later turns.
    const pull = isPull(req) ? { counted: await limiters.waitPull(host, req.signal) } : undefined;
    let res: HttpResponse;
    try {
      const release = await limiters.waitToSend(host, { signal: req.signal, priority });
      try {
        res = await next(req);
      } finally {
        // Once the headers are in, the connection is the pool's to finish (a registry's
        // bodies are small: they come with them). Held until the body was read, the
        // connections sat idle while a loaded event loop got round to reading it: the full
        // bench:scale fill ran at 1,200 requests per second against 1,440.
        release();
      }
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
