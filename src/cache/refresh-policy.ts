/**
 * How long a cached tag stays fresh before the warmer checks it again (Flux v1's adaptive
 * refresh): a tag that keeps its digest is checked ever less often, one that moves ever
 * more often, within fixed bounds. Pure functions; the numbers are exported.
 */

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/** Interval for a tag seen for the first time: 1 hour. */
export const INITIAL_REFRESH_MS = HOUR_MS;
/** Shortest interval: 5 minutes. */
export const MIN_REFRESH_MS = 5 * MINUTE_MS;
/** Longest interval: 7 days. */
export const MAX_REFRESH_MS = 7 * 24 * HOUR_MS;
/** Interval for an excluded image (no info to keep fresh): 24 hours. */
export const EXCLUDED_REFRESH_MS = 24 * HOUR_MS;
/** Factor applied when the digest is unchanged (and divided by when it moved). */
export const REFRESH_BACKOFF_FACTOR = 2;
/** Default jitter: none, so that intervals are deterministic. */
export const DEFAULT_REFRESH_JITTER = 0;

/** What the last check of a tag found, compared with the one before. */
export interface RefreshCheck {
  /** The interval the tag was last given; absent for a tag never seen before. */
  previousMs?: number | undefined;
  /** Whether the digest moved since the previous check. */
  changed: boolean;
  /** Whether the image is excluded (e.g. no manifest for the wanted platform). */
  excluded: boolean;
}

/** Options for refresh intervals. */
export interface RefreshOptions {
  /**
   * Spread intervals by up to this fraction either way (0.1 is ±10%), so that tags first
   * seen together do not all fall due together; 0 (the default) for none.
   */
  jitter?: number;
  /** Random source in [0, 1), Math.random by default; tests pass their own. */
  random?: () => number;
}

/** Clamps an interval to [MIN_REFRESH_MS, MAX_REFRESH_MS]; NaN counts as the initial one. */
export function clampRefreshInterval(ms: number): number {
  if (Number.isNaN(ms)) return INITIAL_REFRESH_MS;
  return Math.min(MAX_REFRESH_MS, Math.max(MIN_REFRESH_MS, ms));
}

/**
 * The next refresh interval of a tag, in milliseconds: 24 h for an excluded image; 1 h the
 * first time; twice the previous interval when the digest is unchanged, half when it moved;
 * always within [5 min, 7 days], jitter included.
 */
export function nextRefreshInterval(check: RefreshCheck, options: RefreshOptions = {}): number {
  let ms: number;
  if (check.excluded) ms = EXCLUDED_REFRESH_MS;
  else if (check.previousMs === undefined) ms = INITIAL_REFRESH_MS;
  else if (check.changed) ms = check.previousMs / REFRESH_BACKOFF_FACTOR;
  else ms = check.previousMs * REFRESH_BACKOFF_FACTOR;
  return applyRefreshJitter(clampRefreshInterval(ms), options);
}

/** Spreads an interval by the jitter option, staying within the bounds. */
export function applyRefreshJitter(ms: number, options: RefreshOptions = {}): number {
  const jitter = options.jitter ?? DEFAULT_REFRESH_JITTER;
  if (!(jitter > 0)) return ms;
  const spread = Math.min(jitter, 1);
  const r = (options.random ?? Math.random)();
  return clampRefreshInterval(Math.round(ms * (1 + spread * (2 * r - 1))));
}

/** When a tag checked at `checkedAt` with the given interval falls due again. */
export function refreshDeadline(checkedAt: Date, intervalMs: number): Date {
  return new Date(checkedAt.getTime() + intervalMs);
}
