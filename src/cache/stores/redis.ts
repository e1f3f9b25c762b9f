/**
 * The `redis://`, `rediss://` and `redis+cluster://` stores (ioredis): values with a PX
 * expiry, leases with SET NX PX and a compare-and-delete release, and on one node the
 * writes a scan makes together in one script call each (several values; a lease with who
 * holds it; a value with the lease's release). Every command is bounded in time so an
 * outage is a quick typed error, never a hang or an unhandled rejection.
 */
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { type OperationOptions, raceAbort, withTimeout } from "../../abort.js";
import type { LeasedRead, LeaseTake, SetOptions, Store, StoreEntry, StoreWrite } from "../store.js";
import { inBatches, mapBounded } from "./batches.js";
import { encodeEnvelope, entryOrWarn, expiryMs } from "./envelope.js";
import {
  StoreClosedError,
  StoreOperationError,
  StoreUnavailableError,
  ValueTooLargeError,
} from "./errors.js";
import { type StoreLogger, silentLogger } from "./options.js";
import { keySlot } from "./redis-slots.js";

/** A Redis node address. */
export interface RedisNode {
  host: string;
  port: number;
}

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /** One node, or the seed nodes of a cluster. */
  nodes: RedisNode[];
  /** Talk to a Redis Cluster (slots spread over masters) rather than one node. */
  cluster?: boolean | undefined;
  /** TLS (`rediss://`). */
  tls?: boolean | undefined;
  /** PEM CA certificates to trust for TLS, instead of Node's built-in list. */
  tlsCa?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  /** Database number (single node only). */
  db?: number | undefined;
  /** Longest wait for one operation, connecting included. Default 5 s. */
  timeoutMs?: number | undefined;
  /** Largest value accepted. Default 64 MiB. */
  maxValueBytes?: number | undefined;
  logger?: StoreLogger | undefined;
}

type Client = Redis | Cluster;

/** Keys per MGET (single node) or per pipeline (cluster node) in `getMany`. */
const GET_MANY_BATCH = 1000;
/** Batches of one `getMany` in flight at once. */
const GET_MANY_CONCURRENCY = 4;

/** Values per `setMany` script call, and their bytes (bounds one command's size). */
const SET_MANY_BATCH = 256;
const SET_MANY_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * `setMany` on one node: every SET of a batch in one command (a scan's changed buckets
 * cost one round trip and one reply to parse, not one each). KEYS, then value and PX
 * per key in ARGV.
 */
const SET_MANY = `for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'PX', ARGV[2 * i])
end
return #KEYS`;

/**
 * The start of the lease scripts below: the lease (KEYS[1]) taken for its owner (ARGV[1])
 * with SET NX, or renewed for ARGV[2] ms if its holder is the owner; `taken` says which.
 */
const LEASE_TAKE_OR_RENEW = `local taken = 1
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  else
    taken = 0
  end
end`;

/**
 * `acquireAndSet` on one node: the lease taken or renewed, then the value beside it
 * written, in one command. KEYS: lease, value; ARGV: owner, lease PX, value, value PX.
 */
const LEASE_TAKE_AND_SET = `${LEASE_TAKE_OR_RENEW}
if taken == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1`;

/**
 * `acquireAndGet` on one node: the lease taken or renewed, then the value read, in one
 * command; the value comes back whether or not the lease was taken. KEYS: lease, value;
 * ARGV: owner, lease PX. A missing value is `false`, a nil in the reply.
 */
const LEASE_TAKE_AND_GET = `${LEASE_TAKE_OR_RENEW}
return {taken, redis.call('GET', KEYS[2])}`;

/**
 * `setAndRelease` on one node: the value written, then the lease deleted if still the
 * owner's, in one command. KEYS: value, lease; ARGV: value, value PX, owner.
 */
const SET_AND_RELEASE = `redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('DEL', KEYS[2])
end
return 1`;

/** The lease scripts every client has (one key each, so a cluster has them too). */
type LeaseScripts = {
  regscanLeaseExtend(key: string, owner: string, px: string): Promise<number>;
  regscanLeaseRelease(key: string, owner: string): Promise<number>;
};

/** The client with the script commands `defineCommand` added. */
type ScriptedRedis = Redis & {
  regscanSetAndRelease(
    key: string,
    lease: string,
    value: Buffer,
    valuePx: string,
    owner: string,
  ): Promise<number>;
  regscanSetMany(numKeys: number, ...args: (string | Buffer)[]): Promise<number>;
  regscanLeaseTakeAndGetBuffer(
    lease: string,
    key: string,
    owner: string,
    leasePx: string,
  ): Promise<[number, Buffer | null]>;
  regscanLeaseTakeAndSet(
    lease: string,
    key: string,
    owner: string,
    leasePx: string,
    value: Buffer,
    valuePx: string,
  ): Promise<number>;
};

const LEASE_EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;

const LEASE_RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

/** Error messages ioredis uses when it cannot talk to the server at all. */
const OUTAGE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EPIPE|Connection is closed|Stream isn't writeable|max retries|MaxRetriesPerRequest|timed out|CLUSTERDOWN|Failed to refresh slots|None of startup nodes|LOADING|TRYAGAIN/i;

/** A store on one Redis server or a Redis Cluster. */
export class RedisStore implements Store {
  readonly #client: Client;
  readonly #name: string;
  readonly #logger: StoreLogger;
  readonly #timeoutMs: number;
  readonly #maxValueBytes: number;
  #closed = false;
  #lastErrorLog = 0;
  /** On one node only (see {@link Store.acquireAndSet}). */
  acquireAndSet?: NonNullable<Store["acquireAndSet"]>;
  /** On one node only (see {@link Store.acquireAndGet}). */
  acquireAndGet?: NonNullable<Store["acquireAndGet"]>;
  /** On one node only (see {@link Store.setAndRelease}). */
  setAndRelease?: NonNullable<Store["setAndRelease"]>;
  /** Why the connection last failed, until it is up again: what an outage is reported as. */
  #connectionError: string | undefined;

  constructor(opts: RedisStoreOptions) {
    const first = opts.nodes[0];
    if (!first) throw new TypeError("RedisStore needs at least one node");
    this.#name = `${opts.tls ? "rediss" : "redis"}${opts.cluster ? "+cluster" : ""}://${opts.nodes
      .map((n) => `${n.host}:${n.port}`)
      .join(",")}`;
    this.#logger = opts.logger ?? silentLogger();
    this.#timeoutMs = opts.timeoutMs ?? 5000;
    this.#maxValueBytes = opts.maxValueBytes ?? 64 * 1024 * 1024;
    const base: RedisOptions = {
      username: opts.username,
      password: opts.password,
      tls: opts.tls ? (opts.tlsCa ? { ca: opts.tlsCa } : {}) : undefined,
      connectTimeout: this.#timeoutMs,
      commandTimeout: this.#timeoutMs,
      // One reconnect attempt per queued command, then it fails: an outage costs one
      // error per operation, and commands never wait for a server that stays away.
      maxRetriesPerRequest: 1,
      lazyConnect: false,
      // Commands issued in one round of the event loop go out in one write: a replica's
      // per-command socket writes took 13% of its CPU in a bench:scale profile.
      enableAutoPipelining: true,
    };
    if (opts.cluster) {
      this.#client = new Cluster(opts.nodes, {
        redisOptions: base,
        enableAutoPipelining: true,
        slotsRefreshTimeout: this.#timeoutMs,
        clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
      });
    } else {
      this.#client = new Redis({
        ...base,
        host: first.host,
        port: first.port,
        db: opts.db ?? 0,
        retryStrategy: (times) => Math.min(50 * times, 2000),
      });
      this.#client.defineCommand("regscanSetMany", { lua: SET_MANY });
      this.#client.defineCommand("regscanLeaseTakeAndSet", {
        lua: LEASE_TAKE_AND_SET,
        numberOfKeys: 2,
      });
      this.#client.defineCommand("regscanLeaseTakeAndGet", {
        lua: LEASE_TAKE_AND_GET,
        numberOfKeys: 2,
      });
      this.#client.defineCommand("regscanSetAndRelease", {
        lua: SET_AND_RELEASE,
        numberOfKeys: 2,
      });
      this.acquireAndSet = (lease, also, opts) => this.#acquireAndSet(lease, also, opts);
      this.acquireAndGet = (lease, key, opts) => this.#acquireAndGet(lease, key, opts);
      this.setAndRelease = (write, lease, opts) => this.#setAndRelease(write, lease, opts);
    }
    // Sent as EVALSHA once loaded: the script's text is not sent (and hashed) each time.
    this.#client.defineCommand("regscanLeaseExtend", { lua: LEASE_EXTEND, numberOfKeys: 1 });
    this.#client.defineCommand("regscanLeaseRelease", { lua: LEASE_RELEASE, numberOfKeys: 1 });
    // Without a listener an 'error' event would crash the process; the operations that
    // fail report the outage themselves, so this only logs (at most once a minute).
    this.#client.on("error", (err: Error) => {
      this.#connectionError = err.message;
      const now = Date.now();
      if (now - this.#lastErrorLog < 60_000) return;
      this.#lastErrorLog = now;
      this.#logger.warn({ store: this.#name, err: err.message }, "cache store connection error");
    });
    this.#client.on("ready", () => {
      this.#connectionError = undefined;
    });
  }

  /**
   * A new connection to the same server (or cluster) with the same address, TLS and
   * credentials, for work that must not share the store's connection: a blocking read
   * (`XREAD BLOCK`) holds its connection for as long as it waits. `commandTimeoutMs` must
   * outlast the longest block. The caller closes it (`disconnect()`).
   */
  duplicateConnection(commandTimeoutMs: number): Redis | Cluster {
    if (this.#closed) throw new StoreClosedError(this.#name);
    const client = this.#client;
    if (client instanceof Cluster) {
      return client.duplicate(undefined, {
        enableAutoPipelining: false,
        redisOptions: { ...client.options.redisOptions, commandTimeout: commandTimeoutMs },
      });
    }
    // A blocking read holds its connection: nothing is batched behind it.
    return client.duplicate({ commandTimeout: commandTimeoutMs, enableAutoPipelining: false });
  }

  async get(key: string, opts?: OperationOptions): Promise<StoreEntry | undefined> {
    const stored = await this.#run("get", opts, (c) => c.getBuffer(key));
    return stored === null ? undefined : entryOrWarn(key, stored, this.#logger);
  }

  async getMany(
    keys: readonly string[],
    opts?: OperationOptions,
  ): Promise<(StoreEntry | undefined)[]> {
    opts?.signal?.throwIfAborted();
    if (this.#closed) throw new StoreClosedError(this.#name);
    const batches = this.#groupByNode([...new Set(keys)]).flatMap((group) =>
      inBatches(group, GET_MANY_BATCH),
    );
    const found = new Map<string, Buffer>();
    await mapBounded(batches, GET_MANY_CONCURRENCY, async (batch) => {
      const values = await this.#run("getMany", opts, (c) => readBatch(c, batch));
      values.forEach((v, i) => {
        if (v !== null) found.set(batch[i]!, v);
      });
    });
    return keys.map((key) => {
      const stored = found.get(key);
      return stored === undefined ? undefined : entryOrWarn(key, stored, this.#logger);
    });
  }

  /** The stored form of a value, within the store's size limit. */
  #envelope(key: string, deadline: Date, value: Uint8Array): Buffer {
    const stored = encodeEnvelope(deadline, value);
    if (stored.byteLength > this.#maxValueBytes) {
      throw new ValueTooLargeError({
        store: this.#name,
        key,
        size: stored.byteLength,
        limit: this.#maxValueBytes,
      });
    }
    return stored;
  }

  async set(key: string, deadline: Date, value: Uint8Array, opts?: SetOptions) {
    const stored = this.#envelope(key, deadline, value);
    const px = Math.ceil(expiryMs(deadline, Date.now(), opts?.keepMs));
    await this.#run("set", opts, (c) => c.set(key, stored, "PX", px));
  }

  /**
   * On one node, a script per batch writes them all (in order); on a cluster, whose keys
   * live on several nodes, one SET each (a few in flight).
   */
  async setMany(writes: readonly StoreWrite[], opts?: OperationOptions): Promise<void> {
    const encoded = writes.map(({ key, deadline, value }) => {
      const stored = this.#envelope(key, deadline, value);
      return { key, stored, px: String(Math.ceil(expiryMs(deadline))) };
    });
    if (this.#client instanceof Cluster) {
      await mapBounded(encoded, GET_MANY_CONCURRENCY, ({ key, stored, px }) =>
        this.#run("set", opts, (c) => c.set(key, stored, "PX", px)),
      );
      return;
    }
    const batches: (typeof encoded)[] = [];
    let batch: typeof encoded = [];
    let bytes = 0;
    for (const w of encoded) {
      if (
        batch.length >= SET_MANY_BATCH ||
        (batch.length > 0 && bytes + w.stored.byteLength > SET_MANY_BATCH_BYTES)
      ) {
        batches.push(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(w);
      bytes += w.stored.byteLength;
    }
    if (batch.length > 0) batches.push(batch);
    for (const b of batches) {
      const args: (string | Buffer)[] = b.map((w) => w.key);
      for (const w of b) args.push(w.stored, w.px);
      await this.#run("setMany", opts, (c) =>
        (c as ScriptedRedis).regscanSetMany(b.length, ...args),
      );
    }
  }

  async acquire(key: string, ttlMs: number, owner: string, opts?: OperationOptions) {
    const px = Math.max(1, Math.ceil(ttlMs));
    const taken = await this.#run("acquire", opts, (c) => c.set(key, owner, "PX", px, "NX"));
    if (taken === "OK") return true;
    // Already held: ours to extend if we are the holder, else someone else's.
    const extended = await this.#run("acquire", opts, (c) =>
      (c as Client & LeaseScripts).regscanLeaseExtend(key, owner, String(px)),
    );
    return extended === 1;
  }

  /** One script; a cluster has none (the two keys may live on two nodes). */
  async #acquireAndSet(
    { key, ttlMs, owner }: LeaseTake,
    also: StoreWrite,
    opts?: OperationOptions,
  ): Promise<boolean> {
    const stored = this.#envelope(also.key, also.deadline, also.value);
    const px = String(Math.max(1, Math.ceil(ttlMs)));
    const valuePx = String(Math.ceil(expiryMs(also.deadline)));
    const taken = await this.#run("acquire", opts, (c) =>
      (c as ScriptedRedis).regscanLeaseTakeAndSet(key, also.key, owner, px, stored, valuePx),
    );
    return taken === 1;
  }

  /** One script; a cluster has none (the two keys may live on two nodes). */
  async #acquireAndGet(
    { key: lease, ttlMs, owner }: LeaseTake,
    key: string,
    opts?: OperationOptions,
  ): Promise<LeasedRead> {
    const px = String(Math.max(1, Math.ceil(ttlMs)));
    const [taken, stored] = await this.#run("acquire", opts, (c) =>
      (c as ScriptedRedis).regscanLeaseTakeAndGetBuffer(lease, key, owner, px),
    );
    const entry = stored === null ? undefined : entryOrWarn(key, stored, this.#logger);
    return { taken: taken === 1, entry };
  }

  /** One script; a cluster has none (the two keys may live on two nodes). */
  async #setAndRelease(
    { key, deadline, value }: StoreWrite,
    lease: { key: string; owner: string },
    opts?: OperationOptions,
  ): Promise<void> {
    const stored = this.#envelope(key, deadline, value);
    const px = String(Math.ceil(expiryMs(deadline)));
    await this.#run("set", opts, (c) =>
      (c as ScriptedRedis).regscanSetAndRelease(key, lease.key, stored, px, lease.owner),
    );
  }

  async release(key: string, owner: string, opts?: OperationOptions) {
    await this.#run("release", opts, (c) =>
      (c as Client & LeaseScripts).regscanLeaseRelease(key, owner),
    );
  }

  async ping(opts?: OperationOptions) {
    if (this.#client instanceof Cluster) {
      await this.#run("ping", opts, (c) => c.get("regscan:ping"));
    } else {
      await this.#run("ping", opts, (c) => (c as Redis).ping());
    }
  }

  async close() {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await Promise.race([
        this.#client.quit(),
        new Promise((resolve) => setTimeout(resolve, 1000).unref()),
      ]);
    } catch {
      // quitting a client whose server is gone fails; disconnect below still frees it
    }
    this.#client.disconnect();
  }

  /**
   * Keys grouped by the cluster node that serves them, so each group can go in one
   * pipeline; one group on a single node. Keys whose slot is not known yet (slots not
   * loaded) form a group of their own, read key by key.
   */
  #groupByNode(keys: string[]): string[][] {
    const client = this.#client;
    if (!(client instanceof Cluster)) return keys.length ? [keys] : [];
    const groups = new Map<string, string[]>();
    for (const key of keys) {
      const nodes = client.slots[keySlot(key)];
      const group = nodes?.length ? nodes.join(",") : "";
      let list = groups.get(group);
      if (!list) {
        list = [];
        groups.set(group, list);
      }
      list.push(key);
    }
    return [...groups.values()];
  }

  /** Runs one command with a deadline, turning every failure into a typed error. */
  async #run<T>(
    operation: string,
    opts: OperationOptions | undefined,
    command: (client: Client) => Promise<T>,
  ): Promise<T> {
    opts?.signal?.throwIfAborted();
    if (this.#closed) throw new StoreClosedError(this.#name);
    const work = withTimeout(command(this.#client), {
      ms: this.#timeoutMs,
      onTimeout: () =>
        new StoreUnavailableError({ store: this.#name, detail: `${operation} timed out` }),
    });
    try {
      return await raceAbort(work, opts?.signal);
    } catch (err) {
      if (err instanceof StoreUnavailableError || err === opts?.signal?.reason) throw err;
      const message = (err as Error).message ?? String(err);
      const cause = withoutCommand(err);
      const retriesSpent = (err as Error).name === "MaxRetriesPerRequestError";
      if (OUTAGE.test(message) || retriesSpent) {
        // ioredis says only that its retries ran out; the connection's own error (e.g.
        // `connect ECONNREFUSED 127.0.0.1:1`) is what the operator can act on.
        const why = retriesSpent && this.#connectionError ? this.#connectionError : message;
        throw new StoreUnavailableError({ store: this.#name, detail: why, cause });
      }
      throw new StoreOperationError({ store: this.#name, operation, detail: message, cause });
    }
  }
}

/**
 * The error without what ioredis attaches to it: the failed command with its arguments
 * (for AUTH, the password), and for a cluster the nodes' errors that carry theirs. Only
 * the name, message and stack are kept, so logging the cause never shows a secret.
 */
function withoutCommand(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const copy = new Error(err.message);
  copy.name = err.name;
  if (err.stack === undefined) delete copy.stack;
  else copy.stack = err.stack;
  return copy;
}

/**
 * Reads one batch: MGET on a single node; on a cluster, a pipeline of GETs to the node that
 * serves every key of the batch. A command of the pipeline that fails (a slot moved since
 * the grouping, slots not loaded yet) is retried alone, which follows redirections.
 */
async function readBatch(client: Client, keys: string[]): Promise<(Buffer | null)[]> {
  if (!(client instanceof Cluster)) return client.mgetBuffer(keys);
  let replies: [Error | null, unknown][] | null = null;
  try {
    const pipeline = client.pipeline();
    for (const key of keys) pipeline.getBuffer(key);
    replies = await pipeline.exec();
  } catch (err) {
    // Only keys that turned out to span nodes (slots moved, or not loaded when grouped)
    // are read one by one below; an outage stays an outage.
    if (!/should belong to the same slot/i.test((err as Error).message ?? "")) throw err;
  }
  return Promise.all(
    keys.map(async (key, i) => {
      const reply = replies?.[i];
      if (reply && reply[0] === null) return reply[1] as Buffer | null;
      return client.getBuffer(key);
    }),
  );
}
