/**
 * Fan-out of the warmer's tag events to listeners and to async iterators (one buffered
 * queue per iterator, bounded so a consumer that stops reading cannot grow memory forever).
 */
import type { TagEvent } from "./warmer-types.js";

/** Called for each event; an exception in a listener is caught and does not stop others. */
export type TagEventListener = (event: TagEvent) => void;

const MAX_BUFFERED = 10_000;

/** Delivers tag events to whoever subscribed. */
export class TagEvents {
  readonly #listeners = new Set<TagEventListener>();

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: TagEventListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Hands `event` to every listener and iterator, synchronously. */
  emit(event: TagEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A broken consumer must not stop the warmer or the other consumers.
      }
    }
  }

  /**
   * Events from now on, until `signal` aborts (then the iterator ends). When the consumer
   * falls more than 10,000 events behind, the oldest are dropped.
   */
  async *iterate(signal?: AbortSignal): AsyncGenerator<TagEvent, void, undefined> {
    const buffer: TagEvent[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = this.subscribe((event) => {
      buffer.push(event);
      if (buffer.length > MAX_BUFFERED) buffer.shift();
      wake?.();
    });
    const onAbort = () => wake?.();
    signal?.addEventListener("abort", onAbort);
    try {
      while (!signal?.aborted) {
        const next = buffer.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      unsubscribe();
      signal?.removeEventListener("abort", onAbort);
    }
  }
}
