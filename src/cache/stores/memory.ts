/**
 * The `memory:` store: a Map with expiry, for tests, one-shot CLI runs and as the
 * baseline the benchmarks compare the other stores against.
 */
import type { OperationOptions } from "../../abort.js";
import type { SetOptions, Store, StoreEntry } from "../store.js";
import { encodeEnvelope, entryOrWarn, expiryMs } from "./envelope.js";
import { StoreClosedError } from "./errors.js";
import { type StoreLogger, silentLogger } from "./options.js";

interface Item {
  stored: Buffer;
  expiresAt: number;
}

interface Lease {
  owner: string;
  expiresAt: number;
}

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  logger?: StoreLogger;
  /** The clock, for tests. */
  now?: () => number;
}

/** A store in this process's memory; nothing is shared or kept across restarts. */
export class MemoryStore implements Store {
  readonly #items = new Map<string, Item>();
  readonly #leases = new Map<string, Lease>();
  readonly #logger: StoreLogger;
  readonly #now: () => number;
  #closed = false;
  #writes = 0;

  constructor(opts: MemoryStoreOptions = {}) {
    this.#logger = opts.logger ?? silentLogger();
    this.#now = opts.now ?? Date.now;
  }

  async get(key: string, opts?: OperationOptions): Promise<StoreEntry | undefined> {
    this.#check(opts);
    return this.#read(key, this.#now());
  }

  async getMany(
    keys: readonly string[],
    opts?: OperationOptions,
  ): Promise<(StoreEntry | undefined)[]> {
    this.#check(opts);
    const now = this.#now();
    return keys.map((key) => this.#read(key, now));
  }

  #read(key: string, now: number): StoreEntry | undefined {
    const item = this.#items.get(key);
    if (!item) return undefined;
    if (item.expiresAt <= now) {
      this.#items.delete(key);
      return undefined;
    }
    return entryOrWarn(key, item.stored, this.#logger);
  }

  async set(key: string, deadline: Date, value: Uint8Array, opts?: SetOptions) {
    this.#check(opts);
    const now = this.#now();
    this.#items.set(key, {
      stored: encodeEnvelope(deadline, value),
      expiresAt: now + expiryMs(deadline, now, opts?.keepMs),
    });
    // Expired items are otherwise only dropped when read; sweep now and then.
    if (++this.#writes % 1000 === 0) this.#prune(now);
  }

  /** Stores raw bytes as they are, bypassing the envelope (tests of undecodable values). */
  setRaw(key: string, stored: Uint8Array, ttlMs: number): void {
    this.#items.set(key, { stored: Buffer.from(stored), expiresAt: this.#now() + ttlMs });
  }

  async acquire(key: string, ttlMs: number, owner: string, opts?: OperationOptions) {
    this.#check(opts);
    const now = this.#now();
    const held = this.#leases.get(key);
    if (held && held.expiresAt > now && held.owner !== owner) return false;
    this.#leases.set(key, { owner, expiresAt: now + ttlMs });
    return true;
  }

  async release(key: string, owner: string, opts?: OperationOptions) {
    this.#check(opts);
    if (this.#leases.get(key)?.owner === owner) this.#leases.delete(key);
  }

  async ping(opts?: OperationOptions) {
    this.#check(opts);
  }

  async close() {
    this.#closed = true;
    this.#items.clear();
    this.#leases.clear();
  }

  #check(opts: OperationOptions | undefined) {
    opts?.signal?.throwIfAborted();
    if (this.#closed) throw new StoreClosedError("memory:");
  }

  #prune(now: number) {
    for (const [k, v] of this.#items) if (v.expiresAt <= now) this.#items.delete(k);
    for (const [k, v] of this.#leases) if (v.expiresAt <= now) this.#leases.delete(k);
  }
}
