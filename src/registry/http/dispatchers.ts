/**
 * The undici dispatchers regscan sends requests through: one keep-alive agent per TLS policy
 * (verified, or unverified for hosts the user listed as insecure), with extra CAs and the
 * proxies from HTTPS_PROXY / HTTP_PROXY / NO_PROXY. No global dispatcher is touched.
 */
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { Agent, type Dispatcher, EnvHttpProxyAgent } from "undici";
import { RegscanError } from "../../errors.js";
import { withTimeout } from "../abortable.js";

/** How the dispatchers are built. */
export interface DispatcherOptions {
  /** Extra PEM CA bundles to trust besides the system roots and `NODE_EXTRA_CA_CERTS`. */
  caFiles?: readonly string[];
  /** Where to read `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, `NODE_EXTRA_CA_CERTS` (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Idle keep-alive time of pooled connections (default 30 s). */
  keepAliveTimeoutMs?: number;
  /** Connections per origin (default 16). */
  connectionsPerOrigin?: number;
  /** undici's wait for the headers and between body chunks (default 60 s). */
  idleTimeoutMs?: number;
}

/** Owns the agents; `close()` releases their sockets. */
export class Dispatchers {
  readonly #verified: Dispatcher;
  readonly #unverified: Dispatcher;

  constructor(opts: DispatcherOptions = {}) {
    const env = opts.env ?? process.env;
    const ca = trustedCAs(opts.caFiles ?? [], env);
    const base = {
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 30_000,
      connections: opts.connectionsPerOrigin ?? 16,
      headersTimeout: opts.idleTimeoutMs ?? 60_000,
      bodyTimeout: opts.idleTimeoutMs ?? 60_000,
    };
    this.#verified = makeAgent(base, { rejectUnauthorized: true, ...(ca ? { ca } : {}) }, env);
    this.#unverified = makeAgent(base, { rejectUnauthorized: false }, env);
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
    const agents = [this.#verified, this.#unverified];
    const closing = Promise.all(agents.map((agent) => agent.close()));
    try {
      await withTimeout(closing, graceMs, () => new Error("close timed out"), true);
    } catch {
      closing.catch(() => {});
      await Promise.all(agents.map((agent) => agent.destroy()));
    }
  }
}

interface TlsOptions {
  rejectUnauthorized: boolean;
  ca?: string[];
}

function makeAgent(
  base: {
    keepAliveTimeout: number;
    connections: number;
    headersTimeout: number;
    bodyTimeout: number;
  },
  tls: TlsOptions,
  env: NodeJS.ProcessEnv,
): Dispatcher {
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
  constructor(
    readonly path: string,
    from: string,
    cause: unknown,
  ) {
    const why = (cause as { code?: unknown }).code;
    super(
      `cannot read the CA bundle ${path} (from ${from}): ${typeof why === "string" ? why : "unreadable"}`,
      {
        cause,
      },
    );
  }
}

function readCaFile(path: string, from: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new CaFileError(path, from, err);
  }
}
