/**
 * Keeps the last good value of tags a scan could not refresh (registry down, 429, 404, a
 * listing that failed): rewrites them with a later store expiry and the reason they are
 * stale, so that a long outage never deletes what was cached (DESIGN.md section 5).
 */
import type { Logger } from "pino";
import { forEachBounded } from "./bounded-parallel.js";
import type { DueTag } from "./due-tags.js";
import { MIN_EXPIRY_MS } from "./envelope.js";
import { summarizeError } from "./error-summary.js";
import { encodeTagFailure, encodeTagRecord, type TagError } from "./records.js";
import { MIN_REFRESH_MS } from "./refresh-policy.js";
import type { WarmContext, WarmJob } from "./warm-pass.js";
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
  const at = (due.record?.lastError ?? due.failure)?.at.getTime();
  if (at === undefined || due.deadline === undefined) return true;
  const expiresAt = at + Math.max(2 * (due.deadline.getTime() - at), MIN_EXPIRY_MS);
  return expiresAt - now < keptLifeMs(job) / 2;
}

/**
 * Rewrites one tag that could not be refreshed: its last good record with `error` as its
 * last error, or (never fetched) a failure record saying why. Throws what the store threw.
 */
export async function keepTag(
  ctx: WarmContext,
  job: WarmJob,
  due: DueTag,
  error: ErrorSummary,
): Promise<void> {
  const now = ctx.now();
  const lastError: TagError = { code: error.code, message: error.message, at: new Date(now) };
  const value = due.record
    ? encodeTagRecord({ ...due.record, lastError })
    : encodeTagFailure(lastError);
  await ctx.store.set(ctx.keys.tag(job.name, due.tag), new Date(now + keepWindowMs(job)), value, {
    signal: ctx.writeTimeout.signal(),
  });
}

/**
 * Keeps every tag of `tags` that needs it (see {@link needsKeeping}) after the scan could not
 * reach them, `ctx.storeConcurrency` writes at a time. Never throws: a store that refuses
 * is logged once; there is nothing more to do for these values.
 */
export async function keepTags(
  ctx: WarmContext,
  job: WarmJob,
  tags: readonly DueTag[],
  error: ErrorSummary,
  log: Logger,
): Promise<number> {
  const now = ctx.now();
  let kept = 0;
  let failure: ErrorSummary | undefined;
  await forEachBounded(
    tags.filter((due) => needsKeeping(due, job, now)),
    ctx.storeConcurrency,
    async (due) => {
      try {
        await keepTag(ctx, job, due, error);
        kept++;
      } catch (e) {
        failure ??= summarizeError(e);
      }
    },
  );
  if (failure) log.error({ error: failure }, "could not keep stale tags in the store");
  return kept;
}
