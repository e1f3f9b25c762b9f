/**
 * The keys the cache lives under: one per repository, one per tag, one lease per
 * repository, all behind a prefix so several deployments can share one server.
 */
import type { ImageName } from "../image/ref.js";

/** The prefix used when none is configured; the `v1` changes when the value layout does. */
export const DEFAULT_KEY_PREFIX = "regscan:v1:";

/** Builds store keys under one namespace prefix. */
export class Keys {
  /** @param prefix prepended to every key, e.g. `"prod:regscan:v1:"`. */
  constructor(readonly prefix: string = DEFAULT_KEY_PREFIX) {}

  /** The key of a repository's tag list and last error (canonical name). */
  repository(name: ImageName): string {
    return `${this.prefix}repo:${name.toString()}`;
  }

  /**
   * The key of one tag's image entry. Tags never contain `:`, so the last `:` separates
   * the canonical name (which may carry a port) from the tag.
   */
  tag(name: ImageName, tag: string): string {
    return `${this.prefix}tag:${name.toString()}:${tag}`;
  }

  /** The key of the lease a warmer holds while it scans the repository. */
  lease(name: ImageName): string {
    return `${this.prefix}lease:${name.toString()}`;
  }

  /** The key of who holds the repository's lease (host and process), to take over a dead one's. */
  leaseHolder(name: ImageName): string {
    return `${this.prefix}lease-holder:${name.toString()}`;
  }
}
