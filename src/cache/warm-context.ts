/**
 * What the warmer's pass files share: the context of one warmer and the job of one
 * repository scan. Declared apart from the pass so that its parts (due tags, stale tags, the
 * tag refresher) need not import the pass that imports them.
 */
import type { Logger } from "pino";
import type { ImageName } from "../image/ref.js";
import type { ClientFactory } from "../registry/client.js";
import type { Credentials } from "../registry/credentials/credentials.js";
import type { HostSharingSync } from "./host-sharing-record.js";
import type { Keys } from "./keys.js";
import type { WarmerMetrics } from "./metrics.js";
import type { HostSharing } from "./new-tag-fetch.js";
import type { RefreshOptions } from "./refresh-policy.js";
import type { SharedTimeout } from "./shared-timeout.js";
import type { Store } from "./store.js";
import type { TagEvents } from "./tag-events.js";
import type { RepositoryOptions } from "./warmer-types.js";

/** What every repository scan of one warmer shares. */
export interface WarmContext {
  store: Store;
  keys: Keys;
  factory: ClientFactory;
  logger: Logger;
  metrics: WarmerMetrics;
  events: TagEvents;
  /** The clock deadlines and marks are computed with (fake in tests). */
  now: () => number;
  /** At most this many registry requests in flight for the repository. */
  burst: number;
  /** Who holds leases taken by this warmer. */
  owner: string;
  leaseTtlMs: number;
  /** `getMany` calls in flight at once while sorting out the due tags. */
  storeConcurrency: number;
  /** Bound on each store write (made with its own signal, so that a stop does not cut it). */
  finalWriteTimeoutMs: number;
  /** Signals for tag writes bounded by `finalWriteTimeoutMs`, shared between writes. */
  writeTimeout: SharedTimeout;
  /** How refresh intervals are spread (jitter). */
  refresh: RefreshOptions;
  /** How often tags share images, per registry host (for how new tags are fetched). */
  hostSharing: HostSharing;
  /** Keeps {@link hostSharing} in step with the other replicas sharing the store. */
  hostSharingSync: HostSharingSync;
}

/** One repository to scan. */
export interface WarmJob {
  name: ImageName;
  creds: Credentials;
  options: RepositoryOptions;
  /** The repository's interval: it is skipped when scanned more recently than this. */
  intervalMs: number;
  /** Scan even if it was scanned less than an interval ago (priority requests, the CLI). */
  force: boolean;
  /** Check every kept tag (with HEAD first), not only the due ones. */
  checkAll?: boolean;
  /**
   * Its requests go ahead of other scans' for the hosts' request budgets (`ClientOptions`);
   * a signal raises them from when it aborts (the warmer's running scan a webhook names).
   */
  priority?: boolean | AbortSignal | undefined;
  /**
   * Only its listing goes ahead (the warming loop's repository late against its bound,
   * lease TTL + interval: its first request is what ends the time it goes unscanned, while
   * the rest of a late huge repository's scan ahead of everything would make others late).
   */
  listPriority?: boolean | undefined;
  /**
   * Also check (HEAD first) every kept tag last checked this long ago or more, whatever its
   * deadline: the warming loop's polling (see TAG_CHECK_FRACTION in warmer.ts).
   */
  tagCheckMs?: number | undefined;
  /**
   * With `options.onlyTags` (tags a webhook says were pushed): check those tags without
   * listing the repository, which for a 40,000-tag repository is 400 pages at GHCR-like
   * registries. The scan lists as usual when it cannot: no listing stored yet, a tag filter
   * with `maxTags`, an index bucket unread, or a named tag that fails.
   */
  skipListing?: boolean | undefined;
  signal: AbortSignal;
  /** Progress: called with the number of tags to check once listed, then once per tag done. */
  onProgress?: ((progress: { total: number; done: number }) => void) | undefined;
  /**
   * Told the listing's size (tags before filtering) once listed: what the scan holds in
   * memory from then on follows it (the warmer's bound on tags in flight).
   */
  onListed?: ((tags: number) => void) | undefined;
  /**
   * A loop scan that gives its lease up to a refresh waiting for it, once it has run this
   * long (scan-yield.ts); undefined: it never does (refreshes, `scan()` calls).
   */
  yieldAfterMs?: number | undefined;
  /** Aborted when this warmer's own refresh waits for the scan (see {@link yieldAfterMs}). */
  yieldAsked?: AbortSignal | undefined;
  /**
   * The scan before gave its lease up (`RepositoryScanResult.yielded`) and wrote a listing
   * made this recently or later (epoch ms): that listing is used again, not made anew (400
   * pages of a 40,000-tag repository at GHCR-like registries).
   */
  reuseListingSince?: number | undefined;
}
