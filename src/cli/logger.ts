/**
 * The CLI's logger: pino writing one readable line per record to the command's stderr, so
 * that commands log like the library does without printing JSON at a person.
 */
import { Writable } from "node:stream";
import pino, { type Logger } from "pino";
import type { CliContext } from "./context.js";

/**
 * A pino logger for the CLI: one readable line per record on stderr
 * (`regscan: warn: message (key=value ...)`), no timestamps, no JSON.
 */
export function cliLogger(ctx: CliContext, level: pino.LevelWithSilent): Logger {
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (!line) continue;
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          const { level: lvl, msg, time: _t, pid: _p, hostname: _h, ...rest } = rec;
          const name = pino.levels.labels[Number(lvl)] ?? String(lvl);
          const extra = Object.entries(rest)
            .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
            .join(" ");
          ctx.stderr.write(`regscan: ${name}: ${String(msg ?? "")}${extra ? ` (${extra})` : ""}\n`);
        } catch {
          ctx.stderr.write(`${line}\n`);
        }
      }
      done();
    },
  });
  // No pid or hostname on CLI log lines (null: pino adds none of its base fields).
  return pino({ level, base: null }, out);
}
