/**
 * A brake on the warmer's regular work while the event loop is busy (issue 13, acceptance
 * 6). One `regscan serve` process answers the API and runs the warmer on one event loop:
 * during a fill the warmer's scans keep it busy, and a read that arrives behind them waits
 * for the loop (bench:scale at 1,000 repositories / 100,000 tags: reads p99 114 ms, the
 * loop's delay p99 about 120 ms). The brake measures the loop's utilization (the share of
 * time it ran callbacks rather than waited for I/O, `performance.eventLoopUtilization`)
 * over short windows; above a threshold the warmer holds back the start of regular scans,
 * so that the loop's time goes to the reads and the scans already in flight.
 *
 * A hold is bounded: the brake says "hold" for at most `maxHoldMs` in a row, then lets
 * regular work through for one turn whatever the loop says, so that a loop that stays busy
 * (a CPU-bound replica) delays each regular start by at most that bound and the fill goes
 * on at its budget. Priority work (webhooks, refreshes, a scan raised to priority) is never
 * held, nor are the start and the listing of a repository late against its bound (they go
 * ahead at the rate limiter too). Reads never wait on the brake: it only decides when the
 * warmer starts work. The daemon also holds the regular clients' registry calls with it
 * (`brakeClients` in src/daemon/client-factory.ts): holding scan starts alone barely changes
 * what a fill asks of the loop, since its scans run for seconds each.
 */
import { type EventLoopUtilization, performance } from "node:perf_hooks";

/**
 * Default share of a window the loop may be busy before regular work waits. bench:scale's
 * first 25 s at 1,000 repositories / 100,000 tags (one replica, 50 readers, quiet machine):
 * reads p99 71-74 ms without a brake, 50-81 ms at 0.9 with holds of 100 ms, 45-53 ms at
 * 0.85 with holds of 250 ms.
 */
export const DEFAULT_BRAKE_THRESHOLD = 0.85;
/** Default length of the windows the loop's utilization is measured over, ms. */
export const DEFAULT_BRAKE_WINDOW_MS = 50;
/**
 * Default longest hold in a row, ms: a quarter of a second, well within the second of
 * budget a host's rate limiter keeps as burst by default (its tokens saved meanwhile), so
 * that a hold delays the fill's requests rather than losing them.
 */
export const DEFAULT_BRAKE_MAX_HOLD_MS = 250;

/** How a {@link LoopBrake} is set up. */
export interface LoopBrakeOptions {
  /** Busy share of a window (0..1) at or above which regular work waits (default 0.85). */
  threshold?: number | undefined;
  /** Length of a measuring window, ms (default 50). */
  windowMs?: number | undefined;
  /** Longest a hold lasts before regular work goes through anyway, ms (default 250). */
  maxHoldMs?: number | undefined;
  /**
   * The loop's utilization since the previous call, 0..1 (tests script it). Default: from
   * `performance.eventLoopUtilization()` between two calls.
   */
  utilization?: (() => number) | undefined;
  /** The clock, ms (default `performance.now`). */
  now?: (() => number) | undefined;
}

/** What the brake says at one look: hold or not, and when to look again. */
export interface BrakeState {
  /** Regular work should wait. */
  hold: boolean;
  /** Milliseconds until the answer may change (the window's end or the hold's bound). */
  recheckMs: number;
}

/** See the module comment. */
export class LoopBrake {
  readonly threshold: number;
  readonly windowMs: number;
  readonly maxHoldMs: number;
  readonly #utilization: () => number;
  readonly #now: () => number;
  /** The last complete window's utilization (0 until one has been measured). */
  #busy = 0;
  /** When the current window began. */
  #windowStart: number;
  /** When the current hold began; undefined when not holding. */
  #holdStart: number | undefined;
  /** Holds begun, holds that ran to their bound, and time held (for tests and diagnosis). */
  #holds = 0;
  #expired = 0;
  #heldMs = 0;
  /** Work waiting for the hold to end (see `pass`), and the timer that looks again for it. */
  readonly #waiters = new Set<() => void>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(opts: LoopBrakeOptions = {}) {
    this.threshold = Math.min(1, Math.max(0, opts.threshold ?? DEFAULT_BRAKE_THRESHOLD));
    this.windowMs = Math.max(1, opts.windowMs ?? DEFAULT_BRAKE_WINDOW_MS);
    this.maxHoldMs = Math.max(0, opts.maxHoldMs ?? DEFAULT_BRAKE_MAX_HOLD_MS);
    this.#now = opts.now ?? (() => performance.now());
    this.#utilization = opts.utilization ?? eluSince();
    // The first window runs from here: the first look after it knows the loop.
    this.#utilization();
    this.#windowStart = this.#now();
  }

  /** The utilization of the last complete window, 0..1. */
  get busy(): number {
    return this.#busy;
  }

  /** How many holds began, how many ran to their bound, and how long they held in all. */
  stats(): { holds: number; expired: number; heldMs: number } {
    return { holds: this.#holds, expired: this.#expired, heldMs: this.#heldMs };
  }

  /**
   * Whether regular work should wait now. A window that ended since the last look is
   * measured first (the windows run from look to look, at least `windowMs` each: a look
   * after a long spell measures that spell); until the first window ends, nothing holds. A
   * hold that reached `maxHoldMs` ends, and the look that ends it says go.
   */
  look(): BrakeState {
    const now = this.#now();
    if (now - this.#windowStart >= this.windowMs) {
      this.#busy = this.#utilization();
      this.#windowStart = now;
    }
    const windowLeft = Math.max(1, this.#windowStart + this.windowMs - now);
    if (this.#busy < this.threshold || this.maxHoldMs === 0) {
      this.#release(now, false);
      return { hold: false, recheckMs: windowLeft };
    }
    if (this.#holdStart === undefined) {
      this.#holdStart = now;
      this.#holds++;
    }
    const holdLeft = this.#holdStart + this.maxHoldMs - now;
    if (holdLeft <= 0) {
      // Bounded: this turn goes ahead; a loop still busy at the next look holds again.
      this.#release(now, true);
      return { hold: false, recheckMs: windowLeft };
    }
    return { hold: true, recheckMs: Math.max(1, Math.min(windowLeft, holdLeft)) };
  }

  /**
   * For work that can wait its turn (a warmer's registry request): undefined when the brake
   * does not hold (go at once, no promise), else a promise that resolves when the hold ends
   * (the loop measured not busy at a window's end, or the hold's bound), or at once when
   * `bypass` aborts (a scan raised to priority) or `signal` does (the caller then sees its
   * own abort). Waiters held together are let go together.
   */
  pass(
    opts: { signal?: AbortSignal | undefined; bypass?: AbortSignal | undefined } = {},
  ): Promise<void> | undefined {
    if (opts.bypass?.aborted || opts.signal?.aborted) return undefined;
    const state = this.look();
    if (!state.hold) return undefined;
    return new Promise<void>((resolve) => {
      const signals = [opts.signal, opts.bypass].filter((s) => s !== undefined);
      const done = () => {
        for (const s of signals) s.removeEventListener("abort", done);
        this.#waiters.delete(done);
        resolve();
      };
      for (const s of signals) s.addEventListener("abort", done, { once: true });
      this.#waiters.add(done);
      this.#arm(state.recheckMs);
    });
  }

  /** Looks again after `ms` while anyone waits, letting them all go once the hold ends. */
  #arm(ms: number): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#waiters.size === 0) return;
      const state = this.look();
      if (state.hold) {
        this.#arm(state.recheckMs);
        return;
      }
      for (const done of [...this.#waiters]) done();
    }, ms);
  }

  #release(now: number, expired: boolean): void {
    if (this.#holdStart === undefined) return;
    this.#heldMs += now - this.#holdStart;
    if (expired) this.#expired++;
    this.#holdStart = undefined;
  }
}

/** The event loop's utilization between successive calls, 0..1. */
function eluSince(): () => number {
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  return () => {
    const current = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(current, last);
    last = current;
    return delta.utilization;
  };
}
