/**
 * Docker Hub's pull budget for one host, read at run time from its `ratelimit-limit` /
 * `ratelimit-remaining` headers (`100;w=21600`): regscan keeps at least a fifth of the limit
 * unspent (it uses under 80%), slowing manifest GETs as what remains nears that floor.
 */

/** Share of the limit never spent. */
export const PULL_FLOOR_SHARE = 0.2;
/** Above the floor, pulls slow down over this share of the limit (40% remaining -> 20%). */
export const PULL_SLOW_SHARE = 0.2;
// Our own pulls remembered for refill prediction; Docker Hub's limits are 100-200 pulls.
const MAX_REMEMBERED = 10_000;

/** What the budget knows, as metrics and `state()` report it. */
export interface PullState {
  limit: number;
  windowSeconds: number;
  /** The pulls the registry has left by regscan's conservative reckoning. */
  remaining: number;
  /** Never spent: `ceil(limit * 0.2)`. */
  floor: number;
  inFlight: number;
}

/** A pull may start after `delayMs`; `known` is false when no refill of ours is due. */
export interface PullDelay {
  delayMs: number;
  known: boolean;
}

/**
 * The reckoning: the `remaining` the registry last reported, minus pulls in flight then
 * (they may not have been counted yet), minus pulls started since, plus those of our own
 * pulls that have left the window since (a rolling window). Every response with the headers
 * (a HEAD's too) replaces it, so another client's pulls are learnt at the next answer.
 * Replicas sharing the quota each spend only their share of the headroom above the floor
 * that the last answer showed, so that together they never go under the floor between
 * answers (each answer shows the others' pulls, and the share is taken of what is left).
 */
export class PullBudget {
  limit: number;
  windowMs: number;
  #base: number;
  #since = 0;
  #inFlight = 0;
  #times: number[] = [];
  #nextAt = 0;
  #share = 1;

  constructor(remaining: number, limit: number, windowSeconds: number) {
    this.limit = limit;
    this.windowMs = windowSeconds * 1000;
    this.#base = remaining;
  }

  get floor(): number {
    return Math.ceil(this.limit * PULL_FLOOR_SHARE);
  }

  /** The registry said `remaining` (after the answer's own pull, when it was one). */
  observe(remaining: number, limit: number, windowSeconds: number | undefined, now: number): void {
    this.limit = limit;
    if (windowSeconds !== undefined && windowSeconds > 0) this.windowMs = windowSeconds * 1000;
    this.#base = remaining - this.#inFlight;
    this.#since = 0;
    // Pulls that left the window before this answer are in what it reported.
    const edge = now - this.windowMs;
    while (this.#times.length > 0 && (this.#times[0] as number) <= edge) this.#times.shift();
  }

  /** This process's share of the quota's headroom, 0 to 1 (the replicas' agreed share). */
  setShare(share: number): void {
    this.#share = share;
  }

  /** Our own pulls that have left the window. */
  #aged(now: number): number {
    const edge = now - this.windowMs;
    let aged = 0;
    for (const t of this.#times) {
      if (t > edge) break;
      aged++;
    }
    return aged;
  }

  remaining(now: number): number {
    return Math.min(this.limit, this.#base - this.#since + this.#aged(now));
  }

  /**
   * What this process may still pull above the floor: its share of the headroom the last
   * answer showed, less its pulls since, plus its pulls that have left the window (at share
   * 1, what remains less the floor).
   */
  #headroom(now: number): number {
    const reported = this.#base - this.floor;
    const mine = reported > 0 ? reported * this.#share : reported;
    return Math.min(this.remaining(now) - this.floor, mine - this.#since + this.#aged(now));
  }

  /** How long the next pull waits: for the pacing, or for a refill when at the floor. */
  delay(now: number): PullDelay {
    const headroom = this.#headroom(now);
    if (headroom >= 1) return { delayMs: Math.max(0, this.#nextAt - now), known: true };
    // At the floor: wait until enough of our own pulls leave the window.
    const need = Math.ceil(1 - headroom);
    const edge = now - this.windowMs;
    const refill = this.#times.filter((t) => t > edge)[need - 1];
    if (refill !== undefined) return { delayMs: refill + this.windowMs - now + 1, known: true };
    // Somebody else spent it (or the window is fixed): about one pull's refill per step.
    return { delayMs: (this.windowMs / Math.max(1, this.limit)) * need, known: false };
  }

  /** A pull starts now. */
  start(now: number, hostRate: number): void {
    this.#since++;
    this.#inFlight++;
    this.#times.push(now);
    if (this.#times.length > MAX_REMEMBERED) this.#times.shift();
    this.#nextAt = Math.max(this.#nextAt, now) + this.#spacing(now, hostRate);
  }

  /** A pull's answer came (or it failed). */
  finish(): void {
    if (this.#inFlight > 0) this.#inFlight--;
  }

  /**
   * Milliseconds between pulls: none while more than the slow zone is left above the floor;
   * then the host's rate scaled down with what is left, never under the rate the window
   * refills at (what is spendable over one window).
   */
  #spacing(now: number, hostRate: number): number {
    const zone = Math.max(1, Math.ceil(this.limit * PULL_SLOW_SHARE) * this.#share);
    const headroom = this.#headroom(now);
    if (headroom >= zone) return 0;
    const sustainable = ((this.limit - this.floor) / (this.windowMs / 1000)) * this.#share;
    const rate = Math.max(sustainable, hostRate * (Math.max(0, headroom) / zone));
    return rate > 0 ? 1000 / rate : this.windowMs;
  }

  state(now: number): PullState {
    return {
      limit: this.limit,
      windowSeconds: this.windowMs / 1000,
      remaining: this.remaining(now),
      floor: this.floor,
      inFlight: this.#inFlight,
    };
  }
}
