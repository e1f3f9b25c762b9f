/**
 * Where the memcached store finds its servers: a fixed list, or DNS SRV records
 * (`_memcached._tcp.NAME`) re-resolved periodically and sorted, so replicas agree.
 */
import { Resolver } from "node:dns/promises";
import { isIP } from "node:net";
import { StoreUnavailableError } from "./errors.js";
import type { StoreLogger } from "./options.js";

/**
 * An SRV lookup had no answer within the store's timeout. A `STORE_UNAVAILABLE` like any
 * outage, so callers that handle those handle it; `record` and `timeoutMs` say which lookup.
 */
export class SrvLookupTimeoutError extends StoreUnavailableError {
  /** The SRV record asked for, e.g. `_memcached._tcp.cache.example`. */
  readonly record: string;
  /** The deadline that passed. */
  readonly timeoutMs: number;
  constructor(expired: { store: string; record: string; timeoutMs: number }) {
    super({
      store: expired.store,
      detail: `SRV lookup of ${expired.record} had no answer within ${expired.timeoutMs} ms`,
    });
    this.record = expired.record;
    this.timeoutMs = expired.timeoutMs;
  }
}

/** The current memcached servers, as sorted `host:port` strings. */
export interface ServerSource {
  servers(): readonly string[];
  /** Called with the new list whenever it changes. */
  onChange(listener: (servers: readonly string[]) => void): void;
  /** Asks for a fresh resolution now (rate-limited); resolves when it is done. */
  refresh(): Promise<void>;
  /** Why the last resolution failed, until one succeeds; undefined for a fixed list. */
  lastError?(): Error | undefined;
  close(): void;
}

/** A fixed list of servers. */
export class StaticServers implements ServerSource {
  readonly #servers: readonly string[];
  constructor(servers: readonly string[]) {
    this.#servers = [...new Set(servers)].sort();
  }
  servers() {
    return this.#servers;
  }
  onChange() {}
  async refresh() {}
  close() {}
}

/** Options of {@link SrvServers}. */
export interface SrvServersOptions {
  /** The name under the service: records are looked up at `_SERVICE._tcp.NAME`. */
  name: string;
  /** The SRV service label. Default `memcached`. */
  service?: string | undefined;
  /** DNS servers to ask (`ip` or `ip:port`); default the system's. */
  dnsServers?: string[] | undefined;
  /** How often to resolve again. Default 30 s. */
  refreshMs?: number | undefined;
  /**
   * Longest wait for one resolution, the SRV query and its targets' addresses together (the
   * store's `timeout=`). Default 5 s.
   */
  timeoutMs?: number | undefined;
  logger: StoreLogger;
}

/** The store's default `timeout=`, for a resolution when none is given. */
const DEFAULT_TIMEOUT_MS = 5000;
/**
 * Tries per DNS query, each given half the deadline: the retry of a lost packet is sent
 * within it, and c-ares (whose retries wait longer than the first try) does not give up on
 * a silent server before it, so the deadline, kept by cancelling, is what ends the wait.
 */
const DNS_TRIES = 2;

/** Servers from SRV records, re-resolved every `refreshMs`. */
export class SrvServers implements ServerSource {
  readonly #resolver: Resolver;
  readonly #record: string;
  readonly #logger: StoreLogger;
  readonly #listeners: Array<(servers: readonly string[]) => void> = [];
  readonly #timer: NodeJS.Timeout;
  readonly #minGapMs: number;
  readonly #timeoutMs: number;
  readonly #store: string;
  #servers: readonly string[] = [];
  #lastError: Error | undefined;
  #pending: Promise<void> | undefined;
  #lastResolve = 0;
  #closed = false;

  constructor(opts: SrvServersOptions) {
    this.#record = `_${opts.service ?? "memcached"}._tcp.${opts.name}`;
    this.#logger = opts.logger;
    this.#store = `memcached+srv://${opts.name}`;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // The defaults (2 s, 2 tries with longer retries) would wait about 6 s on a silent server.
    this.#resolver = new Resolver({
      timeout: Math.max(1, Math.floor(this.#timeoutMs / 2)),
      tries: DNS_TRIES,
    });
    if (opts.dnsServers?.length) this.#resolver.setServers(opts.dnsServers);
    const refreshMs = opts.refreshMs ?? 30_000;
    this.#minGapMs = Math.min(1000, refreshMs);
    this.#timer = setInterval(() => void this.#resolve(), refreshMs);
    this.#timer.unref();
  }

  /** The SRV record name looked up, e.g. `_memcached._tcp.cache.example`. */
  get record(): string {
    return this.#record;
  }

  servers() {
    return this.#servers;
  }

  lastError() {
    return this.#lastError;
  }

  onChange(listener: (servers: readonly string[]) => void) {
    this.#listeners.push(listener);
  }

  refresh(): Promise<void> {
    if (Date.now() - this.#lastResolve < this.#minGapMs) return this.#pending ?? Promise.resolve();
    return this.#resolve();
  }

  close() {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#resolver.cancel();
  }

  #resolve(): Promise<void> {
    if (this.#pending) return this.#pending;
    this.#lastResolve = Date.now();
    this.#pending = this.#lookupWithin()
      .then((found) => {
        if (this.#closed) return;
        this.#lastError = undefined;
        if (found.join(",") === this.#servers.join(",")) return;
        this.#logger.info(
          { record: this.#record, servers: found, previous: this.#servers },
          "memcached servers changed",
        );
        this.#servers = found;
        for (const l of this.#listeners) l(found);
      })
      .catch((err: unknown) => {
        // Keep the servers we had: a DNS hiccup must not empty the cache ring.
        if (!this.#closed) {
          this.#lastError = err instanceof Error ? err : new Error(String(err));
          this.#logger.warn(
            { record: this.#record, err: (err as Error).message },
            "could not resolve memcached SRV records; keeping the previous servers",
          );
        }
      })
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }

  /**
   * One resolution under the deadline: when it passes, the queries still out are cancelled
   * (the resolver is this source's own, and only one resolution runs at a time) and no new
   * one starts, and the resolution fails with {@link SrvLookupTimeoutError}.
   */
  async #lookupWithin(): Promise<string[]> {
    const expired = new AbortController();
    const error = new SrvLookupTimeoutError({
      store: this.#store,
      record: this.#record,
      timeoutMs: this.#timeoutMs,
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        expired.abort(error);
        this.#resolver.cancel();
        reject(error);
      }, this.#timeoutMs);
    });
    const lookup = this.#lookup(expired.signal);
    // Cancelled at the deadline, the lookup fails too, with nobody left waiting for it.
    lookup.catch(() => {});
    try {
      return await Promise.race([lookup, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #lookup(expired: AbortSignal): Promise<string[]> {
    const records = await this.#resolver.resolveSrv(this.#record);
    // The targets' addresses side by side: one after another, they would share the deadline
    // a query at a time.
    const hosts = await Promise.all(
      records.map(async (r) => {
        const target = r.name.replace(/\.$/, "");
        const host = isIP(target) ? target : await this.#address(target, expired);
        return isIP(host) === 6 ? `[${host}]:${r.port}` : `${host}:${r.port}`;
      }),
    );
    expired.throwIfAborted();
    return [...new Set(hosts)].sort();
  }

  /** Resolves an SRV target through the same DNS servers; falls back to the name itself. */
  async #address(target: string, expired: AbortSignal): Promise<string> {
    try {
      expired.throwIfAborted();
      const [a] = await this.#resolver.resolve4(target);
      if (a) return a;
    } catch {
      // no A record: try AAAA, then let the socket resolve the name
    }
    try {
      // Past the deadline the A query was cancelled, not answered: ask nothing more.
      expired.throwIfAborted();
      const [aaaa] = await this.#resolver.resolve6(target);
      if (aaaa) return aaaa;
    } catch {
      // fall through
    }
    return target;
  }
}
