/**
 * A Store wrapper that records every key read and written, so that tests can count what one
 * operation cost the store (which buckets, images and records it touched).
 */
import type { Store } from "../../../src/cache/store.js";

/** What went through a {@link countingStore}. */
export interface StoreLog {
  /** Keys written, in order. */
  sets: string[];
  /** One element per `get` / `getMany` call: the keys asked. */
  reads: string[][];
  /** Forgets what was recorded. */
  reset(): void;
}

/** Wraps `inner`, recording reads and writes in the returned log. */
export function countingStore(inner: Store): { store: Store; log: StoreLog } {
  const log: StoreLog = {
    sets: [],
    reads: [],
    reset() {
      this.sets.length = 0;
      this.reads.length = 0;
    },
  };
  const store: Store = {
    get: (key, opts) => {
      log.reads.push([key]);
      return inner.get(key, opts);
    },
    getMany: (keys, opts) => {
      log.reads.push([...keys]);
      return inner.getMany(keys, opts);
    },
    set: (key, deadline, value, opts) => {
      log.sets.push(key);
      return inner.set(key, deadline, value, opts);
    },
    acquire: (key, ttl, owner, opts) => inner.acquire(key, ttl, owner, opts),
    release: (key, owner, opts) => inner.release(key, owner, opts),
    ping: (opts) => inner.ping(opts),
    close: () => inner.close(),
  };
  return { store, log };
}

/** The kind of a key of the second layout: repo, idx, img, lease, lease-holder or other. */
export function keyKind(key: string): string {
  const m = /(?:^|:)(repo|idx|img|lease-holder|lease|tag):/.exec(key);
  return m?.[1] ?? "other";
}

/** How many keys of each kind. */
export function countKinds(keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[keyKind(k)] = (out[keyKind(k)] ?? 0) + 1;
  return out;
}
