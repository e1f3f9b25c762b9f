/**
 * `RemoteClientFactory`: makes a `RemoteClient` per repository and credentials, sharing
 * one transport pipeline between them — agents, rate limiters, the challenge learnt per host
 * and the token cache — so that many clients cost one ping per host and one token per scope.
 */
import { createRequire } from "node:module";
import type { Logger } from "pino";
import type { Registry as MetricsRegistry } from "prom-client";
import type { Platform } from "../image/info.js";
import type { ImageName } from "../image/ref.js";
import { registerBudgetMetrics } from "./budget-metrics.js";
import type { Client, ClientFactory, ClientOptions, HostConditions } from "./client.js";
import type { Credentials, HostCredential } from "./credentials/credentials.js";
import type { ResponseObserver } from "./http/observe.js";
import { Pipeline } from "./http/pipeline.js";
import { RateLimiters, type RateLimitersOptions } from "./http/rate-limiters.js";
import type { HostResolver } from "./http/realm-policy.js";
import type { RetryOptions } from "./http/retry.js";
import { TagPageCaps } from "./http/tag-page-caps.js";
import { HttpMetrics } from "./instrument.js";
import { DEFAULT_PLATFORM, parsePlatform } from "./manifest/platform.js";
import { RemoteClient } from "./remote-client.js";
import { SharedLoads } from "./shared-loads.js";
import type { InvalidTagsReport } from "./tag-names.js";

/** Options of `RemoteClientFactory`; every one has a sensible default. */
export interface RemoteClientFactoryOptions {
  /** Where to log (pino); default: a silent logger. */
  logger?: Logger | undefined;
  /**
   * Per-host rate limiters to share, or what to make them with: the global rate (default 200
   * rps, burst 125) and budgets per host over the public registries' defaults.
   */
  limiters?: RateLimiters | Pick<RateLimitersOptions, "rps" | "burst" | "budgets"> | undefined;
  /** Log every request's method, URL, status and duration (never a header). */
  trace?: boolean | undefined;
  /**
   * Hosts (with or without port) that may skip TLS verification and fall back to plain
   * HTTP when HTTPS fails. Every other host is HTTPS with verification, always.
   */
  insecureHosts?: readonly string[] | undefined;
  /** The platform to describe when a tag is an index (default linux/amd64); `OS/ARCH[/VARIANT]` or a Platform. */
  platform?: Platform | string | undefined;
  /** Extra PEM CA bundles to trust (besides the system's and NODE_EXTRA_CA_CERTS). */
  caFiles?: readonly string[] | undefined;
  /**
   * Where to count HTTP requests by host, method and status (`regscan_http_requests_total`):
   * a prom-client registry or an `HttpMetrics`. Default: not counted.
   */
  metrics?: MetricsRegistry | HttpMetrics | undefined;
  /** Called after every HTTP request sent (host, method, status), e.g. to count them. */
  observe?: ResponseObserver | undefined;
  /** Most tag-list pages followed per listing (default 10,000). */
  maxTagPages?: number | undefined;
  /** Most tags accepted per repository (default 1,000,000). */
  maxTags?: number | undefined;
  /** Tags asked for per page (`n`, default 1000). */
  tagPageSize?: number | undefined;
  /** `User-Agent` of every request (default `regscan/<version>`). */
  userAgent?: string | undefined;
  /** Retry bounds (attempts, back-off, total time). */
  retry?: RetryOptions | undefined;
  /**
   * Total deadline of one request, headers and body together, in milliseconds (default
   * 60 s): a registry that never answers, or drips its body, fails with `TIMEOUT`.
   */
  requestTimeoutMs?: number | undefined;
  /** Total deadline of one whole tag listing, every page included (default 5 minutes). */
  tagListTimeoutMs?: number | undefined;
  /**
   * Bytes of manifests, and again of config blobs, each client keeps decoded so that tags
   * sharing them fetch them once (counted as their bodies' lengths; default 256 KiB).
   */
  maxCachedDigestBytes?: number | undefined;
  /** Environment for proxies and NODE_EXTRA_CA_CERTS (default `process.env`). */
  env?: NodeJS.ProcessEnv | undefined;
  /**
   * How token realm names are resolved for the realm policy (default: the system resolver,
   * `dns.lookup`). The token request connects to the addresses this returned.
   */
  resolveHost?: HostResolver | undefined;
  /** Clock for token expiry (tests). */
  now?: (() => number) | undefined;
}

/**
 * A logger that drops everything, for a factory given none. pino is loaded only then (it is
 * CommonJS, so `require` works here), since callers that pass a logger have loaded it already.
 */
function silentLogger(): Logger {
  const pino = createRequire(import.meta.url)("pino") as typeof import("pino");
  return pino.pino({ level: "silent" });
}

/** The library's `ClientFactory` for real registries. Call `close()` when done with it. */
export class RemoteClientFactory implements ClientFactory {
  /** The rate limiters requests go through (shared with whoever passed them in). */
  readonly limiters: RateLimiters;
  readonly #pipeline: Pipeline;
  readonly #platform: Platform;
  readonly #opts: RemoteClientFactoryOptions;
  readonly #counter: HttpMetrics | undefined;
  readonly #logger: Logger | undefined;
  readonly #tagPageCaps = new TagPageCaps();

  constructor(opts: RemoteClientFactoryOptions = {}) {
    this.#opts = opts;
    this.limiters =
      opts.limiters instanceof RateLimiters ? opts.limiters : new RateLimiters(opts.limiters ?? {});
    this.#platform =
      typeof opts.platform === "string"
        ? parsePlatform(opts.platform)
        : (opts.platform ?? { ...DEFAULT_PLATFORM });
    // No `instanceof` prom-client's Registry here: that would load prom-client for every
    // factory, metrics or not.
    const counter =
      opts.metrics === undefined
        ? undefined
        : opts.metrics instanceof HttpMetrics
          ? opts.metrics
          : new HttpMetrics(opts.metrics);
    this.#counter = counter;
    if (counter) registerBudgetMetrics(counter.register, this.limiters);
    this.#logger = opts.logger;
    this.#pipeline = new Pipeline({
      logger: opts.logger ?? silentLogger(),
      limiters: this.limiters,
      trace: opts.trace ?? false,
      insecureHosts: opts.insecureHosts ?? [],
      userAgent: opts.userAgent ?? "regscan/0.1.0",
      retry: opts.retry,
      requestTimeoutMs: opts.requestTimeoutMs,
      caFiles: opts.caFiles,
      env: opts.env,
      now: opts.now,
      resolveHost: opts.resolveHost,
      observe: (r) => {
        counter?.observe(r);
        opts.observe?.(r);
      },
    });
  }

  /** A client for `name` with `creds`; cheap, make one per repository scan. */
  clientFor(name: ImageName, creds: Credentials, opts: ClientOptions = {}): Client {
    const host = name.apiHost;
    // Looked up once per client; a failed look-up (a helper that timed out) is asked again.
    let known: { value: HostCredential | undefined } | undefined;
    const lookups = new SharedLoads<string, HostCredential | undefined>();
    const credential = async (signal?: AbortSignal) => {
      if (known) return known.value;
      const value = await lookups.run(host, (s) => creds.resolve(host, { signal: s }), signal);
      known = { value };
      return value;
    };
    return new RemoteClient({
      name,
      transports: this.#pipeline.forRepository({
        host,
        scope: `repository:${name.path}:pull`,
        credential,
        priority: opts.priority,
      }),
      platform: opts.platform ?? this.#platform,
      maxTagPages: this.#opts.maxTagPages ?? 10_000,
      maxTags: this.#opts.maxTags ?? 1_000_000,
      tagPageSize: this.#opts.tagPageSize ?? 1000,
      tagPageCaps: this.#tagPageCaps,
      tagListTimeoutMs: this.#opts.tagListTimeoutMs,
      maxCachedDigestBytes: this.#opts.maxCachedDigestBytes,
      onInvalidTags: (report) => this.#invalidTags(report),
    });
  }

  /** Dropped tags are logged (escaped) and counted; nothing else ever sees them. */
  #invalidTags(report: InvalidTagsReport): void {
    this.#counter?.invalidTags.inc({ host: report.host.toLowerCase() }, report.count);
    this.#logger?.warn(
      {
        host: report.host,
        repository: report.repository,
        dropped: report.count,
        examples: report.examples,
      },
      "registry listed tags that break the tag grammar; dropped",
    );
  }

  /** A whole pass over `name` went well: its host's rate may rise again (after the cool-down). */
  succeed(name: ImageName): void {
    this.limiters.recover(name.apiHost);
  }

  /** Whether `name`'s host reported a pull quota, and whether its request budget keeps up. */
  hostConditions(name: ImageName): HostConditions {
    const host = name.apiHost;
    const saturation = this.limiters.saturation(host);
    return {
      // Not from `state(host)`: a scan asks before each tag, and that builds the whole state.
      pullQuota: saturation.pullQuota,
      saturated: saturation.saturated,
      utilisation: saturation.utilisation,
      queueDelayMs: Math.max(saturation.queueDelayMs, saturation.pullDelayMs),
      requests: saturation.requests,
      waitedMs: saturation.waitedMs,
      rateRps: saturation.rate,
    };
  }

  /** Releases pooled connections. */
  async close(): Promise<void> {
    await this.#pipeline.close();
  }
}
