/**
 * When a registry's request budget cannot cover the intervals configured for its
 * repositories, they are stretched rather than letting requests queue without end: per host,
 * a factor on every repository interval, doubled while the budget is saturated and halved
 * again once demand is well under it, slowly (stretch fast, relax slow: a relax that brings the
 * saturation back would swing the intervals 1x, 2x, 4x and back within a minute). Replicas
 * sharing a store apply the largest factor any of them has for a host (`StretchPeers`), so
 * that a repository's interval is the same whichever replica scans it. Each change is logged
 * and shown as a metric.
 */
import type { Logger } from "pino";
import type { ImageName } from "../image/ref.js";
import type { ClientFactory, HostConditions } from "../registry/client.js";
import { summarizeError } from "./error-summary.js";

/** The most a host's intervals are stretched (16 times the configured ones). */
export const MAX_STRETCH = 16;
/**
 * At least this long between two changes of a host's factor. A further stretch also waits for
 * the last one to show in demand: until the host's repositories have each been scanned once
 * since, about one interval as it was before the change (the scans already due were scheduled
 * at it). Ten seconds alone doubled a saturated host every 10 s, to 16x within 40 s, long
 * before the first doubling could show (bench:scale: a saturation after the kill stretched
 * 20 s intervals to 320 s, and the slow relax kept them there for minutes).
 */
export const STRETCH_CHANGE_GAP_MS = 10_000;
/** The longest a further stretch waits for the last one to show. */
export const MAX_STRETCH_SETTLE_MS = 300_000;
/** Weight of each scan's interval in a host's typical interval (a running mean). */
const TYPICAL_INTERVAL_WEIGHT = 0.1;
/** Requests that waited this long on average for the budget since the last look: saturated. */
const SATURATED_MEAN_WAIT_MS = 1000;
/**
 * A queue or waits count as saturation only while demand over the last minute is at least
 * this share of the budget. A scan's burst (a large repository's due tags asked at once)
 * queues for seconds at any demand: bench:scale's default run stretched hosts to 8x and 16x
 * at 7-14% of their budget, their intervals then 320 s where 20 s were configured and
 * covered. Held to the budget, a saturated host's demand is about its rate (1).
 */
export const STRETCH_UTILISATION = 0.8;
/**
 * Demand under this share of the budget lets a stretched host relax: halving the factor about
 * doubles the polling's demand, which then stays under 70% of the budget (at 0.5 it came
 * back saturated and the factor swung between 1 and 4 in the bench).
 */
export const RELAX_UTILISATION = 0.35;
/**
 * A relax waits this long after the host's last change: the rate limiters' demand is counted
 * over the last minute, and until a minute has passed it still counts requests made at the
 * factor before.
 */
export const RELAX_GAP_MS = 60_000;

interface HostState {
  /** This replica's own factor, from its own budget's saturation. */
  factor: number;
  /** The factor applied (own or a peer's, the larger), as last told to the listener. */
  applied: number;
  changedAt: number | undefined;
  /** How long after the last change a further stretch waits (the change showing in demand). */
  settleMs: number;
  /**
   * A running mean of the unstretched intervals of the host's repositories, one sample per
   * look (so weighted by how often each is scanned, as its demand is); undefined: none told.
   */
  typicalIntervalMs: number | undefined;
  /** The limiter's running totals at the last look. */
  waitedMs: number;
  requests: number;
}

/** Told each host's factor (the one applied, peers' included) when first seen and at each change (the metric). */
export type StretchListener = (host: string, factor: number) => void;

/**
 * What the replicas sharing a store tell each other of their stretches and of the hosts they
 * still fill (the daemon's replica census carries it in its record).
 */
export interface StretchPeers {
  /** This replica's own factor for `host` (lower case), at each change. */
  publish(host: string, factor: number): void;
  /** The largest factor another live replica has for `host` now; 1 when none stretches it. */
  factorOf(host: string): number;
  /** Whether this replica still fills `host` (lower case): told at each change. */
  publishFilling?(host: string, filling: boolean): void;
  /** Whether another live replica still fills `host` now. */
  fillingElsewhere?(host: string): boolean;
}

/** What a {@link BudgetStretch} reads the budgets from and whom it tells. */
export interface BudgetStretchOptions {
  /** The source of each host's budget saturation (`hostConditions`). */
  factory: ClientFactory;
  /** The clock (milliseconds), the warmer's own so that tests can drive it. */
  now: () => number;
  log: Logger;
  onChange: StretchListener;
  /** The other replicas' factors (none: this replica's own alone). */
  peers?: StretchPeers | undefined;
}

/** Interval stretch per registry host, from the factory's budget saturation signal. */
export class BudgetStretch {
  readonly #hosts = new Map<string, HostState>();
  readonly #factory: ClientFactory;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #onChange: StretchListener;
  readonly #peers: StretchPeers | undefined;

  constructor(opts: BudgetStretchOptions) {
    this.#factory = opts.factory;
    this.#now = opts.now;
    this.#log = opts.log;
    this.#onChange = opts.onChange;
    this.#peers = opts.peers;
  }

  /** The factor applied now to intervals of repositories on `name`'s host (peers' included). */
  factor(name: ImageName): number {
    const host = name.apiHost.toLowerCase();
    return this.#applied(host, this.#hosts.get(host)?.factor ?? 1);
  }

  /** `own`, or a peer's factor for `host` when larger. */
  #applied(host: string, own: number): number {
    const peer = this.#peers?.factorOf(host) ?? 1;
    return Number.isFinite(peer) ? Math.max(own, Math.min(MAX_STRETCH, peer)) : own;
  }

  /** Tells the listener when the applied factor changed (a peer's change shows here too). */
  #show(host: string, state: HostState): number {
    const applied = this.#applied(host, state.factor);
    if (applied !== state.applied) {
      state.applied = applied;
      this.#onChange(host, applied);
    }
    return applied;
  }

  /**
   * Looks at the budget of `name`'s host (when a scan starts or ends) and stretches or
   * relaxes its intervals; returns the factor. A factory without the signal never stretches.
   * With `hold` (the host's first fill is still going on) the factor stays as it is: a cold
   * fill spends the whole budget by design, once, and says nothing about whether the budget
   * covers the intervals (bench:scale: a fill of a minute stretched every host 16 times, and
   * the fleet's intervals stayed at 5 minutes long after it); its waits are not counted.
   * `intervalMs` is the repository's own interval before any stretch: it sets how long a
   * stretch takes to show in demand, so how long the next one waits.
   */
  observe(name: ImageName, opts: { hold?: boolean; intervalMs?: number } = {}): number {
    const host = name.apiHost.toLowerCase();
    let conditions: HostConditions | undefined;
    try {
      conditions = this.#factory.hostConditions?.(name);
    } catch (error) {
      this.#log.debug({ host, error: summarizeError(error) }, "could not read the host's budget");
    }
    let state = this.#hosts.get(host);
    if (!conditions) return this.#applied(host, state?.factor ?? 1);
    if (!state) {
      state = {
        factor: 1,
        applied: 1,
        changedAt: undefined,
        settleMs: STRETCH_CHANGE_GAP_MS,
        typicalIntervalMs: undefined,
        waitedMs: 0,
        requests: 0,
      };
      this.#hosts.set(host, state);
      // Shown from the first look, so that "not stretched" is a 1, not a missing series.
      this.#onChange(host, 1);
    }
    const requests = conditions.requests - state.requests;
    const meanWait = requests > 0 ? (conditions.waitedMs - state.waitedMs) / requests : 0;
    state.requests = conditions.requests;
    state.waitedMs = conditions.waitedMs;
    const told = opts.intervalMs;
    if (told !== undefined && Number.isFinite(told) && told > 0) {
      const typical = state.typicalIntervalMs;
      state.typicalIntervalMs =
        typical === undefined ? told : typical + TYPICAL_INTERVAL_WEIGHT * (told - typical);
    }
    if (opts.hold === true) return this.#show(host, state);
    const saturated =
      (conditions.saturated || meanWait >= SATURATED_MEAN_WAIT_MS) &&
      conditions.utilisation >= STRETCH_UTILISATION;
    const now = this.#now();
    const since = state.changedAt === undefined ? Number.POSITIVE_INFINITY : now - state.changedAt;
    let next = state.factor;
    if (saturated && since >= state.settleMs) next = Math.min(MAX_STRETCH, state.factor * 2);
    else if (!saturated && conditions.utilisation < RELAX_UTILISATION && since >= RELAX_GAP_MS) {
      next = Math.max(1, state.factor / 2);
    }
    if (next === state.factor) return this.#show(host, state);
    const fields = {
      host,
      stretch: next,
      utilisation: Math.round(conditions.utilisation * 100) / 100,
      meanWaitMs: Math.round(meanWait),
    };
    if (next > state.factor) {
      this.#log.warn(
        fields,
        "the registry's request budget cannot cover the configured intervals; stretching them",
      );
    } else {
      this.#log.info(
        fields,
        "the registry's request budget keeps up again; intervals less stretched",
      );
    }
    // The scans already due were scheduled at the factor applied until now.
    state.settleMs = Math.max(
      STRETCH_CHANGE_GAP_MS,
      Math.min(MAX_STRETCH_SETTLE_MS, (state.typicalIntervalMs ?? 0) * state.applied),
    );
    state.factor = next;
    state.changedAt = now;
    this.#peers?.publish(host, next);
    return this.#show(host, state);
  }
}
