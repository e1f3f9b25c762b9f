/**
 * Waiting that the caller can cut short, for every layer (registry, stores, cache, server,
 * daemon): the options every network or store operation takes, a sleep, a wait on a promise
 * that others share (a ping, a token fetch, a cloud token) which one caller's abort must not
 * cancel for the rest, and a deadline for work that has no signal of its own.
 */

/** Options shared by every network or store operation. */
export interface OperationOptions {
  /** Cancels the operation; every network call honours it. */
  signal?: AbortSignal | undefined;
}

/** Waits `ms` milliseconds or until `signal` aborts (then rejects with its reason). */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The callbacks following each signal (see {@link followAbort}), behind one listener per
 * signal: Node walks a signal's whole list of listeners to remove one, and a scan's signal
 * is waited on by each of its requests, many times each (a listener per request was 3.6% of a
 * replica's CPU at 2,000,000 tags, a bench:scale profile).
 */
const followers = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `onAbort` when `signal` aborts, unless the function returned is called first (call it
 * once the wait is over). For a signal that is not aborted yet; the same `onAbort` given
 * twice for one signal is called once.
 */
export function followAbort(signal: AbortSignal, onAbort: () => void): () => void {
  let following = followers.get(signal);
  if (following === undefined) {
    const mine = new Set<() => void>();
    following = mine;
    followers.set(signal, mine);
    signal.addEventListener(
      "abort",
      () => {
        followers.delete(signal);
        for (const abort of mine) abort();
      },
      { once: true },
    );
  }
  const set = following;
  set.add(onAbort);
  return () => {
    set.delete(onAbort);
  };
}

/** Resolves as `p` does, or rejects with the signal's reason as soon as it aborts (`p` goes on). */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    // Nobody here waits for `p` any more; its failure must not become an unhandled rejection.
    p.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const unfollow = followAbort(signal, () => reject(signal.reason));
    p.then(
      (v) => {
        unfollow();
        resolve(v);
      },
      (e: unknown) => {
        unfollow();
        reject(e);
      },
    );
  });
}

/** How long `withTimeout` waits, and what it rejects with then. */
export interface TimeoutOptions {
  ms: number;
  onTimeout: () => Error;
  /**
   * Keep the process alive while waiting (default false): a shutdown that waits on the
   * promise needs the deadline to fire even when nothing else is left to run.
   */
  keepAlive?: boolean | undefined;
}

/**
 * `p`, or a rejection with `onTimeout()` when it takes longer than `ms`. The timer does not
 * keep the process alive unless `keepAlive` is set.
 */
export function withTimeout<T>(p: Promise<T>, opts: TimeoutOptions): Promise<T> {
  const { ms, onTimeout, keepAlive = false } = opts;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    if (!keepAlive) timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A signal that aborts when any of `sources` does, with its reason; `dispose` takes its
 * listeners off them once the work it guarded is over. Not `AbortSignal.any` where a source lives long:
 * on Node 20 each call leaves a `WeakRef` in both sources for as long as they live (a
 * replica's heap at 1,000 repositories held 274,000 of them, 9 MB, from the rate limiter's
 * naps on a scan's signal and a host's wake signal).
 */
export function eitherSignal(...sources: AbortSignal[]): {
  signal: AbortSignal;
  dispose: () => void;
} {
  const any = new AbortController();
  const first = sources.find((s) => s.aborted);
  if (first) {
    any.abort(first.reason);
    return { signal: any.signal, dispose: () => {} };
  }
  const listeners = sources.map((source) => () => {
    dispose();
    any.abort(source.reason);
  });
  const dispose = () => {
    sources.forEach((source, i) => {
      source.removeEventListener("abort", listeners[i] as () => void);
    });
  };
  sources.forEach((source, i) => {
    source.addEventListener("abort", listeners[i] as () => void, { once: true });
  });
  return { signal: any.signal, dispose };
}

/**
 * Runs `call` with a signal that aborts when any of `sources` does, and takes its listeners
 * off them when the call ends (see {@link eitherSignal}): for a call bounded by a
 * long-lived signal and its own deadline.
 */
export async function underSignals<T>(
  sources: AbortSignal[],
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const any = eitherSignal(...sources);
  try {
    return await call(any.signal);
  } finally {
    any.dispose();
  }
}
