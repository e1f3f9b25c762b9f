/**
 * What the replicas sharing a store learn together of how often a registry host's tags share
 * images (see {@link HostSharing}): one small record per host in the store, read when a
 * replica first meets the host (and again, at most once a {@link REFRESH_MS}, while it knows
 * too little to use), merged with what the replica learnt and written back when a scan
 * changes it. Without it every replica pays the learning (`HEAD` first until
 * {@link SHARING_SAMPLE} tags of the host are seen) for every host, and a replica that joins
 * starts from nothing.
 *
 * Counts are approximate by design: two replicas writing at once lose one's latest entries
 * until its next write (each writes its whole view, so the loss heals), and a read that
 * fails or a record that does not decode leaves the replica learning on its own (with a
 * warning), never fails a scan.
 */
import type { Logger } from "pino";
import { underSignals } from "../abort.js";
import { summarizeError } from "./error-summary.js";
import type { Keys } from "./keys.js";
import {
  type HostSharing,
  type HostSharingListener,
  type RepositorySharing,
  SHARING_SAMPLE,
} from "./new-tag-fetch.js";
import type { Store } from "./store.js";

/** Repositories a host's record keeps (the most recently scanned): enough to judge a host by. */
export const RECORD_REPOSITORIES = 128;
/**
 * Shortest time between two reads of a host's record while its sharing is unknown (a
 * store round trip; only while a host is being learnt, so short: during a cold fill the
 * replicas' samples meet within it).
 */
export const REFRESH_MS = 250;
/** Bound on each store read or write of a record. */
export const STORE_TIMEOUT_MS = 2000;
/** The record's refresh deadline from its write (the store keeps it twice as long). */
const RECORD_DEADLINE_MS = 24 * 3600_000;
/**
 * Once a host is known (see {@link KNOWN_TAGS}), its record is written at most this often:
 * what scans change meanwhile goes in the next write. A cold fill of many repositories
 * otherwise read and wrote the record twice per scan (at its 8th tag and at its end).
 */
export const PUBLISH_EVERY_MS = 1000;
/**
 * Tags a host's record must count for the host to be known: twice the sample, so that a
 * choice in any one repository (whose own counts, at most a sample's worth, are left out of
 * its prior) finds enough in the others'.
 */
const KNOWN_TAGS = 2 * SHARING_SAMPLE;
/** Writes in a row one publication makes while scans keep changing the host's counts. */
const MAX_WRITES_IN_A_ROW = 8;
/** Hosts whose state is kept (the oldest idle one forgotten first). */
const MAX_HOSTS = 1000;
/** The record's layout version. */
const VERSION = 2;
/**
 * Version 1 counted tags on an image another tag has, not tags repeating an earlier one's
 * image (see NewTagFetchPlan): such a record is read as empty, and replaced by the next write.
 */
const COUNTED_OTHERWISE = 1;

/** Encodes a host's counts (repository, tags, repeats; rounded, a record stays small). */
export function encodeHostSharing(entries: readonly RepositorySharing[]): Uint8Array {
  const round = (n: number) => Math.round(n * 1000) / 1000;
  const repositories = entries.map((e) => [e.repository, round(e.tags), round(e.repeats)]);
  return new TextEncoder().encode(JSON.stringify({ v: VERSION, repositories }));
}

/**
 * Decodes a record written by {@link encodeHostSharing}; `undefined` when it is not one
 * (another layout, garbage, counts out of range), so that the caller ignores it whole.
 */
export function decodeHostSharing(value: Uint8Array): RepositorySharing[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(value));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const { v, repositories } = parsed as { v?: unknown; repositories?: unknown };
  if (v === COUNTED_OTHERWISE) return [];
  if (v !== VERSION || !Array.isArray(repositories)) return undefined;
  if (repositories.length > RECORD_REPOSITORIES) return undefined;
  const out: RepositorySharing[] = [];
  for (const item of repositories) {
    if (!Array.isArray(item) || item.length !== 3) return undefined;
    const [repository, tags, repeats] = item as unknown[];
    if (typeof repository !== "string" || repository === "") return undefined;
    if (typeof tags !== "number" || typeof repeats !== "number") return undefined;
    if (!(tags > 0 && tags <= SHARING_SAMPLE && repeats >= 0 && repeats <= tags)) return undefined;
    out.push({ repository, tags, repeats });
  }
  return out;
}

/** What {@link HostSharingSync} works with. */
export interface HostSharingSyncOptions {
  store: Store;
  keys: Keys;
  sharing: HostSharing;
  logger: Logger;
  /** The clock reads are spaced by (fake in tests). */
  now?: () => number;
}

/** One host's reads and writes in flight. */
interface HostState {
  /** The first read (what {@link HostSharingSync.ready} waits for). */
  first: Promise<void> | undefined;
  /** The first read has ended (every later scan of the host goes ahead at once). */
  read: boolean;
  /** When a read last started (ms, `now`). */
  readAt: number;
  reading: Promise<void> | undefined;
  writing: boolean;
  /** Counts changed while a write was in flight (or waits): write again after it. */
  dirty: boolean;
  /** When the last write started (ms, `now`). */
  publishedAt: number;
  /** The next write, held back until {@link PUBLISH_EVERY_MS} after the last. */
  timer: NodeJS.Timeout | undefined;
  /** The host counts enough tags that its writes are spaced (see {@link KNOWN_TAGS}). */
  known: boolean;
}

/**
 * Keeps a {@link HostSharing} in step with the records of the other replicas sharing the
 * store. Listens to it (misses start a read, changes a write); every store call is bounded
 * by {@link STORE_TIMEOUT_MS} and by {@link close}; nothing it does rejects.
 */
export class HostSharingSync implements HostSharingListener {
  readonly #opts: HostSharingSyncOptions;
  readonly #now: () => number;
  readonly #hosts = new Map<string, HostState>();
  readonly #pending = new Set<Promise<void>>();
  readonly #closed = new AbortController();
  /** settle() calls waiting: writes are not held back meanwhile. */
  #settling = 0;

  constructor(opts: HostSharingSyncOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    opts.sharing.listen(this);
  }

  /**
   * Resolves once the host's record has been read the first time (at once after that), so
   * that a replica's first scan of a host starts from what the others learnt. Bounded by
   * {@link STORE_TIMEOUT_MS}; `signal` ends the wait early (the read goes on).
   */
  async ready(host: string, signal?: AbortSignal): Promise<void> {
    const state = this.#state(host);
    if (state.read) return;
    if (!state.first) {
      state.first = this.#read(host, state).finally(() => {
        state.read = true;
      });
      this.#track(state.first);
    }
    if (!signal) return state.first;
    if (signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        resolve();
      };
      signal.addEventListener("abort", done, { once: true });
      void state.first?.then(done);
    });
  }

  /** A choice knew too little of `host`: read its record again, unless read within {@link REFRESH_MS}. */
  miss(host: string): void {
    if (this.#closed.signal.aborted) return;
    const state = this.#state(host);
    if (state.reading || !state.first) return;
    if (this.#now() - state.readAt < REFRESH_MS) return;
    this.#track(this.#read(host, state));
  }

  /**
   * `host`'s counts changed: merge them with its record and write it back (one write at a
   * time; once the host is known, at most one every {@link PUBLISH_EVERY_MS}).
   */
  change(host: string): void {
    if (this.#closed.signal.aborted) return;
    const state = this.#state(host);
    if (state.writing || state.timer) {
      state.dirty = true;
      return;
    }
    const wait = this.#publishWait(host, state);
    if (wait > 0) {
      state.dirty = true;
      this.#publishLater(host, state, wait);
      return;
    }
    this.#publishNow(host, state);
  }

  /** Holds the host's next write back `wait` ms (settle() makes it at once). */
  #publishLater(host: string, state: HostState, wait: number): void {
    state.timer = setTimeout(() => this.#publishNow(host, state), wait);
    state.timer.unref();
  }

  /** How long the host's next write waits (0: none). */
  #publishWait(host: string, state: HostState): number {
    state.known ||= this.#opts.sharing.hasSeen(host, KNOWN_TAGS);
    if (!state.known || this.#settling > 0) return 0;
    return Math.max(0, state.publishedAt + PUBLISH_EVERY_MS - this.#now());
  }

  #publishNow(host: string, state: HostState): void {
    if (state.timer) clearTimeout(state.timer);
    state.timer = undefined;
    if (this.#closed.signal.aborted || state.writing) return;
    state.writing = true;
    this.#track(this.#publish(host, state));
  }

  /**
   * Resolves when the reads and writes started so far have ended (each is bounded); writes
   * held back are made now.
   */
  async settle(): Promise<void> {
    this.#settling++;
    try {
      for (;;) {
        for (const [host, state] of this.#hosts) if (state.timer) this.#publishNow(host, state);
        if (this.#pending.size === 0) return;
        await Promise.all(this.#pending);
      }
    } finally {
      this.#settling--;
    }
  }

  /** Stops starting store calls (writes held back are dropped), cuts those in flight, and waits for them to end. */
  async close(): Promise<void> {
    this.#opts.sharing.listen(undefined);
    this.#closed.abort();
    for (const state of this.#hosts.values()) {
      if (state.timer) clearTimeout(state.timer);
      state.timer = undefined;
    }
    await this.settle();
  }

  #state(host: string): HostState {
    const key = host.toLowerCase();
    let state = this.#hosts.get(key);
    if (state) return state;
    state = {
      first: undefined,
      read: false,
      readAt: -Infinity,
      reading: undefined,
      writing: false,
      dirty: false,
      publishedAt: Number.NEGATIVE_INFINITY,
      timer: undefined,
      known: false,
    };
    this.#hosts.set(key, state);
    if (this.#hosts.size > MAX_HOSTS) {
      for (const [name, s] of this.#hosts) {
        if (s.reading || s.writing || s.timer || s === state) continue;
        this.#hosts.delete(name);
        break;
      }
    }
    return state;
  }

  #track(work: Promise<void>): void {
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }

  /**
   * One store call, cut by close or after {@link STORE_TIMEOUT_MS}. Not `AbortSignal.any`:
   * the closing signal lives as long as the process, and on Node 20 each `any` over it
   * leaves a WeakRef in it (see `eitherSignal`).
   */
  #call<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return underSignals([this.#closed.signal, AbortSignal.timeout(STORE_TIMEOUT_MS)], call);
  }

  /** Reads the host's record into the sharing; never rejects. */
  #read(host: string, state: HostState): Promise<void> {
    state.readAt = this.#now();
    const reading = this.#fetch(host).then(
      (entries) => {
        if (entries) this.#opts.sharing.adopt(host, entries);
      },
      (error: unknown) => this.#storeFailed(host, "read", error),
    );
    state.reading = reading.finally(() => {
      state.reading = undefined;
    });
    return state.reading;
  }

  /** The host's record: its entries, `[]` when there is none or it does not decode. */
  async #fetch(host: string): Promise<RepositorySharing[]> {
    const key = this.#opts.keys.hostSharing(host);
    const entry = await this.#call((signal) => this.#opts.store.get(key, { signal }));
    if (!entry) return [];
    const entries = decodeHostSharing(entry.value);
    if (entries) return entries;
    this.#opts.logger.warn({ host, key }, "ignoring a host sharing record that does not decode");
    return [];
  }

  /** Read, merge, write, again while counts changed meanwhile (a bounded number of times). */
  async #publish(host: string, state: HostState): Promise<void> {
    try {
      for (let i = 0; i < MAX_WRITES_IN_A_ROW && !this.#closed.signal.aborted; i++) {
        state.dirty = false;
        state.readAt = this.#now();
        state.publishedAt = state.readAt;
        const remote = await this.#fetch(host);
        const { sharing, store, keys } = this.#opts;
        sharing.adopt(host, remote);
        const local = sharing.entries(host).slice(-RECORD_REPOSITORIES);
        if (!sameEntries(local, remote)) {
          const deadline = new Date(this.#now() + RECORD_DEADLINE_MS);
          await this.#call((signal) =>
            store.set(keys.hostSharing(host), deadline, encodeHostSharing(local), { signal }),
          );
        }
        if (!state.dirty) break;
        const wait = this.#publishWait(host, state);
        if (wait > 0 && !this.#closed.signal.aborted) {
          this.#publishLater(host, state, wait);
          break;
        }
      }
    } catch (error) {
      this.#storeFailed(host, "write", error);
    } finally {
      state.writing = false;
    }
  }

  #storeFailed(host: string, what: "read" | "write", error: unknown): void {
    // Closing cuts calls in flight: nothing went wrong then.
    if (this.#closed.signal.aborted) return;
    this.#opts.logger.warn(
      { host, error: summarizeError(error) },
      `could not ${what} the host's sharing record; learning on this replica's own`,
    );
  }
}

/** Whether the record would say the same (every local entry there, counts within rounding). */
function sameEntries(local: readonly RepositorySharing[], remote: readonly RepositorySharing[]) {
  if (local.length !== remote.length) return false;
  const byName = new Map(remote.map((e) => [e.repository, e]));
  return local.every((e) => {
    const r = byName.get(e.repository);
    return (
      r !== undefined && Math.abs(r.tags - e.tags) < 0.01 && Math.abs(r.repeats - e.repeats) < 0.01
    );
  });
}
