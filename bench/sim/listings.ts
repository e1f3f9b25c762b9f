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

export class ListingLog {
  readonly #times = new Map<string, Map<string, number[]>>();
  readonly #stops: Array<() => void> = [];

  /** Starts recording the answered (200) tag-list requests of `registries`. */
  constructor(registries: SimRegistry[]) {
    for (const registry of registries) {
      const byRepo = new Map<string, number[]>();
      this.#times.set(registry.name, byRepo);
      this.#stops.push(
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
    const out: Listings = {};
    for (const [registry, byRepo] of this.#times) {
      const repos: Record<string, number[]> = {};
      for (const [repo, times] of byRepo) {
        const kept = times.filter((t) => t >= since);
        if (kept.length > 0) repos[repo] = kept;
      }
      out[registry] = repos;
    }
    return out;
  }

  stop(): void {
    for (const stop of this.#stops) stop();
  }
}
