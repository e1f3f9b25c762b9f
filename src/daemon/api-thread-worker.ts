/**
 * The API thread of `regscan serve` (started by src/daemon/api-thread.ts): the HTTP API on
 * an event loop of its own, reading the cache through its own store connection. What only
 * the warmer's thread knows (the status list, refreshes, webhook deliveries, its metrics)
 * is asked of it; what every read needs (the watch list, local statuses, tag events) it is
 * told as it changes, so that a read never waits for the warmer's thread.
 */
import { monitorEventLoopDelay, type PerformanceEntry, PerformanceObserver } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { parentPort, workerData } from "node:worker_threads";
import pino, { type Logger } from "pino";
import { Counter, Gauge, Registry as PromRegistry } from "prom-client";
import { openStore } from "../cache/open-store.js";
import type { Store } from "../cache/store.js";
import type { TagEvent } from "../cache/warmer-types.js";
import type { ImageName } from "../image/ref.js";
import type { ApiServer } from "../server/api-server.js";
import type {
  RefreshRequest,
  RefreshRequestOutcome,
  ReplayedEvent,
  RepositoryStatus,
  WarmerControl,
} from "../server/warmer-control.js";
import type { WebhookSink } from "../server/webhook-endpoint.js";
import { apiCache, createApiServer, webhookEndpoint } from "./api-server-setup.js";
import {
  type ApiThreadData,
  type FromApiThread,
  type LocalStatus,
  MainThreadCalls,
  type ToApiThread,
} from "./api-thread-protocol.js";

/** The warmer's control surface, answered from what the main thread told or is asked. */
class RemoteWarmerControl implements WarmerControl {
  readonly #calls: MainThreadCalls;
  #watched = new Set<string>();
  /** Made once per status handed over, not per read that asks (two thousand a second). */
  readonly #local = new Map<string, RepositoryStatus>();
  readonly #listeners = new Set<(event: TagEvent, id?: string) => void>();

  constructor(calls: MainThreadCalls) {
    this.#calls = calls;
  }

  watch(names: readonly string[]): void {
    this.#watched = new Set(names);
  }

  /** Keeps what the warmer said of each repository it scanned (a bounded set: the watched). */
  noteStatuses(statuses: readonly LocalStatus[]): void {
    for (const s of statuses) this.#local.set(s.repository, { ...s, scanning: false });
    if (this.#local.size > this.#watched.size * 2 + 1024) {
      for (const name of this.#local.keys()) if (!this.#watched.has(name)) this.#local.delete(name);
    }
  }

  emit(event: TagEvent, id?: string): void {
    for (const listener of this.#listeners) listener(event, id);
  }

  statuses(): Promise<RepositoryStatus[]> {
    return this.#calls.call("statuses");
  }

  /**
   * Built on the warmer's thread: a status list cloned here and serialized took the API
   * thread's loop for tens of milliseconds at 10,000 repositories, every reader's answer
   * waiting behind it (bench:scale at 200,000 tags, the replica the bench lists through).
   */
  statusListBody(): Promise<Uint8Array> {
    return this.#calls.call("statusListBody");
  }

  async isWatched(name: ImageName): Promise<boolean> {
    const key = name.toString();
    // A name not on the list may be one the lookup has just found: the main thread asks it.
    return this.#watched.has(key) || this.#calls.call("isWatched", key);
  }

  repositoryStatus(name: ImageName): RepositoryStatus | undefined {
    return this.#local.get(name.toString());
  }

  requestRefresh(name: ImageName, request?: RefreshRequest): Promise<RefreshRequestOutcome> {
    return this.#calls.call("requestRefresh", name.toString(), request);
  }

  subscribe(listener: (event: TagEvent, id?: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async replay(lastEventId: string): Promise<ReplayedEvent[] | undefined> {
    const events = await this.#calls.call("replay", lastEventId);
    return events?.flatMap(({ id, event }) => (id === undefined ? [] : [{ id, event }]));
  }
}

/** Node's `PerformanceEntry.detail.kind` of a GC, by its bit (as prom-client names them). */
const GC_KINDS: Record<number, string> = {
  1: "minor",
  2: "major",
  4: "incremental",
  8: "weakcb",
};

/** `/metrics`: the main thread's metrics, then this thread's (the API's and its reads'). */
class ThreadMetrics extends PromRegistry {
  readonly #calls: MainThreadCalls;

  constructor(calls: MainThreadCalls) {
    super();
    this.#calls = calls;
    // The main thread's `nodejs_heap_*` are its own isolate's: this thread's heap apart.
    new Gauge({
      name: "regscan_api_thread_heap_used_bytes",
      help: "V8 heap in use on the API thread (its own isolate; nodejs_heap_* are the warmer's thread's)",
      registers: [this],
      collect() {
        this.set(getHeapStatistics().used_heap_size);
      },
    });
    new Gauge({
      name: "regscan_api_thread_heap_limit_bytes",
      help: "the API thread's V8 heap limit",
      registers: [this],
      collect() {
        this.set(getHeapStatistics().heap_size_limit);
      },
    });
    this.#threadLoop();
  }

  /**
   * This thread's event-loop delay (p99 and longest since the last scrape, like
   * `nodejs_eventloop_lag_*`, which are the warmer's thread's) and its time in garbage
   * collection by kind: where a slow read's time went.
   */
  #threadLoop(): void {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const seconds = (ns: number) => (Number.isFinite(ns) ? ns / 1e9 : 0);
    new Gauge({
      name: "regscan_api_thread_eventloop_lag_p99_seconds",
      help: "the API thread's event-loop delay, 99th percentile since the last scrape",
      registers: [this],
      collect() {
        this.set(seconds(delay.percentile(99)));
      },
    });
    new Gauge({
      name: "regscan_api_thread_eventloop_lag_max_seconds",
      help: "the API thread's longest event-loop delay since the last scrape",
      registers: [this],
      collect() {
        this.set(seconds(delay.max));
        // After the p99's collect: the gauges are collected in the order they were made.
        delay.reset();
      },
    });
    const gc = new Counter({
      name: "regscan_api_thread_gc_seconds_total",
      help: "the API thread's time in garbage collection, by kind (minor, major, incremental, weakcb)",
      labelNames: ["kind"],
      registers: [this],
    });
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
        gc.inc({ kind: GC_KINDS[kind ?? 0] ?? "other" }, entry.duration / 1000);
      }
    }).observe({ entryTypes: ["gc"] });
  }

  override async metrics(): Promise<string> {
    const [main, own] = await Promise.all([this.#calls.call("metrics"), super.metrics()]);
    return `${main.endsWith("\n") || main === "" ? main : `${main}\n`}${own}`;
  }
}

/** Log lines go to the main thread, which writes them with its own. */
function threadLogger(port: NonNullable<typeof parentPort>, level: string): Logger {
  return pino(
    { level, base: null, timestamp: false },
    { write: (line: string) => port.postMessage({ type: "log", line } satisfies FromApiThread) },
  );
}

async function run(port: NonNullable<typeof parentPort>): Promise<void> {
  const { config, env } = workerData as ApiThreadData;
  const logger = threadLogger(port, config.log.level);
  // As on the main thread (the serve command): one failing piece of work must not take the
  // API down with it.
  process.on("unhandledRejection", (reason) =>
    logger.error(
      { err: { message: reason instanceof Error ? reason.message : String(reason) } },
      "unhandled rejection",
    ),
  );
  const calls = new MainThreadCalls(port);
  const control = new RemoteWarmerControl(calls);
  let server: ApiServer | undefined;
  let store: Store | undefined;
  let closing = false;
  port.on("message", (message: ToApiThread) => {
    switch (message.type) {
      case "watch":
        control.watch(message.names);
        break;
      case "statuses":
        control.noteStatuses(message.statuses);
        break;
      case "events":
        for (const { event, id } of message.events) control.emit(event, id);
        break;
      case "answer":
        calls.settle(message);
        break;
      case "close":
        if (closing) break;
        closing = true;
        void (async () => {
          try {
            await server?.close(message.graceMs);
          } finally {
            calls.failAll("the API thread is closing");
            await store?.close().catch(() => undefined);
            port.close();
          }
        })();
        break;
    }
  });
  try {
    store = await openStore(config.cache, { logger: logger.child({ component: "store" }) });
    const metrics = new ThreadMetrics(calls);
    const sink: WebhookSink = {
      deliver: (kind, events) => calls.call("deliver", kind, [...events]),
    };
    const webhooks = await webhookEndpoint({ config, env, sink, metrics, logger });
    server = createApiServer({
      config,
      cache: apiCache({ config, store, metrics, logger }),
      store,
      warmer: control,
      webhooks,
      metrics,
      logger,
    });
    const address = await server.listen(config.listen);
    port.postMessage({
      type: "listening",
      address: { address: address.address, family: address.family, port: address.port },
    } satisfies FromApiThread);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    port.postMessage({
      type: "failed",
      message: e.message,
      listen: e.syscall === "listen" ? (e.code ?? "UNKNOWN") : undefined,
    } satisfies FromApiThread);
    await store?.close().catch(() => undefined);
    port.close();
  }
}

if (parentPort) await run(parentPort);
