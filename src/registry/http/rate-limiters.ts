/**
 * Per-host rate limiting that adapts (Flux v1's `middleware.RateLimiters`): a token bucket
 * per registry host sized by the host's request budget, halved on a `429`, raised again
 * slowly after a cool-down, paused for `Retry-After`; and, for hosts that report a pull
 * quota (Docker Hub), a pull budget that keeps a fifth of it unspent. Replicas that share
 * the budgets give each process a share of them (`setShare`): every bucket's rate and burst,
 * and the pull headroom, are scaled by it. A request sent through `waitToSend` also waits
 * for a free connection to its host first, so that it goes out when it takes its token.
 */

import { abortableSleep, followAbort, type OperationOptions, raceAbort } from "../../abort.js";
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
  /**
   * Calls `fire` after `ms`, unless the function returned is called first. Optional: without
   * it, waits sleep on an `AbortSignal` made for each (an AbortController, a listener and an
   * abort event per wake-up: 5% of a replica's CPU at 2,000,000 tags).
   */
  timer?(ms: number, fire: () => void): () => void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: abortableSleep,
  timer: (ms, fire) => {
    const timeout = setTimeout(fire, ms);
    return () => clearTimeout(timeout);
  },
};

/** The reason a timer on a clock without `timer` is cancelled with (never thrown). */
const CANCELLED = Symbol("cancelled");

/** Calls `fire` after `ms` on `clock`; returns what cancels it (see `Clock.timer`). */
function startTimer(clock: Clock, ms: number, fire: () => void): () => void {
  if (clock.timer) return clock.timer(ms, fire);
  const cancel = new AbortController();
  clock.sleep(ms, cancel.signal).then(fire, () => {});
  return () => cancel.abort(CANCELLED);
}

/**
 * A sleep of up to `ms` that `wake` ends early: `wake` may be called any number of times,
 * during the sleep or not (a call outside one does nothing).
 */
class Nap {
  #end: (() => void) | undefined = undefined;
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  readonly wake = (): void => {
    const end = this.#end;
    this.#end = undefined;
    end?.();
  };

  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const cancel = startTimer(this.#clock, ms, () => {
        this.#end = undefined;
        resolve();
      });
      this.#end = () => {
        cancel();
        resolve();
      };
    });
  }
}

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
  /** This process's share of every budget, 0 to 1 (default 1; see `setShare`). */
  share?: number;
  /**
   * Requests in flight to one host at once through `waitToSend` (default
   * `CONNECTIONS_PER_HOST`, the connections the dispatchers keep per host).
   */
  maxInFlight?: number;
}

/**
 * Connections kept per registry host, and so requests in flight to it at once: more would
 * wait in the connection pool after taking their token of the budget (see `waitToSend`).
 * Fixed. Sized by a host's rate times its answers' time instead (Little's law, up to 64;
 * 4b79c95), bench:scale's full run filled 13% later on 13% more replica CPU, but runs of one
 * code an hour apart differed as much on this shared machine, and on a CPU-bound replica an
 * answer's time is mostly its own event loop's, which more requests in flight lengthen: not
 * adopted without a same-hour comparison that shows a gain.
 */
export const CONNECTIONS_PER_HOST = 16;

/** A host's state, as `state()` reports it. */
export interface HostRateState {
  /** The host's budget (requests per second and burst) and where it came from. */
  budget: HostBudget;
  /** The adaptive rate (requests per second), between `minRps` and the budget's. */
  rate: number;
  /** What requests from this process get now: the adaptive rate times `share`. */
  effectiveRate: number;
  /** This process's share of the budget (`setShare`). */
  share: number;
  /** This process's part of the budget: its rate (margin kept) and burst times `share`. */
  effectiveBudget: RequestBudget;
  /** The pull budget, once the host has reported a pull quota. */
  pulls: PullState | undefined;
  /** When the last back-off happened (ms since the epoch). */
  backedOffAt: number | undefined;
  /** No request starts before this (ms since the epoch); 0 when not paused. */
  pausedUntil: number;
  /** Requests sent through `waitToSend` whose answers' headers have not come yet. */
  inFlight: number;
}

/** Options of `RateLimiters#wait`. */
export interface RateLimitWaitOptions extends OperationOptions {
  /**
   * Go ahead of every waiting request that is not one (default false): a webhook's or an
   * explicit refresh's requests, which must not queue behind a fill's or a poll's. A signal
   * makes the request a priority one from when it aborts, waiting included: a running poll
   * scan of a repository a webhook names is raised so, rather than finishing at the pace of
   * the host's backlog before the webhook's own scan can start.
   */
  priority?: Priority | undefined;
}

/** Whether requests go ahead of others: at once (`true`), or from when the signal aborts. */
export type Priority = boolean | AbortSignal;

/** Whether `priority` holds now. */
export function isPriority(priority: Priority | undefined): boolean {
  return priority === true || (typeof priority === "object" && priority.aborted);
}

/** Queues `me` behind the last waiter of its lane: a priority request ahead of every other one. */
function enqueue(queue: Waiter[], me: Waiter): void {
  const at = me.priority ? queue.findIndex((w) => !w.priority) : -1;
  queue.splice(at < 0 ? queue.length : at, 0, me);
}

/** A request waiting for its turn. */
interface Waiter {
  priority: boolean;
  /** Wakes it to work out its turn again. */
  wake: () => void;
}

/** What this process asks of a host now, for sharing budgets by demand (`wants`). */
export interface HostWant {
  /**
   * The part of the host's whole budget this process asked for over the last few seconds
   * (requests asked per second over the budget's rate), 0 to 1.
   */
  share: number;
  /**
   * Requests wait for the budget now, or one did since the last `wants()`: this process
   * would use more than it gets.
   */
  limited: boolean;
}

interface HostBucket {
  /** The host, lower case, as the map keys it. */
  host: string;
  budget: HostBudget;
  /** The adaptive rate of the whole budget; this process gets it times the share. */
  rate: number;
  /** Spare tokens, from 0 to this process's share of the burst. */
  tokens: number;
  /**
   * Requests waiting, in the order they go: priority requests first, then the others, each
   * lane first come, first served. The waiter at position `i` goes once `i + 1` tokens are
   * spare (those ahead take theirs), so it works out its turn again at any rate.
   */
  queue: Waiter[];
  /**
   * Called when the rate or share changes: sleeping waiters work out their turn again. A set
   * rather than one signal they all listen on: with hundreds of waiters, each nap's listener
   * added to and taken off that signal walked its whole list (about 5% of a replica's CPU
   * in a bench:scale profile).
   */
  wakers: Set<() => void>;
  last: number;
  backedOffAt: number | undefined;
  pausedUntil: number;
  pulls: PullBudget | undefined;
  /**
   * The first pull to a host whose quota is not known: the others wait for its answer (which
   * may bring the quota), so that a cold start cannot spend a quota before it is seen.
   */
  firstPull: { done: Promise<void>; settle: () => void; settled: boolean } | undefined;
  /** Requests of `waitToSend` not yet released (their connections are busy). */
  inFlight: number;
  /** Requests let through, and the milliseconds they waited for the budget in all. */
  requests: number;
  waitedMs: number;
  /** Requests asked for per second over the last minute (a ring of one-second counts). */
  demand: number[];
  demandSecond: number;
  /** When the bucket was made: demand is averaged over its life until the window is full. */
  since: number;
  /**
   * A request slept for the budget (not for a connection) since `wants()` last looked: the
   * census's look at whether the host is limited covers the whole heartbeat, not its instant.
   */
  starvedSinceLook: boolean;
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
  /** How long a pull asked for now would wait for the pull quota (milliseconds). */
  pullDelayMs: number;
  /** Milliseconds all requests have waited for the budget so far. */
  waitedMs: number;
  /** Requests let through so far. */
  requests: number;
  /** The budget cannot keep up: requests queue for over a second, or pulls wait for quota. */
  saturated: boolean;
  /** The host has reported a pull quota (Docker Hub's `ratelimit-*` headers). */
  pullQuota: boolean;
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
/**
 * The longest one sleep of a waiting request: a waiter also wakes when the rate or share
 * changes, this only bounds a wait at share 0 should a wake-up be missed.
 */
const MAX_NAP_MS = 10_000;
/** A queue this long (or a pull waiting for quota) means the budget cannot keep up. */
export const SATURATED_QUEUE_MS = 1000;
/** The longest a pull waits for quota; longer is a `TooManyRequestsError` with the wait. */
export const MAX_PULL_WAIT_MS = 60_000;
const DEMAND_SECONDS = 60;
/** The shortest span demand is averaged over (a host's first seconds are bursts). */
const MIN_DEMAND_SECONDS = 5;
/** `wants` looks at the requests asked for over this many seconds (the current one included). */
const WANT_SECONDS = 5;
/**
 * A host budget (configured or default) is kept with this much to spare: the registry counts
 * requests as they arrive, and network jitter can move a request sent just before a window
 * into it. 1% of a 10 s window is 100 ms of jitter. The global rate is Flux's plain rate.
 */
export const BUDGET_MARGIN = 0.01;

/** The top rate of a host's bucket (of the whole budget, before this process's share). */
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
  readonly maxInFlight: number;
  readonly budgets: RequestBudgets;
  readonly #clock: Clock;
  readonly #hosts = new Map<string, HostBucket>();
  #share: number;
  /** Per-host shares that replace `#share` for their hosts (`setHostShares`). */
  #hostShares: ReadonlyMap<string, number> = new Map();

  constructor(opts: RateLimitersOptions = {}) {
    this.rps = positive(opts.rps, 200, "rps");
    this.burst = Math.max(1, Math.floor(positive(opts.burst, 125, "burst")));
    this.minRps = Math.min(positive(opts.minRps, 0.1, "minRps"), this.rps);
    this.recoverCooldownMs = opts.recoverCooldownMs ?? 20 * 60 * 1000;
    this.maxInFlight = Math.max(
      1,
      Math.floor(positive(opts.maxInFlight, CONNECTIONS_PER_HOST, "maxInFlight")),
    );
    this.#clock = opts.clock ?? systemClock;
    this.#share = checkShare(opts.share ?? 1);
    this.budgets = new RequestBudgets({
      global: { rps: this.rps, burst: this.burst },
      configured: opts.budgets,
      defaults: opts.defaultBudgets,
    });
  }

  #bucket(host: string): HostBucket {
    const key = host.toLowerCase();
    let b = this.#hosts.get(key);
    if (!b) {
      const budget = this.budgets.for(key);
      b = {
        host: key,
        budget,
        rate: topRate(budget),
        tokens: budget.burst * this.#shareFor(key),
        queue: [],
        wakers: new Set(),
        last: this.#clock.now(),
        backedOffAt: undefined,
        pausedUntil: 0,
        pulls: undefined,
        firstPull: undefined,
        inFlight: 0,
        requests: 0,
        waitedMs: 0,
        demand: new Array<number>(DEMAND_SECONDS).fill(0),
        demandSecond: Math.floor(this.#clock.now() / 1000),
        starvedSinceLook: false,
        since: this.#clock.now(),
      };
      this.#hosts.set(key, b);
    }
    return b;
  }

  #minRate(b: HostBucket): number {
    return Math.min(this.minRps, topRate(b.budget));
  }

  /** This process's share of `host`'s budget (lower case): its own, else the common one. */
  #shareFor(host: string): number {
    return this.#hostShares.get(host) ?? this.#share;
  }

  /** Requests per second this process sends the host now. */
  #rateOf(b: HostBucket): number {
    return b.rate * this.#shareFor(b.host);
  }

  /** The bucket's size for this process: its share of the burst. */
  #burstOf(b: HostBucket): number {
    return b.budget.burst * this.#shareFor(b.host);
  }

  /**
   * The most spare tokens the bucket holds: its burst, but at least one while it has a
   * share, or a small share of a small burst (1 of 3 replicas, burst 2) would never hold the
   * whole token a request takes.
   */
  #capOf(b: HostBucket): number {
    const burst = this.#burstOf(b);
    return burst > 0 ? Math.max(1, burst) : 0;
  }

  /** Refills the bucket up to now at the rate that applied until now. */
  #advance(b: HostBucket, now: number): void {
    if (now > b.last) {
      b.tokens = Math.min(this.#capOf(b), b.tokens + ((now - b.last) / 1000) * this.#rateOf(b));
      b.last = now;
    }
  }

  /** The rate or share changed: waiters work out their turn again. */
  #wake(b: HostBucket): void {
    for (const wake of b.wakers) wake();
  }

  /**
   * This process's share of every host's budget, 0 to 1: what the replicas sharing the
   * budgets agreed on (`1 / replicas` when they all run). Rates and bursts are scaled by it
   * from now on, requests already waiting included (a smaller share takes spare tokens
   * away); at 0 requests wait until a share is given. The pull budget's headroom is shared
   * the same way.
   */
  setShare(share: number): void {
    const next = checkShare(share);
    if (next === this.#share) return;
    this.#reshare(() => {
      this.#share = next;
    });
  }

  /**
   * This process's shares of some hosts' budgets, replacing the common share (`setShare`)
   * for those hosts; hosts not listed go back to the common share. Replicas sharing the
   * budgets give more of a host to the replica whose work waits for it (see the census).
   * Keys are `host[:port]` as requests name them, any case.
   */
  setHostShares(shares: ReadonlyMap<string, number>): void {
    const next = new Map<string, number>();
    for (const [host, share] of shares) next.set(host.toLowerCase(), checkShare(share));
    this.#reshare(() => {
      this.#hostShares = next;
    });
  }

  /** Applies a change of shares: tokens up to now are earned at the old ones. */
  #reshare(change: () => void): void {
    const now = this.#clock.now();
    const before = new Map<HostBucket, number>();
    for (const b of this.#hosts.values()) {
      this.#advance(b, now);
      before.set(b, this.#shareFor(b.host));
    }
    change();
    for (const b of this.#hosts.values()) {
      const share = this.#shareFor(b.host);
      if (share === before.get(b)) continue;
      b.tokens = Math.min(this.#capOf(b), b.tokens);
      b.pulls?.setShare(share);
      this.#wake(b);
    }
  }

  /** This process's common share of the budgets (`setShare`). */
  get share(): number {
    return this.#share;
  }

  /** This process's share of `host`'s budget: its own (`setHostShares`), else the common one. */
  shareOf(host: string): number {
    return this.#shareFor(host.toLowerCase());
  }

  /**
   * What this process asks of each host it has sent requests to, over the last
   * `WANT_SECONDS`: the census shares budgets by it. A call is a look: whether a request
   * waited for the budget is reset by it (one caller, the census's heartbeat).
   */
  wants(): Map<string, HostWant> {
    const now = this.#clock.now();
    const out = new Map<string, HostWant>();
    for (const b of this.#hosts.values()) {
      this.#advance(b, now);
      this.#roll(b, now);
      const second = Math.floor(now / 1000);
      let asked = 0;
      for (let i = 0; i < WANT_SECONDS; i++) {
        asked += b.demand[(second - i + DEMAND_SECONDS) % DEMAND_SECONDS] ?? 0;
      }
      const top = topRate(b.budget);
      const askedShare = top > 0 ? Math.min(1, asked / WANT_SECONDS / top) : 0;
      // Requests queued only for a connection would not go faster with more budget.
      const queued = b.queue.length > 0 && (b.tokens < 1 || this.#freeConnections(b) > 0);
      // A look at this instant alone flipped a filling replica's flag every second or two
      // at 2,000,000 tags (its queue empties for a moment between pages), so its ask flipped
      // between the whole host and its demand, and the replicas' shares, which rise only a
      // heartbeat after another's fall, summed to 0.86-0.92 of each host. A request that
      // waited for the budget since the last look holds the flag one look longer, no more:
      // a replica done with a host lets it go at its next heartbeat.
      const limited = queued || b.pausedUntil > now || b.starvedSinceLook;
      b.starvedSinceLook = false;
      out.set(b.host, { share: askedShare, limited });
    }
    return out;
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
   * caller aborts. With `priority` the request goes ahead of every waiting request without it.
   */
  async wait(host: string, opts: RateLimitWaitOptions = {}): Promise<void> {
    await this.#take(this.#bucket(host), opts, false);
  }

  /**
   * Resolves when one request can go to the host at once: a connection to it is free (at
   * most `maxInFlight` of these requests are in flight per host) and the budget has a turn
   * for it, as `wait`. Resolves to the release of its connection: call it once the request
   * no longer holds it (the rate-limit layer: when the answer's headers come, or the request
   * failed; more calls do nothing).
   *
   * The turn is taken only when the request can be written: a request granted its turn and
   * then queued in the connection pool (all connections busy with answers a loaded event
   * loop has not read yet) would go out later, together with others, and the registry would
   * count more in a window than the budget lets through.
   */
  async waitToSend(host: string, opts: RateLimitWaitOptions = {}): Promise<() => void> {
    const b = this.#bucket(host);
    await this.#take(b, opts, true);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      b.inFlight--;
      this.#wakeForConnection(b);
    };
  }

  /** Takes a turn of `b`'s budget, and with `slot` one of its connections too. */
  async #take(b: HostBucket, opts: RateLimitWaitOptions, slot: boolean): Promise<void> {
    const { signal, priority } = opts;
    if (signal?.aborted) throw signal.reason;
    const now = this.#clock.now();
    this.#advance(b, now);
    this.#ask(b, now);
    if (
      b.queue.length === 0 &&
      b.tokens >= 1 &&
      b.pausedUntil <= now &&
      (!slot || b.inFlight < this.maxInFlight)
    ) {
      this.#grant(b, slot);
      return;
    }
    // Ended early by a wake-up, by the caller's abort, or by a raise of a request still in
    // the regular lane.
    const nap = new Nap(this.#clock);
    const interrupt = nap.wake;
    const me: Waiter = { priority: isPriority(priority), wake: interrupt };
    enqueue(b.queue, me);
    const raise = !me.priority && typeof priority === "object" ? priority : undefined;
    b.wakers.add(interrupt);
    const unfollowSignal = signal && followAbort(signal, interrupt);
    const unfollowRaise = raise && followAbort(raise, interrupt);
    try {
      for (let i = 0; ; i++) {
        if (!me.priority && isPriority(priority)) {
          // Raised while waiting: queued again in the priority lane, as if it came so.
          b.queue.splice(b.queue.indexOf(me), 1);
          me.priority = true;
          enqueue(b.queue, me);
        }
        const t = this.#clock.now();
        this.#advance(b, t);
        const position = b.queue.indexOf(me);
        // Waiting for a connection: a release wakes the waiter whose turn it brings.
        const forConnection = slot && position >= this.#freeConnections(b);
        const delay = forConnection
          ? Number.POSITIVE_INFINITY
          : Math.max(this.#turnDelay(b, position), b.pausedUntil - t);
        if (delay <= 0) break;
        if (!forConnection) b.starvedSinceLook = true;
        if (i >= MAX_PAUSE_LOOPS) {
          throw new TooManyRequestsError({
            host: b.host,
            retryAfterMs: Math.ceil(Math.min(delay, MAX_NAP_MS)),
            message: `request budget: still no turn after ${MAX_PAUSE_LOOPS} waits (share ${this.#shareFor(b.host)})`,
          });
        }
        // A change of rate or share, or a waiter ahead giving up, wakes the waiter early to
        // work out its turn again. Priority requests queued ahead meanwhile only make it
        // wake too early, and sleep again.
        await nap.sleep(Math.ceil(Math.min(delay, MAX_NAP_MS)));
        if (signal?.aborted) throw signal.reason;
      }
    } catch (err) {
      b.queue.splice(b.queue.indexOf(me), 1);
      // Those behind it are a turn nearer.
      this.#wake(b);
      throw err;
    } finally {
      b.wakers.delete(interrupt);
      unfollowSignal?.();
      unfollowRaise?.();
    }
    b.queue.splice(b.queue.indexOf(me), 1);
    this.#grant(b, slot);
    b.waitedMs += Math.max(0, this.#clock.now() - now);
    // Gone without a connection: those behind it are a place nearer to one.
    if (!slot) this.#wakeForConnection(b);
  }

  /** Connections to the host no request holds: the waiters at these first places may go. */
  #freeConnections(b: HostBucket): number {
    return this.maxInFlight - b.inFlight;
  }

  /** Wakes the one waiter whose place a free connection now reaches (those ahead had theirs). */
  #wakeForConnection(b: HostBucket): void {
    b.queue[this.#freeConnections(b) - 1]?.wake();
  }

  #grant(b: HostBucket, slot: boolean): void {
    b.tokens -= 1;
    b.requests++;
    if (slot) b.inFlight++;
  }

  /** Milliseconds until the waiter at `position` of the queue may go, at the rate of now. */
  #turnDelay(b: HostBucket, position: number): number {
    const short = position + 1 - b.tokens;
    if (short <= 0) return 0;
    const rate = this.#rateOf(b);
    return rate > 0 ? (short / rate) * 1000 : Number.POSITIVE_INFINITY;
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
      if (this.#shareFor(b.host) <= 0) {
        // No share of the budgets for now (a replica joining, or one whose census heartbeat
        // is late): the quota is not spent, so the pull waits for a share as a request does.
        // Rejected as spent, each such second abandoned the scans of the host's repositories
        // until their next interval (bench:scale at 2,000,000 tags: the fill's tail).
        await this.#napUntilWoken(b, MAX_NAP_MS, signal);
        b.waitedMs += Math.max(0, this.#clock.now() - now);
        continue;
      }
      const { delayMs } = pulls.delay(now);
      if (delayMs <= 0) {
        pulls.start(now, this.#rateOf(b));
        return true;
      }
      if (delayMs > MAX_PULL_WAIT_MS) throw this.#pullBudgetSpent(host, pulls, now, delayMs);
      await this.#clock.sleep(Math.ceil(delayMs), signal);
      b.waitedMs += Math.max(0, this.#clock.now() - now);
    }
    const pulls = b.pulls as PullBudget;
    const now = this.#clock.now();
    if (this.#shareFor(b.host) <= 0) {
      // Not the quota: this replica never got a share back (the census), so say that.
      throw new TooManyRequestsError({
        host: b.host,
        retryAfterMs: MAX_NAP_MS,
        message: `pull budget: still no share of the host's budgets after ${MAX_PAUSE_LOOPS} waits (the quota is not spent: ${pulls.state(now).remaining} of ${pulls.limit} pulls left)`,
      });
    }
    throw this.#pullBudgetSpent(host, pulls, now, pulls.delay(now).delayMs);
  }

  /** Sleeps up to `ms`, or until the host's rate or share changes; rejects on `signal`. */
  async #napUntilWoken(b: HostBucket, ms: number, signal: AbortSignal | undefined): Promise<void> {
    const nap = new Nap(this.#clock);
    const wake = nap.wake;
    b.wakers.add(wake);
    const unfollow = signal && followAbort(signal, wake);
    try {
      await nap.sleep(ms);
      if (signal?.aborted) throw signal.reason;
    } finally {
      b.wakers.delete(wake);
      unfollow?.();
    }
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
    this.#wake(b);
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
    this.#wake(b);
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
      b.pulls.setShare(this.#shareFor(b.host));
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
        rate: topRate(budget) * this.#shareFor(host.toLowerCase()),
        demandRps: 0,
        utilisation: 0,
        queueDelayMs: 0,
        pullDelayMs: 0,
        waitedMs: 0,
        requests: 0,
        saturated: false,
        pullQuota: false,
      };
    }
    const now = this.#clock.now();
    this.#advance(b, now);
    this.#roll(b, now);
    // Over the host's life when shorter than the window: a host first asked 8 s ago at its
    // budget's rate is at 1, not at 8/60.
    const demandSeconds = Math.min(
      DEMAND_SECONDS,
      Math.max(MIN_DEMAND_SECONDS, (now - b.since) / 1000),
    );
    const demandRps = b.demand.reduce((s, n) => s + n, 0) / demandSeconds;
    const rate = this.#rateOf(b);
    // At share 0 (a replica waiting for the others to make room) a queue has no end yet.
    const queueDelayMs = Math.max(
      b.queue.length > 0 ? this.#turnDelay(b, b.queue.length - 1) : 0,
      b.pausedUntil - now,
      0,
    );
    const pullDelay = b.pulls?.delay(now).delayMs ?? 0;
    return {
      rate,
      demandRps,
      utilisation: demandRps > 0 ? demandRps / rate : 0,
      queueDelayMs,
      pullDelayMs: pullDelay,
      waitedMs: b.waitedMs,
      requests: b.requests,
      saturated: queueDelayMs >= SATURATED_QUEUE_MS || pullDelay >= SATURATED_QUEUE_MS,
      pullQuota: b.pulls !== undefined,
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
      const share = this.#shareFor(host.toLowerCase());
      return {
        budget,
        rate: topRate(budget),
        effectiveRate: topRate(budget) * share,
        share,
        effectiveBudget: { rps: topRate(budget) * share, burst: budget.burst * share },
        pulls: undefined,
        backedOffAt: undefined,
        pausedUntil: 0,
        inFlight: 0,
      };
    }
    return {
      budget: b.budget,
      rate: b.rate,
      effectiveRate: this.#rateOf(b),
      share: this.#shareFor(b.host),
      effectiveBudget: { rps: topRate(b.budget) * this.#shareFor(b.host), burst: this.#burstOf(b) },
      pulls: b.pulls?.state(this.#clock.now()),
      backedOffAt: b.backedOffAt,
      pausedUntil: b.pausedUntil,
      inFlight: b.inFlight,
    };
  }

  /** The host's adaptive rate in requests per second. */
  rate(host: string): number {
    return this.state(host).rate;
  }
}

function checkShare(share: number): number {
  if (!Number.isFinite(share) || share < 0 || share > 1) {
    throw new InvalidRateLimitOptionError(
      `RateLimiters: share must be a number from 0 to 1, got ${share}`,
    );
  }
  return share;
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
