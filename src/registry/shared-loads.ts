/**
 * Loads that concurrent callers share (a manifest by digest, a credential helper's answer)
 * while each caller keeps its own AbortSignal: one caller giving up neither cancels the
 * load for the others nor hands them its abort.
 */
import { raceAbort } from "../abort.js";

interface Running<T> {
  promise: Promise<T>;
  /** The signal of the caller who started the load (the load stops when it aborts). */
  signal: AbortSignal | undefined;
}

// A caller whose shared load was ended by others' aborts starts it again; this often at most.
const MAX_RESTARTS = 3;

/** In-flight loads by key; a load is forgotten as soon as it settles. */
export class SharedLoads<K, T> {
  readonly #running = new Map<K, Running<T>>();

  /**
   * Joins the load of `key` already running, or starts `load` with the caller's signal.
   * When the load fails because the caller who started it aborted, a caller still
   * waiting starts it again with its own signal.
   */
  async run(key: K, load: (signal?: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let restart = 0; ; restart++) {
      const entry = this.#join(key, load, signal);
      try {
        return await raceAbort(entry.promise, signal);
      } catch (err) {
        const othersAbort = entry.signal !== signal && entry.signal?.aborted === true;
        if (othersAbort && !signal?.aborted && restart < MAX_RESTARTS) continue;
        throw err;
      }
    }
  }

  #join(key: K, load: (signal?: AbortSignal) => Promise<T>, signal?: AbortSignal): Running<T> {
    const running = this.#running.get(key);
    if (running && !running.signal?.aborted) return running;
    const entry: Running<T> = { promise: load(signal), signal };
    this.#running.set(key, entry);
    const forget = () => {
      if (this.#running.get(key) === entry) this.#running.delete(key);
    };
    entry.promise.then(forget, forget);
    return entry;
  }
}
