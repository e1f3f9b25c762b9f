/**
 * Per-host rate limiting that adapts (Flux v1's `middleware.RateLimiters`): a token bucket
 * per registry host sized by the host's request budget, halved on a `429`, raised again
 * slowly after a cool-down, paused for `Retry-After`; and, for hosts that report a pull
 * quota (Docker Hub), a pull budget that keeps a fifth of it unspent.
 */

import { abortableSleep, raceAbort } from "../../abort.js";
import { RegscanError } from "../../errors.js";
import { TooManyRequestsError } from "../errors.js";
import { type HostBudget, type RequestBudget, RequestBudgets } from "./budgets.js";
import { type HeaderSource, headerValue } from "./headers.js";
import { PullBudget, type PullState } from "./pull-budget.js";

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
  /**
   * Budgets per host (`host[:port]` or a `*` pattern; `docker.io` means Docker Hub's API
   * host), over the defaults for the public registries (`DEFAULT_BUDGETS`) and `rps`/`burst`.
   */
  budgets?: Readonly<Record<string, RequestBudget>>;
  /** The defaults for public registries (default `DEFAULT_BUDGETS`; `{}` for none). */
  defaultBudgets?: Readonly<Record<string, RequestBudget>>;
  /** The rate never drops under this (default 0.1 requests per second). */
  minRps?: number;
  /** No recovery within this long of the last back-off (default 20 minutes). */
  recoverCooldownMs?: number;
  /** Clock and sleep (default: the real ones). */
  clock?: Clock;
}

/** A host's state, as `state()` reports it. */
export interface HostRateState {
  /** The host's budget (requests per second and burst) and where it came from. */
  budget: HostBudget;
  /** The adaptive rate (requests per second), between `minRps` and the budget's. */
  rate: number;
  /** What requests get now (the adaptive rate). */
  effectiveRate: number;
  /** The pull budget, once the host has reported a pull quota. */
  pulls: PullState | undefined;
  /** When the last back-off happened (ms since the epoch). */
  backedOffAt: number | undefined;
  /** No request starts before this (ms since the epoch); 0 when not paused. */
  pausedUntil: number;
}

interface HostBucket {
  budget: HostBudget;
  rate: number;
  tokens: number;
  last: number;
  backedOffAt: number | undefined;
  pausedUntil: number;
  pulls: PullBudget | undefined;
  /**
   * The first pull to a host whose quota is not known: the others wait for its answer (which
   * may bring the quota), so that a cold start cannot spend a quota before it is seen.
   */
  firstPull: { done: Promise<void>; settle: () => void; settled: boolean } | undefined;
  /** Requests let through, and the milliseconds they waited for the budget in all. */
  requests: number;
  waitedMs: number;
  /** Requests asked for per second over the last minute (a ring of one-second counts). */
  demand: number[];
  demandSecond: number;
}

/** How a host's demand compares with its budget (`saturation(host)`). */
export interface HostSaturation {
  /** Requests per second the host gets now. */
  rate: number;
  /** Requests per second asked for over the last minute. */
  demandRps: number;
  /** `demandRps / rate`: 1 or more means the budget is the bottleneck. */
  utilisation: number;
  /** How long a request asked for now would wait for the budget (milliseconds). */
  queueDelayMs: number;
  /** Milliseconds all requests have waited for the budget so far. */
  waitedMs: number;
  /** Requests let through so far. */
  requests: number;
  /** The budget cannot keep up: requests queue for over a second, or pulls wait for quota. */
  saturated: boolean;
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

// Pauses only ever extend; a bound keeps a waiter from looping forever on odd clocks.
const MAX_PAUSE_LOOPS = 1000;
/** A queue this long (or a pull waiting for quota) means the budget cannot keep up. */
export const SATURATED_QUEUE_MS = 1000;
/** The longest a pull waits for quota; longer is a `TooManyRequestsError` with the wait. */
export const MAX_PULL_WAIT_MS = 60_000;
const DEMAND_SECONDS = 60;
/**
 * A host budget (configured or default) is kept with this much to spare: the registry counts
 * requests as they arrive, and network jitter can move a request sent just before a window
 * into it. 1% of a 10 s window is 100 ms of jitter. The global rate is Flux's plain rate.
 */
export const BUDGET_MARGIN = 0.01;

/** The top rate of a host's bucket. */
function topRate(budget: HostBudget): number {
  return budget.source === "global" ? budget.rps : budget.rps * (1 - BUDGET_MARGIN);
}

/**
 * Token buckets per registry host, each sized by the host's budget. `wait` before each
 * request (and `waitPull` before a manifest GET, then `pullDone`); `backOff` on a `429` (the
 * transport does it once per client); `recover` after a successful pass (the factory's
 * `succeed`); `pauseUntil` for `Retry-After`; `observeQuota` for Docker Hub's headers.
 */
export class RateLimiters {
  readonly rps: number;
  readonly burst: number;
  readonly minRps: number;
  readonly recoverCooldownMs: number;
  readonly budgets: RequestBudgets;
  readonly #clock: Clock;
  readonly #hosts = new Map<string, HostBucket>();

  constructor(opts: RateLimitersOptions = {}) {
    this.rps = positive(opts.rps, 200, "rps");
    this.burst = Math.max(1, Math.floor(positive(opts.burst, 125, "burst")));
    this.minRps = Math.min(positive(opts.minRps, 0.1, "minRps"), this.rps);
    this.recoverCooldownMs = opts.recoverCooldownMs ?? 20 * 60 * 1000;
    this.#clock = opts.clock ?? systemClock;
    this.budgets = new RequestBudgets({
      global: { rps: this.rps, burst: this.burst },
      ...(opts.budgets ? { configured: opts.budgets } : {}),
      ...(opts.defaultBudgets ? { defaults: opts.defaultBudgets } : {}),
    });
  }

  #bucket(host: string): HostBucket {
    const key = host.toLowerCase();
    let b = this.#hosts.get(key);
    if (!b) {
      const budget = this.budgets.for(key);
      b = {
        budget,
        rate: topRate(budget),
        tokens: budget.burst,
        last: this.#clock.now(),
        backedOffAt: undefined,
        pausedUntil: 0,
        pulls: undefined,
        firstPull: undefined,
        requests: 0,
        waitedMs: 0,
        demand: new Array<number>(DEMAND_SECONDS).fill(0),
        demandSecond: Math.floor(this.#clock.now() / 1000),
      };
      this.#hosts.set(key, b);
    }
    return b;
  }

  #minRate(b: HostBucket): number {
    return Math.min(this.minRps, topRate(b.budget));
  }

  /** Refills the bucket up to now at the rate that applied until now. */
  #advance(b: HostBucket, now: number): void {
    if (now > b.last) {
      b.tokens = Math.min(b.budget.burst, b.tokens + ((now - b.last) / 1000) * b.rate);
      b.last = now;
    }
  }

  /** Moves the ring of one-second demand counts to `now`, clearing the seconds passed. */
  #roll(b: HostBucket, now: number): void {
    const second = Math.floor(now / 1000);
    const gap = Math.min(DEMAND_SECONDS, second - b.demandSecond);
    for (let i = 1; i <= gap; i++) b.demand[(b.demandSecond + i) % DEMAND_SECONDS] = 0;
    if (second > b.demandSecond) b.demandSecond = second;
  }

  /** Counts one request asked for. */
  #ask(b: HostBucket, now: number): void {
    this.#roll(b, now);
    const i = Math.floor(now / 1000) % DEMAND_SECONDS;
    b.demand[i] = (b.demand[i] ?? 0) + 1;
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
    this.#ask(b, now);
    b.tokens -= 1;
    const tokenDelay = b.tokens < 0 ? (-b.tokens / b.rate) * 1000 : 0;
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
      b.tokens = Math.min(b.budget.burst, b.tokens + 1);
      throw err;
    }
    b.requests++;
    b.waitedMs += Math.max(0, this.#clock.now() - now);
  }

  /**
   * Before a manifest GET (a pull on Docker Hub; a `HEAD` is not): once the host has reported
   * a pull quota, waits for the pull budget: paced as the remaining quota nears a fifth of
   * the limit, and held at that floor until pulls leave the window. A wait over
   * `MAX_PULL_WAIT_MS` rejects with a `TooManyRequestsError` carrying it instead (no request
   * is sent). Resolves to whether the pull was counted; pass that to `pullDone` when the
   * answer comes (or fails).
   */
  async waitPull(host: string, signal?: AbortSignal): Promise<boolean> {
    const b = this.#bucket(host);
    for (let i = 0; i < MAX_PAUSE_LOOPS; i++) {
      if (signal?.aborted) throw signal.reason;
      const pulls = b.pulls;
      if (pulls === undefined) {
        // No quota known yet: one pull goes, uncounted; its answer tells the quota (or that
        // there is none), and the others wait for it.
        const first = b.firstPull;
        if (first === undefined) {
          let settle = () => {};
          const done = new Promise<void>((resolve) => {
            settle = resolve;
          });
          b.firstPull = { done, settle, settled: false };
          return false;
        }
        if (first.settled) return false;
        await raceAbort(first.done, signal);
        continue;
      }
      const now = this.#clock.now();
      const { delayMs } = pulls.delay(now);
      if (delayMs <= 0) {
        pulls.start(now, b.rate);
        return true;
      }
      if (delayMs > MAX_PULL_WAIT_MS) throw this.#pullBudgetSpent(host, pulls, now, delayMs);
      await this.#clock.sleep(Math.ceil(delayMs), signal);
      b.waitedMs += Math.max(0, this.#clock.now() - now);
    }
    const pulls = b.pulls as PullBudget;
    const now = this.#clock.now();
    throw this.#pullBudgetSpent(host, pulls, now, pulls.delay(now).delayMs);
  }

  #pullBudgetSpent(host: string, pulls: PullBudget, now: number, delayMs: number): Error {
    return new TooManyRequestsError({
      host,
      retryAfterMs: Math.ceil(delayMs),
      message: `pull budget spent: ${pulls.state(now).remaining} of ${pulls.limit} pulls left, a fifth is kept; next pull in ${Math.ceil(delayMs / 1000)} s`,
    });
  }

  /** A pull's answer came, or it failed (`counted`: what `waitPull` returned). */
  pullDone(host: string, counted = true): void {
    const b = this.#hosts.get(host.toLowerCase());
    if (counted) b?.pulls?.finish();
    const first = b?.firstPull;
    if (first !== undefined && !first.settled) {
      first.settled = true;
      first.settle();
    }
  }

  /** A `429` came: halve the host's rate, never under `minRps`, and start the cool-down. */
  backOff(host: string): void {
    const b = this.#bucket(host);
    const now = this.#clock.now();
    this.#advance(b, now);
    b.rate = Math.max(this.#minRate(b), b.rate / 2);
    b.backedOffAt = now;
  }

  /**
   * A pass over a repository on this host succeeded: raise the rate by 1.5x towards the
   * budget, unless the last back-off was less than the cool-down ago.
   */
  recover(host: string): void {
    const b = this.#hosts.get(host.toLowerCase());
    if (!b || b.rate >= topRate(b.budget)) return;
    const now = this.#clock.now();
    if (b.backedOffAt !== undefined && now - b.backedOffAt < this.recoverCooldownMs) return;
    this.#advance(b, now);
    b.rate = Math.min(topRate(b.budget), b.rate * 1.5);
  }

  /** No request to the host starts before `time` (ms since the epoch, or a Date). */
  pauseUntil(host: string, time: number | Date): void {
    const b = this.#bucket(host);
    const t = typeof time === "number" ? time : time.getTime();
    if (Number.isFinite(t) && t > b.pausedUntil) b.pausedUntil = t;
  }

  /**
   * Docker Hub's quota: either its response headers (`ratelimit-remaining`,
   * `ratelimit-limit`), or the numbers. From the first report on, the host's manifest GETs go
   * through its pull budget (`waitPull`); nothing else is slowed by it.
   */
  observeQuota(host: string, headers: HeaderSource | undefined): void;
  observeQuota(host: string, remaining: number, limit?: number, windowSeconds?: number): void;
  observeQuota(
    host: string,
    remainingOrHeaders: number | HeaderSource | undefined,
    limit?: number,
    windowSeconds?: number,
  ): void {
    let remaining: number;
    let max: number | undefined;
    let window: number | undefined;
    if (typeof remainingOrHeaders === "number") {
      remaining = remainingOrHeaders;
      max = limit;
      window = windowSeconds;
    } else {
      const quota = parseDockerHubQuota(remainingOrHeaders);
      if (!quota) return;
      remaining = quota.remaining;
      max = quota.limit;
      window = quota.windowSeconds;
    }
    if (!Number.isFinite(remaining) || remaining < 0) return;
    // Without a limit there is no floor to keep; a limit under what remains is not one.
    if (max === undefined || !Number.isFinite(max) || max <= 0 || remaining > max) return;
    const b = this.#bucket(host);
    const now = this.#clock.now();
    if (b.pulls === undefined) {
      // Docker Hub's documented window is six hours when the header leaves it out.
      b.pulls = new PullBudget(remaining, max, window ?? 21_600);
    } else b.pulls.observe(remaining, max, window, now);
  }

  /** The budget of `host`, and where it came from. */
  budget(host: string): HostBudget {
    return this.#hosts.get(host.toLowerCase())?.budget ?? this.budgets.for(host);
  }

  /**
   * How `host`'s demand compares with its budget: the warmer's signal to stretch its
   * intervals (and the metrics'). Demand is requests asked for over the last minute.
   */
  saturation(host: string): HostSaturation {
    const b = this.#hosts.get(host.toLowerCase());
    if (!b) {
      const budget = this.budgets.for(host);
      return {
        rate: topRate(budget),
        demandRps: 0,
        utilisation: 0,
        queueDelayMs: 0,
        waitedMs: 0,
        requests: 0,
        saturated: false,
      };
    }
    const now = this.#clock.now();
    this.#advance(b, now);
    this.#roll(b, now);
    const demandRps = b.demand.reduce((s, n) => s + n, 0) / DEMAND_SECONDS;
    const queueDelayMs = Math.max(
      b.tokens < 0 ? (-b.tokens / b.rate) * 1000 : 0,
      b.pausedUntil - now,
      0,
    );
    const pullDelay = b.pulls?.delay(now).delayMs ?? 0;
    return {
      rate: b.rate,
      demandRps,
      utilisation: demandRps / b.rate,
      queueDelayMs,
      waitedMs: b.waitedMs,
      requests: b.requests,
      saturated: queueDelayMs >= SATURATED_QUEUE_MS || pullDelay >= SATURATED_QUEUE_MS,
    };
  }

  /** Every host seen so far (lower case). */
  hosts(): string[] {
    return [...this.#hosts.keys()];
  }

  /** The host's current state (for tests, logs and metrics). */
  state(host: string): HostRateState {
    const b = this.#hosts.get(host.toLowerCase());
    if (!b) {
      const budget = this.budgets.for(host);
      return {
        budget,
        rate: topRate(budget),
        effectiveRate: topRate(budget),
        pulls: undefined,
        backedOffAt: undefined,
        pausedUntil: 0,
      };
    }
    return {
      budget: b.budget,
      rate: b.rate,
      effectiveRate: b.rate,
      pulls: b.pulls?.state(this.#clock.now()),
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
