/**
 * The `memcached://` and `memcached+srv://` stores (memjs, one client per server): keys
 * spread over servers by a stable hash, values of any size up to a configured total
 * (compressed and chunked past the item size), leases with `add` and a TTL.
 */
import memjs from "memjs";
import { raceAbort } from "../../registry/abortable.js";
import type { OperationOptions } from "../../registry/registry.js";
import { decodeEnvelope, encodeEnvelope, expiryMs } from "../envelope.js";
import type { Store, StoreEntry } from "../store.js";
import { inBatches, mapBounded } from "./batches.js";
import {
  StoreClosedError,
  StoreOperationError,
  StoreUnavailableError,
  ValueTooLargeError,
} from "./errors.js";
import { chunkKey, frameValue, joinChunks, readFrame } from "./memcached-frames.js";
import { memcachedKey, serverFor } from "./memcached-keys.js";
import { MultiGetStatusError, multiGet } from "./memcached-multiget.js";
import type { ServerSource } from "./memcached-servers.js";
import { type StoreLogger, silentLogger } from "./options.js";

/** Memcached's default item size limit (`-I 1m`). */
export const DEFAULT_ITEM_SIZE = 1024 * 1024;
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
  itemSize?: number;
  /** Largest value stored, after compression, over all chunks. Default 64 MiB. */
  maxValueBytes?: number;
  /** Longest wait for one operation. Default 5 s. */
  timeoutMs?: number;
  logger?: StoreLogger;
}

type Client = memjs.Client<Buffer, Buffer | null>;

/** A store on one or more memcached servers. */
export class MemcachedStore implements Store {
  readonly #source: ServerSource;
  readonly #name: string;
  readonly #itemBytes: number;
  readonly #maxValueBytes: number;
  readonly #timeoutMs: number;
  readonly #logger: StoreLogger;
  readonly #clients = new Map<string, Client>();
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
    const servers = await this.#currentServers();
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
      const hits = await this.#onServer("getMany", server, opts, (c) => multiGetTwice(c, batch));
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
      const items = await this.#inBatches(head.count, (i) =>
        this.#getItem(chunkKey(key, head.id, i), opts),
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
    const decoded = decodeEnvelope(envelope);
    if (!decoded.ok) {
      this.#logger.warn({ key, problem: decoded.problem }, "cache value does not decode; a miss");
      return undefined;
    }
    return decoded.envelope;
  }

  async set(key: string, deadline: Date, value: Uint8Array, opts?: OperationOptions) {
    this.#check(opts);
    const framed = await frameValue(encodeEnvelope(deadline, value), this.#itemBytes);
    if (framed.size > this.#maxValueBytes) {
      throw new ValueTooLargeError(this.#name, key, framed.size, this.#maxValueBytes);
    }
    const expires = memcachedExpiry(expiryMs(deadline) / 1000);
    const { chunkHead } = framed;
    if (chunkHead) {
      // Chunks first: a reader that sees the new head finds every chunk it names.
      const chunkExpires = memcachedExpiry(expiryMs(deadline) / 1000 + CHUNK_GRACE_S);
      await this.#inBatches(framed.chunks.length, (i) =>
        this.#setItem(chunkKey(key, chunkHead.id, i), framed.chunks[i]!, chunkExpires, opts),
      );
    }
    await this.#setItem(key, framed.head, expires, opts);
  }

  async acquire(key: string, ttlMs: number, owner: string, opts?: OperationOptions) {
    const expires = memcachedExpiry(ttlMs / 1000);
    const mk = memcachedKey(key);
    const added = await this.#op("acquire", mk, opts, (c) =>
      c.add(mk, Buffer.from(owner), { expires }),
    );
    if (added) return true;
    // Held already: ours to extend if we are the holder. Memcached has no compare-and-set
    // on value, so a lease expiring between these two calls can be extended by its old
    // owner; the TTL bounds the harm.
    const held = await this.#op("acquire", mk, opts, (c) => c.get(mk));
    if (held.value?.toString() !== owner) return false;
    await this.#op("acquire", mk, opts, (c) => c.set(mk, Buffer.from(owner), { expires }));
    return true;
  }

  async release(key: string, owner: string, opts?: OperationOptions) {
    const mk = memcachedKey(key);
    const held = await this.#op("release", mk, opts, (c) => c.get(mk));
    if (held.value?.toString() !== owner) return;
    await this.#op("release", mk, opts, (c) => c.delete(mk));
  }

  async ping(opts?: OperationOptions) {
    this.#check(opts);
    const servers = await this.#currentServers();
    await Promise.all(
      servers.map((server) => this.#onServer("ping", server, opts, (c) => c.get("regscan:ping"))),
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
    const got = await this.#op("get", mk, opts, (c) => c.get(mk));
    return got.value ?? undefined;
  }

  async #setItem(key: string, item: Buffer, expires: number, opts: OperationOptions | undefined) {
    const mk = memcachedKey(key);
    let ok: boolean;
    try {
      ok = await this.#op("set", mk, opts, (c) => c.set(mk, item, { expires }));
    } catch (err) {
      // The server's item size (`-I`) is smaller than the one this store was told.
      if (err instanceof StoreOperationError && /Value too large/i.test(err.message)) {
        throw new ValueTooLargeError(this.#name, key, item.byteLength, this.#itemBytes);
      }
      throw err;
    }
    if (!ok) throw new StoreOperationError(this.#name, "set", `server did not store "${key}"`);
  }

  async #inBatches<T>(count: number, work: (index: number) => Promise<T>): Promise<T[]> {
    const out: T[] = [];
    for (let start = 0; start < count; start += CHUNK_CONCURRENCY) {
      const batch: Promise<T>[] = [];
      for (let i = start; i < Math.min(count, start + CHUNK_CONCURRENCY); i++) batch.push(work(i));
      out.push(...(await Promise.all(batch)));
    }
    return out;
  }

  async #currentServers(): Promise<readonly string[]> {
    let servers = this.#source.servers();
    if (servers.length === 0) {
      await this.#source.refresh();
      servers = this.#source.servers();
    }
    if (servers.length === 0) throw new StoreUnavailableError(this.#name, "no servers known");
    return servers;
  }

  /** Runs one command on the server that holds memcached key `mk`. */
  async #op<T>(
    operation: string,
    mk: string,
    opts: OperationOptions | undefined,
    command: (client: Client) => Promise<T>,
  ): Promise<T> {
    this.#check(opts);
    const servers = await this.#currentServers();
    return this.#onServer(operation, serverFor(mk, servers)!, opts, command);
  }

  async #onServer<T>(
    operation: string,
    server: string,
    opts: OperationOptions | undefined,
    command: (client: Client) => Promise<T>,
  ): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreUnavailableError(this.#describe(server), `${operation} timed out`)),
        this.#timeoutMs,
      );
    });
    const work = command(this.#client(server));
    work.catch(() => {});
    try {
      return await raceAbort(Promise.race([work, timeout]), opts?.signal);
    } catch (err) {
      if (err instanceof StoreUnavailableError || err === opts?.signal?.reason) throw err;
      const message = (err as Error).message ?? String(err);
      if (/^MemJS [A-Z]+:/.test(message)) {
        throw new StoreOperationError(this.#name, operation, message, { cause: err });
      }
      throw new StoreUnavailableError(this.#describe(server), message, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  #describe(server: string): string {
    return this.#name.endsWith(server) || this.#name.includes(`${server},`)
      ? this.#name
      : `${this.#name} (server ${server})`;
  }

  #client(server: string): Client {
    let client = this.#clients.get(server);
    if (client) return client;
    const at = server.lastIndexOf(":");
    const host = server.slice(0, at).replace(/^\[(.*)\]$/, "$1");
    const port = Number(server.slice(at + 1));
    const perAttemptS = Math.max(0.1, this.#timeoutMs / 1000 / 2);
    const logger = this.#logger;
    const name = this.#name;
    const serverOptions = { timeout: perAttemptS, conntimeout: perAttemptS, keepAlive: true };
    client = new memjs.Client([new memjs.Server(host, port, undefined, undefined, serverOptions)], {
      // Bounded: two attempts in all, then the caller gets a typed error.
      retries: 2,
      retry_delay: RETRY_DELAY_MS / 1000,
      failover: false,
      logger: {
        log: (...args: unknown[]) =>
          logger.debug({ store: name, server }, args.map(String).join(" ")),
      },
    }) as Client;
    this.#clients.set(server, client);
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
async function multiGetTwice(client: Client, mks: readonly string[]) {
  try {
    return await multiGet(client, mks);
  } catch (err) {
    if (err instanceof MultiGetStatusError) throw err;
    await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
    return multiGet(client, mks);
  }
}

/** An expiry memcached reads right: seconds up to 30 days, a Unix time beyond. */
function memcachedExpiry(seconds: number): number {
  const s = Math.max(1, Math.ceil(seconds));
  return s <= MAX_RELATIVE_EXPIRY_S ? s : Math.floor(Date.now() / 1000) + s;
}
