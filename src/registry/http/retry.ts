/**
 * The retry layer and its policy (as data): repeats a request after `429`, `502`, `503`,
 * `504` or a dropped connection (before the headers, or while a GET's body is read), with
 * jittered exponential back-off, honouring `Retry-After`, bounded in attempts and in total
 * time, and stopped at once by the caller's AbortSignal.
 */

import { abortableSleep } from "../../abort.js";
import { NetworkError, RegistryResponseError, TooManyRequestsError } from "../errors.js";
import {
  BodyTooLargeSignal,
  bufferedBody,
  discard,
  failingBody,
  type HttpRequest,
  type HttpResponse,
  type Layer,
  readBody,
  type Transport,
} from "./exchange.js";
import { parseRetryAfter } from "./headers.js";

/**
 * The retry policy, as data: what is worth another attempt, and how hard to try (the
 * defaults of `RetryOptions`). Timeouts are not retried: the caller's time is spent. The
 * send layer reports `ETIMEDOUT` and `UND_ERR_CONNECT_TIMEOUT` as `TIMEOUT`, so they are
 * not network codes here.
 */
export const RETRY_POLICY = {
  /** Rate limiting and the gateway family. */
  statuses: [429, 502, 503, 504],
  /** Connections refused, reset or dropped before (or while) the answer came. */
  networkCodes: [
    "ECONNRESET",
    "ECONNREFUSED",
    "ECONNABORTED",
    "EPIPE",
    "EAI_AGAIN",
    "UND_ERR_SOCKET",
    "UND_ERR_CLOSED",
  ],
  maxAttempts: 4,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
  maxTotalMs: 60_000,
  maxRetryAfterMs: 60_000,
} as const;

/** The statuses retried (the ping's quick probe leaves these to the retried way). */
export const RETRY_STATUSES: ReadonlySet<number> = new Set(RETRY_POLICY.statuses);
const RETRY_NETWORK_CODES: ReadonlySet<string> = new Set(RETRY_POLICY.networkCodes);

/**
 * Whether an error is transient and the request worth repeating under the policy: `429`,
 * `502`, `503`, `504`, and dropped connections. Everything else (a timeout, an abort, a bug)
 * is not.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof TooManyRequestsError) return true;
  if (err instanceof NetworkError) {
    return err.causeCode !== undefined && RETRY_NETWORK_CODES.has(err.causeCode);
  }
  if (err instanceof RegistryResponseError) {
    return err.status !== undefined && RETRY_STATUSES.has(err.status);
  }
  return false;
}

/** How hard to try; every bound defaults to `RETRY_POLICY`'s. */
export interface RetryOptions {
  /** Attempts in all, the first included (default 4). */
  maxAttempts?: number | undefined;
  /** First back-off before jitter (default 250 ms); doubles each attempt. */
  baseDelayMs?: number | undefined;
  /** Largest single back-off (default 8 s). */
  maxDelayMs?: number | undefined;
  /** No retry starts once this much time has passed since the first attempt (default 60 s). */
  maxTotalMs?: number | undefined;
  /** A `Retry-After` longer than this is not waited for; the answer is returned (default 60 s). */
  maxRetryAfterMs?: number | undefined;
  /** Called before each retry (the trace layer logs it). */
  onRetry?: ((info: RetryInfo) => void) | undefined;
  /** For tests. */
  random?: (() => number) | undefined;
  now?: (() => number) | undefined;
}

/**
 * What `onRetry` is told. `req` is the method and URL only: the headers below the auth layer
 * carry the credentials.
 */
export interface RetryInfo {
  req: Pick<HttpRequest, "method" | "url">;
  attempt: number;
  delayMs: number;
  reason: string;
}

/** The retry layer. */
export function retryLayer(opts: RetryOptions = {}): Layer {
  return (next) => retryTransport(next, opts);
}

/** Wraps `next` with retries. */
export function retryTransport(next: Transport, opts: RetryOptions = {}): Transport {
  const maxAttempts = Math.max(1, opts.maxAttempts ?? RETRY_POLICY.maxAttempts);
  const base = opts.baseDelayMs ?? RETRY_POLICY.baseDelayMs;
  const maxDelay = opts.maxDelayMs ?? RETRY_POLICY.maxDelayMs;
  const maxTotal = opts.maxTotalMs ?? RETRY_POLICY.maxTotalMs;
  const maxRetryAfter = opts.maxRetryAfterMs ?? RETRY_POLICY.maxRetryAfterMs;
  const random = opts.random ?? Math.random;
  const now = opts.now ?? Date.now;

  return async (req) => {
    const started = now();
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse | undefined;
      let failure: unknown;
      try {
        res = await withBody(await next(req), req);
      } catch (err) {
        // Only a dropped connection is repeated here; statuses are looked at below.
        if (!(err instanceof NetworkError && isRetryable(err))) throw err;
        failure = err;
      }
      if (res && !RETRY_STATUSES.has(res.status)) return res;

      const backOff = Math.min(maxDelay, base * 2 ** (attempt - 1)) * (0.5 + random() / 2);
      const retryAfter = res
        ? parseRetryAfter(res.headers.get("retry-after") ?? undefined, now())
        : undefined;
      const delay = retryAfter !== undefined ? retryAfter + random() * 100 : backOff;
      const elapsed = now() - started;
      const giveUp =
        attempt >= maxAttempts ||
        elapsed + delay > maxTotal ||
        (retryAfter !== undefined && retryAfter > maxRetryAfter);
      if (giveUp) {
        if (res) return res;
        throw failure;
      }
      if (res) await discard(res);
      opts.onRetry?.({
        req: { method: req.method, url: req.url },
        attempt,
        delayMs: Math.round(delay),
        reason: res ? `status ${res.status}` : "connection dropped",
      });
      await abortableSleep(delay, req.signal);
    }
  };
}

/**
 * A GET's 200 body read here when the request asks for it (`bodyLimit`), so that a drop
 * mid-body fails this attempt and is retried. A body over the limit is handed on as one that
 * fails when read: the caller reports it as too large, with its own words.
 */
async function withBody(res: HttpResponse, req: HttpRequest): Promise<HttpResponse> {
  if (req.bodyLimit === undefined || req.method !== "GET" || res.status !== 200) return res;
  try {
    return { ...res, body: bufferedBody(await readBody(res, req.bodyLimit)) };
  } catch (err) {
    if (err instanceof BodyTooLargeSignal) return { ...res, body: failingBody(err) };
    throw err;
  }
}
