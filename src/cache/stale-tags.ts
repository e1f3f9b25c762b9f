/**
 * Keeps the last good value of tags a scan could not refresh (registry down, 429, 404, a
 * listing that failed): gives their index entries a later deadline (so a later expiry) and
 * the reason they are stale, so that a long outage never deletes what was cached (DESIGN.md
 * section 5). Only the index changes (one bucket rewrite at the scan's end), never an image.
 */
import type { DueTag } from "./due-tags.js";
import type { TagError } from "./records.js";
import { MIN_REFRESH_MS } from "./refresh-policy.js";
import type { ScanIndex } from "./scan-index.js";
import { MIN_EXPIRY_MS } from "./stores/envelope.js";
import type { WarmContext, WarmJob } from "./warm-context.js";
import type { ErrorSummary } from "./warmer-types.js";

/**
 * The deadline a kept tag is written with. A stale tag is due at every scan whatever its
 * deadline says (see `dueTags`); the deadline only sets the store's expiry (twice the time
 * to it, at least an hour), so two intervals leave room for a few late or skipped scans.
 */
function keepWindowMs(job: WarmJob): number {
  return Math.max(2 * job.intervalMs, MIN_REFRESH_MS);
}

/** How long the store keeps a kept tag: twice the window, at least an hour (its expiry rule). */
function keptLifeMs(job: WarmJob): number {
  return Math.max(2 * keepWindowMs(job), MIN_EXPIRY_MS);
}

/**
 * Whether a due tag needs rewriting to outlive the next scans: never when its record could
 * not be read; always the first time it fails (to record why); afterwards once half of its
 * store life is gone, so that a long
 * outage costs a rewrite every few scans (not every scan) and late scans still find it.
 */
export function needsKeeping(due: DueTag, job: WarmJob, now: number): boolean {
  // Unknown: it may hold a good value that a failure record would replace.
  if (due.unread) return false;
  const at = (due.entry?.lastError ?? due.failure)?.at.getTime();
  if (at === undefined || due.deadline === undefined) return true;
  const expiresAt = at + Math.max(2 * (due.deadline - at), MIN_EXPIRY_MS);
  return expiresAt - now < keptLifeMs(job) / 2;
}

/** Where a failed tag is kept, and why. */
export interface KeepTagOptions {
  ctx: WarmContext;
  job: WarmJob;
  /** Written with the index. */
  index: ScanIndex;
  /** Recorded as the tag's last error. */
  error: ErrorSummary;
}

/**
 * Keeps one tag that could not be refreshed: its last good entry with `error` as its last
 * error and a later deadline, or (never fetched) an entry saying only why.
 */
export function keepTag({ ctx, job, index, error }: KeepTagOptions, due: DueTag): void {
  const now = ctx.now();
  const lastError: TagError = { code: error.code, message: error.message, at: new Date(now) };
  const deadline = now + keepWindowMs(job);
  index.set(
    due.tag,
    due.entry
      ? { ...due.entry, lastError, deadline }
      : { checkedAt: 0, intervalMs: 0, deadline, lastError },
  );
}

/**
 * Keeps every tag of `tags` that needs it (see {@link needsKeeping}) after the scan could not
 * reach them; returns how many. Written with the index.
 */
export function keepTags(opts: KeepTagOptions, tags: readonly DueTag[]): number {
  const now = opts.ctx.now();
  let kept = 0;
  for (const due of tags) {
    if (!needsKeeping(due, opts.job, now)) continue;
    keepTag(opts, due);
    kept++;
  }
  return kept;
}
