/**
 * The images a repository's index already points at, by top-level digest, so that a new or
 * moved tag on one costs no `GET`. Built from the index on first use: most rescans find
 * nothing changed and never ask, while the map of a 40,000-tag repository is about 1.5 MB,
 * held for its whole scan (7.2 MB over the 34 scans of a replica's near-limit heap snapshot
 * at 2,000,000 tags).
 */
export class KnownImages {
  #byDigest: Map<string, string> | undefined;
  /** Image ids the store no longer has (see `dropMissingImages`): never reused. */
  readonly #gone = new Set<string>();
  readonly #build: () => Map<string, string>;

  /** `build` gives image ids by digest (`ScanIndex.knownImages`), called at most once. */
  constructor(build: () => Map<string, string>) {
    this.#build = build;
  }

  /** The stored image id of `digest`, if the index points at one that is still stored. */
  get(digest: string): string | undefined {
    return this.#map().get(digest);
  }

  has(digest: string): boolean {
    return this.#map().has(digest);
  }

  /** Forgets the images with these ids (gone from the store). */
  drop(ids: ReadonlySet<string>): void {
    for (const id of ids) this.#gone.add(id);
    if (this.#byDigest) this.#forgetGone(this.#byDigest);
  }

  #map(): Map<string, string> {
    if (!this.#byDigest) {
      this.#byDigest = this.#build();
      this.#forgetGone(this.#byDigest);
    }
    return this.#byDigest;
  }

  #forgetGone(map: Map<string, string>): void {
    if (this.#gone.size === 0) return;
    for (const [digest, id] of map) if (this.#gone.has(id)) map.delete(digest);
  }
}
