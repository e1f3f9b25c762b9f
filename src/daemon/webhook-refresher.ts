/**
 * Turns accepted webhook events into priority refreshes: each event's repository is matched
 * against the watched ones, a watched repository gets a refresh of the named tag through
 * its own coalescer (a burst of events becomes one refresh per repository), and
 * `regscan_tag_change_seen_seconds` measures from the sender's timestamp to the end of the
 * scan that stored the change.
 */
import type { Logger } from "pino";
import { Histogram, type Registry as MetricsRegistry } from "prom-client";
import type { RepositoryScanResult } from "../cache/warmer-types.js";
import type { WebhookDelivery, WebhookSink } from "../server/webhook-endpoint.js";
import type { NormalisedEvent, WebhookKind } from "../server/webhooks/event.js";
import type { RefreshCoalescer } from "./refresh-coalescer.js";
import { matchWatchedRepository } from "./webhook-match.js";

/** Kinds whose senders report every manifest stored, tagged or not. */
const UNTAGGED_PUSH_IS_NO_CHANGE: ReadonlySet<WebhookKind> = new Set(["distribution", "acr"]);

/** Timestamps of changes announced and not yet seen stored, at most this many. */
const MAX_PENDING = 10_000;
/** A sender's timestamp further than this from now is not believed (clock skew, replays). */
const MAX_TIMESTAMP_AGE_MS = 60 * 60_000;

/** What the refresher works with. */
export interface WebhookRefresherOptions {
  /** The canonical names of the watched repositories (the last lookup's). */
  watched: () => readonly string[];
  refreshes: RefreshCoalescer;
  /** Subscribes to the end of each scan (the warmer's `onScan`). */
  onScan: (listener: (result: RepositoryScanResult) => void) => () => void;
  metrics: MetricsRegistry;
  logger: Logger;
  now?: () => number;
}

interface Pending {
  /** The sender's timestamp of the change. */
  changedAt: number;
  /** When regscan heard of it. */
  heardAt: number;
}

/** The daemon's sink for accepted webhook events. */
export class WebhookRefresher implements WebhookSink {
  readonly #seen: Histogram;
  /** `repository\ntag` -> the change announced. */
  readonly #pending = new Map<string, Pending>();
  readonly #now: () => number;
  readonly #unsubscribe: () => void;

  readonly #opts: WebhookRefresherOptions;

  constructor(opts: WebhookRefresherOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#seen =
      (opts.metrics.getSingleMetric("regscan_tag_change_seen_seconds") as Histogram | undefined) ??
      new Histogram({
        name: "regscan_tag_change_seen_seconds",
        help: "seconds from a webhook event's own timestamp to the change being in the store",
        buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
        registers: [opts.metrics],
      });
    this.#unsubscribe = opts.onScan((result) => this.#scanEnded(result));
  }

  deliver(kind: WebhookKind, events: readonly NormalisedEvent[]): WebhookDelivery {
    const watched = this.#opts.watched();
    let refreshed = 0;
    let unwatched = 0;
    for (const event of events) {
      // A manifest pushed by digest alone (the platform images of an index, before the
      // index's tag) changes no tag: the tag's own event follows.
      if (
        UNTAGGED_PUSH_IS_NO_CHANGE.has(kind) &&
        event.action === "push" &&
        event.tag === undefined
      ) {
        continue;
      }
      const repository = matchWatchedRepository(event.repository, watched);
      if (repository === undefined) {
        unwatched++;
        this.#opts.logger.debug(
          { kind, repository: event.repository },
          "webhook event for a repository not watched; ignored",
        );
        continue;
      }
      refreshed++;
      if (event.tag !== undefined && event.timestamp !== undefined) {
        this.#remember(repository, event.tag, event.timestamp.getTime());
      }
      // A pushed tag is checked alone; a deleted one needs the listing, which drops it.
      this.#opts.refreshes.requestRefresh(
        repository,
        event.tag === undefined
          ? { listing: true }
          : { tag: event.tag, ...(event.action === "push" ? {} : { listing: true }) },
      );
    }
    return { refreshed, unwatched };
  }

  /** Stops following scans. */
  close(): void {
    this.#unsubscribe();
  }

  #remember(repository: string, tag: string, changedAt: number): void {
    const heardAt = this.#now();
    if (Math.abs(heardAt - changedAt) > MAX_TIMESTAMP_AGE_MS) return;
    const key = `${repository}\n${tag}`;
    const known = this.#pending.get(key);
    // The earliest announcement of a change is when it happened.
    if (known && known.changedAt <= changedAt) return;
    this.#pending.delete(key);
    this.#pending.set(key, { changedAt, heardAt });
    if (this.#pending.size > MAX_PENDING) {
      const oldest = this.#pending.keys().next().value;
      if (oldest !== undefined) this.#pending.delete(oldest);
    }
  }

  /**
   * After a scan of a repository: the announced tags it found new or moved are in the store
   * now; announcements older than the scan that it found unchanged are forgotten (a
   * duplicate delivery, or a change another replica stored first).
   */
  #scanEnded(result: RepositoryScanResult): void {
    if (this.#pending.size === 0) return;
    if (result.outcome !== "scanned" && result.outcome !== "failed") return;
    const ended = this.#now();
    for (const tag of [...result.newTags, ...result.movedTags]) {
      const key = `${result.repository}\n${tag}`;
      const p = this.#pending.get(key);
      if (p === undefined) continue;
      this.#pending.delete(key);
      this.#seen.observe(Math.max(0, ended - p.changedAt) / 1000);
    }
    const prefix = `${result.repository}\n`;
    const started = result.startedAt.getTime();
    for (const [key, p] of this.#pending) {
      if (key.startsWith(prefix) && p.heardAt < started) this.#pending.delete(key);
    }
  }
}
