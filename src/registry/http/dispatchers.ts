/**
 * The undici dispatchers regscan sends requests through: one keep-alive agent per TLS policy
 * (verified, or unverified for hosts the user listed as insecure), with extra CAs and the
 * proxies from HTTPS_PROXY / HTTP_PROXY / NO_PROXY. No global dispatcher is touched.
 */
import { rootCertificates } from "node:tls";
import { Agent, type Dispatcher, EnvHttpProxyAgent } from "undici";
import { withTimeout } from "../../abort.js";
import { RegscanError } from "../../errors.js";
import { CONFIG_FILE_MAX_BYTES, readBoundedFileSync } from "../../files/bounded-file.js";
import { type PinnedAddress, pinKey, pinnedLookup } from "./pinned-lookup.js";
import { CONNECTIONS_PER_HOST } from "./rate-limiters.js";

/** How the dispatchers are built. */
export interface DispatcherOptions {
  /** Extra PEM CA bundles to trust besides the system roots and `NODE_EXTRA_CA_CERTS`. */
  caFiles?: readonly string[] | undefined;
  /** Where to read `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, `NODE_EXTRA_CA_CERTS` (default `process.env`). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Idle keep-alive time of pooled connections (default 30 s). */
  keepAliveTimeoutMs?: number | undefined;
  /** Connections per origin (default `CONNECTIONS_PER_HOST`, as many as the limiter lets be in flight). */
  connectionsPerOrigin?: number | undefined;
  /** undici's wait for the headers and between body chunks (default 60 s). */
  idleTimeoutMs?: number | undefined;
}

/** undici's own connect timeout, TLS handshake included: the most a connection may take. */
const MAX_CONNECT_TIMEOUT_MS = 10_000;

/** Agents kept for pinned hosts (token realms); the oldest is closed beyond this. */
const MAX_PINNED_AGENTS = 16;

/** Owns the agents; `close()` releases their sockets. */
export class Dispatchers {
  readonly #verified: Dispatcher;
  readonly #unverified: Dispatcher;
  readonly #base: AgentBase;
  /** TLS for verified hosts: the configured CAs when there are any, else Node's own bundle. */
  readonly #verifiedTls: TlsOptions;
  readonly #connectTimeoutMs: number;
  readonly #proxied: boolean;
  readonly #pinned = new Map<string, Dispatcher>();

  constructor(opts: DispatcherOptions = {}) {
    const env = opts.env ?? process.env;
    const ca = trustedCAs(opts.caFiles ?? [], env);
    const base = {
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 30_000,
      connections: opts.connectionsPerOrigin ?? CONNECTIONS_PER_HOST,
      headersTimeout: opts.idleTimeoutMs ?? 60_000,
      bodyTimeout: opts.idleTimeoutMs ?? 60_000,
    };
    // A connection (a TLS handshake that never finishes) is not held past the idle bound
    // either: the request deadline ends the request, and this lets its socket go with it.
    const timeout = Math.min(opts.idleTimeoutMs ?? MAX_CONNECT_TIMEOUT_MS, MAX_CONNECT_TIMEOUT_MS);
    this.#connectTimeoutMs = timeout;
    const verifiedTls: TlsOptions = { rejectUnauthorized: true, timeout };
    if (ca) verifiedTls.ca = ca;
    this.#verifiedTls = verifiedTls;
    this.#verified = makeAgent(base, verifiedTls, env);
    this.#unverified = makeAgent(base, { rejectUnauthorized: false, timeout }, env);
    this.#base = base;
    this.#proxied = Boolean(env.https_proxy ?? env.HTTPS_PROXY ?? env.http_proxy ?? env.HTTP_PROXY);
  }

  /**
   * The dispatcher for a host whose addresses a policy checked: its connections use those
   * addresses and never ask DNS again. Through a proxy the proxy resolves the name, so the
   * usual dispatcher is used.
   */
  pinned(pin: {
    insecure: boolean;
    hostname: string;
    addresses: readonly PinnedAddress[];
  }): Dispatcher {
    const { insecure, hostname, addresses } = pin;
    if (this.#proxied) return this.for(insecure);
    const key = `${insecure ? "insecure" : "verified"}|${pinKey(hostname, addresses)}`;
    let agent = this.#pinned.get(key);
    if (agent === undefined) {
      const timeout = this.#connectTimeoutMs;
      const tls = insecure ? { rejectUnauthorized: false, timeout } : this.#verifiedTls;
      agent = new Agent({
        ...this.#base,
        connect: { ...tls, lookup: pinnedLookup(hostname, addresses) },
      });
      this.#pinned.set(key, agent);
      for (const [oldKey, old] of this.#pinned) {
        if (this.#pinned.size <= MAX_PINNED_AGENTS) break;
        this.#pinned.delete(oldKey);
        old.close().catch(() => {});
      }
    }
    return agent;
  }

  /** The dispatcher for a host: unverified TLS only when the caller says the host is insecure. */
  for(insecure: boolean): Dispatcher {
    return insecure ? this.#unverified : this.#verified;
  }

  /**
   * Lets requests in flight finish for up to `graceMs`, then destroys the sockets: a registry
   * that stopped answering must not hold a shutting-down process.
   */
  async close(graceMs = 1000): Promise<void> {
    const agents = [this.#verified, this.#unverified, ...this.#pinned.values()];
    this.#pinned.clear();
    const closing = Promise.all(agents.map((agent) => agent.close()));
    try {
      await withTimeout(closing, {
        ms: graceMs,
        onTimeout: () => new Error("close timed out"),
        keepAlive: true,
      });
    } catch {
      closing.catch(() => {});
      await Promise.all(agents.map((agent) => agent.destroy()));
    }
  }
}

interface TlsOptions {
  rejectUnauthorized: boolean;
  ca?: string[];
  /** Connect timeout (TCP and TLS handshake), ms. */
  timeout?: number;
}

interface AgentBase {
  keepAliveTimeout: number;
  connections: number;
  headersTimeout: number;
  bodyTimeout: number;
}

function makeAgent(base: AgentBase, tls: TlsOptions, env: NodeJS.ProcessEnv): Dispatcher {
  const httpsProxy = env.https_proxy ?? env.HTTPS_PROXY;
  const httpProxy = env.http_proxy ?? env.HTTP_PROXY;
  if (!httpsProxy && !httpProxy) return new Agent({ ...base, connect: tls });
  // The proxy itself is reached with the default verified TLS; `requestTls` applies the
  // host's policy to the tunnelled connection.
  return new EnvHttpProxyAgent({
    ...base,
    connect: tls,
    requestTls: tls,
    httpProxy: httpProxy ?? "",
    httpsProxy: httpsProxy ?? httpProxy ?? "",
    noProxy: env.no_proxy ?? env.NO_PROXY ?? "",
  });
}

/**
 * Passing `ca` to TLS replaces the root store, so the system roots are added back. The
 * NODE_EXTRA_CA_CERTS of `env` is read here too: Node reads only its own at start-up.
 */
function trustedCAs(caFiles: readonly string[], env: NodeJS.ProcessEnv): string[] | undefined {
  const extra = env.NODE_EXTRA_CA_CERTS;
  if (caFiles.length === 0 && !extra) return undefined;
  const ca = [...rootCertificates];
  if (extra) ca.push(readCaFile(extra, "NODE_EXTRA_CA_CERTS"));
  for (const file of caFiles) ca.push(readCaFile(file, "caFiles"));
  return ca;
}

/** Thrown when a CA bundle that was asked for cannot be read. */
export class CaFileError extends RegscanError {
  readonly code = "CA_FILE_UNREADABLE";
  readonly path: string;

  /** `from` names the setting that asked for the file, e.g. `caFiles`. */
  constructor(failed: { path: string; from: string; cause: unknown }) {
    const { path, from, cause } = failed;
    const why = (cause as { code?: unknown }).code;
    super(
      `cannot read the CA bundle ${path} (from ${from}): ${typeof why === "string" ? why : "unreadable"}`,
      {
        cause,
      },
    );
    this.path = path;
  }
}

function readCaFile(path: string, from: string): string {
  try {
    // Bounded, and regular files only: a FIFO or a device named as a CA bundle must fail.
    return readBoundedFileSync(path, CONFIG_FILE_MAX_BYTES).toString("utf8");
  } catch (err) {
    throw new CaFileError({ path, from, cause: err });
  }
}
