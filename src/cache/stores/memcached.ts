/**
 * The `memcached://` and `memcached+srv://` stores (memjs, one client per server): keys
 * spread over servers by a stable hash, values of any size up to a configured total
 * (compressed and chunked past the item size), leases with `add` and a TTL.
 */
import { type OperationOptions, raceAbort, withTimeout } from "../../abort.js";
import type { SetOptions, Store, StoreEntry } from "../store.js";
import { inBatches, mapBounded } from "./batches.js";
import { encodeEnvelope, entryOrWarn, expiryMs } from "./envelope.js";
import {
  StoreClosedError,
  StoreOperationError,
  StoreUnavailableError,
  ValueTooLargeError,
} from "./errors.js";
import { deleteIfUnchanged, getWithCas, setIfUnchanged } from "./memcached-cas.js";
import { type MemcachedClient, memcachedClient } from "./memcached-connection.js";
import { type ChunkHead, chunkKey, frameValue, joinChunks, readFrame } from "./memcached-frames.js";
import { memcachedKey, serverFor } from "./memcached-keys.js";
import { multiGet } from "./memcached-multiget.js";
import { MemcachedStatusError } from "./memcached-protocol.js";
import type { ServerSource } from "./memcached-servers.js";
import { type StoreLogger, silentLogger } from "./options.js";

/** Memcached's default item size limit (`-I 1m`). */
const DEFAULT_ITEM_SIZE = 1024 * 1024;
/** Room left in each item for memcached's own header, the key and the CAS value. */
const ITEM_OVERHEAD = 1024;
/** Beyond 30 days memcached reads an expiry as a Unix time, not a number of seconds. */
const MAX_RELATIVE_EXPIRY_S = 30 * 24 * 60 * 60;
/** Chunks outlive their head a little, so a head never names chunks already gone. */
const CHUNK_GRACE_S = 60;
const CHUNK_CONCURRENCY = 8;
/** memjs's `retry_delay` below, for the multi-get's second attempt. */
const RETRY_DELAY_MS = 50;
/** Keys per multi-get request in `getMany` (hits come back as items of up to 1 MiB). */
const GET_MANY_BATCH = 500;
/** Multi-get requests of one `getMany` in flight at once, over all servers. */
const GET_MANY_CONCURRENCY = 4;

/** Options of {@link MemcachedStore}. */
export interface MemcachedStoreOptions {
  /** Where the servers come from. */
  servers: ServerSource;
  /** What to call this store in errors and logs, e.g. `memcached://a:11211,b:11211`. */
  name: string;
  /** The servers' item size limit (memcached `-I`). Default 1 MiB. */
  itemSize?: number | undefined;
  /** Largest value stored, after compression, over all chunks. Default 64 MiB. */
  maxValueBytes?: number | undefined;
  /** Longest wait for one operation. Default 5 s. */
  timeoutMs?: number | undefined;
  logger?: StoreLogger | undefined;
}

/** One item {@link MemcachedStore} writes: a value's head, or one of its chunks. */
interface ItemWrite {
  /** The store key (not yet a memcached key). */
  key: string;
  item: Buffer;
  /** Memcached's expiry: seconds up to 30 days, a Unix time beyond. */
  expires: number;
  opts: OperationOptions | undefined;
}

/** One memcached command of a store operation. */
interface ServerCommand<T> {
  /** The store operation it is part of, named in errors, e.g. `get`. */
  operation: string;
  opts: OperationOptions | undefined;
  run: (client: MemcachedClient) => Promise<T>;
}

/** A store on one or more memcached servers. */
export class MemcachedStore implements Store {
  readonly #source: ServerSource;
  readonly #name: string;
  readonly #itemBytes: number;
  readonly #maxValueBytes: number;
  readonly #timeoutMs: number;
  readonly #logger: StoreLogger;
  readonly #clients = new Map<string, MemcachedClient>();
  #closed = false;

  constructor(opts: MemcachedStoreOptions) {
    this.#source = opts.servers;
    this.#name = opts.name;
    this.#itemBytes = (opts.itemSize ?? DEFAULT_ITEM_SIZE) - ITEM_OVERHEAD;
    if (this.#itemBytes < 1024) throw new TypeError("memcached item size must be at least 2 KiB");
    this.#maxValueBytes = opts.maxValueBytes ?? 64 * 1024 * 1024;
    this.#timeoutMs = opts.timeoutMs ?? 5000;
    this.#logger = opts.logger ?? silentLogger();
    this.#source.onChange((servers) => this.#dropClientsNotIn(servers));
  }

  /** The servers keys are currently spread over. */
  servers(): readonly string[] {
    return this.#source.servers();
  }

  /** The server that holds `key` now. */
  serverOf(key: string): string | undefined {
    return serverFor(memcachedKey(key), this.#source.servers());
  }

  async get(key: string, opts?: OperationOptions): Promise<StoreEntry | undefined> {
    const item = await this.#getItem(key, opts);
    return item ? this.#decodeItem(key, item, opts) : undefined;
  }

  async getMany(
    keys: readonly string[],
    opts?: OperationOptions,
  ): Promise<(StoreEntry | undefined)[]> {
    this.#check(opts);
    if (keys.length === 0) return [];
    const servers = await this.#currentServers(opts);
    // Store key per memcached key, and memcached keys per server (the rendezvous hash).
    const keyOf = new Map<string, string>();
    const perServer = new Map<string, string[]>();
    for (const key of new Set(keys)) {
      const mk = memcachedKey(key);
      keyOf.set(mk, key);
      const server = serverFor(mk, servers)!;
      let list = perServer.get(server);
      if (!list) {
        list = [];
        perServer.set(server, list);
      }
      list.push(mk);
    }
    const requests = [...perServer].flatMap(([server, mks]) =>
      inBatches(mks, GET_MANY_BATCH).map((batch) => ({ server, batch })),
    );
    const items = new Map<string, Buffer>();
    await mapBounded(requests, GET_MANY_CONCURRENCY, async ({ server, batch }) => {
      this.#check(opts);
      const hits = await this.#onServer({
        operation: "getMany",
        server,
        opts,
        run: (c) => multiGetTwice(c, batch),
      });
      for (const [mk, item] of hits) {
        const key = keyOf.get(mk);
        if (key !== undefined) items.set(key, item);
      }
    });
    // Heads of chunked values fetch their chunks here, one value at a time (they are rare
    // and large); every other value is decoded in place.
    const entries = new Map<string, StoreEntry | undefined>();
    for (const [key, item] of items) entries.set(key, await this.#decodeItem(key, item, opts));
    return keys.map((key) => entries.get(key));
  }

  /** The entry a head item stands for: decompressed, chunks fetched and joined, unwrapped. */
  async #decodeItem(
    key: string,
    item: Buffer,
    opts: OperationOptions | undefined,
  ): Promise<StoreEntry | undefined> {
    const frame = await readFrame(item);
    let envelope: Buffer | undefined;
    if (frame.kind === "envelope") {
      envelope = frame.envelope;
    } else if (frame.kind === "chunked") {
      const { head } = frame;
      const indexes = Array.from({ length: head.count }, (_, i) => i);
      const items = await mapBounded(indexes, CHUNK_CONCURRENCY, (i) =>
        this.#getItem(chunkKey(key, head, i), opts),
      );
      envelope = await joinChunks(head, items);
      if (!envelope) {
        // Evicted chunks, or a head whose chunks never all arrived: refetch, don't warn loudly.
        this.#logger.debug({ key, store: this.#name }, "chunked cache value incomplete; a miss");
        return undefined;
      }
    } else {
      this.#logger.warn({ key, problem: frame.problem }, "cache value does not decode; a miss");
      return undefined;
    }
    return entryOrWarn(key, envelope, this.#logger);
  }

  async set(key: string, deadline: Date, value: Uint8Array, opts?: SetOptions) {
    this.#check(opts);
    const framed = await frameValue(encodeEnvelope(deadline, value), this.#itemBytes);
    if (framed.size > this.#maxValueBytes) {
      throw new ValueTooLargeError({
        store: this.#name,
        key,
        size: framed.size,
        limit: this.#maxValueBytes,
      });
    }
    const lifetimeMs = expiryMs(deadline, Date.now(), opts?.keepMs);
    const expires = memcachedExpiry(lifetimeMs / 1000);
    const { chunkHead } = framed;
    if (!chunkHead) {
      await this.#setItem({ key, item: framed.head, expires, opts });
      return;
    }
    // The value this write replaces, read first: a repository rewritten every pass would
    // otherwise leave a full copy of orphan chunks per pass until they expire (hours),
    // crowding useful items out of memcached's memory.
    const replaced = await this.#chunkHeadAt(key, opts);
    // Chunks first: a reader that sees the new head finds every chunk it names.
    const chunkExpires = memcachedExpiry(lifetimeMs / 1000 + CHUNK_GRACE_S);
    await mapBounded(framed.chunks, CHUNK_CONCURRENCY, (chunk, i) =>
      this.#setItem({ key: chunkKey(key, chunkHead, i), item: chunk, expires: chunkExpires, opts }),
    );
    await this.#setItem({ key, item: framed.head, expires, opts });
    if (replaced && replaced.id !== chunkHead.id) await this.#retire(key, replaced, opts);
  }

  /** The chunk head stored at `key` now, if the value there is chunked. */
  async #chunkHeadAt(key: string, opts: OperationOptions | undefined) {
    const item = await this.#getItem(key, opts);
    if (!item) return undefined;
    const frame = await readFrame(item);
    return frame.kind === "chunked" ? frame.head : undefined;
  }

  /**
   * Shortens the life of a replaced value's chunks to the grace period rather than deleting
   * them: a reader that read the old head just before still finds its chunks. Best effort:
   * the new value is written, and a chunk left behind still expires on its own.
   */
  async #retire(key: string, head: ChunkHead, opts: OperationOptions | undefined) {
    const indexes = Array.from({ length: head.count }, (_, i) => i);
    try {
      await mapBounded(indexes, CHUNK_CONCURRENCY, (i) => {
        const mk = memcachedKey(chunkKey(key, head, i));
        return this.#op({ operation: "set", mk, opts, run: (c) => c.touch(mk, CHUNK_GRACE_S) });
      });
    } catch (err) {
      this.#logger.debug(
        { key, store: this.#name, err: (err as Error).message },
        "could not shorten the replaced value's chunks; they expire on their own",
      );
    }
  }

  async acquire(key: string, ttlMs: number, owner: string, opts?: OperationOptions) {
    // memcached's clock ticks once a second, so an item given N seconds lives N - 1 to N, and
    // less when a busy machine delays the tick (its clock is then a second behind when the
    // item is stored): two seconds more make the lease last at least its TTL.
    const expires = memcachedExpiry(ttlMs / 1000 + LEASE_CLOCK_MARGIN_S);
    const mk = memcachedKey(key);
    const mine = Buffer.from(owner);
    const added = await this.#op({
      operation: "acquire",
      mk,
      opts,
      run: (c) => c.add(mk, mine, { expires }),
    });
    if (added) return true;
    // Held already: ours to extend if we are the holder. The extension applies only while
    // the item is the one just read, so a lease that expired and was taken by another
    // replica in between is theirs, not overwritten.
    const held = await this.#op({ operation: "acquire", mk, opts, run: (c) => getWithCas(c, mk) });
    if (!held?.value.equals(mine)) return false;
    return this.#op({
      operation: "acquire",
      mk,
      opts,
      run: (c) => setIfUnchanged(c, { key: mk, value: mine, expires, cas: held.cas }),
    });
  }

  async release(key: string, owner: string, opts?: OperationOptions) {
    const mk = memcachedKey(key);
    const held = await this.#op({ operation: "release", mk, opts, run: (c) => getWithCas(c, mk) });
    if (!held?.value.equals(Buffer.from(owner))) return;
    // Compare-and-delete: a lease taken over since the read is left to its new holder.
    await this.#op({
      operation: "release",
      mk,
      opts,
      run: (c) => deleteIfUnchanged(c, mk, held.cas),
    });
  }

  async ping(opts?: OperationOptions) {
    this.#check(opts);
    const servers = await this.#currentServers(opts);
    await Promise.all(
      servers.map((server) =>
        this.#onServer({ operation: "ping", server, opts, run: (c) => c.get("regscan:ping") }),
      ),
    );
  }

  async close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#source.close();
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  async #getItem(key: string, opts: OperationOptions | undefined): Promise<Buffer | undefined> {
    const mk = memcachedKey(key);
    const got = await this.#op({ operation: "get", mk, opts, run: (c) => c.get(mk) });
    return got.value ?? undefined;
  }

  /** Writes one item (a head or a chunk) as it is. */
  async #setItem({ key, item, expires, opts }: ItemWrite) {
    const mk = memcachedKey(key);
    let ok: boolean;
    try {
      ok = await this.#op({ operation: "set", mk, opts, run: (c) => c.set(mk, item, { expires }) });
    } catch (err) {
      // The server's item size (`-I`) is smaller than the one this store was told.
      if (err instanceof StoreOperationError && /Value too large/i.test(err.message)) {
        throw new ValueTooLargeError({
          store: this.#name,
          key,
          size: item.byteLength,
          limit: this.#itemBytes,
        });
      }
      throw err;
    }
    if (!ok) {
      throw new StoreOperationError({
        store: this.#name,
        operation: "set",
        detail: `server did not store "${key}"`,
      });
    }
  }

  async #currentServers(opts: OperationOptions | undefined): Promise<readonly string[]> {
    let servers = this.#source.servers();
    if (servers.length === 0) {
      // A DNS server that does not answer holds this until the store's timeout (the
      // resolution's deadline); the caller's abort must not wait for it. The resolution is
      // shared with other callers, so an abort leaves it running for them.
      await raceAbort(this.#source.refresh(), opts?.signal);
      servers = this.#source.servers();
    }
    if (servers.length === 0) {
      // The lookup's own error when it has one: a timeout names the record and the deadline.
      const problem = this.#source.lastError?.();
      if (problem instanceof StoreUnavailableError) throw problem;
      throw new StoreUnavailableError({
        store: this.#name,
        detail: problem ? `no servers known (${problem.message})` : "no servers known",
        cause: problem,
      });
    }
    return servers;
  }

  /** Runs one command on the server that holds memcached key `mk`. */
  async #op<T>(command: ServerCommand<T> & { mk: string }): Promise<T> {
    this.#check(command.opts);
    const servers = await this.#currentServers(command.opts);
    return this.#onServer({ ...command, server: serverFor(command.mk, servers)! });
  }

  /** Runs one command on `server`, bounded by the store's timeout and the caller's signal. */
  async #onServer<T>(command: ServerCommand<T> & { server: string }): Promise<T> {
    const { operation, server, opts } = command;
    const work = withTimeout(command.run(this.#client(server)), {
      ms: this.#timeoutMs,
      onTimeout: () =>
        new StoreUnavailableError({
          store: this.#describe(server),
          detail: `${operation} timed out`,
        }),
    });
    try {
      return await raceAbort(work, opts?.signal);
    } catch (err) {
      if (err instanceof StoreUnavailableError || err === opts?.signal?.reason) throw err;
      const message = (err as Error).message ?? String(err);
      if (/^MemJS [A-Z]+:/.test(message)) {
        throw new StoreOperationError({
          store: this.#name,
          operation,
          detail: message,
          cause: err,
        });
      }
      throw new StoreUnavailableError({
        store: this.#describe(server),
        detail: message,
        cause: err,
      });
    }
  }

  #describe(server: string): string {
    return this.#name.endsWith(server) || this.#name.includes(`${server},`)
      ? this.#name
      : `${this.#name} (server ${server})`;
  }

  #client(server: string): MemcachedClient {
    let client = this.#clients.get(server);
    if (!client) {
      client = memcachedClient(server, {
        timeoutMs: this.#timeoutMs,
        retryDelayS: RETRY_DELAY_MS / 1000,
        logger: this.#logger,
        store: this.#name,
      });
      this.#clients.set(server, client);
    }
    return client;
  }

  #dropClientsNotIn(servers: readonly string[]) {
    const keep = new Set(servers);
    for (const [server, client] of this.#clients) {
      if (keep.has(server)) continue;
      client.close();
      this.#clients.delete(server);
    }
  }

  #check(opts: OperationOptions | undefined) {
    opts?.signal?.throwIfAborted();
    if (this.#closed) throw new StoreClosedError(this.#name);
  }
}

/**
 * A multi-get with the same two attempts memjs gives a single get (a connection that died
 * since the last request fails the first); a refused request is not tried again.
 */
async function multiGetTwice(client: MemcachedClient, mks: readonly string[]) {
  try {
    return await multiGet(client, mks);
  } catch (err) {
    if (err instanceof MemcachedStatusError) throw err;
    await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
    return multiGet(client, mks);
  }
}

/** An expiry memcached reads right: seconds up to 30 days, a Unix time beyond. */
/** Seconds added to a lease's TTL for memcached's coarse, possibly late clock. */
const LEASE_CLOCK_MARGIN_S = 2;

function memcachedExpiry(seconds: number): number {
  const s = Math.max(1, Math.ceil(seconds));
  return s <= MAX_RELATIVE_EXPIRY_S ? s : Math.floor(Date.now() / 1000) + s;
}
