/**
 * Prometheus metrics for the registry side (Flux v1's `NewInstrumentedClient` and
 * `NewInstrumentedRegistry`): fetch durations of a `Client` and a `Registry`, and a counter
 * of HTTP requests that the transport feeds. Metrics go on a prom-client registry the
 * caller passes (a new one by default); creating them twice reuses the first.
 */
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import type { Counter, Histogram, Registry as PromRegistry } from "prom-client";
import { RegscanError } from "../errors.js";
import { aroundClientCalls, type Client } from "./client.js";
import type { Registry } from "./registry.js";

/** Label naming what a client fetched. */
export const LabelRequestKind = "kind";
/** `kind` of a tag listing. */
export const RequestKindTags = "tags";
/** `kind` of a manifest or `HEAD` (image metadata). */
export const RequestKindMetadata = "metadata";
/** Label saying whether the operation succeeded (`"true"` / `"false"`). */
export const LabelSuccess = "success";

/** Name of the `Client` fetch-duration histogram. */
export const ClientFetchDurationMetric = "regscan_client_fetch_duration_seconds";
/** Name of the `Registry` fetch-duration histogram. */
export const RegistryFetchDurationMetric = "regscan_registry_fetch_duration_seconds";
/** Name of the HTTP request counter. */
export const HttpRequestsMetric = "regscan_http_requests_total";
/** Name of the counter of listed tags dropped for breaking the tag grammar. */
export const InvalidTagsMetric = "regscan_registry_invalid_tags_total";

/** A metric name already registered as another kind of metric. */
export class MetricConflictError extends RegscanError {
  readonly code = "METRIC_CONFLICT";
  constructor(readonly metric: string) {
    super(`metric ${metric} is already registered as a different kind of metric`);
  }
}

type PromClient = typeof import("prom-client");
let promClientModule: PromClient | undefined;

/**
 * prom-client, loaded the first time a metric is made: it costs tens of milliseconds to load
 * and most runs of the CLI count nothing. It is CommonJS, so `require` returns the very
 * module (and classes) that an `import "prom-client"` elsewhere gets.
 */
function promClient(): PromClient {
  promClientModule ??= createRequire(import.meta.url)("prom-client") as PromClient;
  return promClientModule;
}

/** The metric `name` already on `register` (made by another instance), else `make()`. */
function registered<M>(metric: {
  register: PromRegistry;
  name: string;
  kind: abstract new (...args: never[]) => M;
  make: () => M;
}): M {
  const { register, name, kind, make } = metric;
  const existing = register.getSingleMetric(name);
  if (existing === undefined) return make();
  if (existing instanceof kind) return existing;
  throw new MetricConflictError(name);
}

/** The histogram `name` on `register`, made unless another instance made it already. */
function histogram<L extends string>(
  register: PromRegistry,
  metric: { name: string; help: string; labelNames: readonly L[] },
): Histogram<L> {
  const { name, help, labelNames } = metric;
  const prom = promClient();
  return registered({
    register,
    name,
    kind: prom.Histogram<L>,
    make: () => new prom.Histogram<L>({ name, help, labelNames, registers: [register] }),
  });
}

/** The counter `name` on `register`, made unless another instance made it already. */
function counter<L extends string>(
  register: PromRegistry,
  metric: { name: string; help: string; labelNames: readonly L[] },
): Counter<L> {
  const { name, help, labelNames } = metric;
  const prom = promClient();
  return registered({
    register,
    name,
    kind: prom.Counter<L>,
    make: () => new prom.Counter<L>({ name, help, labelNames, registers: [register] }),
  });
}

/** `regscan_client_fetch_duration_seconds{kind, success}`. */
export class ClientMetrics {
  readonly fetchDuration: Histogram<typeof LabelRequestKind | typeof LabelSuccess>;
  constructor(readonly register: PromRegistry = new (promClient().Registry)()) {
    this.fetchDuration = histogram(register, {
      name: ClientFetchDurationMetric,
      help: "Duration of image metadata fetches from registries, in seconds.",
      labelNames: [LabelRequestKind, LabelSuccess],
    });
  }
}

/** `regscan_registry_fetch_duration_seconds{success}`. */
export class RegistryMetrics {
  readonly fetchDuration: Histogram<typeof LabelSuccess>;
  constructor(readonly register: PromRegistry = new (promClient().Registry)()) {
    this.fetchDuration = histogram(register, {
      name: RegistryFetchDurationMetric,
      help: "Duration of image metadata requests answered by a Registry (e.g. from the cache), in seconds.",
      labelNames: [LabelSuccess],
    });
  }
}

/**
 * `regscan_http_requests_total{host, method, status}`, incremented by the transport, and
 * `regscan_registry_invalid_tags_total{host}`, by tag listings.
 */
export class HttpMetrics {
  readonly requests: Counter<"host" | "method" | "status">;
  readonly invalidTags: Counter<"host">;
  constructor(readonly register: PromRegistry = new (promClient().Registry)()) {
    this.invalidTags = counter(register, {
      name: InvalidTagsMetric,
      help: "Tags registries listed that break the tag grammar and were dropped, by host.",
      labelNames: ["host"],
    });
    this.requests = counter(register, {
      name: HttpRequestsMetric,
      help: "HTTP requests sent to registries and token services, by host, method and status (`error` when no answer came).",
      labelNames: ["host", "method", "status"],
    });
  }

  /** Counts one request; `status` is the HTTP status, or e.g. `"error"` when none came. */
  observe(request: { host: string; method: string; status: number | string }): void {
    const { host, method, status } = request;
    this.requests.inc({
      host: host.toLowerCase(),
      method: method.toUpperCase(),
      status: String(status),
    });
  }
}

async function timed<T>(
  observe: (success: boolean, seconds: number) => void,
  run: () => Promise<T>,
): Promise<T> {
  const start = performance.now();
  let success = false;
  try {
    const result = await run();
    success = true;
    return result;
  } finally {
    observe(success, (performance.now() - start) / 1000);
  }
}

/**
 * A `Client` that records the duration of every call: `tags` as kind `tags`, `manifest`
 * and `head` as kind `metadata`. Pass `ClientMetrics`, or a prom-client registry to put
 * them on (default: a new registry).
 */
export function instrumentClient(client: Client, metrics?: ClientMetrics | PromRegistry): Client {
  const m = metrics instanceof ClientMetrics ? metrics : new ClientMetrics(metrics);
  const observe = (kind: string) => (success: boolean, seconds: number) =>
    m.fetchDuration.observe({ [LabelRequestKind]: kind, [LabelSuccess]: String(success) }, seconds);
  return aroundClientCalls(client, (call, _opts, run) =>
    timed(observe(call === "tags" ? RequestKindTags : RequestKindMetadata), run),
  );
}

/**
 * A `Registry` that records the duration of every call. Pass `RegistryMetrics`, or a
 * prom-client registry to put them on (default: a new registry).
 */
export function instrumentRegistry(
  registry: Registry,
  metrics?: RegistryMetrics | PromRegistry,
): Registry {
  const m = metrics instanceof RegistryMetrics ? metrics : new RegistryMetrics(metrics);
  const observe = (success: boolean, seconds: number) =>
    m.fetchDuration.observe({ [LabelSuccess]: String(success) }, seconds);
  const instrumented: Registry = {
    getImageRepositoryMetadata: (name, opts) =>
      timed(observe, () => registry.getImageRepositoryMetadata(name, opts)),
    getImage: (ref, opts) => timed(observe, () => registry.getImage(ref, opts)),
  };
  const stream = registry.streamImageRepository?.bind(registry);
  // Only the opening is timed: the slices are read as fast as the reader takes them.
  if (stream)
    instrumented.streamImageRepository = (name, opts) => timed(observe, () => stream(name, opts));
  return instrumented;
}
