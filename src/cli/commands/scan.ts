import cliProgress from "cli-progress";
import type { Command } from "commander";
import { Registry as MetricsRegistry } from "prom-client";
import { openStore, redact } from "../../cache/open-store.js";
import type { Store } from "../../cache/store.js";
import type { TagFilterOptions } from "../../cache/tag-filter.js";
import { type ScanOptions, type ScanTarget, Warmer } from "../../cache/warmer.js";
import type { RepositoryOptions, RepositoryScanResult } from "../../cache/warmer-types.js";
import { type ImageName, parseImageRef } from "../../image/ref.js";
import { RemoteClientFactory } from "../../registry/factory.js";
import { HttpMetrics } from "../../registry/instrument.js";
import { type CliContext, CliError } from "../context.js";
import { cliLogger } from "../logger.js";
import { addRegistryOptions, loadCredentials, type RegistryFlags } from "../options.js";
import { collectTagPattern } from "../tag-pattern-option.js";

interface ScanFlags extends RegistryFlags {
  cache?: string;
  burst: number;
  rps?: number;
  include: string[];
  exclude: string[];
  maxTags?: number;
  progress: boolean;
  waitLease?: number;
}

function positiveNumber(flag: string, integer: boolean) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
      throw new CliError(
        `${flag} must be a positive ${integer ? "integer" : "number"}, not ${JSON.stringify(value)}`,
      );
    }
    return n;
  };
}

/** Registers `regscan scan`. */
export function registerScanCommand(program: Command, ctx: CliContext): void {
  const cmd = program
    .command("scan")
    .description("warm the cache for repositories: one pass, then a summary per repository")
    .argument("<image...>", "repositories to scan, e.g. alpine ghcr.io/org/app")
    .option("--cache <url>", "cache store URL (default: sqlite in the user cache directory)")
    .option("--burst <n>", "requests in flight per repository", positiveNumber("--burst", true), 10)
    .option("--rps <n>", "requests per second per registry host", positiveNumber("--rps", false))
    .option(
      "--include <pattern>",
      "only tags matching this glob or /regex/ (repeatable)",
      collectTagPattern("--include"),
      [],
    )
    .option(
      "--exclude <pattern>",
      "leave out tags matching this glob or /regex/ (repeatable)",
      collectTagPattern("--exclude"),
      [],
    )
    .option(
      "--max-tags <n>",
      "at most this many tags per repository, newest by semver",
      positiveNumber("--max-tags", true),
    )
    .option("--no-progress", "no progress bar, even on a terminal")
    .option(
      "--wait-lease <seconds>",
      "when another scan holds a repository's lease, wait up to this long for it (default: fail at once)",
      positiveNumber("--wait-lease", false),
    );
  addRegistryOptions(cmd).action(async (images: string[], flags: ScanFlags) => {
    await runScan(ctx, images, flags);
  });
}

async function runScan(ctx: CliContext, images: string[], flags: ScanFlags): Promise<void> {
  const names: ImageName[] = [];
  for (const image of images) {
    let ref: ReturnType<typeof parseImageRef>;
    try {
      ref = parseImageRef(image);
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    if (ref.tag !== undefined || ref.digest !== undefined) {
      throw new CliError(`regscan scan takes repositories, not tags or digests: ${image}`);
    }
    if (!names.some((n) => n.equals(ref.name))) names.push(ref.name);
  }
  const platform = flags.platform;
  let tagFilter: TagFilterOptions | undefined;
  if (flags.include.length > 0 || flags.exclude.length > 0 || flags.maxTags !== undefined) {
    tagFilter = { include: flags.include, exclude: flags.exclude };
    if (flags.maxTags !== undefined) tagFilter.maxTags = flags.maxTags;
  }
  const logger = cliLogger(ctx, flags.trace ? "info" : "warn");
  const creds = await loadCredentials(flags, ctx.env);
  const metricsRegistry = new MetricsRegistry();
  const http = new HttpMetrics(metricsRegistry);
  const factory = new RemoteClientFactory({
    logger,
    trace: flags.trace ?? false,
    insecureHosts: flags.insecureHost,
    env: ctx.env,
    platform,
    requestTimeoutMs: flags.requestTimeout,
    // Flux v1's --registry-burst was both the bucket size and the requests in flight.
    limiters: flags.rps === undefined ? undefined : { rps: flags.rps, burst: flags.burst },
    metrics: http,
  });
  let store: Store;
  try {
    store = await openStore(flags.cache, { logger });
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort(new Error("interrupted"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const progress = flags.progress && isTty(ctx.stderr) ? new ProgressBars(ctx) : undefined;
  let results: RepositoryScanResult[];
  try {
    const warmer = new Warmer({
      store,
      factory,
      logger,
      burst: flags.burst,
      concurrency: Math.min(names.length, 4),
      metricsRegistry,
    });
    const targets = names.map((name): ScanTarget => {
      const options: RepositoryOptions = {};
      if (tagFilter) options.tagFilter = tagFilter;
      if (platform) options.platform = platform;
      return { name, creds, options };
    });
    const scanOpts: ScanOptions = { signal: stop.signal, force: true };
    if (progress) scanOpts.onProgress = (repo, p) => progress.update(repo, p);
    results = await warmer.scan(targets, scanOpts);
    if (flags.waitLease !== undefined) {
      // Another scan holds some leases: retry those until they are free or the wait is over.
      const until = Date.now() + flags.waitLease * 1000;
      for (;;) {
        const waiting = targets.filter((_, i) => results[i]?.outcome === "skipped-lease");
        if (waiting.length === 0 || Date.now() >= until || stop.signal.aborted) break;
        await sleep(Math.min(LEASE_POLL_MS, until - Date.now()), stop.signal);
        if (stop.signal.aborted) break;
        const again = await warmer.scan(waiting, scanOpts);
        for (const [j, target] of waiting.entries()) {
          const r = again[j];
          if (r) results[targets.indexOf(target)] = r;
        }
      }
    }
  } finally {
    progress?.stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await store.close().catch(() => {});
    await factory.close();
  }
  const requests: Record<string, number> = {};
  for (const v of (await http.requests.get()).values) {
    const method = String(v.labels.method ?? "?");
    requests[method] = (requests[method] ?? 0) + v.value;
  }
  const failed = results.filter(isFailure);
  for (const r of results) {
    if (r.outcome === "skipped-lease") ctx.stderr.write(`regscan: ${leaseMessage(r, flags)}\n`);
  }
  if (flags.output === "json") {
    ctx.stdout.write(`${JSON.stringify(summaryJson(results, requests, flags), null, 2)}\n`);
  } else {
    ctx.stdout.write(summaryText(results, requests));
  }
  if (failed.length > 0) ctx.exitCode = 1;
}

/** How often `--wait-lease` asks for a held lease again. */
const LEASE_POLL_MS = 1000;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * A repository failed when the scan failed or was stopped, when any tag failed, or when
 * another scan's lease kept this one from scanning it (nothing was refreshed).
 */
function isFailure(r: RepositoryScanResult): boolean {
  return (
    r.outcome === "failed" ||
    r.outcome === "aborted" ||
    r.outcome === "skipped-lease" ||
    r.errors > 0
  );
}

/** Why a repository was not scanned: who holds its lease, and what to do about it. */
function leaseMessage(r: RepositoryScanResult, flags: ScanFlags): string {
  const h = r.leaseHolder;
  const who = h ? ` (process ${h.pid} on ${h.host}, since ${h.since.toISOString()})` : "";
  const waited = flags.waitLease !== undefined ? ` after waiting ${flags.waitLease} s` : "";
  return (
    `${r.repository} was not scanned${waited}: another scan holds its lease${who}. ` +
    "It is being scanned now, or a scan killed on another host left the lease, which expires " +
    "within 5 minutes; run again later, or with --wait-lease <seconds>"
  );
}

function isTty(stream: NodeJS.WritableStream): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true;
}

function summaryJson(
  results: RepositoryScanResult[],
  requests: Record<string, number>,
  flags: ScanFlags,
) {
  return {
    cache: flags.cache ? redact(flags.cache) : "default",
    repositories: results.map((r) => ({
      repository: r.repository,
      outcome: r.outcome,
      ok: !isFailure(r),
      tags: r.tags,
      refreshed: r.refreshed,
      unchanged: r.unchanged,
      fresh: r.fresh,
      excluded: r.excluded,
      artifacts: r.artifacts,
      filteredOut: r.filteredOut,
      errors: r.errors,
      newTags: r.newTags,
      movedTags: r.movedTags,
      // Undefined when absent, which JSON.stringify leaves out.
      error: r.error,
      leaseHolder: r.leaseHolder,
      durationMs: Math.round(r.durationMs),
    })),
    requests: { total: Object.values(requests).reduce((a, b) => a + b, 0), byMethod: requests },
  };
}

function summaryText(results: RepositoryScanResult[], requests: Record<string, number>): string {
  const header = ["REPOSITORY", "TAGS", "REFRESHED", "UNCHANGED", "EXCLUDED", "ERRORS", "RESULT"];
  const rows = results.map((r) => [
    r.repository,
    String(r.tags),
    String(r.refreshed),
    String(r.unchanged + r.fresh),
    String(r.excluded + r.filteredOut),
    String(r.errors),
    r.error ? `${r.outcome}: ${r.error.code}: ${r.error.message}` : r.outcome,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) =>
        i === cells.length - 1
          ? c
          : i === 0
            ? c.padEnd(widths[i] ?? 0)
            : c.padStart(widths[i] ?? 0),
      )
      .join("  ");
  const byMethod = Object.entries(requests)
    .map(([m, n]) => `${n} ${m}`)
    .join(", ");
  return `${[line(header), ...rows.map(line)].join("\n")}\nHTTP requests: ${byMethod || "none"}\n`;
}

/** One bar per repository, drawn on stderr. */
class ProgressBars {
  readonly #multi: cliProgress.MultiBar;
  readonly #bars = new Map<string, cliProgress.SingleBar>();

  constructor(ctx: CliContext) {
    this.#multi = new cliProgress.MultiBar(
      {
        stream: ctx.stderr,
        format: " {bar} {value}/{total} {repository}",
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  update(repository: string, p: { total: number; done: number }): void {
    let bar = this.#bars.get(repository);
    if (!bar) {
      bar = this.#multi.create(p.total, p.done, { repository });
      this.#bars.set(repository, bar);
    }
    bar.setTotal(p.total);
    bar.update(p.done, { repository });
  }

  stop(): void {
    this.#multi.stop();
  }
}
