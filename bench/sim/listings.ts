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

/** Registry name -> repository -> times (ms since the epoch) of tag-list requests, oldest first. */
export type Listings = Record<string, Record<string, number[]>>;

/**
 * A repository's registry requests of any kind (listing, manifest, blob) on a one-second
 * grid: when it was being scanned. A scan of a huge repository lists once and then works
 * through its tags for longer than an interval; acceptance 7's "unscanned" is a time with no
 * such request, not the time between two listings.
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
          const second = Math.floor(Date.now() / 1000) * 1000;
          let seconds = active.get(name);
          if (seconds === undefined) {
            seconds = [];
            active.set(name, seconds);
          }
          if (seconds[seconds.length - 1] !== second) seconds.push(second);
          if (seconds.length > KEPT_PER_REPOSITORY)
            seconds.splice(0, seconds.length - KEPT_PER_REPOSITORY);
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

  /** Every second with a request for the repository, from the second holding `since` (ms). */
  activitySince(since: number): Listings {
    return timesSince(this.#activity, Math.floor(since / 1000) * 1000);
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
