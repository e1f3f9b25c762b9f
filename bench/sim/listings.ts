/**
 * When each repository was listed: the time of every answered tag-list request, per
 * registry and repository, so that a bench can tell how long any repository went unscanned
 * (issue 13, acceptance 7: a replica killed mid-fill must not leave repositories unscanned
 * longer than the lease TTL plus the interval). Pages of one listing are a few ms apart and
 * do not change a gap. A bounded ring per repository keeps memory flat on long runs.
 */
import type { SimRegistry } from "./registry-server.js";

/** Listing times kept per repository (the oldest dropped first). */
const KEPT_PER_REPOSITORY = 4096;
/** The longest span of activity kept as one (its first and last request). */
const SPAN_MS = 1000;

/** Registry name -> repository -> times (ms since the epoch) of tag-list requests, oldest first. */
export type Listings = Record<string, Record<string, number[]>>;

/**
 * A repository's registry requests of any kind (listing, manifest, blob): when it was being
 * scanned. A scan of a huge repository lists once and then works through its tags for longer
 * than an interval; acceptance 7's "unscanned" is a time with no such request, not the time
 * between two listings. Kept as spans of at most a second, each its first and last request
 * (exact times: a one-second grid made a gap up to a second longer or shorter than it was),
 * so that memory follows seconds of activity, not requests.
 */
const REQUEST_PATH = /^\/v2\/(.+)\/(?:tags\/list|manifests\/[^/]+|blobs\/[^/]+)$/;

export class ListingLog {
  readonly #times = new Map<string, Map<string, number[]>>();
  readonly #activity = new Map<string, Map<string, number[]>>();
  readonly #stops: Array<() => void> = [];

  /** Starts recording the answered (200) tag-list requests of `registries`. */
  constructor(registries: SimRegistry[]) {
    for (const registry of registries) {
      const byRepo = new Map<string, number[]>();
      this.#times.set(registry.name, byRepo);
      const active = new Map<string, number[]>();
      this.#activity.set(registry.name, active);
      this.#stops.push(
        registry.onRequest((r) => {
          const q = r.url.indexOf("?");
          const name = REQUEST_PATH.exec(q < 0 ? r.url : r.url.slice(0, q))?.[1];
          if (name === undefined) return;
          const now = Date.now();
          let spans = active.get(name);
          if (spans === undefined) {
            spans = [];
            active.set(name, spans);
          }
          // [start, end] pairs: the current span grows until it is a second long.
          const n = spans.length;
          if (n >= 2 && now - (spans[n - 2] as number) < SPAN_MS) spans[n - 1] = now;
          else spans.push(now, now);
          if (spans.length > KEPT_PER_REPOSITORY) {
            const excess = spans.length - KEPT_PER_REPOSITORY;
            spans.splice(0, excess + (excess % 2));
          }
        }),
        registry.onRequest((r) => {
          if (r.kind !== "tags" || r.status !== 200) return;
          const q = r.url.indexOf("?");
          const path = q < 0 ? r.url : r.url.slice(0, q);
          // `/v2/NAME/tags/list`; a link that dropped a prefix still names a repository here.
          const name = path.slice("/v2/".length, -"/tags/list".length);
          let times = byRepo.get(name);
          if (times === undefined) {
            times = [];
            byRepo.set(name, times);
          }
          times.push(Date.now());
          if (times.length > KEPT_PER_REPOSITORY)
            times.splice(0, times.length - KEPT_PER_REPOSITORY);
        }),
      );
    }
  }

  /** Every listing time at or after `since` (ms), per registry and repository. */
  since(since: number): Listings {
    return timesSince(this.#times, since);
  }

  /**
   * The first and last request of each span of activity (at most a second long) of every
   * repository, at or after `since` (ms): consecutive times are never more than a second
   * apart while the repository is being scanned, so a longer difference is a gap.
   */
  activitySince(since: number): Listings {
    return timesSince(this.#activity, since);
  }

  stop(): void {
    for (const stop of this.#stops) stop();
  }
}

function timesSince(log: Map<string, Map<string, number[]>>, since: number): Listings {
  const out: Listings = {};
  for (const [registry, byRepo] of log) {
    const repos: Record<string, number[]> = {};
    for (const [repo, times] of byRepo) {
      const kept = times.filter((t) => t >= since);
      if (kept.length > 0) repos[repo] = kept;
    }
    out[registry] = repos;
  }
  return out;
}
