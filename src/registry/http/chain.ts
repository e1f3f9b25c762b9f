/**
 * Puts the transport chain together. A `TransportStack` is made once per factory and owns
 * what clients share (agents, rate limiters, pings, tokens); `forRepository` gives one
 * client its chain: auth -> trace -> retry -> rate limit -> count -> send.
 */
import type { Logger } from "pino";
import type { HostCredential } from "../credentials/credentials.js";
import { authTransport } from "./auth.js";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "./deadline.js";
import { type DispatcherOptions, Dispatchers } from "./dispatchers.js";
import type { Transport } from "./exchange.js";
import { PingCache } from "./ping.js";
import { rateLimitTransport } from "./rate-limit.js";
import type { RateLimiters } from "./rate-limiters.js";
import type { HostResolver } from "./realm-policy.js";
import { type RetryOptions, retryTransport } from "./retry.js";
import { type InsecurePolicy, sendTransport } from "./send.js";
import { TokenCache } from "./token-cache.js";
import { redactUrl, traceTransport } from "./trace.js";

/** Sees every request sent to the network: its status, or `error` when no answer came. */
export type ResponseObserver = (request: ObservedRequest) => void;

/** One request as observers see it (nothing secret: no headers, no query). */
export interface ObservedRequest {
  host: string;
  method: string;
  /** The HTTP status, or `error` when no answer came. */
  status: number | "error";
}

/** What the stack is made of. */
export interface TransportStackOptions extends DispatcherOptions {
  logger: Logger;
  limiters: RateLimiters;
  trace: boolean;
  isInsecure: InsecurePolicy;
  userAgent: string;
  retry?: RetryOptions;
  /** Total deadline of one request, headers and body (default 60 s). */
  requestTimeoutMs?: number;
  observe?: ResponseObserver;
  /** How token realm names are resolved for the policy check (default: the system's). */
  resolveHost?: HostResolver;
  /** Clock for token expiry and `Retry-After` dates (tests). */
  now?: () => number;
}

/** The per-client transports. */
export interface RepositoryTransports {
  /** Adds authentication for the registry's host. */
  registry: Transport;
  /** Adds nothing: for redirects to other hosts. */
  plain: Transport;
}

/** Shared transport state of one factory. */
export class TransportStack {
  readonly pings: PingCache;
  readonly tokens: TokenCache;
  readonly #dispatchers: Dispatchers;
  readonly #opts: TransportStackOptions;
  readonly #sender: Transport;

  constructor(opts: TransportStackOptions) {
    this.#opts = opts;
    const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    // undici's idle timeouts stay a backstop behind the total deadline, which words it better.
    this.#dispatchers = new Dispatchers({ idleTimeoutMs: requestTimeoutMs + 1000, ...opts });
    const send = sendTransport(this.#dispatchers, opts.isInsecure, { requestTimeoutMs });
    const userAgent = opts.userAgent;
    const observe = opts.observe;
    this.#sender = async (req) => {
      try {
        const res = await send({ ...req, headers: { "user-agent": userAgent, ...req.headers } });
        observe?.({ host: req.url.host, method: req.method, status: res.status });
        return res;
      } catch (err) {
        observe?.({ host: req.url.host, method: req.method, status: "error" });
        throw err;
      }
    };
    this.tokens = new TokenCache(opts.now ? { now: opts.now } : {});
    // Pings go through the same limits, retries and trace as everything else; the quick
    // first look at an insecure host (is it https at all?) goes without retries.
    this.pings = new PingCache(
      this.#unauthenticated(),
      opts.isInsecure,
      this.#unauthenticated({ retries: false }),
    );
  }

  /** The chain for one client of `host` asking for `scope`. */
  forRepository(
    host: string,
    scope: string,
    credential: (signal?: AbortSignal) => Promise<HostCredential | undefined>,
  ): RepositoryTransports {
    const plain = this.#unauthenticated();
    const registry = authTransport(plain, {
      host,
      scope,
      credential,
      pings: this.pings,
      tokens: this.tokens,
      tokenTransport: plain,
      isInsecure: this.#opts.isInsecure,
      ...(this.#opts.resolveHost ? { resolveHost: this.#opts.resolveHost } : {}),
    });
    return { registry, plain };
  }

  async close(): Promise<void> {
    await this.#dispatchers.close();
  }

  /**
   * trace -> retry -> rate limit -> count -> send (the retry layer left out with `retries`
   * false); a fresh rate-limit layer per call.
   */
  #unauthenticated({ retries = true }: { retries?: boolean } = {}): Transport {
    const { logger, trace, limiters, retry, now } = this.#opts;
    const limited = rateLimitTransport(this.#sender, limiters, now);
    if (!retries) return traceTransport(limited, logger, trace);
    const retried = retryTransport(limited, {
      ...retry,
      onRetry: (info) => {
        retry?.onRetry?.(info);
        const fields = {
          method: info.req.method,
          url: redactUrl(info.req.url),
          attempt: info.attempt,
        };
        const msg = `retrying after ${info.reason} in ${info.delayMs} ms`;
        if (trace) logger.info(fields, msg);
        else logger.debug(fields, msg);
      },
    });
    return traceTransport(retried, logger, trace);
  }
}
