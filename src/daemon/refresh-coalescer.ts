/**
 * Coalesces priority refreshes per repository, whoever asks for them (the API's
 * `POST .../refresh`, registry webhooks): one refresh in flight, at most one queued behind
 * it that takes in every request made meanwhile, and a minimum gap between the end of one
 * refresh and the start of the next. Any number of requests costs a bounded number of scans.
 */
import type { ImageName } from "../image/ref.js";
import type { RefreshRequest, RefreshRequestOutcome } from "../server/warmer-control.js";

export type { RefreshRequest, RefreshRequestOutcome };

/**
 * Runs one refresh and resolves when it is done. `tags` is undefined for the whole
 * repository, else the tags that were named (none: the listing's new tags only);
 * `listing` false when every request named a pushed tag (no listing needed for them).
 */
export type RefreshRunner = (
  repository: string,
  tags: string[] | undefined,
  listing: boolean,
) => Promise<void>;

/** How the coalescer is set up. */
export interface RefreshCoalescerOptions {
  run: RefreshRunner;
  /** Milliseconds from the end of one refresh of a repository to the start of its next (default 5 s). */
  minGapMs?: number;
  /**
   * Milliseconds a request waits before its refresh starts, so that a burst (the events of
   * one multi-platform push) becomes one refresh (default 0: at once). Each further request
   * of the burst restarts the wait, up to `settleMaxMs` after the first.
   */
  settleMs?: number;
  /** Longest a burst's first request waits for the burst to end (default `settleMs`). */
  settleMaxMs?: number;
  /** Called when a refresh fails (the runner should not throw; this keeps it visible). */
  onError?: (repository: string, error: unknown) => void;
  now?: () => number;
}

interface RepositoryState {
  running: boolean;
  /** The next refresh: undefined tags means the whole repository. */
  queued: { tags: Set<string> | undefined; listing: boolean } | undefined;
  lastEndedAt: number | undefined;
  timer: NodeJS.Timeout | undefined;
  /** While the queued refresh waits for its burst to settle: when the first request came. */
  settlingSince: number | undefined;
}

/** Default minimum gap between two refreshes of one repository. */
export const DEFAULT_REFRESH_MIN_GAP_MS = 5_000;

/** Per-repository coalescing of priority refreshes. */
export class RefreshCoalescer {
  readonly #states = new Map<string, RepositoryState>();
  readonly #minGapMs: number;
  readonly #settleMs: number;
  readonly #settleMaxMs: number;
  readonly #now: () => number;
  #closed = false;

  readonly #opts: RefreshCoalescerOptions;

  constructor(opts: RefreshCoalescerOptions) {
    this.#opts = opts;
    this.#minGapMs = Math.max(0, opts.minGapMs ?? DEFAULT_REFRESH_MIN_GAP_MS);
    this.#settleMs = Math.max(0, opts.settleMs ?? 0);
    this.#settleMaxMs = Math.max(this.#settleMs, opts.settleMaxMs ?? this.#settleMs);
    this.#now = opts.now ?? Date.now;
  }

  /** Asks for a refresh of `repository` (canonical name); returns at once. */
  requestRefresh(
    repository: ImageName | string,
    request: RefreshRequest = {},
  ): RefreshRequestOutcome {
    const name = repository.toString();
    let state = this.#states.get(name);
    if (!state) {
      state = {
        running: false,
        queued: undefined,
        lastEndedAt: undefined,
        timer: undefined,
        settlingSince: undefined,
      };
      this.#states.set(name, state);
    }
    const listing = request.tag === undefined || request.listing === true;
    if (state.queued) {
      const tags = state.queued.tags;
      if (request.tag !== undefined) tags?.add(request.tag);
      else if (!request.listing) state.queued.tags = undefined;
      state.queued.listing ||= listing;
      this.#extendSettle(name, state);
      return "coalesced";
    }
    state.queued = {
      tags:
        request.tag !== undefined
          ? new Set([request.tag])
          : request.listing
            ? new Set<string>()
            : undefined,
      listing,
    };
    return this.#schedule(name, state) ? "started" : "queued";
  }

  /** Whether a refresh of `repository` is running or queued (for status and tests). */
  pending(repository: ImageName | string): { running: boolean; queued: boolean } {
    const state = this.#states.get(repository.toString());
    return { running: state?.running ?? false, queued: state?.queued !== undefined };
  }

  /** Drops queued refreshes and their timers (refreshes in flight finish on their own). */
  close(): void {
    this.#closed = true;
    for (const state of this.#states.values()) {
      clearTimeout(state.timer);
      state.queued = undefined;
    }
  }

  /** Starts the queued refresh now or sets a timer for it; true when it started now. */
  #schedule(name: string, state: RepositoryState): boolean {
    if (state.running || state.timer !== undefined || this.#closed) return false;
    const gapLeft =
      state.lastEndedAt === undefined ? 0 : state.lastEndedAt + this.#minGapMs - this.#now();
    const wait = Math.max(gapLeft, this.#settleMs);
    if (wait <= 0) {
      this.#start(name, state);
      return true;
    }
    if (this.#settleMs > 0) state.settlingSince = this.#now();
    this.#wakeAfter(name, state, wait);
    return false;
  }

  /** A request joined a settling burst: its refresh waits `settleMs` more, within the bound. */
  #extendSettle(name: string, state: RepositoryState): void {
    if (state.settlingSince === undefined || state.timer === undefined || state.running) return;
    const now = this.#now();
    const gapLeft = state.lastEndedAt === undefined ? 0 : state.lastEndedAt + this.#minGapMs - now;
    const wait = Math.min(
      Math.max(gapLeft, this.#settleMs),
      state.settlingSince + this.#settleMaxMs - now,
    );
    clearTimeout(state.timer);
    this.#wakeAfter(name, state, Math.max(0, wait));
  }

  #start(name: string, state: RepositoryState): void {
    const queued = state.queued;
    if (!queued || this.#closed) return;
    state.queued = undefined;
    state.settlingSince = undefined;
    state.running = true;
    const tags = queued.tags === undefined ? undefined : [...queued.tags];
    void Promise.resolve()
      .then(() => this.#opts.run(name, tags, queued.listing))
      .catch((error: unknown) => this.#opts.onError?.(name, error))
      .finally(() => {
        state.running = false;
        state.lastEndedAt = this.#now();
        // Whatever came in meanwhile starts when the gap is over; with nothing queued the
        // same wake-up forgets the repository, so the table holds only recent ones.
        this.#wakeAfter(name, state, this.#minGapMs);
      });
  }

  #wakeAfter(name: string, state: RepositoryState, ms: number): void {
    state.timer = setTimeout(() => {
      state.timer = undefined;
      if (state.queued) this.#start(name, state);
      else if (!state.running && this.#states.get(name) === state) this.#states.delete(name);
    }, ms);
    // A queued refresh must not keep a stopping process alive.
    state.timer.unref();
  }
}
