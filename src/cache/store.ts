/**
 * The key-value store the cache lives in (Flux v1's cache `Reader` / `Writer` / `Client`).
 * Implementations: memory, sqlite (the embedded default), memcached, Redis.
 */
import type { OperationOptions } from "../abort.js";
import { forEachBounded } from "../bounded-parallel.js";

/** A value read back, with the refresh deadline it was written with. */
export interface StoreEntry {
  /**
   * The value as written. It may be a view of a larger buffer the store read it in (a Redis
   * reply is a slice of the socket chunk it came in): decode it, or copy it to keep it, as
   * keeping the view keeps the whole buffer.
   */
  value: Uint8Array;
  /** When the value should be refreshed; it stays readable past this, until it expires. */
  deadline: Date;
}

/** Options of {@link Store.set}. */
export interface SetOptions extends OperationOptions {
  /**
   * How long the store keeps the value, ms, instead of its default (twice the time to the
   * deadline, at least an hour): for a value derived from others that is worth little once
   * it is old (a shared API answer). A store may keep it longer, never shorter.
   */
  keepMs?: number | undefined;
}

/** One value of a {@link Store.setMany}. */
export interface StoreWrite {
  key: string;
  deadline: Date;
  value: Uint8Array;
}

/** A lease to take: its key, how long it lasts, and who takes it. */
export interface LeaseTake {
  key: string;
  ttlMs: number;
  owner: string;
}

/** What {@link Store.acquireAndGet} answers: whether the lease was taken, and the value. */
export interface LeasedRead {
  taken: boolean;
  entry: StoreEntry | undefined;
}

/** A key-value store with refresh deadlines and leases. */
export interface Store {
  /** The value and its deadline, or `undefined` for a miss (including a value that does not decode). */
  get(key: string, opts?: OperationOptions): Promise<StoreEntry | undefined>;
  /**
   * Reads many keys in few round trips (a repository's tags): the result has one element
   * per key, in the order of `keys` (a key given twice is answered twice), `undefined` for
   * a miss. A value that does not decode is a miss with the same warning as {@link get}.
   * Errors, aborts and timeouts are those of `get`; on an error nothing is returned, so a
   * caller never mistakes an outage for misses. Work is bounded per batch of keys, so an
   * empty list costs nothing and a long one costs a round trip per batch (and server).
   */
  getMany(keys: readonly string[], opts?: OperationOptions): Promise<(StoreEntry | undefined)[]>;
  /**
   * Writes a value. The store keeps it for twice the time to the deadline, at least an hour,
   * so that it can be served while being refreshed (or for `opts.keepMs`).
   */
  set(key: string, deadline: Date, value: Uint8Array, opts?: SetOptions): Promise<void>;
  /**
   * Writes several values as {@link set} does, in fewer commands than one per value (a
   * scan's changed index buckets), in the order given. Optional: without it callers use
   * `set` per value (see `setEach`). On an error some of the values may have been written.
   */
  setMany?(writes: readonly StoreWrite[], opts?: OperationOptions): Promise<void>;
  /** Takes a lease on `key` for `ttlMs` if nobody else holds it; true when taken. */
  acquire(key: string, ttlMs: number, owner: string, opts?: OperationOptions): Promise<boolean>;
  /**
   * Takes or renews a lease as {@link acquire} does and, when that succeeds, writes `also`
   * as {@link set} would (who holds the lease, beside it), in one round trip. Optional:
   * without it callers use `acquire` then `set`. On an error neither may be known done.
   */
  acquireAndSet?(lease: LeaseTake, also: StoreWrite, opts?: OperationOptions): Promise<boolean>;
  /**
   * Takes or renews a lease as {@link acquire} does, then reads `key` as {@link get} does,
   * in one round trip (a record read under its lease: the replica census's heartbeat). The
   * value is read whether or not the lease was taken. Optional: without it callers use
   * `acquire` then `get`.
   */
  acquireAndGet?(lease: LeaseTake, key: string, opts?: OperationOptions): Promise<LeasedRead>;
  /**
   * Writes a value as {@link set} does, then gives a lease back as {@link release} does
   * (a scan's repository record, then its lease), in one round trip. Optional: without it
   * callers use `set` then `release`. On an error neither may be known done.
   */
  setAndRelease?(
    write: StoreWrite,
    lease: { key: string; owner: string },
    opts?: OperationOptions,
  ): Promise<void>;
  /** Gives a lease back if `owner` holds it. */
  release(key: string, owner: string, opts?: OperationOptions): Promise<void>;
  /** Checks that the store answers (for readiness). */
  ping(opts?: OperationOptions): Promise<void>;
  /** Closes connections and files; the store is unusable afterwards. */
  close(): Promise<void>;
}

/**
 * Writes `writes` with the store's `setMany` when it has one, else one `set` each (at most
 * `limit` in flight, every one tried); rejects with the first error once all settled.
 */
export async function setEach(
  store: Store,
  writes: readonly StoreWrite[],
  { limit, signal }: { limit: number; signal?: AbortSignal | undefined },
): Promise<void> {
  if (writes.length === 0) return;
  const opts = signal ? { signal } : undefined;
  if (store.setMany) return store.setMany(writes, opts);
  let failure: { error: unknown } | undefined;
  await forEachBounded(writes, { limit }, async (w) => {
    try {
      await store.set(w.key, w.deadline, w.value, opts);
    } catch (error) {
      failure ??= { error };
    }
  });
  if (failure) throw failure.error;
}
