/**
 * When a registry's request budget cannot cover the intervals configured for its
 * repositories, they are stretched rather than letting requests queue without end: per host,
 * a factor on every repository interval, doubled while the budget is saturated and halved
 * again once demand is well under it. Each change is logged and shown as a metric.
 */
import type { Logger } from "pino";
import type { ImageName } from "../image/ref.js";
import type { ClientFactory, HostConditions } from "../registry/client.js";
import { summarizeError } from "./error-summary.js";

/** The most a host's intervals are stretched (16 times the configured ones). */
export const MAX_STRETCH = 16;
/** At most one change per host this often, so that a change shows in demand before the next. */
export const STRETCH_CHANGE_GAP_MS = 10_000;
/** Requests that waited this long on average for the budget since the last look: saturated. */
const SATURATED_MEAN_WAIT_MS = 1000;
/** Demand under this share of the budget lets a stretched host relax. */
const RELAX_UTILISATION = 0.5;

interface HostState {
  factor: number;
  changedAt: number | undefined;
  /** The limiter's running totals at the last look. */
  waitedMs: number;
  requests: number;
}

/** Told each host's factor when first seen and at each change (the metric). */
export type StretchListener = (host: string, factor: number) => void;

/** What a {@link BudgetStretch} reads the budgets from and whom it tells. */
export interface BudgetStretchOptions {
  /** The source of each host's budget saturation (`hostConditions`). */
  factory: ClientFactory;
  /** The clock (milliseconds), the warmer's own so that tests can drive it. */
  now: () => number;
  log: Logger;
  onChange: StretchListener;
}

/** Interval stretch per registry host, from the factory's budget saturation signal. */
export class BudgetStretch {
  readonly #hosts = new Map<string, HostState>();
  readonly #factory: ClientFactory;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #onChange: StretchListener;

  constructor(opts: BudgetStretchOptions) {
    this.#factory = opts.factory;
    this.#now = opts.now;
    this.#log = opts.log;
    this.#onChange = opts.onChange;
  }

  /** The factor applied now to intervals of repositories on `name`'s host. */
  factor(name: ImageName): number {
    return this.#hosts.get(name.apiHost.toLowerCase())?.factor ?? 1;
  }

  /**
   * Looks at the budget of `name`'s host (when a scan starts or ends) and stretches or
   * relaxes its intervals; returns the factor. A factory without the signal never stretches.
   * With `hold` (the host's first fill is still going on) the factor stays as it is: a cold
   * fill spends the whole budget by design, once, and says nothing about whether the budget
   * covers the intervals (bench:scale: a fill of a minute stretched every host 16 times, and
   * the fleet's intervals stayed at 5 minutes long after it); its waits are not counted.
   */
  observe(name: ImageName, opts: { hold?: boolean } = {}): number {
    const host = name.apiHost.toLowerCase();
    let conditions: HostConditions | undefined;
    try {
      conditions = this.#factory.hostConditions?.(name);
    } catch (error) {
      this.#log.debug({ host, error: summarizeError(error) }, "could not read the host's budget");
    }
    let state = this.#hosts.get(host);
    if (!conditions) return state?.factor ?? 1;
    if (!state) {
      state = { factor: 1, changedAt: undefined, waitedMs: 0, requests: 0 };
      this.#hosts.set(host, state);
      // Shown from the first look, so that "not stretched" is a 1, not a missing series.
      this.#onChange(host, 1);
    }
    const requests = conditions.requests - state.requests;
    const meanWait = requests > 0 ? (conditions.waitedMs - state.waitedMs) / requests : 0;
    state.requests = conditions.requests;
    state.waitedMs = conditions.waitedMs;
    if (opts.hold === true) return state.factor;
    const saturated = conditions.saturated || meanWait >= SATURATED_MEAN_WAIT_MS;
    const now = this.#now();
    if (state.changedAt !== undefined && now - state.changedAt < STRETCH_CHANGE_GAP_MS) {
      return state.factor;
    }
    let next = state.factor;
    if (saturated) next = Math.min(MAX_STRETCH, state.factor * 2);
    else if (conditions.utilisation < RELAX_UTILISATION) next = Math.max(1, state.factor / 2);
    if (next === state.factor) return next;
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
    state.factor = next;
    state.changedAt = now;
    this.#onChange(host, next);
    return next;
  }
}
