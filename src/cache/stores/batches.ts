/**
 * How the stores split a long `getMany` into bounded batches and run a few of them at a
 * time, so one call never sends an unbounded command nor waits on batches one by one.
 */
import { forEachBounded } from "../../bounded-parallel.js";

/** `items` cut into consecutive slices of at most `size`. */
export function inBatches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let at = 0; at < items.length; at += size) out.push(items.slice(at, at + size));
  return out;
}

/**
 * `fn` over every item with at most `limit` calls in flight, results in item order. The
 * first rejection is rethrown once every started call has settled (none is left dangling),
 * and no new call starts after it (the scheduling is {@link forEachBounded}'s).
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  await forEachBounded(items.keys(), { limit: Math.min(limit, items.length) }, async (i) => {
    out[i] = await fn(items[i]!, i);
  });
  return out;
}
