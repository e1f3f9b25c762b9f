/**
 * The request budgets as Prometheus metrics, read from the `RateLimiters` at each scrape:
 * each host's budget and current rate, how far demand is ahead of it (the signal that the
 * configured intervals cannot be kept), the time spent waiting for it, and the pull quota.
 */
import { createRequire } from "node:module";
import type { Registry as PromRegistry } from "prom-client";
import type { RateLimiters } from "./http/rate-limiters.js";

/** Metric names (also in the README). */
export const BUDGET_METRICS = {
  budgetRps: "regscan_registry_budget_rps",
  budgetBurst: "regscan_registry_budget_burst",
  effectiveRps: "regscan_registry_effective_budget_rps",
  effectiveBurst: "regscan_registry_effective_budget_burst",
  share: "regscan_registry_budget_share",
  hostShare: "regscan_registry_host_budget_share",
  rate: "regscan_registry_rate_rps",
  demand: "regscan_registry_demand_rps",
  saturated: "regscan_registry_budget_saturated",
  queue: "regscan_registry_budget_queue_seconds",
  waited: "regscan_registry_budget_wait_seconds_total",
  requests: "regscan_registry_budget_requests_total",
  pullLimit: "regscan_registry_pull_quota_limit",
  pullRemaining: "regscan_registry_pull_quota_remaining",
  inFlight: "regscan_registry_requests_in_flight",
} as const;

type PromClient = typeof import("prom-client");

/** Registers the budget metrics of `limiters` on `register` (once per register). */
export function registerBudgetMetrics(register: PromRegistry, limiters: RateLimiters): void {
  if (register.getSingleMetric(BUDGET_METRICS.budgetRps) !== undefined) return;
  const prom = createRequire(import.meta.url)("prom-client") as PromClient;
  const gauge = (name: string, help: string, read: (host: string) => number | undefined) =>
    new prom.Gauge({
      name,
      help,
      labelNames: ["host"],
      registers: [register],
      collect() {
        this.reset();
        for (const host of limiters.hosts()) {
          const value = read(host);
          if (value !== undefined) this.set({ host }, value);
        }
      },
    });
  const total = (name: string, help: string, read: (host: string) => number) =>
    new prom.Counter({
      name,
      help,
      labelNames: ["host"],
      registers: [register],
      collect() {
        this.reset();
        for (const host of limiters.hosts()) this.inc({ host }, read(host));
      },
    });
  gauge(
    BUDGET_METRICS.budgetRps,
    "Request budget per registry host: requests per second.",
    (h) => limiters.budget(h).rps,
  );
  gauge(
    BUDGET_METRICS.budgetBurst,
    "Request budget per registry host: burst.",
    (h) => limiters.budget(h).burst,
  );
  gauge(
    BUDGET_METRICS.effectiveRps,
    "This replica's part of each host's request budget, requests per second: the budget (less its 1% margin) times the replica's share.",
    (h) => limiters.state(h).effectiveBudget.rps,
  );
  gauge(
    BUDGET_METRICS.effectiveBurst,
    "This replica's part of each host's request budget: burst times the replica's share.",
    (h) => limiters.state(h).effectiveBudget.burst,
  );
  new prom.Gauge({
    name: BUDGET_METRICS.share,
    help: "This replica's common share of the registry budgets (1 / live replicas sharing the store, 0 while it waits for the others to make room); hosts it shares by demand have their own (regscan_registry_host_budget_share).",
    registers: [register],
    collect() {
      this.set(limiters.share);
    },
  });
  gauge(
    BUDGET_METRICS.hostShare,
    "This replica's share of each host's request budget: the common share, or, while replicas share the budgets, its part by demand (more where its requests queue).",
    (h) => limiters.shareOf(h),
  );
  gauge(
    BUDGET_METRICS.rate,
    "Requests per second each host gets now (halved after a 429).",
    (h) => limiters.state(h).rate,
  );
  gauge(
    BUDGET_METRICS.demand,
    "Requests per second asked of each host over the last minute.",
    (h) => limiters.saturation(h).demandRps,
  );
  gauge(
    BUDGET_METRICS.saturated,
    "1 while a host's budget cannot keep up with the work asked of it (requests queue for over a second, or pulls wait for quota): the configured intervals are being stretched.",
    (h) => (limiters.saturation(h).saturated ? 1 : 0),
  );
  gauge(
    BUDGET_METRICS.queue,
    "How long a request asked of the host now would wait for its budget.",
    (h) => limiters.saturation(h).queueDelayMs / 1000,
  );
  total(
    BUDGET_METRICS.waited,
    "Seconds requests have waited for their host's budget, or for a free connection to it.",
    (h) => limiters.saturation(h).waitedMs / 1000,
  );
  total(
    BUDGET_METRICS.requests,
    "Requests let through each host's budget.",
    (h) => limiters.saturation(h).requests,
  );
  gauge(
    BUDGET_METRICS.inFlight,
    "Requests to each host in flight now, one per connection: a request takes its turn of the budget only once a connection is free.",
    (h) => limiters.state(h).inFlight,
  );
  gauge(
    BUDGET_METRICS.pullLimit,
    "Pull quota a host reports (Docker Hub's ratelimit-limit).",
    (h) => limiters.state(h).pulls?.limit,
  );
  gauge(
    BUDGET_METRICS.pullRemaining,
    "Pulls left by regscan's reckoning (ratelimit-remaining less pulls since); kept at or above a fifth of the limit.",
    (h) => limiters.state(h).pulls?.remaining,
  );
}
