/**
 * The daemon's logger: pino, as JSON lines (for log collectors) or as short readable lines
 * (`pretty`, for a terminal). Secrets never reach it: callers log codes and messages of
 * errors, which carry none.
 */
import type { Writable } from "node:stream";
import pino, { type Logger } from "pino";

/** Log settings. */
export interface LoggerOptions {
  level: string;
  format: "json" | "pretty";
  /** Where lines go (default stderr). */
  stream?: Writable;
}

const LEVELS: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};

/** Makes the daemon's logger. */
export function createLogger(opts: LoggerOptions): Logger {
  const out = opts.stream ?? process.stderr;
  const base = {
    level: opts.level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (opts.format === "json") return pino(base, { write: (line: string) => out.write(line) });
  return pino(base, { write: (line: string) => out.write(prettyLine(line)) });
}

/** `2024-05-01T10:00:00.000Z INFO  message key=value ...` from one JSON log line. */
export function prettyLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { time, level, msg, pid: _pid, hostname: _host, ...rest } = record;
  const fields = Object.entries(rest)
    .map(
      ([k, v]) =>
        `${k}=${typeof v === "string" ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v)}`,
    )
    .join(" ");
  const name = LEVELS[Number(level)] ?? String(level);
  return `${String(time ?? "")} ${name.padEnd(5)} ${String(msg ?? "")}${fields ? ` ${fields}` : ""}\n`;
}
