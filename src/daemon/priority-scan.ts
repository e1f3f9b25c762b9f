/**
 * Runs one coalesced refresh on the warmer: asks for a priority scan of the repository and
 * resolves when that scan has ended (or after a bound, so that a scan that never comes,
 * e.g. of a repository dropped from the watch list meanwhile, cannot block its refreshes).
 */
import type { Warmer } from "../cache/warmer.js";
import type { RefreshRunner } from "./refresh-coalescer.js";

/** A runner for `RefreshCoalescer` that scans through `warmer`'s priority lane. */
export function priorityScanRunner(
  warmer: Warmer,
  boundMs = 10 * 60_000,
  /**
   * After a scan skipped because another replica held the lease: wait `delayMs`, then ask
   * again; after `steadyAttempts` such tries the wait grows to `maxDelayMs`, until
   * `attempts` or the bound. Most holders end within seconds, and a second apart the
   * refresh follows at once; but one may be in a scan of a repository of 20,000 tags,
   * minutes at a registry's budget: 30 tries a second apart then gave up first, and most
   * webhooks of a bench:scale run at 2,000,000 tags went unseen.
   */
  leaseRetry: {
    delayMs: number;
    steadyAttempts?: number;
    maxDelayMs?: number;
    attempts?: number;
  } = { delayMs: 1_000, steadyAttempts: 30, maxDelayMs: 5_000 },
): RefreshRunner {
  // Named tags (webhooks) make a scan that lists the repository once and checks only those
  // tags and new ones (pushed tags alone: no listing, where the scan can); without tags
  // every cached tag is checked with HEAD.
  return (repository, tags, listing) =>
    new Promise<void>((resolve) => {
      // A scan already running was started before this request and is not the one asked
      // for: the priority scan is the next one to end (the backlog runs it right after).
      let endsToSee = warmer.repositoryStatus(repository)?.scanning ? 2 : 1;
      let attemptsLeft = leaseRetry.attempts ?? Number.POSITIVE_INFINITY;
      let steadyLeft = leaseRetry.steadyAttempts ?? 0;
      let delayMs = leaseRetry.delayMs;
      const maxDelayMs = Math.max(delayMs, leaseRetry.maxDelayMs ?? delayMs);
      let retry: NodeJS.Timeout | undefined;
      const timer = setTimeout(done, boundMs);
      timer.unref();
      const ask = () =>
        warmer.prioritize(repository, tags === undefined ? {} : { onlyTags: tags, listing });
      const unsubscribe = warmer.onScan((result) => {
        if (result.repository !== repository || --endsToSee > 0) return;
        // Another replica is scanning it; its scan may have listed the tags before the push
        // this refresh is for. The refresh is still owed: once that scan is over.
        if (result.outcome === "skipped-lease" && attemptsLeft-- > 0) {
          endsToSee = 1;
          // Its holder gives the lease up once its scan has run a while (scan-yield.ts);
          // asked at each retry, since an ask counts only for scans begun before it.
          if (tags !== undefined) void warmer.askToYield(repository);
          retry = setTimeout(ask, delayMs);
          retry.unref();
          if (steadyLeft-- <= 0) delayMs = Math.min(maxDelayMs, delayMs * 1.5);
          return;
        }
        done();
      });
      function done(): void {
        clearTimeout(timer);
        clearTimeout(retry);
        unsubscribe();
        resolve();
      }
      ask();
    });
}
