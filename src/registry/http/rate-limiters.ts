/**
 * Per-host rate limiting that adapts (Flux v1's `middleware.RateLimiters`): a token bucket
 * per registry host, halved on a `429`, raised again slowly after a cool-down, paused for
 * `Retry-After`, and slowed as Docker Hub's remaining quota nears zero.
 */

import { abortableSleep } from "../../abort.js";
import { RegscanError } from "../../errors.js";
import { type HeaderSource, headerValue } from "./headers.js";

/** A `RateLimiters` option that is not a positive number. */
export class InvalidRateLimitOptionError extends RegscanError {
  readonly code = "INVALID_OPTION";
}

/** Time, injectable so tests can use a fake clock. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects with `signal.reason` when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now(), sleep: abortableSleep };

/** Options of `RateLimiters`. */
export interface RateLimitersOptions {
  /** Requests per second per host at full speed (Flux's `--registry-rps`, default 200). */
  rps?: number;
  /** Bucket size: requests allowed at once after a quiet spell (default 125). */
  burst?: number;
  /** The rate never drops under this (default 0.1 requests per second). */
  minRps?: number;
  /** No recovery within this long of the last back-off (default 20 minutes). */
  recoverCooldownMs?: number;
  /** Clock and sleep (default: the real ones). */
  clock?: Clock;
}

/** A host's state, as `state()` reports it. */
export interface HostRateState {
  /** The adaptive rate (requests per second), between `minRps` and `rps`. */
  rate: number;
  /** The rate after the quota cap, which is what requests actually get. */
  effectiveRate: number;
  /** Cap from Docker Hub's remaining quota, when one applies. */
  quotaCap: number | undefined;
  /** When the last back-off happened (ms since the epoch). */
  backedOffAt: number | undefined;
  /** No request starts before this (ms since the epoch); 0 when not paused. */
  pausedUntil: number;
}

interface HostBucket {
  rate: number;
  tokens: number;
  last: number;
  backedOffAt: number | undefined;
  quotaCap: number | undefined;
  pausedUntil: number;
}

/** Docker Hub's quota header (`100;w=21600`): a count and, optionally, the window. */
function parseQuotaHeader(
  value: string | undefined,
): { n: number; w: number | undefined } | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+))?/.exec(value);
  if (!m) return undefined;
  return { n: Number(m[1]), w: m[2] === undefined ? undefined : Number(m[2]) };
}

/** Docker Hub's `ratelimit-limit` / `ratelimit-remaining` headers, when present. */
export function parseDockerHubQuota(
  headers: HeaderSource | undefined,
): { remaining: number; limit: number | undefined; windowSeconds: number | undefined } | undefined {
  const remaining = parseQuotaHeader(headerValue(headers, "ratelimit-remaining"));
  if (remaining === undefined) return undefined;
  const limit = parseQuotaHeader(headerValue(headers, "ratelimit-limit"));
  return {
    remaining: remaining.n,
    limit: limit?.n,
    windowSeconds: remaining.w ?? limit?.w,
  };
}

// Below this share of the quota, the host is slowed (more the closer it gets to zero).
const QUOTA_SLOW_SHARE = 0.2;
// Pauses only ever extend; a bound keeps a waiter from looping forever on odd clocks.
const MAX_PAUSE_LOOPS = 1000;

/**
 * Token buckets per registry host. `wait` before each request; `backOff` on a `429` (the
 * transport does it once per client); `recover` after a successful pass (the factory's
 * `succeed`); `pauseUntil` for `Retry-After`; `observeQuota` for Docker Hub's headers.
 */
export class RateLimiters {
  readonly rps: number;
  readonly burst: number;
  readonly minRps: number;
  readonly recoverCooldownMs: number;
  readonly #clock: Clock;
  readonly #hosts = new Map<string, HostBucket>();

  constructor(opts: RateLimitersOptions = {}) {
    this.rps = positive(opts.rps, 200, "rps");
    this.burst = Math.max(1, Math.floor(positive(opts.burst, 125, "burst")));
    this.minRps = Math.min(positive(opts.minRps, 0.1, "minRps"), this.rps);
    this.recoverCooldownMs = opts.recoverCooldownMs ?? 20 * 60 * 1000;
    this.#clock = opts.clock ?? systemClock;
  }

  #bucket(host: string): HostBucket {
    const key = host.toLowerCase();
    let b = this.#hosts.get(key);
    if (!b) {
      b = {
        rate: this.rps,
        tokens: this.burst,
        last: this.#clock.now(),
        backedOffAt: undefined,
        quotaCap: undefined,
        pausedUntil: 0,
      };
      this.#hosts.set(key, b);
    }
    return b;
  }

  #effective(b: HostBucket): number {
    return Math.min(b.rate, b.quotaCap ?? Number.POSITIVE_INFINITY);
  }

  /** Refills the bucket up to now at the rate that applied until now. */
  #advance(b: HostBucket, now: number): void {
    if (now > b.last) {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.last) / 1000) * this.#effective(b));
      b.last = now;
    }
  }

  /**
   * Resolves when the host may be sent one request; rejects with `signal.reason` when the
   * caller aborts (giving its token back).
   */
  async wait(host: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    const b = this.#bucket(host);
    const now = this.#clock.now();
    this.#advance(b, now);
    b.tokens -= 1;
    const tokenDelay = b.tokens < 0 ? (-b.tokens / this.#effective(b)) * 1000 : 0;
    const delay = Math.max(tokenDelay, b.pausedUntil - now);
    try {
      if (delay > 0) await this.#clock.sleep(Math.ceil(delay), signal);
      for (let i = 0; i < MAX_PAUSE_LOOPS; i++) {
        const t = this.#clock.now();
        if (b.pausedUntil <= t) break;
        await this.#clock.sleep(b.pausedUntil - t, signal);
      }
    } catch (err) {
      this.#advance(b, this.#clock.now());
      b.tokens = Math.min(this.burst, b.tokens + 1);
      throw err;
    }
  }

  /** A `429` came: halve the host's rate, never under `minRps`, and start the cool-down. */
  backOff(host: string): void {
    const b = this.#bucket(host);
    const now = this.#clock.now();
    this.#advance(b, now);
    b.rate = Math.max(this.minRps, b.rate / 2);
    b.backedOffAt = now;
  }

  /**
   * A pass over a repository on this host succeeded: raise the rate by 1.5x towards `rps`,
   * unless the last back-off was less than the cool-down ago.
   */
  recover(host: string): void {
    const b = this.#hosts.get(host.toLowerCase());
    if (!b || b.rate >= this.rps) return;
    const now = this.#clock.now();
    if (b.backedOffAt !== undefined && now - b.backedOffAt < this.recoverCooldownMs) return;
    this.#advance(b, now);
    b.rate = Math.min(this.rps, b.rate * 1.5);
  }

  /** No request to the host starts before `time` (ms since the epoch, or a Date). */
  pauseUntil(host: string, time: number | Date): void {
    const b = this.#bucket(host);
    const t = typeof time === "number" ? time : time.getTime();
    if (Number.isFinite(t) && t > b.pausedUntil) b.pausedUntil = t;
  }

  /**
   * Docker Hub's quota: either its response headers (`ratelimit-remaining`,
   * `ratelimit-limit`), or the numbers. Once fewer than a fifth of the quota remain, the
   * host is capped at a rate that falls with the square of what remains, down to `minRps`
   * at zero, so regscan slows before the `429`. More remaining lifts the cap again.
   */
  observeQuota(host: string, headers: HeaderSource | undefined): void;
  observeQuota(host: string, remaining: number, limit?: number, windowSeconds?: number): void;
  observeQuota(
    host: string,
    remainingOrHeaders: number | HeaderSource | undefined,
    limit?: number,
    _windowSeconds?: number,
  ): void {
    let remaining: number;
    let max: number | undefined;
    if (typeof remainingOrHeaders === "number") {
      remaining = remainingOrHeaders;
      max = limit;
    } else {
      const quota = parseDockerHubQuota(remainingOrHeaders);
      if (!quota) return;
      remaining = quota.remaining;
      max = quota.limit;
    }
    if (!Number.isFinite(remaining) || remaining < 0) return;
    const b = this.#bucket(host);
    this.#advance(b, this.#clock.now());
    // Without a limit, only "nothing left" is known to matter.
    const threshold =
      max !== undefined && max > 0 ? Math.max(1, Math.ceil(max * QUOTA_SLOW_SHARE)) : 1;
    if (remaining >= threshold) {
      b.quotaCap = undefined;
      return;
    }
    const share = remaining / threshold;
    b.quotaCap = Math.max(this.minRps, this.rps * share * share);
  }

  /** The host's current state (for tests, logs and metrics). */
  state(host: string): HostRateState {
    const b = this.#hosts.get(host.toLowerCase());
    if (!b) {
      return {
        rate: this.rps,
        effectiveRate: this.rps,
        quotaCap: undefined,
        backedOffAt: undefined,
        pausedUntil: 0,
      };
    }
    return {
      rate: b.rate,
      effectiveRate: this.#effective(b),
      quotaCap: b.quotaCap,
      backedOffAt: b.backedOffAt,
      pausedUntil: b.pausedUntil,
    };
  }

  /** The host's adaptive rate in requests per second. */
  rate(host: string): number {
    return this.state(host).rate;
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new InvalidRateLimitOptionError(
      `RateLimiters: ${name} must be a positive number, got ${value}`,
    );
  }
  return value;
}
