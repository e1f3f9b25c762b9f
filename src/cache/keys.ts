/**
 * The keys the cache lives under: one record per repository, its tag index in buckets, one
 * record per distinct image, one lease per repository, all behind a prefix so several
 * deployments can share one server. The first layout's tag keys are still named here: the
 * first scan after an upgrade reads them.
 */
import type { ImageName } from "../image/ref.js";

/** The prefix used when none is configured; the `v2` changes when the value layout does. */
export const DEFAULT_KEY_PREFIX = "regscan:v2:";
/** The first layout's default prefix, read once to upgrade a store without refetching. */
export const LEGACY_KEY_PREFIX = "regscan:v1:";

/**
 * The prefix the first layout used for a given prefix: `regscan:v1:` for the default, a
 * trailing `v2:` turned into `v1:` otherwise, else the prefix itself (the two layouts then
 * share the repository key and tell each other apart by the record's version).
 */
export function legacyPrefixOf(prefix: string): string {
  if (prefix === DEFAULT_KEY_PREFIX) return LEGACY_KEY_PREFIX;
  if (prefix.endsWith("v2:")) return `${prefix.slice(0, -3)}v1:`;
  return prefix;
}

/** Builds store keys under one namespace prefix. */
export class Keys {
  /** Where the first layout's records are looked for (see {@link legacyPrefixOf}). */
  readonly legacyPrefix: string;

  /** @param prefix prepended to every key, e.g. `"prod:regscan:v2:"`. */
  constructor(
    readonly prefix: string = DEFAULT_KEY_PREFIX,
    legacyPrefix?: string,
  ) {
    this.legacyPrefix = legacyPrefix ?? legacyPrefixOf(prefix);
  }

  /** The key of a repository's tag list and last error (canonical name). */
  repository(name: ImageName): string {
    return `${this.prefix}repo:${name.toString()}`;
  }

  /** The key of bucket `n` of the repository's tag index (see `bucketOf`). */
  bucket(name: ImageName, n: number): string {
    return `${this.prefix}idx:${name.toString()}#${n}`;
  }

  /** The key of one image record, by its id (see `imageIdOf`): shared by every repository. */
  image(id: string): string {
    return `${this.prefix}img:${id}`;
  }

  /** The first layout's repository key (the same key unless the prefix names a version). */
  legacyRepository(name: ImageName): string {
    return `${this.legacyPrefix}repo:${name.toString()}`;
  }

  /**
   * The first layout's key of one tag's record. Tags never contain `:`, so the last `:`
   * separates the canonical name (which may carry a port) from the tag.
   */
  tag(name: ImageName, tag: string): string {
    return `${this.legacyPrefix}tag:${name.toString()}:${tag}`;
  }

  /**
   * The key of what the replicas sharing the store have learnt of how often a registry
   * host's tags share images (see host-sharing-record.ts), by API host (lower-cased).
   */
  hostSharing(host: string): string {
    return `${this.prefix}host-sharing:${host.toLowerCase()}`;
  }

  /**
   * The key of a repository's API answer shared by the replicas (server/shared-answers.ts):
   * derived from the records, one per repository, rewritten with each new version read.
   */
  answer(name: ImageName): string {
    return `${this.prefix}answer:${name.toString()}`;
  }

  /** The key of the record listing the replicas that share the store (replica-census.ts). */
  replicas(): string {
    return `${this.prefix}replicas`;
  }

  /** The key of the short lease held while the replicas record is rewritten. */
  replicasLease(): string {
    return `${this.prefix}replicas-lease`;
  }

  /** The key of the lease a warmer holds while it scans the repository. */
  lease(name: ImageName): string {
    return `${this.prefix}lease:${name.toString()}`;
  }

  /** The key of who holds the repository's lease (host and process), to take over a dead one's. */
  leaseHolder(name: ImageName): string {
    return `${this.prefix}lease-holder:${name.toString()}`;
  }

  /** The key of a refresh's ask that the repository's scan give its lease up (scan-yield.ts). */
  yieldAsk(name: ImageName): string {
    return `${this.prefix}yield-ask:${name.toString()}`;
  }
}
