/** A pino logger whose lines are kept in memory, for tests that search logs for secrets. */
import pino, { type Logger } from "pino";

export interface CapturedLogger {
  logger: Logger;
  lines: string[];
  text(): string;
  messages(): string[];
}

export function captureLogger(): CapturedLogger {
  const lines: string[] = [];
  const logger = pino({ level: "trace" }, { write: (s: string) => void lines.push(s) });
  return {
    logger,
    lines,
    text: () => lines.join(""),
    messages: () => lines.map((l) => String((JSON.parse(l) as { msg?: string }).msg)),
  };
}
