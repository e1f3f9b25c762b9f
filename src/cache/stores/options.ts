/**
 * What every store is given when it is opened, and the small parsers for the sizes and
 * durations that store URLs carry in their query (`itemSize=1m`, `refresh=30s`).
 */
import pino, { type Logger } from "pino";

/** Where a store reports what it cannot throw (undecodable values, lost connections). */
export type StoreLogger = Pick<Logger, "info" | "warn" | "debug" | "error">;

/** A logger that drops everything, for stores opened without one. */
export function silentLogger(): StoreLogger {
  return pino({ level: "silent" });
}

/** Parses `1048576`, `512k`, `1m`, `2mb` into bytes; undefined when it is not a size. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? "b").toLowerCase()[0];
  const scale = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  const bytes = Math.floor(Number(m[1]) * scale);
  return bytes > 0 ? bytes : undefined;
}

/** Parses `500` (ms), `500ms`, `30s`, `5m`, `1h` into milliseconds; undefined otherwise. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? "ms").toLowerCase();
  const scale = unit === "s" ? 1000 : unit === "m" ? 60_000 : unit === "h" ? 3_600_000 : 1;
  const ms = Math.floor(Number(m[1]) * scale);
  return ms > 0 ? ms : undefined;
}

/**
 * Settles with `work`, or rejects with the signal's reason as soon as it aborts. The work
 * itself is not cancelled (clients have their own timeouts); the caller just stops waiting.
 */
export function raceSignal<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
