/**
 * Command-line options of `npm run bench:scale`: the fleet's size, the replicas, the budget,
 * the churn and how long each phase may run. `--repos 10000 --tags 2000000` is the issue's
 * full run. The defaults are the small run, which must finish in under 5 minutes on 2 cores
 * (acceptance 8) through three cold fills (1 replica; 3 clean, for acceptance 4; 3 with one
 * killed, for acceptance 7, and its watch of lease TTL + interval and more after the fill)
 * and two staleness phases of 20 s of churn (polling's then waits up to `grace`, 40 s):
 * 200 repositories and 6,000 tags, a budget-bound fill of about 32 s (its slowest registry,
 * the Docker Hub-like one, at 50 requests/s). At 10,000 tags (about 54 s a fill) two fills
 * and the phases took 256 s, and a third would have taken the run past 5 minutes; the fills
 * are what grows with the fleet, the staleness phases and the kill's watch are fixed.
 */
import { parseArgs } from "node:util";

export interface ScaleOptions {
  repos: number;
  tags: number;
  /** Repositories of exactly this many tags, on every registry (`--huge 25000`). */
  huge: number[];
  replicas: 1 | 3;
  /** Also fill with one replica first, for the request ratio (default: with 3 replicas). */
  compareReplicas: boolean;
  webhooks: boolean;
  /** Seconds of churn in each staleness phase. */
  duration: number;
  /** Tag changes per second during churn, over the whole fleet. */
  churnPerSecond: number;
  /** Request budget of every simulated registry host. */
  budgetRps: number;
  budgetBurst: number;
  /** regscan's interval between scans of a repository, seconds. */
  intervalSeconds: number;
  /**
   * How far a quiet repository's interval backs off (`--max-interval-factor`; regscan's
   * default is 8). The bench's default is 2: after the kill the bench watches until every
   * repository has been scanned again or gone past lease TTL + its interval, and at 8 that
   * watch alone took 3 minutes of a run meant to fit in 5.
   */
  maxIntervalFactor: number;
  /** Seconds to wait after polling-only churn for the last changes to show. */
  grace: number;
  /** Longest a cold fill may take before the bench reports it unfinished, seconds. */
  fillTimeout: number;
  /**
   * Share of the tags cached when one of 3 replicas is killed with SIGKILL (acceptance 7);
   * null: no kill. Default 0.5 with 3 replicas.
   */
  killReplicaAt: number | null;
  /** The replicas' repository lease TTL, seconds (short, so a dead replica's leases expire). */
  leaseTtlSeconds: number;
  /** Seconds of the 50-client API load during the fill (from `apiStartAt`). */
  apiSeconds: number;
  /**
   * Share of the tags cached when the API load starts (`--api-start`, default 0.25): its
   * readers read repositories the fill has completed, and at the fill's start none is (at
   * 10,000 repositories, 86 of 7,542 answers in the load's 20 s were 200, the rest 503).
   */
  apiStartAt: number;
  apiClients: number;
  /**
   * Replicas serve the API from a thread of their own (`--api-thread on|off`, default off):
   * the reads under load are measured on it, and its heap in the replicas' RSS. Off by
   * default as in regscan: at 200,000 tags it took reads' p99 from 637 ms to 92-379 ms, and
   * VmHWM from 212-230 MiB to about 290, over the 256 MiB bound.
   */
  apiThread: boolean;
  /**
   * The replicas' `--warmer-nice` with the API thread (default 19: a replica alone in its
   * container, where a nice value only ranks its own threads; regscan's default is 10).
   */
  warmerNice: number;
  output: string;
}

class ScaleOptionError extends Error {
  readonly code = "BAD_BENCH_OPTION";
}

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw.replaceAll(",", "").replaceAll("_", ""));
  if (!Number.isFinite(n) || n <= 0)
    throw new ScaleOptionError(`--${name} must be a positive number, got ${raw}`);
  return n;
}

function niceValue(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 19)
    throw new ScaleOptionError(`--warmer-nice must be an integer from 0 to 19, got ${raw}`);
  return n;
}

function onOff(name: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw === undefined) return fallback;
  if (raw === "on" || raw === "true" || raw === "yes") return true;
  if (raw === "off" || raw === "false" || raw === "no") return false;
  throw new ScaleOptionError(`--${name} must be on or off, got ${raw}`);
}

/** A share of the tags cached, above 0 and below 1. */
function share(name: string, raw: string | undefined, fallback: number): number {
  const n = positive(name, raw, fallback);
  if (n >= 1) throw new ScaleOptionError(`--${name} must be below 1, got ${raw}`);
  return n;
}

function killAt(raw: string | undefined, threeReplicas: boolean): number | null {
  if (raw === undefined) return threeReplicas ? 0.5 : null;
  if (raw === "off") return null;
  return share("kill-replica-at", raw, 0.5);
}

export function parseScaleOptions(argv: string[]): ScaleOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      repos: { type: "string" },
      tags: { type: "string" },
      huge: { type: "string" },
      replicas: { type: "string" },
      "compare-replicas": { type: "string" },
      webhooks: { type: "string" },
      duration: { type: "string" },
      churn: { type: "string" },
      budget: { type: "string" },
      interval: { type: "string" },
      "max-interval-factor": { type: "string" },
      "fill-timeout": { type: "string" },
      grace: { type: "string" },
      "api-seconds": { type: "string" },
      "api-start": { type: "string" },
      "kill-replica-at": { type: "string" },
      "lease-ttl": { type: "string" },
      "api-clients": { type: "string" },
      "api-thread": { type: "string" },
      "warmer-nice": { type: "string" },
      output: { type: "string" },
    },
  });
  const replicas = positive("replicas", values.replicas, 3);
  if (replicas !== 1 && replicas !== 3)
    throw new ScaleOptionError(`--replicas must be 1 or 3, got ${replicas}`);
  const [rps, burst] = (values.budget ?? "50/50").split("/");
  const budgetRps = positive("budget", rps, 50);
  const intervalSeconds = positive("interval", values.interval, 20);
  return {
    repos: Math.round(positive("repos", values.repos, 200)),
    tags: Math.round(positive("tags", values.tags, 6_000)),
    huge: (values.huge ?? "")
      .split(",")
      .filter((s) => s !== "")
      .map((s) => Math.round(positive("huge", s, 1))),
    replicas,
    compareReplicas: onOff("compare-replicas", values["compare-replicas"], replicas === 3),
    webhooks: onOff("webhooks", values.webhooks, true),
    duration: positive("duration", values.duration, 20),
    churnPerSecond: positive("churn", values.churn, 2),
    budgetRps,
    budgetBurst: positive("budget", burst, budgetRps),
    intervalSeconds,
    maxIntervalFactor: Math.round(
      positive("max-interval-factor", values["max-interval-factor"], 2),
    ),
    // Two intervals: a change polling misses for that long is not "within the interval".
    grace: positive("grace", values.grace, 2 * intervalSeconds),
    fillTimeout: positive("fill-timeout", values["fill-timeout"], 600),
    killReplicaAt: killAt(values["kill-replica-at"], replicas === 3),
    leaseTtlSeconds: positive("lease-ttl", values["lease-ttl"], 10),
    apiSeconds: positive("api-seconds", values["api-seconds"], 20),
    apiStartAt: share("api-start", values["api-start"], 0.25),
    apiClients: Math.round(positive("api-clients", values["api-clients"], 50)),
    apiThread: onOff("api-thread", values["api-thread"], false),
    warmerNice: niceValue(values["warmer-nice"], 19),
    output: values.output ?? "bench/results/scale.json",
  };
}
