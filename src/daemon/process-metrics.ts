/**
 * The daemon's metrics registry: Node.js and process metrics under their standard names
 * (`process_*`, `nodejs_*`, as every Node.js dashboard expects them) and
 * `regscan_build_info`. Every metric passes `promtool check metrics`.
 */
import { readFileSync } from "node:fs";
import { collectDefaultMetrics, Gauge, Registry as MetricsRegistry } from "prom-client";

/**
 * prom-client's gauges that end in `_total`, a suffix Prometheus keeps for counters
 * (promtool refuses them); the same counts are the sums of `nodejs_active_handles`,
 * `nodejs_active_requests` and `nodejs_active_resources` over their `type` label.
 */
const GAUGES_NAMED_LIKE_COUNTERS = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

/** A registry with the process metrics and the build info. */
export function processMetricsRegistry(): MetricsRegistry {
  const registry = new MetricsRegistry();
  collectDefaultMetrics({ register: registry });
  for (const name of GAUGES_NAMED_LIKE_COUNTERS) registry.removeSingleMetric(name);
  const build = new Gauge({
    name: "regscan_build_info",
    help: "Always 1; the labels say which regscan and which Node.js run",
    labelNames: ["version", "node"],
    registers: [registry],
  });
  build.set({ version: packageVersion(), node: process.versions.node }, 1);
  return registry;
}

/** regscan's version from its package.json (two levels up from src/daemon and dist/daemon). */
function packageVersion(): string {
  try {
    const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
    const version = (JSON.parse(text) as { version?: unknown }).version;
    return typeof version === "string" ? version : "unknown";
  } catch {
    return "unknown";
  }
}
