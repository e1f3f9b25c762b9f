/**
 * Opens the store a cache URL names: `memory:`, `sqlite:PATH` (the default),
 * `memcached://`, `memcached+srv://`, `redis://`, `rediss://`, `redis+cluster://`.
 * A URL that cannot be understood is an `InvalidStoreUrlError` naming it.
 */
import { existsSync } from "node:fs";
import {
  BoundedFileError,
  CONFIG_FILE_MAX_BYTES,
  readBoundedTextFile,
} from "../files/bounded-file.js";
import type { Store } from "./store.js";
import { InvalidStoreUrlError } from "./stores/errors.js";
import { SrvServers, StaticServers } from "./stores/memcached-servers.js";
import { MemoryStore } from "./stores/memory.js";
import { parseDuration, parseSize, type StoreLogger, silentLogger } from "./stores/options.js";
import type { RedisStore } from "./stores/redis.js";
import { defaultSqlitePath, SqliteStore } from "./stores/sqlite.js";
import { StoreNotFoundError, sqliteLocation, sqlitePathProblem } from "./stores/sqlite-path.js";

export { StoreNotFoundError } from "./stores/sqlite-path.js";

/** Settings for {@link openStore}; a URL's query parameters take precedence over these. */
export interface OpenStoreOptions {
  /** Where warnings go (undecodable values, lost connections, server list changes). */
  logger?: StoreLogger;
  /** Longest wait for one store operation (network stores). Default 5 s. URL: `timeout=5s`. */
  timeoutMs?: number;
  /** Largest value a network store accepts. Default 64 MiB. URL: `maxValueSize=64m`. */
  maxValueBytes?: number;
  /** Memcached servers' item size (`memcached -I`). Default 1 MiB. URL: `itemSize=1m`. */
  itemSize?: number;
  /** DNS servers for `memcached+srv://` (`ip` or `ip:port`). URL: `dns=127.0.0.1:5353`. */
  dnsServers?: string[];
  /** SRV service label for `memcached+srv://`. Default `memcached`. URL: `service=NAME`. */
  srvService?: string;
  /** How often `memcached+srv://` resolves its servers again. Default 30 s. URL: `refresh=30s`. */
  srvRefreshMs?: number;
  /** PEM CA certificates `rediss://` trusts instead of Node's list. URL: `ca=/path/ca.pem`. */
  tlsCa?: string;
  /**
   * Open only a cache that exists: a missing `sqlite:` file is a `StoreNotFoundError`, never
   * created empty. For readers such as `regscan get`.
   */
  mustExist?: boolean;
}

/** The store URL used when none is given: SQLite in the user's cache directory. */
export function defaultStoreUrl(): string {
  return `sqlite:${defaultSqlitePath()}`;
}

/**
 * Whether `store` is a Redis store (connections of its own can be opened: replicas then
 * share tag events, record-write notices and answers through it).
 */
export function isRedisStore(store: Store): store is RedisStore {
  return typeof (store as Partial<RedisStore>).duplicateConnection === "function";
}

/**
 * Whether the store `url` names lives in this process's memory (`memory:`,
 * `sqlite::memory:`): a second connection to it, from another thread, would see another,
 * empty store. Anything else (a file, a server) is shared by every connection.
 */
export function isProcessLocalStore(url: string | undefined): boolean {
  const parts = url === undefined ? undefined : schemeAndRest(url.trim());
  return (
    parts?.scheme === "memory" ||
    (parts?.scheme === "sqlite" && sqliteLocation(parts.rest).path === ":memory:")
  );
}

/** A store URL's scheme (lower case) and what follows its colon; undefined without one. */
function schemeAndRest(text: string): { scheme: string; rest: string } | undefined {
  const m = /^([a-z][a-z0-9+]*):(.*)$/is.exec(text);
  return m ? { scheme: (m[1] as string).toLowerCase(), rest: m[2] as string } : undefined;
}

/**
 * Opens the store `url` names (the default SQLite file when `url` is undefined; an empty URL
 * is refused, since it is more likely a variable that was not set than a wish for the
 * default). Network stores connect lazily: an unreachable server shows as
 * `StoreUnavailableError` from operations (and `ping()`), not from here.
 *
 * @throws InvalidStoreUrlError when the URL is not one of the forms above, or names an SQLite
 *   file that cannot work (a missing directory, a path under /proc, /sys or /dev, a FIFO).
 * @throws StoreNotFoundError with `mustExist` when the SQLite file does not exist.
 */
export async function openStore(
  url: string | undefined,
  opts: OpenStoreOptions = {},
): Promise<Store> {
  const logger = opts.logger ?? silentLogger();
  if (url !== undefined && url.trim() === "") {
    throw new InvalidStoreUrlError({
      url: "",
      reason:
        "the URL is empty; leave the setting out for the default store (sqlite in the user cache directory)",
    });
  }
  const text = url?.trim() ?? defaultStoreUrl();
  const isDefault = url === undefined;
  const parts = schemeAndRest(text);
  if (!parts) {
    throw new InvalidStoreUrlError({
      url: redact(text),
      reason: "expected SCHEME:..., e.g. sqlite:PATH",
    });
  }
  const { scheme, rest } = parts;
  const fail = (reason: string) =>
    new InvalidStoreUrlError({
      url: redact(text),
      // Parsed with a stray `@`, `/` or `?` in the password, pieces of it would show up in
      // the reason (as a host, a path or a parameter name); say how to fix it instead.
      reason: ambiguousCredentials(text)
        ? "cannot tell the password from the rest; percent-encode @, / and ? in it"
        : reason,
    });

  switch (scheme) {
    case "memory": {
      if (rest.replace(/^\/\//, "") !== "") throw fail("memory: takes nothing after the colon");
      return new MemoryStore({ logger });
    }
    case "sqlite": {
      if (rest.includes("?")) throw fail("sqlite: takes no query parameters");
      const { path, atDefault } = sqliteLocation(rest);
      if (path === ":memory:") return new SqliteStore(path, { logger });
      // Only the default location's directory is made; anywhere else a missing one is a typo.
      const problem = sqlitePathProblem(path, isDefault || atDefault);
      if (problem !== undefined) throw fail(problem);
      if (opts.mustExist && !existsSync(path)) throw new StoreNotFoundError(`sqlite:${path}`);
      return new SqliteStore(path, { logger });
    }
    case "memcached":
    case "memcached+srv":
    case "redis":
    case "rediss":
    case "redis+cluster":
    case "rediss+cluster":
      break;
    default:
      throw fail(
        `unknown scheme "${scheme}:"; use memory:, sqlite:PATH, memcached://HOST:PORT, memcached+srv://NAME, redis://, rediss:// or redis+cluster://`,
      );
  }

  const net = parseNetworkUrl(rest, fail);
  const q = net.query;
  const take = (name: string) => {
    const v = q.get(name);
    q.delete(name);
    return v ?? undefined;
  };
  const size = (name: string, dflt: number | undefined) => {
    const v = take(name);
    if (v === undefined) return dflt;
    const n = parseSize(v);
    if (n === undefined) throw fail(`${name}=${v} is not a size (e.g. 1048576, 512k, 1m)`);
    return n;
  };
  const duration = (name: string, dflt: number | undefined) => {
    const v = take(name);
    if (v === undefined) return dflt;
    const n = parseDuration(v);
    if (n === undefined) throw fail(`${name}=${v} is not a duration (e.g. 500ms, 5s, 1m)`);
    return n;
  };
  const timeoutMs = duration("timeout", opts.timeoutMs);
  const maxValueBytes = size("maxValueSize", opts.maxValueBytes);

  if (scheme === "memcached" || scheme === "memcached+srv") {
    if (net.username !== undefined || net.password !== undefined) {
      throw fail("memcached URLs take no user or password");
    }
    const itemSize = size("itemSize", opts.itemSize);
    if (itemSize !== undefined && itemSize < 2048) throw fail("itemSize must be at least 2k");
    let servers: StaticServers | SrvServers;
    if (scheme === "memcached") {
      for (const k of ["dns", "service", "refresh"]) {
        if (q.has(k)) throw fail(`${k}= applies to memcached+srv:// only`);
      }
      assertNoQuery(q, fail);
      servers = new StaticServers(net.hosts.map((h) => hostPort(h, 11211, fail)));
    } else {
      if (net.hosts.length !== 1 || net.hosts[0]!.includes(":")) {
        throw fail("memcached+srv:// takes one DNS name, e.g. memcached+srv://cache.example");
      }
      const dns = take("dns");
      const service = take("service") ?? opts.srvService;
      const refreshMs = duration("refresh", opts.srvRefreshMs);
      assertNoQuery(q, fail);
      if (service !== undefined && !/^[A-Za-z0-9-]{1,63}$/.test(service)) {
        throw fail(`service=${service} is not a service label`);
      }
      const dnsServers = dns ? dns.split(",").filter(Boolean) : opts.dnsServers;
      servers = new SrvServers({
        name: net.hosts[0]!,
        service,
        dnsServers,
        refreshMs,
        timeoutMs,
        logger,
      });
      await servers.refresh();
      if (servers.servers().length === 0) {
        logger.warn(
          { record: servers.record },
          "no memcached servers found yet; operations fail until the SRV records resolve",
        );
      }
    }
    // Loaded here, not at the top: `import "regscan"` must not load memjs (nor ioredis below).
    const { MemcachedStore } = await import("./stores/memcached.js");
    return new MemcachedStore({
      servers,
      name: `${scheme}://${net.hosts.join(",")}`,
      itemSize,
      maxValueBytes,
      timeoutMs,
      logger,
    });
  }

  const cluster = scheme.endsWith("+cluster");
  const tls = scheme.startsWith("rediss");
  const nodes = net.hosts.map((h) => {
    const hp = hostPort(h, 6379, fail);
    const at = hp.lastIndexOf(":");
    return { host: hp.slice(0, at).replace(/^\[(.*)\]$/, "$1"), port: Number(hp.slice(at + 1)) };
  });
  let db: number | undefined;
  if (net.path !== "") {
    if (cluster) throw fail("a Redis Cluster has no database number");
    if (!/^\d{1,2}$/.test(net.path)) throw fail(`"/${net.path}" is not a database number`);
    db = Number(net.path);
  }
  if (!cluster && nodes.length !== 1) {
    throw fail("redis:// takes one host; use redis+cluster://h1:p1,h2:p2 for a cluster");
  }
  const caFile = take("ca");
  if (caFile !== undefined && !tls) throw fail("ca= applies to rediss:// only");
  let tlsCa = opts.tlsCa;
  if (caFile !== undefined) {
    try {
      tlsCa = await readBoundedTextFile(caFile, CONFIG_FILE_MAX_BYTES);
    } catch (err) {
      const reason =
        err instanceof BoundedFileError ? err.reason : (err as NodeJS.ErrnoException).code;
      throw fail(`cannot read ca=${caFile}: ${reason ?? err}`);
    }
  }
  assertNoQuery(q, fail);
  const { RedisStore } = await import("./stores/redis.js");
  return new RedisStore({
    nodes,
    cluster,
    tls,
    tlsCa,
    username: net.username,
    password: net.password,
    db,
    timeoutMs,
    maxValueBytes,
    logger,
  });
}

interface NetworkUrl {
  username?: string | undefined;
  password?: string | undefined;
  hosts: string[];
  path: string;
  query: URLSearchParams;
}

/** Parses `//[user[:pass]@]host[:port][,host[:port]...][/path][?query]`. */
function parseNetworkUrl(rest: string, fail: (reason: string) => Error): NetworkUrl {
  if (!rest.startsWith("//")) throw fail("expected // after the scheme");
  let body = rest.slice(2);
  let query = new URLSearchParams();
  const qAt = body.indexOf("?");
  if (qAt >= 0) {
    query = new URLSearchParams(body.slice(qAt + 1));
    body = body.slice(0, qAt);
  }
  let path = "";
  const slash = body.indexOf("/");
  if (slash >= 0) {
    path = body.slice(slash + 1);
    body = body.slice(0, slash);
  }
  let username: string | undefined;
  let password: string | undefined;
  const at = body.lastIndexOf("@");
  if (at >= 0) {
    const userinfo = body.slice(0, at);
    body = body.slice(at + 1);
    const colon = userinfo.indexOf(":");
    try {
      username = decodeURIComponent(colon >= 0 ? userinfo.slice(0, colon) : userinfo) || undefined;
      password = colon >= 0 ? decodeURIComponent(userinfo.slice(colon + 1)) : undefined;
    } catch {
      throw fail("the user or password is not valid percent-encoding");
    }
  }
  const hosts = body.split(",").filter((h) => h !== "");
  if (hosts.length === 0) throw fail("no host given");
  return { username, password, hosts, path, query };
}

/** Normalises `host`, `host:port`, `[v6]`, `[v6]:port` to `host:port`. */
function hostPort(text: string, defaultPort: number, fail: (reason: string) => Error): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m) throw fail(`"${text}" is not HOST[:PORT]`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port < 1 || port > 65535) throw fail(`port ${m[2]} is out of range`);
  return `${m[1]}:${port}`;
}

function assertNoQuery(q: URLSearchParams, fail: (reason: string) => Error) {
  const left = [...q.keys()];
  if (left.length > 0) throw fail(`unknown parameter ${left.map((k) => `"${k}"`).join(", ")}`);
}

/**
 * The URL with any password replaced, fit for messages and logs. Conservative: everything
 * from the first `:` after `//` to the last `@` is hidden, so a password holding a raw `@`,
 * `/` or `?` is hidden whole (a URL with no password but an `@` later loses a bit more).
 */
export function redact(url: string): string {
  const region = credentialRegion(url);
  return region ? `${url.slice(0, region.start)}***${url.slice(region.end)}` : url;
}

/** Where a password may be in `url`: after the first `:` past `//`, up to the last `@`. */
function credentialRegion(url: string): { start: number; end: number } | undefined {
  const m = /^[a-z][a-z0-9+]*:\/\//i.exec(url);
  if (!m) return undefined;
  const end = url.lastIndexOf("@");
  const colon = url.indexOf(":", m[0].length);
  if (end < m[0].length || colon < 0 || colon > end) return undefined;
  return { start: colon + 1, end };
}

/**
 * Whether the `@` that ends the user info as parsed (the last one before any path or
 * query) is not the last `@` of the URL while a password may precede it: then part of
 * the password was read as a path or query.
 */
function ambiguousCredentials(url: string): boolean {
  const region = credentialRegion(url);
  if (!region) return false;
  const authorityEnd = url.slice(region.start).search(/[/?]/);
  return authorityEnd >= 0 && region.start + authorityEnd < region.end;
}
