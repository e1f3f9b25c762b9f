/**
 * The `sqlite:PATH` store, the embedded default: one file in the user's cache directory,
 * WAL journal, one transaction per write so a killed process leaves a consistent database.
 */
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type Database from "better-sqlite3";
import envPaths from "env-paths";
import type { OperationOptions } from "../../abort.js";
import type { SetOptions, Store, StoreEntry } from "../store.js";
import { encodeEnvelope, entryOrWarn, expiryMs } from "./envelope.js";
import { StoreClosedError, StoreOperationError, StoreUnavailableError } from "./errors.js";
import { type StoreLogger, silentLogger } from "./options.js";

/** Where the cache lives when no path is given, e.g. `~/.cache/regscan/cache.db` on Linux. */
export function defaultSqlitePath(): string {
  return join(envPaths("regscan", { suffix: "" }).cache, "cache.db");
}

/** Options of {@link SqliteStore}. */
export interface SqliteStoreOptions {
  logger?: StoreLogger;
  /** How long a write waits for another process's lock before failing. Default 5 s. */
  busyTimeoutMs?: number;
  /** How often expired rows are deleted. Default 10 min. */
  pruneIntervalMs?: number;
  /** The clock, for tests. */
  now?: () => number;
}

interface EntryRow {
  value: Buffer;
}

interface KeyedEntryRow {
  key: string;
  value: Buffer;
}

/**
 * Keys per statement of `getMany`. The keys go in as one JSON array (a single prepared
 * statement for any count); between batches the event loop gets a turn, so a 10,000-tag
 * read never blocks a server for its whole length.
 */
const GET_MANY_BATCH = 500;

/** A store in one SQLite database file (better-sqlite3, WAL). */
export class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly #name: string;
  readonly #logger: StoreLogger;
  readonly #now: () => number;
  readonly #timer: NodeJS.Timeout;
  readonly #stmts;
  readonly #acquireTx;
  #closed = false;

  /** Opens (and creates if needed) the database at `path`. */
  constructor(
    readonly path: string,
    opts: SqliteStoreOptions = {},
  ) {
    this.#name = `sqlite:${path}`;
    this.#logger = opts.logger ?? silentLogger();
    this.#now = opts.now ?? Date.now;
    let db: Database.Database | undefined;
    try {
      if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
      // Required here, not imported at the top: `import "regscan"` must not load the native
      // driver (CommonJS, so require gives the same module an import would).
      const Sqlite = createRequire(import.meta.url)("better-sqlite3") as typeof Database;
      // `timeout` is SQLite's busy_timeout: how long a statement waits for another
      // connection's lock before SQLITE_BUSY.
      db = new Sqlite(path, { timeout: opts.busyTimeoutMs ?? 5000 });
      db.pragma("journal_mode = WAL");
      // NORMAL in WAL mode loses no committed transaction when the process dies, only
      // (at worst) the last ones on a power cut; FULL would fsync every write.
      db.pragma("synchronous = NORMAL");
      db.exec(`
        CREATE TABLE IF NOT EXISTS entries (
          key TEXT PRIMARY KEY,
          value BLOB NOT NULL,
          expires_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS entries_expires_at ON entries (expires_at);
        CREATE TABLE IF NOT EXISTS leases (
          key TEXT PRIMARY KEY,
          owner TEXT NOT NULL,
          expires_at INTEGER NOT NULL
        );
      `);
    } catch (err) {
      // A file that is not a database (or a locked one) must not keep its handle open.
      db?.close();
      throw new StoreUnavailableError({
        store: this.#name,
        detail: (err as Error).message,
        cause: err,
      });
    }
    this.#db = db;
    this.#stmts = {
      get: db.prepare<[string, number], EntryRow>(
        "SELECT value FROM entries WHERE key = ? AND expires_at > ?",
      ),
      getMany: db.prepare<[string, number], KeyedEntryRow>(
        `SELECT e.key AS key, e.value AS value FROM json_each(?) AS j
         JOIN entries AS e ON e.key = j.value WHERE e.expires_at > ?`,
      ),
      set: db.prepare<[string, Buffer, number]>(
        "INSERT OR REPLACE INTO entries (key, value, expires_at) VALUES (?, ?, ?)",
      ),
      dropExpiredLease: db.prepare<[string, number]>(
        "DELETE FROM leases WHERE key = ? AND expires_at <= ?",
      ),
      takeLease: db.prepare<[string, string, number, string]>(
        `INSERT INTO leases (key, owner, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
         WHERE leases.owner = ?`,
      ),
      release: db.prepare<[string, string]>("DELETE FROM leases WHERE key = ? AND owner = ?"),
      pruneEntries: db.prepare<[number]>("DELETE FROM entries WHERE expires_at <= ?"),
      pruneLeases: db.prepare<[number]>("DELETE FROM leases WHERE expires_at <= ?"),
    };
    this.#acquireTx = db.transaction((key: string, ttlMs: number, owner: string): boolean => {
      const now = this.#now();
      this.#stmts.dropExpiredLease.run(key, now);
      return this.#stmts.takeLease.run(key, owner, now + ttlMs, owner).changes === 1;
    });
    this.#prune();
    this.#timer = setInterval(() => this.#prune(), opts.pruneIntervalMs ?? 10 * 60_000);
    this.#timer.unref();
  }

  async get(key: string, opts?: OperationOptions): Promise<StoreEntry | undefined> {
    const row = this.#run("get", opts, () => this.#stmts.get.get(key, this.#now()));
    return row ? entryOrWarn(key, row.value, this.#logger) : undefined;
  }

  async getMany(
    keys: readonly string[],
    opts?: OperationOptions,
  ): Promise<(StoreEntry | undefined)[]> {
    // Checked even for an empty list, so an aborted signal or a closed store still throws.
    this.#run("getMany", opts, () => undefined);
    const found = new Map<string, Buffer>();
    for (let at = 0; at < keys.length; at += GET_MANY_BATCH) {
      if (at > 0) await new Promise((resolve) => setImmediate(resolve));
      const batch = JSON.stringify(keys.slice(at, at + GET_MANY_BATCH));
      const rows = this.#run("getMany", opts, () => this.#stmts.getMany.all(batch, this.#now()));
      for (const row of rows) found.set(row.key, row.value);
    }
    return keys.map((key) => {
      const stored = found.get(key);
      return stored ? entryOrWarn(key, stored, this.#logger) : undefined;
    });
  }

  async set(key: string, deadline: Date, value: Uint8Array, opts?: SetOptions) {
    const now = this.#now();
    const stored = encodeEnvelope(deadline, value);
    const expires = now + expiryMs(deadline, now, opts?.keepMs);
    // A single statement is its own transaction: a kill leaves the old row or the new one.
    this.#run("set", opts, () => this.#stmts.set.run(key, stored, expires));
  }

  async acquire(key: string, ttlMs: number, owner: string, opts?: OperationOptions) {
    return this.#run("acquire", opts, () => this.#acquireTx.immediate(key, ttlMs, owner));
  }

  async release(key: string, owner: string, opts?: OperationOptions) {
    this.#run("release", opts, () => this.#stmts.release.run(key, owner));
  }

  async ping(opts?: OperationOptions) {
    this.#run("ping", opts, () => this.#db.prepare("SELECT 1").get());
  }

  async close() {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#db.close();
  }

  #run<T>(operation: string, opts: OperationOptions | undefined, work: () => T): T {
    opts?.signal?.throwIfAborted();
    if (this.#closed) throw new StoreClosedError(this.#name);
    try {
      return work();
    } catch (err) {
      throw sqliteFailure({ store: this.#name, operation, err });
    }
  }

  #prune() {
    if (this.#closed) return;
    try {
      const now = this.#now();
      const tx = this.#db.transaction(() => {
        this.#stmts.pruneEntries.run(now);
        this.#stmts.pruneLeases.run(now);
      });
      tx();
    } catch (err) {
      this.#logger.warn({ err, store: this.#name }, "could not prune expired cache rows");
    }
  }
}

/**
 * better-sqlite3's error as a store error: a lock held too long, a file that cannot be
 * opened, a failing disk or a full one is the store being unavailable; anything else is
 * an operation that failed. SQLite reports extended codes (`SQLITE_IOERR_SHORT_READ`,
 * `SQLITE_BUSY_SNAPSHOT`), so the primary code is their prefix.
 */
export function sqliteFailure({
  store,
  operation,
  err,
}: {
  /** The store's name, e.g. `sqlite:/var/cache/regscan.db`. */
  store: string;
  /** The store operation, e.g. `set`. */
  operation: string;
  /** What better-sqlite3 threw. */
  err: unknown;
}): StoreUnavailableError | StoreOperationError {
  const code = String((err as { code?: unknown }).code ?? "");
  const message = (err as Error).message ?? String(err);
  if (/^SQLITE_(BUSY|LOCKED|CANTOPEN|IOERR|FULL)(_|$)/.test(code)) {
    return new StoreUnavailableError({ store, detail: message, cause: err });
  }
  return new StoreOperationError({ store, operation, detail: message, cause: err });
}
