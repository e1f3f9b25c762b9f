/**
 * How the stores split a long `getMany` into bounded batches and run a few of them at a
 * time, so one call never sends an unbounded command nor waits on batches one by one.
 */

/** `items` cut into consecutive slices of at most `size`. */
export function inBatches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let at = 0; at < items.length; at += size) out.push(items.slice(at, at + size));
  return out;
}

/**
 * `fn` over every item with at most `limit` calls in flight, results in item order. The
 * first rejection is rethrown once every started call has settled (none is left dangling),
 * and no new call starts after it.
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failure) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let w = 0; w < Math.min(Math.max(1, limit), items.length); w++) workers.push(worker());
  await Promise.all(workers);
  if (failure) throw failure.error;
  return out;
}
