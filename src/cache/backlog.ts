/**
 * The warmer's queue of repositories to scan: priority requests first, then the backlog
 * from the last lookup, never the same repository twice at once.
 */

/** A repository taken from the backlog. */
export interface BacklogItem {
  name: string;
  priority: boolean;
}

/** Queue of canonical repository names with a priority lane. */
export class Backlog {
  readonly #regular: string[] = [];
  readonly #priority: string[] = [];
  readonly #inFlight = new Set<string>();
  #wake: (() => void) | undefined;

  /** Adds every name that is not already waiting (Flux v1 rebuilt it from each lookup). */
  refill(names: Iterable<string>): void {
    for (const name of names) {
      if (!this.#regular.includes(name) && !this.#priority.includes(name)) this.#regular.push(name);
    }
    this.#notify();
  }

  /** Moves `name` to the front: it is the next repository scanned. */
  prioritize(name: string): void {
    const at = this.#regular.indexOf(name);
    if (at >= 0) this.#regular.splice(at, 1);
    if (!this.#priority.includes(name)) this.#priority.push(name);
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
        return { name, priority };
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
