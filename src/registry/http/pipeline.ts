/**
 * The transport pipeline in one place: the layers every request goes down, outermost first,
 * as DESIGN.md §2 lists them. A `Pipeline` is made once per factory and owns what clients
 * share (agents, rate limiters, host policies, tokens); `forRepository` gives one client its
 * chain.
 */
import type { Logger } from "pino";
import type { HostCredential } from "../credentials/credentials.js";
import { ClientClosedError } from "../errors.js";
import { authLayer } from "./auth.js";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "./deadline.js";
import { type DispatcherOptions, Dispatchers } from "./dispatchers.js";
import type { HttpRequest, Layer, Transport } from "./exchange.js";
import { observeLayer, type ResponseObserver } from "./observe.js";
import { Origins } from "./origin.js";
import { rateLimitLayer } from "./rate-limit.js";
import type { Priority, RateLimiters } from "./rate-limiters.js";
import type { HostResolver } from "./realm-policy.js";
import { followRedirects } from "./redirects.js";
import { type RetryOptions, retryLayer } from "./retry.js";
import { sendTransport } from "./send.js";
import { TokenCache } from "./token-cache.js";
import { retryLogger, traceLayer } from "./trace.js";

/** What the pipeline is made of. */
export interface PipelineOptions extends DispatcherOptions {
  logger: Logger;
  limiters: RateLimiters;
  trace: boolean;
  /**
   * Hosts (with or without port) that may skip TLS verification and fall back to plain
   * HTTP when HTTPS fails. Every other host is HTTPS with verification, always.
   */
  insecureHosts: readonly string[];
  userAgent: string;
  retry?: RetryOptions | undefined;
  /** Total deadline of one request, headers and body (default 60 s). */
  requestTimeoutMs?: number | undefined;
  observe?: ResponseObserver | undefined;
  /** How token realm names are resolved for the policy check (default: the system's). */
  resolveHost?: HostResolver | undefined;
  /** Clock for token expiry and `Retry-After` dates (tests). */
  now?: (() => number) | undefined;
}

/** The per-client transports. */
export interface RepositoryTransports {
  /** The whole pipeline: authenticates requests to the registry's host. */
  registry: Transport;
  /**
   * The same, following redirects (blobs): hops to other hosts go down the pipeline below
   * auth, without any credential.
   */
  redirecting: Transport;
}

/** The layers, by name, outermost first; the per-host dispatcher sends what leaves the last. */
export const PIPELINE_LAYERS = [
  "auth",
  "trace",
  "retry",
  "rate limit",
  "observe",
  "origin",
] as const;

type LayerName = (typeof PIPELINE_LAYERS)[number];

/** The client a chain authenticates for. */
interface ChainClient {
  host: string;
  scope: string;
  credential: (signal?: AbortSignal) => Promise<HostCredential | undefined>;
  /** Its requests go ahead of other clients' in the rate limiter (see `rateLimitLayer`). */
  priority: Priority;
}

/** The client `Pipeline#forRepository` makes a chain for. */
export interface RepositoryChainOptions {
  /** The registry's API host. */
  host: string;
  /** The token scope its requests ask for, e.g. `repository:library/alpine:pull`. */
  scope: string;
  /** The host's credential, looked up when a challenge asks for it. */
  credential: (signal?: AbortSignal) => Promise<HostCredential | undefined>;
  /** Go ahead of other clients' requests to the host (webhook and refresh scans). */
  priority?: Priority | undefined;
}

/** Shared transport state of one factory. */
export class Pipeline {
  readonly #tokens: TokenCache;
  readonly #origins: Origins;
  readonly #dispatchers: Dispatchers;
  readonly #opts: PipelineOptions;
  readonly #send: Transport;
  readonly #closed = new AbortController();

  constructor(opts: PipelineOptions) {
    this.#opts = opts;
    const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    // undici's idle timeouts stay a backstop behind the total deadline, which words it better.
    this.#dispatchers = new Dispatchers({
      ...opts,
      idleTimeoutMs: opts.idleTimeoutMs ?? requestTimeoutMs + 1000,
    });
    this.#send = sendTransport(this.#dispatchers, { requestTimeoutMs });
    this.#tokens = new TokenCache({ now: opts.now });
    // Pings go down the same layers as everything else, auth aside (the origin layer lets
    // their absolute URLs by); the quick first look at an insecure host (is it https at
    // all?) goes without retries. The chains are made on first use: they hold the origin
    // layer, which is being made here.
    // A ping is shared, so no caller's signal ends it; closing the pipeline does (it would
    // otherwise wait out a budget whose share went to 0 on a stopping daemon: hours).
    let ping: Transport | undefined;
    let probe: Transport | undefined;
    const closed = this.#closed.signal;
    this.#origins = new Origins({
      insecureHosts: opts.insecureHosts,
      ping: (req: HttpRequest) => {
        ping ??= this.#chain(this.#layers(), ["auth"]);
        return ping({ ...req, signal: req.signal ?? closed });
      },
      probe: (req: HttpRequest) => {
        probe ??= this.#chain(this.#layers(), ["auth", "retry"]);
        return probe({ ...req, signal: req.signal ?? closed });
      },
    });
  }

  /** The chain for one client of `host` asking for `scope`. */
  forRepository(client: RepositoryChainOptions): RepositoryTransports {
    // One set of layers for both: the client's rate-limit state is shared by its requests.
    const layers = this.#layers({ ...client, priority: client.priority ?? false });
    const registry = this.#chain(layers);
    const elsewhere = this.#chain(layers, ["auth"]);
    const isInsecure = (h: string) => this.#origins.isInsecure(h);
    return {
      registry,
      redirecting: (req) => followRedirects(req, { registry, elsewhere, isInsecure }),
    };
  }

  async close(): Promise<void> {
    this.#closed.abort(new ClientClosedError());
    await this.#dispatchers.close();
  }

  /**
   * The pipeline, outermost first. Rate limits are per client (a client halves its host's
   * rate once), so each call makes fresh layers.
   */
  #layers(client?: ChainClient): Record<LayerName, Layer> {
    const { logger, trace, limiters, retry, now, userAgent, observe } = this.#opts;
    const logRetry = retryLogger(logger, trace);
    return {
      auth: client
        ? authLayer({
            ...client,
            origins: this.#origins,
            tokens: this.#tokens,
            resolveHost: this.#opts.resolveHost,
          })
        : (next) => next,
      trace: traceLayer(logger, trace),
      retry: retryLayer({
        ...retry,
        onRetry: (info) => {
          retry?.onRetry?.(info);
          logRetry(info);
        },
      }),
      "rate limit": rateLimitLayer(limiters, { now, priority: client?.priority }),
      observe: observeLayer(userAgent, observe),
      origin: this.#origins.layer,
    };
  }

  /** The layers in pipeline order, but those `without`, over the dispatcher. */
  #chain(layers: Record<LayerName, Layer>, without: readonly LayerName[] = []): Transport {
    return PIPELINE_LAYERS.filter((name) => !without.includes(name)).reduceRight<Transport>(
      (next, name) => layers[name](next),
      this.#send,
    );
  }
}
