/**
 * Where the memcached store finds its servers: a fixed list, or DNS SRV records
 * (`_memcached._tcp.NAME`) re-resolved periodically and sorted, so replicas agree.
 */
import { Resolver } from "node:dns/promises";
import { isIP } from "node:net";
import type { StoreLogger } from "./options.js";

/** The current memcached servers, as sorted `host:port` strings. */
export interface ServerSource {
  servers(): readonly string[];
  /** Called with the new list whenever it changes. */
  onChange(listener: (servers: readonly string[]) => void): void;
  /** Asks for a fresh resolution now (rate-limited); resolves when it is done. */
  refresh(): Promise<void>;
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
  /** Longest wait for one DNS answer. Default 2 s. */
  timeoutMs?: number | undefined;
  logger: StoreLogger;
}

/** Servers from SRV records, re-resolved every `refreshMs`. */
export class SrvServers implements ServerSource {
  readonly #resolver: Resolver;
  readonly #record: string;
  readonly #logger: StoreLogger;
  readonly #listeners: Array<(servers: readonly string[]) => void> = [];
  readonly #timer: NodeJS.Timeout;
  readonly #minGapMs: number;
  #servers: readonly string[] = [];
  #pending: Promise<void> | undefined;
  #lastResolve = 0;
  #closed = false;

  constructor(opts: SrvServersOptions) {
    this.#record = `_${opts.service ?? "memcached"}._tcp.${opts.name}`;
    this.#logger = opts.logger;
    this.#resolver = new Resolver({ timeout: opts.timeoutMs ?? 2000, tries: 2 });
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
    this.#pending = this.#lookup()
      .then((found) => {
        if (this.#closed) return;
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

  async #lookup(): Promise<string[]> {
    const records = await this.#resolver.resolveSrv(this.#record);
    const out = new Set<string>();
    for (const r of records) {
      const target = r.name.replace(/\.$/, "");
      const host = isIP(target) ? target : await this.#address(target);
      out.add(isIP(host) === 6 ? `[${host}]:${r.port}` : `${host}:${r.port}`);
    }
    return [...out].sort();
  }

  /** Resolves an SRV target through the same DNS servers; falls back to the name itself. */
  async #address(target: string): Promise<string> {
    try {
      const [a] = await this.#resolver.resolve4(target);
      if (a) return a;
    } catch {
      // no A record: try AAAA, then let the socket resolve the name
    }
    try {
      const [aaaa] = await this.#resolver.resolve6(target);
      if (aaaa) return aaaa;
    } catch {
      // fall through
    }
    return target;
  }
}
