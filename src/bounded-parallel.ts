/**
 * Runs an async function over items with at most `limit` in flight: the warmer's `burst`
 * per repository, its bounded store reads, and the stores' batched reads. Neutral (it
 * imports nothing), so that the stores need not import the cache.
 */

/** How many calls `forEachBounded` runs at once, and when it stops starting new ones. */
export interface BoundedOptions {
  /** Most calls in flight (at least one). */
  limit: number;
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
  const { limit, signal } = opts;
  const iterator = items[Symbol.iterator]();
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    for (;;) {
      if (signal?.aborted || failure) return;
      const next = iterator.next();
      if (next.done) return;
      try {
        await fn(next.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < Math.max(1, Math.floor(limit)); i++) workers.push(worker());
  await Promise.all(workers);
  if (failure) throw failure.error;
}
