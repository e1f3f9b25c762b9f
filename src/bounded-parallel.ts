/**
 * Runs an async function over items with at most `limit` in flight: the warmer's `burst`
 * per repository, its bounded store reads, and the stores' batched reads. Neutral (it
 * imports nothing), so that the stores need not import the cache.
 */

/** How many calls `forEachBounded` runs at once, and when it stops starting new ones. */
export interface BoundedOptions {
  /** Most calls in flight (at least one). */
  limit: number;
  /**
   * Most calls in flight now (at least one; at most `limit`), asked before each call
   * starts: a lower figure holds new calls back until enough running ones end, the waiting
   * ones costing a worker each rather than a call's whole chain of work.
   */
  limitNow?: (() => number) | undefined;
  /** Once aborted, no new call starts (those running finish). */
  signal?: AbortSignal | undefined;
}

/**
 * Calls `fn` for every item, at most `limit` at a time, and resolves when all have settled.
 * `fn` must not throw (it handles its own errors); if it does, the first error is rethrown
 * after every started call has settled. Stops starting new calls once `signal` aborts.
 */
export async function forEachBounded<T>(
  items: Iterable<T>,
  opts: BoundedOptions,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const { limit, limitNow, signal } = opts;
  const iterator = items[Symbol.iterator]();
  let failure: { error: unknown } | undefined;
  let running = 0;
  /** Workers held back by `limitNow`, first in first out; each call's end wakes one. */
  const held: (() => void)[] = [];
  const wakeOne = () => held.shift()?.();
  const worker = async () => {
    for (;;) {
      // Held only while a call runs: its end wakes a worker, which wakes the next as it
      // leaves or finds room, so that no worker waits for ever.
      let room = limitNow ? Math.max(1, limitNow()) : limit;
      while (running > 0 && running >= room) {
        await new Promise<void>((resolve) => held.push(resolve));
        room = limitNow ? Math.max(1, limitNow()) : limit;
      }
      const next = signal?.aborted || failure ? undefined : iterator.next();
      if (next === undefined || next.done) {
        wakeOne();
        return;
      }
      running++;
      if (held.length > 0 && running < room) wakeOne();
      try {
        await fn(next.value);
      } catch (error) {
        failure ??= { error };
      } finally {
        running--;
        wakeOne();
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < Math.max(1, Math.floor(limit)); i++) workers.push(worker());
  await Promise.all(workers);
  if (failure) throw failure.error;
}
