/**
 * The `regscan serve` daemon: wires configuration -> image sources -> credentials -> store
 * -> client factory -> warmer -> cache -> HTTP API, and owns the lifecycle. `stop()` stops
 * accepting requests, lets in-flight work finish within a bound, has the warmer write what
 * it fetched, and closes the store.
 */
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { type Registry as MetricsRegistry, Registry as PromRegistry } from "prom-client";
import { withTimeout } from "../abort.js";
import { LoopBrake } from "../cache/loop-brake.js";
import { isProcessLocalStore, openStore } from "../cache/open-store.js";
import type { Store } from "../cache/store.js";
import { Warmer } from "../cache/warmer.js";
import type { Config } from "../config/schema.js";
import { RegscanError } from "../errors.js";
import type { ClientFactory } from "../registry/client.js";
import type { RateLimiters } from "../registry/http/rate-limiters.js";
import { ImageFilter } from "../sources/image-glob.js";
import { combineSources, type ImageSource, StaticSource } from "../sources/image-source.js";
import { ImagesFileSource } from "../sources/images-file-source.js";
import { KubernetesSource } from "../sources/kubernetes-source.js";
import { apiCache, createApiServer, webhookEndpoint } from "./api-server-setup.js";
import { ApiThread, ApiThreadStartError } from "./api-thread.js";
import { brakeClients, createClientFactory } from "./client-factory.js";
import { withCredentials } from "./credential-sources.js";
import { priorityScanRunner } from "./priority-scan.js";
import { processMetricsRegistry } from "./process-metrics.js";
import { publishRecordWrites } from "./record-notice-publisher.js";
import { RefreshCoalescer } from "./refresh-coalescer.js";
import { StretchBoard, shareBudgets } from "./replica-census.js";
import { repositoryOptions } from "./repository-options.js";
import { tagEventFeed } from "./tag-event-feed.js";
import { WarmerPriority } from "./warmer-priority.js";
import { DaemonWarmerControl, WatchList } from "./watch-list.js";
import { WebhookRefresher } from "./webhook-refresher.js";

/** No image source is configured: there is nothing to watch. */
export class NoImagesError extends RegscanError {
  readonly code = "NO_IMAGES";
  constructor() {
    super(
      "no images to watch. Give some with --image REF (repeatable), REGSCAN_IMAGES=a,b, " +
        "`repositories:` in a --config file, an images file (--images-file PATH), or a Kubernetes " +
        "cluster (--kubernetes). Example: regscan serve --image alpine --image ghcr.io/org/app",
    );
  }
}

/** The daemon could not listen on its address. */
export class ListenError extends RegscanError {
  readonly code = "LISTEN_FAILED";
}

/**
 * How long the store, client pool and sources get to close, together, after the shutdown
 * bound (deployments allow for it: 20 s bound + 5 s < 30 s grace in deploy/ and systemd).
 */
const DEFAULT_CLOSE_BOUND_MS = 5_000;
/**
 * The warmer thread's nice value when the API has a thread of its own and none is set
 * (bench:scale at 200,000 tags, reads under 50 clients during the fill: p99 637 ms with the
 * API on the warmer's thread, 302 ms on its own beside a warmer at 10, 170 ms at 19; the
 * fill took as long). 10 rather than 19: on a host shared without cgroups the warmer also
 * yields to every other process, and its freshness with it.
 */
const THREADED_WARMER_NICE = 10;

/** After "serving", the scans that found something are what an operator wants to see. */
function logScansThatChanged(warmer: Warmer, logger: Logger): void {
  warmer.onScan((result) => {
    if (result.newTags.length === 0 && result.movedTags.length === 0) return;
    const shown = (tags: string[]) => (tags.length > 20 ? [...tags.slice(0, 20), "..."] : tags);
    logger.info(
      {
        repository: result.repository,
        newTags: shown(result.newTags),
        movedTags: shown(result.movedTags),
        tags: result.tags,
        durationMs: result.durationMs,
      },
      `scan found ${result.newTags.length} new and ${result.movedTags.length} moved tag(s)`,
    );
  });
}

/** What {@link webhookRefresher} wires together. */
interface WebhookRefresherParts {
  config: Config;
  watch: WatchList;
  warmer: Warmer;
  metrics: MetricsRegistry;
  logger: Logger;
  /** Where the coalescer's and refresher's closers are added (the daemon runs them at stop). */
  cleanup: Array<() => Promise<void> | void>;
}

/**
 * The refresher webhook events feed, with a coalescer of its own: events of one repository
 * closer than `server.webhookWindow` become one refresh, a burst waiting at most eight
 * windows. The receivers that feed it are made with the API (`webhookEndpoint`).
 */
function webhookRefresher(opts: WebhookRefresherParts): WebhookRefresher | undefined {
  const { config, watch, warmer, metrics, logger, cleanup } = opts;
  if (!config.webhooks) return undefined;
  const window = config.server.webhookWindow;
  const log = logger.child({ component: "webhooks" });
  const refreshes = new RefreshCoalescer({
    run: priorityScanRunner(warmer),
    minGapMs: window,
    settleMs: window,
    settleMaxMs: window * 8,
    onError: (repository, err) =>
      log.warn({ repository, err: { message: (err as Error).message } }, "webhook refresh failed"),
  });
  cleanup.push(() => refreshes.close());
  const refresher = new WebhookRefresher({
    watched: () => watch.list(),
    refreshes,
    onScan: (listener) => warmer.onScan(listener),
    metrics,
    logger: log,
  });
  cleanup.push(() => refresher.close());
  return refresher;
}

/** What the daemon is started with. */
export interface DaemonOptions {
  /** The effective configuration (from `loadConfig`). */
  config: Config;
  logger: Logger;
  /** Where `DOCKER_CONFIG` is read (default: `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Overrides for tests: the store and the client factory. */
  store?: Store;
  factory?: ClientFactory;
  /**
   * How long the store, client pool and sources get to close, together, after the shutdown
   * bound (default 5 s, which deployments' termination grace allows for).
   */
  closeBoundMs?: number;
}

/** What the daemon stops: the API server, or the thread that serves it. */
interface ApiEndpoint {
  close(graceMs: number): Promise<void>;
}

/** What a started daemon holds on to (built by {@link Daemon.start}). */
interface DaemonParts {
  address: AddressInfo;
  metrics: MetricsRegistry;
  server: ApiEndpoint;
  warmer: Warmer;
  warming: Promise<void>;
  abort: AbortController;
  /** Closes sources, the client factory and the store, in reverse order of opening. */
  closers: Array<() => Promise<void> | void>;
  logger: Logger;
  shutdownMs: number;
  closeBoundMs: number;
}

/** A running daemon. */
export class Daemon {
  readonly address: AddressInfo;
  readonly metrics: MetricsRegistry;
  readonly #server: ApiEndpoint;
  readonly #warmer: Warmer;
  readonly #warming: Promise<void>;
  readonly #abort: AbortController;
  readonly #closers: Array<() => Promise<void> | void>;
  readonly #logger: Logger;
  readonly #shutdownMs: number;
  readonly #closeBoundMs: number;
  #stopping: Promise<boolean> | undefined;

  private constructor(parts: DaemonParts) {
    this.address = parts.address;
    this.metrics = parts.metrics;
    this.#server = parts.server;
    this.#warmer = parts.warmer;
    this.#warming = parts.warming;
    this.#abort = parts.abort;
    this.#closers = parts.closers;
    this.#logger = parts.logger;
    this.#shutdownMs = parts.shutdownMs;
    this.#closeBoundMs = parts.closeBoundMs;
  }

  /** Starts everything; rejects with a clear error (and nothing left running) on failure. */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const { config, logger } = opts;
    const env = opts.env ?? process.env;
    const table = repositoryOptions(config);
    const sources: ImageSource[] = [];
    if (table.names.length > 0) sources.push(new StaticSource(table.names));
    const cleanup: Array<() => Promise<void> | void> = [];
    let fileSource: ImagesFileSource | undefined;
    try {
      if (config.sources.file) {
        const file = new ImagesFileSource(config.sources.file.path, {
          logger,
          pollMs: config.sources.file.pollInterval,
        });
        await file.start();
        cleanup.push(() => file.close());
        sources.push(file);
        fileSource = file;
      }
      if (config.sources.kubernetes?.enabled) {
        const k = config.sources.kubernetes;
        sources.push(
          new KubernetesSource({
            logger,
            kubeconfig: k.kubeconfig,
            context: k.context,
            namespaces: k.namespaces,
            excludeNamespaces: k.excludeNamespaces,
          }),
        );
      }
      if (sources.length === 0) throw new NoImagesError();

      const filter = new ImageFilter(config.images.include, config.images.exclude);
      const watch = new WatchList(
        await withCredentials({
          lookup: combineSources(sources, filter, logger),
          config,
          env,
          logger,
        }),
      );

      const metrics = processMetricsRegistry();
      const store =
        opts.store ??
        (await openStore(config.cache, { logger: logger.child({ component: "store" }) }));
      cleanup.push(() => store.close());
      let factory = opts.factory;
      let limiters: RateLimiters | undefined;
      if (!factory) {
        const made = createClientFactory(config, logger, metrics);
        cleanup.push(() => made.close());
        factory = made.factory;
        limiters = made.limiters;
      }
      // The API on a thread of its own reads through a connection of its own (not a store
      // in this process's memory, which another thread would not see).
      const ownThread =
        config.server.apiThread && opts.store === undefined && !isProcessLocalStore(config.cache);
      // When the API's reads and the warmer share one event loop: while it is busy, the
      // warmer's regular scans and their registry requests wait a moment (bounded) so that
      // reads get it (src/cache/loop-brake.ts; bench:scale's reads while warming). With the
      // API on its own thread that would slow the warmer for nothing.
      const brake = ownThread ? undefined : new LoopBrake();
      if (brake) factory = brakeClients(factory, brake);
      // The replicas' interval stretches, carried by the census: one factor per host for all.
      const stretches = new StretchBoard();
      const warmer = new Warmer({
        loopBrake: brake,
        stretchPeers: stretches,
        store,
        factory,
        lookup: watch.tracked,
        repositoryOptions: table.optionsFor,
        burst: config.registry.burst,
        intervalMs: config.warmer.interval,
        refreshJitter: config.warmer.refreshJitter,
        maxIntervalFactor: config.warmer.maxIntervalFactor,
        concurrency: config.warmer.concurrency,
        perHostConcurrency: config.warmer.perHostConcurrency,
        maxTagsInFlight: config.warmer.maxTagsInFlight,
        pollTags: config.warmer.pollTags,
        leaseTtlMs: config.warmer.leaseTtl,
        owner: config.replicaId,
        logger: logger.child({ component: "warmer" }),
        metricsRegistry: metrics,
        tagsCachedByRepository: config.warmer.tagsCachedByRepository,
      });
      // Replicas on one store share each registry's request budget (README: Scaling out).
      const census = await shareBudgets({
        store,
        owner: warmer.owner,
        limiters,
        logger,
        metrics,
        stretches,
      });
      cleanup.push(() => census.stop());
      // With the API on its own thread, this thread's cache serves the status list only, and
      // the read durations exported are the thread's.
      const cache = apiCache({
        config,
        store,
        metrics: ownThread ? new PromRegistry() : metrics,
        logger,
      });
      const refreshes = new RefreshCoalescer({
        run: priorityScanRunner(warmer),
        minGapMs: config.server.refreshMinGap,
        onError: (repository, err) =>
          logger.warn(
            { repository, err: { message: (err as Error).message } },
            "priority refresh failed",
          ),
      });
      cleanup.push(() => refreshes.close());
      logScansThatChanged(warmer, logger);
      const feed = tagEventFeed({
        store,
        warmer,
        replica: warmer.owner,
        logger: logger.child({ component: "events" }),
      });
      cleanup.push(() => feed.close());
      cleanup.push(publishRecordWrites(store, warmer, logger.child({ component: "notices" })));
      const webhookSink = webhookRefresher({ config, watch, warmer, metrics, logger, cleanup });
      const control = new DaemonWarmerControl({ warmer, cache, watch, logger, refreshes, feed });
      let server: ApiEndpoint;
      let address: AddressInfo;
      try {
        if (ownThread) {
          let priority: WarmerPriority | undefined;
          const thread = await ApiThread.start({
            config,
            env,
            logger,
            control,
            watch,
            warmer,
            metrics,
            webhookSink,
            startThread: (start) => (priority ? priority.startThread(start) : start()),
          });
          server = thread;
          address = thread.address;
          // Lowered once the thread runs, which keeps the priority it started with.
          priority = WarmerPriority.lower(config.server.warmerNice ?? THREADED_WARMER_NICE, logger);
          cleanup.push(() => priority?.restore());
        } else {
          const api = createApiServer({
            config,
            cache,
            store,
            warmer: control,
            webhooks:
              webhookSink &&
              (await webhookEndpoint({ config, env, sink: webhookSink, metrics, logger })),
            metrics,
            logger,
          });
          server = api;
          address = await api.listen(config.listen);
          const nice = config.server.warmerNice;
          if (nice !== undefined) {
            const priority = WarmerPriority.lower(nice, logger);
            cleanup.push(() => priority.restore());
          }
        }
      } catch (err) {
        const code =
          err instanceof ApiThreadStartError
            ? err.listenCode
            : (err as NodeJS.ErrnoException).syscall === "listen"
              ? ((err as NodeJS.ErrnoException).code ?? "UNKNOWN")
              : undefined;
        if (code === undefined) throw err;
        throw new ListenError(
          `cannot listen on ${config.listen}: ${code === "EADDRINUSE" ? "the address is already in use" : code === "EACCES" ? "permission denied" : (err as Error).message}`,
        );
      }
      if (fileSource) {
        let known = new Set(fileSource.names());
        // Repositories added to the file are scanned now, not at the next lookup.
        fileSource.onChange((names) => {
          const added = names.filter((n) => !known.has(n));
          known = new Set(names);
          // The watch list is asked again at once, so removals show in the API too.
          Promise.resolve(watch.tracked()).then(
            () => {
              for (const name of added) warmer.prioritize(name);
            },
            (err: unknown) =>
              logger.warn({ err: { message: (err as Error).message } }, "image lookup failed"),
          );
        });
      }
      const abort = new AbortController();
      const warming = warmer.start(abort.signal).catch((err: unknown) => {
        logger.error(
          { err: { message: (err as Error).message } },
          "the warmer stopped unexpectedly",
        );
      });
      logger.info(
        {
          listen: `${address.address}:${address.port}`,
          owner: warmer.owner,
          sources: sources.map((s) => s.name),
          // Which thread answers the API: its own, or the warmer's (a store in memory).
          apiThread: ownThread,
        },
        "regscan serving",
      );
      return new Daemon({
        address,
        metrics,
        server,
        warmer,
        warming,
        abort,
        closers: cleanup,
        logger,
        shutdownMs: config.server.shutdownTimeout,
        closeBoundMs: opts.closeBoundMs ?? DEFAULT_CLOSE_BOUND_MS,
      });
    } catch (err) {
      for (const step of cleanup.reverse()) {
        try {
          await step();
        } catch {
          // Already failing; the first error is the one to report.
        }
      }
      throw err;
    }
  }

  /** The warmer, for callers that want its events or status. */
  get warmerInstance(): Warmer {
    return this.#warmer;
  }

  /**
   * Stops the daemon: no new requests, in-flight ones and the warmer's scans get up to the
   * shutdown bound to finish (the warmer writes what it fetched), then the store is closed.
   * Resolves to true when everything finished within the bound.
   */
  stop(): Promise<boolean> {
    this.#stopping ??= this.#doStop();
    return this.#stopping;
  }

  async #doStop(): Promise<boolean> {
    const bound = this.#shutdownMs;
    this.#logger.info({ boundMs: bound }, "shutting down");
    this.#abort.abort();
    const inTime = await withTimeout(
      Promise.all([this.#server.close(Math.max(0, bound - 500)), this.#warming]),
      { ms: bound, onTimeout: () => new Error(`did not stop within ${bound} ms`), keepAlive: true },
    ).then(
      () => true,
      () => false,
    );
    if (!inTime)
      this.#logger.warn(
        { boundMs: bound },
        "shutdown bound reached; closing with work still in flight",
      );
    let closed = true;
    // A store or pool that never answers its close must not keep the process alive.
    const closeBy = Date.now() + this.#closeBoundMs;
    for (const close of [...this.#closers].reverse()) {
      try {
        const left = Math.max(0, closeBy - Date.now());
        await withTimeout(Promise.resolve().then(close), {
          ms: left,
          onTimeout: () => new Error(`did not close within ${left} ms`),
          keepAlive: true,
        });
      } catch (err) {
        this.#logger.error({ err: { message: (err as Error).message } }, "closing failed");
        closed = false;
      }
    }
    this.#logger.info("stopped");
    return inTime && closed;
  }
}
