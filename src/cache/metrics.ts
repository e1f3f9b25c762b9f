/**
 * Prometheus metrics of the cache and the warmer, registered on a registry the caller
 * passes (prom-client's global one by default). Creating them twice on one registry reuses
 * the first set, so a Cache and a Warmer (or two tests) can share a registry.
 */
import { createRequire } from "node:module";
import type { Counter, Gauge, Histogram, Registry } from "prom-client";

type PromClient = typeof import("prom-client");
let promClientModule: PromClient | undefined;

/**
 * prom-client, required when the first metric is made rather than imported at the top, so
 * that `import "regscan"` does not load it (CommonJS: the same module an import would give).
 */
function promClient(): PromClient {
  promClientModule ??= createRequire(import.meta.url)("prom-client") as PromClient;
  return promClientModule;
}

function once<T>(registry: Registry, name: string, make: () => T): T {
  const existing = registry.getSingleMetric(name);
  return existing ? (existing as unknown as T) : make();
}

/** `regscan_cache_request_duration_seconds{method,success}`: the Cache's answers. */
export function cacheRequestDuration(
  registry: Registry = promClient().register,
): Histogram<string> {
  const { Histogram } = promClient();
  return once(
    registry,
    "regscan_cache_request_duration_seconds",
    () =>
      new Histogram({
        name: "regscan_cache_request_duration_seconds",
        help: "Duration of cache requests (getImageRepositoryMetadata, getImage, and opening streamImageRepository), in seconds.",
        labelNames: ["method", "success"],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers: [registry],
      }),
  );
}

/** The warmer's counters and gauge. */
export interface WarmerMetrics {
  /** Repository scans, by result (`ok`, `failed`, `aborted`, `skipped`). */
  repositoriesScanned: Counter<string>;
  /** Tags whose metadata was fetched with a `GET` (new or moved). */
  tagsRefreshed: Counter<string>;
  /** Tags past their deadline that a `HEAD` showed unchanged, so no `GET` was made. */
  getsAvoidedByHead: Counter<string>;
  /**
   * Tags the cache holds, by repository, as of the repository's last scan by this warmer;
   * absent when made with `tagsCachedByRepository: false` (a series per repository).
   */
  tagsCached: Gauge<string> | undefined;
  /** Tags not yet in the index, by how they were first asked for (`first`: `head` or `get`). */
  newTagFetches: Counter<string>;
  /** How many times the configured intervals are stretched, per registry host. */
  intervalStretch: Gauge<string>;
  /** Tags (of their last listings) of the repositories the loop scans now. */
  scanTagsInFlight: Gauge<string>;
}

/** Which of the warmer's metrics are made. */
export interface WarmerMetricsOptions {
  /** `regscan_warmer_tags_cached{repository}`: one series per repository (default true). */
  tagsCachedByRepository?: boolean | undefined;
}

/** Creates (or finds) the warmer's metrics on `registry`. */
export function warmerMetrics(
  registry: Registry = promClient().register,
  options: WarmerMetricsOptions = {},
): WarmerMetrics {
  const { Counter, Gauge } = promClient();
  return {
    repositoriesScanned: once(
      registry,
      "regscan_warmer_repositories_scanned_total",
      () =>
        new Counter({
          name: "regscan_warmer_repositories_scanned_total",
          help: "Repository scans by the warmer, by result.",
          labelNames: ["result"],
          registers: [registry],
        }),
    ),
    tagsRefreshed: once(
      registry,
      "regscan_warmer_tags_refreshed_total",
      () =>
        new Counter({
          name: "regscan_warmer_tags_refreshed_total",
          help: "Tags whose image metadata the warmer fetched (new or moved tags).",
          registers: [registry],
        }),
    ),
    getsAvoidedByHead: once(
      registry,
      "regscan_warmer_gets_avoided_by_head_total",
      () =>
        new Counter({
          name: "regscan_warmer_gets_avoided_by_head_total",
          help: "Tags past their deadline found unchanged by a HEAD, so no GET was made.",
          registers: [registry],
        }),
    ),
    tagsCached:
      options.tagsCachedByRepository === false
        ? undefined
        : once(
            registry,
            "regscan_warmer_tags_cached",
            () =>
              new Gauge({
                name: "regscan_warmer_tags_cached",
                help: "Tags held in the cache, by repository, as of this replica's last scan of the repository (another replica's later scan removes the series here).",
                labelNames: ["repository"],
                registers: [registry],
              }),
          ),
    newTagFetches: once(
      registry,
      "regscan_warmer_new_tag_fetches_total",
      () =>
        new Counter({
          name: "regscan_warmer_new_tag_fetches_total",
          help: "Tags not yet cached, by how they were first asked for: head (HEAD, then GET by digest if the image is new) or get (one GET by tag).",
          labelNames: ["first"],
          registers: [registry],
        }),
    ),
    intervalStretch: once(
      registry,
      "regscan_warmer_interval_stretch",
      () =>
        new Gauge({
          name: "regscan_warmer_interval_stretch",
          help: "How many times the configured repository intervals are stretched because the registry host's request budget cannot cover them (1: not stretched).",
          labelNames: ["host"],
          registers: [registry],
        }),
    ),
    scanTagsInFlight: once(
      registry,
      "regscan_warmer_scan_tags_in_flight",
      () =>
        new Gauge({
          name: "regscan_warmer_scan_tags_in_flight",
          help: "Tags (of their last listings) of the repositories the warming loop scans now, which warmer.maxTagsInFlight bounds.",
          registers: [registry],
        }),
    ),
  };
}
