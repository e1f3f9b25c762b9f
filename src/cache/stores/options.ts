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
