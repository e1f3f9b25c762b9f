/**
 * What the HTTP API needs from the warmer: the watched repositories with their status, a
 * priority refresh, and a stream of tag events. A small interface so that the server can be
 * built and tested apart from the warmer that implements it.
 */
import type { RepositoryStatus, TagEvent } from "../cache/warmer-types.js";
import type { ImageName } from "../image/ref.js";

export type { RepositoryStatus, TagEvent };

/** What a refresh is asked for. */
export interface RefreshRequest {
  /** The tag that changed, when the asker knows it; without one, the whole repository. */
  tag?: string;
}

/**
 * What became of a refresh request: `started` at once, `queued` to run after the refresh in
 * flight or the minimum gap, or `coalesced` into a refresh already queued.
 */
export type RefreshRequestOutcome = "started" | "queued" | "coalesced";

/** The warmer's control surface as the server uses it. */
export interface WarmerControl {
  /** Every watched repository with its status. */
  statuses(): Promise<RepositoryStatus[]>;
  /** True when the repository is watched. */
  isWatched(name: ImageName): Promise<boolean>;
  /**
   * Asks for a priority refresh (the repository scanned before any other); returns at once.
   * Requests are coalesced per repository, so any number of them costs a bounded number
   * of scans.
   */
  requestRefresh(name: ImageName, request?: RefreshRequest): RefreshRequestOutcome;
  /** Calls `listener` for every tag event until the returned function is called. */
  subscribe(listener: (event: TagEvent) => void): () => void;
}
