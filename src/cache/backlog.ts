/**
 * The warmer's queue of repositories to scan: priority requests first, then the backlog
 * from the last lookup, never the same repository twice at once.
 */

/** A repository taken from the backlog. */
export interface BacklogItem {
  name: string;
  priority: boolean;
  /**
   * A priority request that named tags (a registry webhook): only these, and tags not yet
   * in the index, are checked. Undefined: every tag.
   */
  onlyTags?: string[];
}

/** Queue of canonical repository names with a priority lane. */
export class Backlog {
  readonly #regular: string[] = [];
  readonly #priority: string[] = [];
  readonly #inFlight = new Set<string>();
  /** Tags named by the priority requests waiting; a name absent here means every tag. */
  readonly #priorityTags = new Map<string, Set<string>>();
  #wake: (() => void) | undefined;

  /** Adds every name that is not already waiting (Flux v1 rebuilt it from each lookup). */
  refill(names: Iterable<string>): void {
    for (const name of names) {
      if (!this.#regular.includes(name) && !this.#priority.includes(name)) this.#regular.push(name);
    }
    this.#notify();
  }

  /**
   * Moves `name` to the front: it is the next repository scanned. With `onlyTags`, that scan
   * checks only those tags (and new ones; an empty list: the listing's new tags only), unless
   * another request for the same scan asked for every tag; requests waiting together add up.
   */
  prioritize(name: string, onlyTags?: readonly string[]): void {
    const at = this.#regular.indexOf(name);
    if (at >= 0) this.#regular.splice(at, 1);
    const waiting = this.#priority.includes(name);
    const tags = this.#priorityTags.get(name);
    if (onlyTags === undefined) this.#priorityTags.delete(name);
    else if (!waiting) this.#priorityTags.set(name, new Set(onlyTags));
    else if (tags) for (const tag of onlyTags) tags.add(tag);
    if (!waiting) this.#priority.push(name);
    this.#notify();
  }

  /** The next repository not being scanned, marking it in flight; undefined when none. */
  take(): BacklogItem | undefined {
    for (const [lane, priority] of [
      [this.#priority, true],
      [this.#regular, false],
    ] as const) {
      const at = lane.findIndex((n) => !this.#inFlight.has(n));
      if (at >= 0) {
        const [name] = lane.splice(at, 1) as [string];
        this.#inFlight.add(name);
        const tags = priority ? this.#priorityTags.get(name) : undefined;
        this.#priorityTags.delete(name);
        return tags ? { name, priority, onlyTags: [...tags] } : { name, priority };
      }
    }
    return undefined;
  }

  /** Marks a repository taken with `take()` as finished. */
  done(name: string): void {
    this.#inFlight.delete(name);
    this.#notify();
  }

  /** Resolves when something may have changed (a refill, a priority, a finished scan) or on abort. */
  changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const previous = this.#wake;
      const onAbort = () => resolve();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#wake = () => {
        previous?.();
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
