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
  /**
   * The tag that changed, when the asker knows it; without one, the whole repository. A
   * tag alone was pushed: it may be checked without listing the repository.
   */
  tag?: string;
  /**
   * The listing changed. Without a tag (a webhook that names none): only new tags are
   * fetched, no cached tag is checked. With one (a deleted tag): the repository is listed.
   */
  listing?: boolean;
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
  /**
   * `GET /v1/repositories`' body as json-forms.ts' `statusListBody` makes it, where a control on
   * another thread has the warmer's thread build it (optional: without it the server builds
   * it from {@link statuses}).
   */
  statusListBody?(): Promise<Uint8Array>;
  /** True when the repository is watched. */
  isWatched(name: ImageName): Promise<boolean>;
  /** What this replica's warmer knows of one repository now (no store read); optional. */
  repositoryStatus?(name: ImageName): RepositoryStatus | undefined;
  /**
   * Asks for a priority refresh (the repository scanned before any other); returns at once.
   * Requests are coalesced per repository, so any number of them costs a bounded number
   * of scans. A control on another thread answers once the warmer's thread has taken it.
   */
  requestRefresh(
    name: ImageName,
    request?: RefreshRequest,
  ): RefreshRequestOutcome | Promise<RefreshRequestOutcome>;
  /**
   * Calls `listener` for every tag event until the returned function is called. `id` is the
   * event's id when events are shared between replicas (then the same on every replica).
   */
  subscribe(listener: (event: TagEvent, id?: string) => void): () => void;
  /**
   * The events after `lastEventId`, oldest first, when events are kept (a Redis store);
   * undefined when they are not, or the id is not one of them.
   */
  replay?(lastEventId: string, signal: AbortSignal): Promise<ReplayedEvent[] | undefined>;
}

/** An event handed again to a client that reconnected. */
export interface ReplayedEvent {
  id: string;
  event: TagEvent;
}
