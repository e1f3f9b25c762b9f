/**
 * The public shapes around the Warmer: per-repository options, what one repository's scan
 * reports, the status the daemon shows, and the events for new and moved tags.
 */
import type { Platform } from "../image/info.js";
import type { TagFilterOptions } from "./tag-filter.js";

/** Per-repository choices (from the daemon's configuration, or the CLI's flags). */
export interface RepositoryOptions {
  /** Which tags matter; others are never fetched (include / exclude, maximum count). */
  tagFilter?: TagFilterOptions;
  /** The platform to describe when a tag is an index (default: the factory's). */
  platform?: Platform;
  /** How often the repository is scanned at most (default: the warmer's interval). */
  intervalMs?: number;
  /**
   * For one scan only (a priority refresh that named tags, e.g. from a registry webhook):
   * check only these tags and tags not yet in the index; the others are left as they are.
   */
  onlyTags?: readonly string[];
}

/** How one repository's scan ended. */
export type ScanOutcome =
  /** Listed and refreshed; `errors` may still count tags that failed. */
  | "scanned"
  /** Failed as a whole (tag listing failed, `429`, the store refused the record). */
  | "failed"
  /** Stopped by the caller's signal; what was fetched was written. */
  | "aborted"
  /** Another warmer holds the repository's lease (it is scanning it now). */
  | "skipped-lease"
  /** Scanned (by this or another warmer) less than an interval ago. */
  | "skipped-fresh";

/** An error as it is kept and reported: a stable code and a message without secrets. */
export interface ErrorSummary {
  code: string;
  message: string;
}

/** What one repository's scan did. */
export interface RepositoryScanResult {
  /** Canonical repository name. */
  repository: string;
  outcome: ScanOutcome;
  /** Tags the registry listed that passed the tag filter. */
  tags: number;
  /** Tags the registry listed that the tag filter left out. */
  filteredOut: number;
  /** Tags whose metadata was fetched (new, moved, or undecodable in the store). */
  refreshed: number;
  /** Tags past their deadline that a `HEAD` showed unchanged (no `GET`). */
  unchanged: number;
  /** Tags not yet due, left alone. */
  fresh: number;
  /**
   * Of the refreshed tags, those not yet in the index fetched with one `GET` by tag instead of
   * `HEAD` first (chosen when this repository's tags seldom share images; see the README).
   */
  fetchedByTag?: number;
  /** Tags whose image is excluded (e.g. no manifest for the wanted platform), artifacts included. */
  excluded: number;
  /**
   * Listed tags that are artifacts of an image (cosign `.sig` / `.att` / `.sbom`, OCI
   * referrers fallback `sha256-<hex>`): excluded by name, never fetched.
   */
  artifacts: number;
  /** Tags that could not be refreshed in this scan. */
  errors: number;
  /** Tags that appeared since the previous scan. */
  newTags: string[];
  /** Tags that now point at another digest. */
  movedTags: string[];
  /** The scan's error, when it failed or some tags failed (the repository's last error). */
  error?: ErrorSummary;
  /**
   * The tags a webhook named (pushed) were checked without listing the repository: `tags`
   * is the last listing's plus those new; the repository's interval and last listing stand.
   */
  unlisted?: true;
  /** Who holds the repository's lease, when the outcome is `skipped-lease` and it is known. */
  leaseHolder?: { host: string; pid: number; since: Date };
  /**
   * The loop's scan stopped (`aborted`) to give its lease up to a refresh waiting for it;
   * what it did is written, and the loop scans the repository again soon.
   */
  yielded?: true;
  /**
   * The scan went on with the listing a scan before it wrote (one that gave its lease up):
   * when that listing was made, the repository's last listing (not this scan).
   */
  reusedListingOf?: Date;
  startedAt: Date;
  durationMs: number;
}

/** What the warmer knows about a repository it watches (for `/v1/repositories`). */
export interface RepositoryStatus {
  repository: string;
  /** Tags cached after the last scan (after filtering); undefined before the first. */
  tagCount?: number;
  /** Of those, artifact tags (signatures, attestations, SBOMs, referrers), excluded by name. */
  artifactTags?: number;
  /** When the tag list was last fetched successfully. */
  lastUpdate?: Date;
  /** The error of the last scan, if it had one. */
  lastError?: ErrorSummary;
  /** When the last scan (by any warmer sharing the store) started. */
  lastScanned?: Date;
  /** When this warmer will scan it next, at the earliest. */
  nextRefresh?: Date;
  /**
   * The interval applied now (ms): the repository's own, doubled while its listing stays
   * unchanged, up to the warmer's `maxIntervalFactor` times it.
   */
  intervalMs?: number;
  /** True while this warmer is scanning it. */
  scanning: boolean;
}

/** A tag that appeared, or moved to another digest. */
export interface TagEvent {
  type: "new-tag" | "moved-tag";
  /** Canonical repository name. */
  repository: string;
  tag: string;
  /** The digest the tag points at now. */
  digest: string;
  /** The digest it pointed at before (moved tags only). */
  previousDigest?: string;
  at: Date;
}
