/**
 * What the HTTP API needs from the warmer: the watched repositories with their status, a
 * priority refresh, and a stream of tag events. A small interface so that the server can be
 * built and tested apart from the warmer that implements it.
 */
import type { RepositoryStatus, TagEvent } from "../cache/warmer-types.js";
import type { ImageName } from "../image/ref.js";

export type { RepositoryStatus, TagEvent };

/** The warmer's control surface as the server uses it. */
export interface WarmerControl {
  /** Every watched repository with its status. */
  statuses(): Promise<RepositoryStatus[]>;
  /** True when the repository is watched. */
  isWatched(name: ImageName): Promise<boolean>;
  /** Scans the repository before any other (a priority refresh); returns at once. */
  prioritize(name: ImageName): void;
  /** Calls `listener` for every tag event until the returned function is called. */
  subscribe(listener: (event: TagEvent) => void): () => void;
}
